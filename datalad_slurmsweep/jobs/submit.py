"""The one submission pipeline, for single jobs and sweeps alike.

It follows a fixed order so that no job is ever submitted without being
tracked, and a refusal leaves no trace:

1. **reserve** every job's outputs, all in one transaction with the
   conflict check;
2. **prepare** the work tree: unlock existing annexed outputs, create the
   log directories;
3. **submit** each sbatch call in order (a later block waits for the
   earlier one through ``--dependency=afterany``), and
4. **mark** its jobs with the id sbatch returned, at once.

There is one undo path: when sbatch refuses a call, the reservations of that
call and of every later one are dropped, and if nothing at all was
submitted the preparation is undone too. Any other interruption between 3
and 4 leaves the reservation ``submitting``: the next command finds the job
by its comment (the submission's token), or drops the reservation.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..backends.base import Backend, JobId
from ..crashpoints import crashpoint
from ..errors import SlurmError, SubmissionRefused
from ..provenance.datasets import Layout, annex_each, read_layout
from ..provenance.git import annex_lock, annex_unlock, head_state
from ..redact import redact_environment
from .model import Job, JobSpec, Submission
from .outputs import expand_outputs
from .prepare import fixed_log_files, log_dirs
from .runenv import launch, work_root
from .store import JobStore


@dataclass
class Batch:
    """One sbatch call and the jobs it carries."""

    submission: Submission
    jobs: list[Job]


@dataclass
class Submitted:
    """What became of one batch: its job id, or sbatch's refusal."""

    batch: Batch
    job_id: JobId | None = None
    error: SlurmError | None = None


class _Preparation:
    """The work-tree changes made for a submission, so they can be undone."""

    def __init__(self, ds_root: Path):
        self.ds_root = ds_root
        self.unlocked: dict[str, list[str]] = {}  # dataset -> its paths
        self.created: list[Path] = []

    def apply(self, jobs: list[Job], use_annex: bool) -> None:
        outputs = sorted({p for job in jobs for p in job.outputs})
        existing = expand_outputs(self.ds_root, outputs).present
        # A log of a fixed name committed by an earlier run is an annexed
        # symlink too: Slurm would write through it into the stored content.
        existing += [p for job in jobs if job.sweep is None
                     for p in fixed_log_files(job.spec, job.submission.user)
                     if os.path.exists(self.ds_root / p) and os.path.islink(self.ds_root / p)]
        # Not only a path with a "/": an output "sub" may be a subdataset,
        # or a directory holding one.
        layout = read_layout(self.ds_root) if existing else Layout()
        if existing and (use_annex or layout.installed):
            self.unlocked = annex_each(self.ds_root, layout, existing, annex_unlock)
        seen: set[Path] = set()
        # A sweep writes its log directories with its other generated files.
        for job in (j for j in jobs if j.sweep is None):
            for directory in log_dirs(self.ds_root, job.spec, job.submission.user):
                if directory in seen:
                    continue
                seen.add(directory)
                probe, missing = directory, []
                while not probe.exists():
                    missing.append(probe)
                    probe = probe.parent
                directory.mkdir(parents=True, exist_ok=True)
                self.created.extend(reversed(missing))

    def undo(self) -> None:
        for directory in reversed(self.created):
            try:
                directory.rmdir()
            except OSError:
                pass
        for root, paths in self.unlocked.items():
            annex_lock(self.ds_root / root, paths)


def _argv(batch: Batch, previous_block: list[JobId], kind: str) -> list[str]:
    argv = list(batch.submission.argv)
    if previous_block:
        argv.insert(1, f"--dependency={kind}:" + ":".join(str(j) for j in previous_block))
    return argv


def submit_batches(ds_root: Path, store: JobStore, backend: Backend, batches: list[Batch],
                   *, use_annex: bool, environment: dict[str, str],
                   block_dependency: str = "afterany",
                   replacing: list[str] = ()) -> Iterator[Submitted]:
    """Reserve, prepare, submit and mark ``batches`` in order (see the module
    doc). Yields one :class:`Submitted` per batch tried; stops at the first
    refusal. ``environment`` is the raw environment sbatch runs with; the
    store holds only the submissions' redacted copies. A later block waits
    for the previous one with ``--dependency=<block_dependency>:...``
    (``after``: until it started; ``afterany``: until it ended)."""
    jobs = [job for batch in batches for job in batch.jobs]
    head = head_state(ds_root)[1]
    for job in jobs:
        job.spec.commit_id = job.spec.commit_id or head
    store.reserve_many(jobs, replacing=replacing)
    preparation = _Preparation(ds_root)
    try:
        preparation.apply(jobs, use_annex)
    except BaseException:
        store.remove([job.token for job in jobs])
        preparation.undo()
        raise
    previous_block: list[JobId] = []
    current_block: list[JobId] = []
    block = batches[0].submission.block if batches else 0
    for index, batch in enumerate(batches):
        sub = batch.submission
        if sub.block != block:
            previous_block, current_block, block = current_block, [], sub.block
        try:
            cwd = work_root(ds_root, batch.jobs[0].spec) / sub.pwd
            base = backend.submit(_argv(batch, previous_block, block_dependency), cwd=cwd,
                                  env=environment, comment=sub.token)
        except SlurmError as exc:
            # sbatch said no: nothing of this or later batches was
            # submitted, so nothing of theirs may remain.
            store.remove([job.token for rest in batches[index:] for job in rest.jobs])
            if index == 0:
                preparation.undo()
            yield Submitted(batch, error=exc)
            return
        crashpoint("sweep-submitted" if batch.jobs[0].sweep else "submitted")
        store.mark_submitted(sub, batch.jobs, base)
        current_block.append(base)
        yield Submitted(batch, job_id=base)


def submit_job(ds_root: Path, store: JobStore, backend: Backend, spec: JobSpec, *,
               use_annex: bool, environment: dict[str, str] | None = None) -> Job:
    """Submit one validated job through the pipeline; raise sbatch's refusal."""
    env = dict(os.environ if environment is None else environment)
    # A container or --alt-dir changes what is submitted, never the spec.
    with launch(ds_root, spec) as argv:
        submission = Submission(argv=argv, pwd=spec.pwd, backend=backend.name,
                                environment=redact_environment(env))
        job = Job(spec=spec, submission=submission)
        (outcome,) = submit_batches(ds_root, store, backend, [Batch(submission, [job])],
                                    use_annex=use_annex, environment=env)
        if outcome.error is not None:
            raise SubmissionRefused(str(outcome.error), argv=outcome.error.argv,
                                    returncode=outcome.error.returncode,
                                    stderr=outcome.error.stderr) from None
    return job
