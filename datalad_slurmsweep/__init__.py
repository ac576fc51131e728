"""DataLad extension: provenance-tracked Slurm jobs and parameter sweeps.

The package is layered; imports point downwards only::

    commands/   one module per command: parameters, validation, results
    report/     results table, plots and HTML report from committed records
    sweep/      sweep configuration, points, clones, scripts, planning
    jobs/       typed jobs, the store, the one submission pipeline, finish
    provenance/ backends/    git runner, commits, records | Slurm and local
    errors.py settings.py process.py crashpoints.py
"""

__version__ = "0.1.0"

command_suite = (
    "Provenance-tracked Slurm jobs and parameter sweeps",
    [
        ("datalad_slurmsweep.commands.slurm_schedule", "SlurmSchedule",
         "slurm-schedule", "slurm_schedule"),
        ("datalad_slurmsweep.commands.slurm_finish", "SlurmFinish",
         "slurm-finish", "slurm_finish"),
        ("datalad_slurmsweep.commands.slurm_reschedule", "SlurmReschedule",
         "slurm-reschedule", "slurm_reschedule"),
        ("datalad_slurmsweep.commands.slurm_sweep", "SlurmSweep",
         "slurm-sweep", "slurm_sweep"),
        ("datalad_slurmsweep.commands.slurm_report", "SlurmReport",
         "slurm-report", "slurm_report"),
        ("datalad_slurmsweep.commands.slurm_init", "SlurmInit",
         "slurm-init", "slurm_init"),
    ],
)
