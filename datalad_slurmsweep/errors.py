"""Every error a user can cause, under one base class.

Commands catch :class:`SlurmsweepError` and nothing narrower: whatever goes
wrong below them, the user gets a result record with a message, never a
traceback. Each subclass says which result status it maps to: ``impossible``
when the request itself cannot be carried out (bad input, a conflict), and
``error`` when the request was fine but something it needs failed (Slurm,
git, the store).
"""
from __future__ import annotations


class SlurmsweepError(Exception):
    """Base of every error this extension reports to a user."""

    status = "impossible"


# -- bad input: the request cannot be carried out -----------------------------

class UsageError(SlurmsweepError):
    """Options or arguments that do not go together, or are of the wrong kind."""


class ConfigError(SlurmsweepError):
    """A sweep configuration is invalid; ``problems`` lists every mistake."""

    def __init__(self, path, problems: list[str]):
        self.path = path
        self.problems = list(problems)
        super().__init__(f"{path}: " + "; ".join(self.problems))


class ScheduleError(SlurmsweepError):
    """A job cannot be scheduled; nothing was written or submitted."""


class AbsentContentError(ScheduleError):
    """A committed file whose content is not here (an annexed file, say, in
    a fresh clone): getting it may let validation go on."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.path = path


class RescheduleError(SlurmsweepError):
    """A revision cannot be rescheduled; nothing was submitted."""


class PathOutsideDatasetError(ScheduleError):
    """A path that is not inside the dataset."""


class SbatchArgumentError(ScheduleError):
    """An sbatch command line or ``#SBATCH`` directive cannot be understood."""


class JobIdError(UsageError):
    """Text that is not a Slurm job id (``123`` or ``123_4``)."""


class JsonEditError(SlurmsweepError):
    """A JSON parameter edit cannot be applied; the message names the key."""


class RecordError(SlurmsweepError):
    """A commit message claims to be a run record but is not a valid one."""


class ReportError(SlurmsweepError):
    """slurm-report or slurm-init cannot do what was asked (no such
    sweep or record, a target that is not a dataset)."""


class UnknownBackendError(UsageError):
    """A backend name that is neither slurm nor local."""


class OutputConflictError(SlurmsweepError):
    """Declared outputs overlap the outputs of an open job.

    ``clashes`` holds (new path, open job's path, open job's id or None).
    """

    def __init__(self, clashes: list[tuple[str, str, str | None]]):
        self.clashes = clashes
        lines = [f"{new} overlaps {held} of open job {job_id or '(being submitted)'}"
                 for new, held, job_id in clashes[:5]]
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        super().__init__("outputs overlap those of open jobs: " + "; ".join(lines) + more
                         + ". Finish or close those jobs first (datalad slurm-finish)")


# -- something the request needs failed ----------------------------------------

class ProcessError(SlurmsweepError):
    """A subprocess failed; the message names the command and quotes stderr."""

    status = "error"

    def __init__(self, message: str, argv: list[str] | None = None,
                 returncode: int | None = None, stderr: str = ""):
        self.argv = list(argv or [])
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(message)


class GitError(ProcessError):
    """git or git-annex refused a step."""


class SlurmError(ProcessError):
    """Slurm refused or failed a request; the message is Slurm's own."""


class SubmissionRefused(SlurmError):
    """sbatch refused a job: the request, not the system, is at fault."""

    status = "impossible"


class SlurmUnavailableError(SlurmError):
    """The Slurm commands are not installed or the controller is down."""


class StoreError(SlurmsweepError):
    """The job store cannot be used; the message names its file."""

    status = "error"


class DamagedStoreError(StoreError):
    """The job store file is not a readable SQLite database."""


class WaitTimeout(SlurmsweepError):
    """Jobs were still running when ``--wait-timeout`` ran out."""

    status = "error"
