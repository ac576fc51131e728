"""The robustness suite (issue 8): table-driven trials of what a user can do
wrong or what can go wrong around datalad-slurmsweep, each asserting the
outcome the user needs.

``sandbox``     datasets, command calls (``datalad ...`` as subprocesses) and
                the checks every trial shares: traces, run records, integrity
``bad_inputs``  the tables of refused inputs (at least 200 in a full run)
``kills``       kill -9 at the crash points and at random moments
``races``       two finishes at once; a user committing during a finish
``faults``      a damaged or locked job store; an unreachable Slurm
``secrets``     secrets planted everywhere, looked for everywhere
``plan``        how many trials of each kind a full, quick or fast run makes
``report``      docs/robustness.md
``run``         ``python -m tests.robustness.run [--quick] --report FILE``

``tests/local/test_robustness_fast.py`` runs a small sample of each kind on
the local backend under ``make test``; ``make robustness`` runs all of it.
Every trial returns :class:`sandbox.Outcome`; a trial never softens what it
checks to pass.
"""
