"""DataLad extension: provenance-tracked Slurm jobs and parameter sweeps."""

__version__ = "0.1.0"

command_suite = (
    "Provenance-tracked Slurm jobs and parameter sweeps",
    [
        ("datalad_slurmsweep.slurm_schedule", "SlurmSchedule",
         "slurm-schedule", "slurm_schedule"),
        ("datalad_slurmsweep.slurm_finish", "SlurmFinish",
         "slurm-finish", "slurm_finish"),
        ("datalad_slurmsweep.slurm_reschedule", "SlurmReschedule",
         "slurm-reschedule", "slurm_reschedule"),
        ("datalad_slurmsweep.slurm_sweep", "SlurmSweep",
         "slurm-sweep", "slurm_sweep"),
    ],
)
