"""slurm-report: the results table, plots and the HTML page, read from
committed run records and files (see docs/design.rst)."""
