"""Replaying run records: find them in history and submit their jobs again.

A single job is replayed on the current work tree, like ``datalad rerun``.
A sweep's points are replayed from the files of the record's commit: their
scripts and clones are restored (and that restore committed) first when
they changed since. A ``[DATALAD SLURM SWEEP]`` commit replays the whole
sweep it generated (``replay_sweep.py``). In a range, each output is
replayed once, from the oldest commit that produces it.
"""
from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path, PurePosixPath

from ..backends.base import Backend
from ..errors import PathOutsideDatasetError, RecordError, RescheduleError, ScheduleError
from ..provenance.commits import PlannedCommit
from ..provenance.committing import commit_plans
from ..provenance.git import (
    git,
    literal,
    messages,
    resolve_commit,
)
from ..provenance.paths import normalise_recorded
from ..provenance.record import ParsedRecord, parse_record
from ..provenance.tables import inflate
from ..redact import REDACTED
from .content import get_inputs, get_sweep_models, install_subdatasets, prepare_getting_script
from .model import Job, JobSpec, SweepMember
from .prepare import check_conflicts, prepare
from .replay_sweep import (
    SweepCommit,
    changed,
    check_restorable,
    committed_texts,
    locate,
    parse_sweep_commit,
    submit_points,
    sweep_commit_specs,
    uncommitted,
)
from .retry import RetryPolicy
from .retry_replay import next_attempt
from .runenv import configure
from .store import JobStore
from .submit import submit_job


@dataclass
class RecordedRun:
    commit: str
    parsed: ParsedRecord

    def ds_relative(self, paths: list[str]) -> list[str]:
        """Record paths are relative to its pwd; make them dataset-relative
        once, so that replaying never prefixes them again."""
        pwd = self.parsed.record.get("pwd") or "."
        try:
            return [normalise_recorded(str(PurePosixPath(pwd, p) if pwd != "." else p))
                    for p in paths]
        except PathOutsideDatasetError as exc:
            raise RescheduleError(str(exc)) from None


@dataclass
class Replay:
    """One job to submit again, and the record it comes from."""

    run: RecordedRun | SweepCommit
    spec: JobSpec
    restore: list[str] | None = None  # paths to bring back from the commit first
    backend: str | None = None


@dataclass
class ReplayEvent:
    """What replaying did: ``restored`` inputs, ``would-submit`` (a report),
    ``submitted`` a job, or ``skipped`` a record."""

    kind: str
    run: RecordedRun | SweepCommit
    message: str
    spec: JobSpec | None = None
    job: Job | None = None
    commit: str | None = None


def find_records(root: Path, revision: str | None,
                 since: str | None) -> list[RecordedRun | SweepCommit]:
    """Run records and sweep commits of ``revision`` (default HEAD), or of
    ``since..revision`` oldest first. A single named revision that is
    neither is an error."""
    revision = revision or "HEAD"
    sha = resolve_commit(root, revision)
    if sha is None:
        raise RescheduleError(f"{revision} is not a commit of this dataset")
    if since and resolve_commit(root, since) is None:
        raise RescheduleError(f"--since {since} is not a commit of this dataset")
    if since is None:
        found = messages(root, "-1", sha)
    else:
        found = list(reversed(messages(root, "--no-merges", sha if since == "" else f"{since}..{sha}")))
    runs: list[RecordedRun | SweepCommit] = []
    for commit, message in found:
        try:
            parsed = parse_record(message)
        except RecordError as exc:
            raise RescheduleError(f"commit {commit[:10]}: {exc}") from None
        if parsed is None:
            generated = parse_sweep_commit(commit, message)
            if generated is not None:
                runs.append(locate(root, generated))
            elif since is None:
                raise RescheduleError(
                    f"commit {commit[:10]} ({revision}) has no [DATALAD SLURM RUN] record "
                    "and is no [DATALAD SLURM SWEEP] commit")
            continue
        runs.append(RecordedRun(commit=commit, parsed=parsed))
    try:
        inflate(root, [(r.commit, r.parsed) for r in runs if isinstance(r, RecordedRun)])
    except RecordError as exc:
        raise RescheduleError(str(exc)) from None
    return runs


def sweep_points(run: RecordedRun, *, only_failed: bool, with_failed: bool) -> list[dict]:
    """The points of a sweep record to replay."""
    points = run.parsed.record.get("points") or []
    if only_failed:
        return [p for p in points if p.get("state") != "COMPLETED"]
    if with_failed:
        return list(points)
    return [p for p in points if p.get("state") == "COMPLETED"]


def restore_inputs(root: Path, commit: str, paths: list[str], use_annex: bool) -> str | None:
    """Bring ``paths`` back to their state in ``commit`` and commit that, so the
    replayed jobs run on committed inputs. None if nothing had changed."""
    if not changed(root, commit, paths):
        return None
    dirty = uncommitted(root, paths)
    if dirty:
        raise RescheduleError(
            f"replaying {commit[:10]} would overwrite uncommitted changes to "
            f"{', '.join(sorted(dirty)[:5])}; save (datalad save) or discard them first")
    # --no-overlay: files the commit lacks under these paths go too (a clone
    # whose later configuration edited more files); pathspecs on standard
    # input, literal, as a large sweep's would not fit on a command line.
    git(root, "checkout", "--no-overlay", commit, "--pathspec-from-file=-",
        "--pathspec-file-nul", input=b"".join(os.fsencode(p) + b"\0" for p in literal(paths)))
    result = commit_plans(root, [PlannedCommit(
        "restore", paths,
        f"[DATALAD SLURM SWEEP] restore the inputs of {commit[:10]} to replay it\n")],
        use_annex)
    if result.failed:
        raise RescheduleError(f"the restored inputs could not be staged: {result.failed['restore']}")
    return result.shas["restore"]


def _sweep_replays(root: Path, store: JobStore, run: RecordedRun, *, only_failed: bool,
                   with_failed: bool, message: str | None,
                   grow: RetryPolicy | None) -> tuple[list[Replay], list[ReplayEvent]]:
    """One job per recorded point, submitted on its own (not as an array);
    with ``grow``, failed points get what their failure asks for, and those
    that cannot get more are skipped."""
    sweep = run.parsed.record["sweep"]
    replays, skipped = [], []
    points = sweep_points(run, only_failed=only_failed, with_failed=with_failed)
    # One cat-file for every point's script, not a git show per point.
    scripts = committed_texts(root, run.commit, sorted({p["script"] for p in points})) \
        if grow else {}
    for point in points:
        argv, retrying = ["sbatch", point["script"]], None
        found = (next_attempt(run.commit, point, scripts[point["script"]], grow)
                 if grow else None)
        if isinstance(found, str):
            skipped.append(ReplayEvent("skipped", run, f"commit {run.commit[:10]}: point "
                                       f"{point.get('point')} ended {point.get('state')} "
                                       f"and is not replayed: {found}"))
            continue
        if found:
            argv, retrying = ["sbatch", *found[0], point["script"]], found[1]
        member = SweepMember(root=sweep["root"], name=sweep.get("name") or sweep["root"],
                             config=sweep.get("config") or "", point=point.get("point") or "",
                             case=point.get("case") or "", params=point.get("params") or {})
        spec = prepare(root, argv, pwd=".", outputs=point["outputs"],
                       base=root, message=message,
                       chain=list(run.parsed.record.get("chain") or []) + [run.commit],
                       sweep=member, check_dirty=False)
        spec.inputs = [i for i in point.get("inputs", []) if i != point["script"]]
        spec.retry = retrying
        # The script calls the container itself; its image is got and recorded.
        configure(root, spec, container_name=point.get("container"))
        check_conflicts(store, spec.reserved_paths)
        replays.append(Replay(run, spec, restore=[point["script"], *spec.inputs],
                              backend=run.parsed.record.get("backend")))
    return replays, skipped


def _single_replay(root: Path, store: JobStore, run: RecordedRun,
                   message: str | None, fetch: bool = False) -> Replay:
    rec = run.parsed
    if any(REDACTED in word for word in rec.argv):
        raise RescheduleError(
            f"commit {run.commit[:10]}: the recorded sbatch command held a secret, which "
            f"the record keeps only as {REDACTED} ({shlex.join(rec.argv)}); submit it "
            "again with slurm-schedule, passing the secret through the environment")
    spec = prepare_getting_script(
        root, rec.argv, fetch=fetch, pwd=rec.record.get("pwd") or ".",
        outputs=run.ds_relative(rec.declared_outputs),
        inputs=run.ds_relative(rec.record.get("inputs") or []),
        extra_inputs=run.ds_relative(rec.record.get("extra_inputs") or []),
        base=root, message=message or rec.message or None,
        chain=list(rec.record.get("chain") or []) + [run.commit],
        # Our records before version 2 were written before placeholders were
        # filled in: braces in them are literal.
        fill_placeholders=rec.record.get("tool") != "datalad-slurmsweep"
        or rec.record.get("record_version", 1) >= 2)
    try:
        configure(root, spec, container_name=rec.record.get("container"),
                  alt_dir=rec.record.get("alt_dir"))
    except ScheduleError as exc:
        raise RescheduleError(f"commit {run.commit[:10]}: {exc}") from None
    check_conflicts(store, spec.reserved_paths)
    return Replay(run, spec, backend=rec.record.get("backend"))


def _sweep_commit_replays(root: Path, store: JobStore, found: SweepCommit, *,
                          use_annex: bool, message: str | None) -> list[Replay]:
    check_restorable(root, found, use_annex)
    restore = found.restore_paths()
    replays = []
    for spec in sweep_commit_specs(root, found, message):
        check_conflicts(store, spec.outputs)
        replays.append(Replay(found, spec, restore=restore))
    return replays


def _once(replays: list[Replay]) -> tuple[list[Replay], list[ReplayEvent]]:
    """Keep the first replay of each output: a range holding a sweep's
    commit and its records, or a job and its rescheduled copy, would
    otherwise submit two jobs writing the same files."""
    kept: list[Replay] = []
    skipped: list[ReplayEvent] = []
    owner: dict[str, str] = {}
    for item in replays:
        first = next((owner[o] for o in item.spec.outputs if o in owner), None)
        if first is not None and first != item.run.commit:
            skipped.append(ReplayEvent(
                "skipped", item.run, f"commit {item.run.commit[:10]}: "
                f"{', '.join(item.spec.outputs[:3])} is already replayed from commit "
                f"{first[:10]}", spec=item.spec))
            continue
        owner.update({o: item.run.commit for o in item.spec.outputs})
        kept.append(item)
    return kept, skipped


def plan_replays(root: Path, store: JobStore, dsid: str | None,
                 runs: list[RecordedRun | SweepCommit], *, with_failed: bool,
                 only_failed: bool, message: str | None, use_annex: bool = False,
                 fetch: bool = False,
                 grow: RetryPolicy | None = None) -> tuple[list[Replay], list[ReplayEvent]]:
    """Validate every replay before any is submitted; also the records skipped.
    With ``fetch``, an annexed batch script without content is got, as
    slurm-schedule gets it (a fresh clone). ``grow`` (with ``only_failed``)
    gives failed sweep points more of what they ran out of."""
    replays: list[Replay] = []
    skipped: list[ReplayEvent] = []
    for run in runs:
        if isinstance(run, SweepCommit) and only_failed:
            # The commit was made before anything ran: it knows no failures.
            if len(runs) == 1:
                raise RescheduleError(
                    f"commit {run.commit[:10]} is a [DATALAD SLURM SWEEP] commit, made "
                    "before its points ran, so it does not say which failed: give "
                    "--only-failed a [DATALAD SLURM RUN] record of the sweep instead")
            skipped.append(ReplayEvent(
                "skipped", run, f"commit {run.commit[:10]}: a sweep's commit names no "
                "failed points; --only-failed replays failed points of records only"))
            continue
        if isinstance(run, SweepCommit):
            replays += _sweep_commit_replays(root, store, run, use_annex=use_annex,
                                             message=message)
            continue
        rec = run.parsed
        recorded = rec.record.get("dsid")
        if recorded and recorded != dsid:
            raise RescheduleError(
                f"commit {run.commit[:10]} records a job of another dataset "
                f"(dsid {recorded}, this one is {dsid}); reschedule it there")
        if "points" in rec.record:
            found, more = _sweep_replays(root, store, run, only_failed=only_failed,
                                         with_failed=with_failed, message=message, grow=grow)
            replays += found
            skipped += more
        elif not rec.succeeded and not with_failed:
            skipped.append(ReplayEvent(
                "skipped", run, f"commit {run.commit[:10]}: job {rec.job_id} ended "
                f"{rec.state}; use --with-failed-jobs to reschedule it"))
        else:
            replays.append(_single_replay(root, store, run, message, fetch))
    replays, repeated = _once(replays)
    return replays, skipped + repeated


def make_present(root: Path, replays: list[Replay]) -> bool:
    """As slurm-schedule does: install the subdatasets a single job's paths
    lie in and get its inputs' content (a sweep's inputs are restored from
    its commit instead); whether a subdataset was installed."""
    installed = False
    try:
        for item in (r for r in replays if r.spec.sweep is None):
            installed = install_subdatasets(root, item.spec) or installed
            get_inputs(root, item.spec)
        get_sweep_models(root, sorted({r.spec.sweep.config for r in replays
                                       if r.spec.sweep and r.spec.sweep.config}))
    except ScheduleError as exc:
        raise RescheduleError(str(exc)) from None
    return installed


def _groups(replays: list[Replay]) -> Iterator[list[Replay]]:
    """Runs of replays from one commit that are submitted together."""
    for _, group in groupby(replays, key=lambda r: (id(r.run), r.spec.sweep is not None)):
        yield list(group)


def replay(root: Path, store: JobStore, backend_for: Callable[[str | None], Backend],
           replays: list[Replay], *, use_annex: bool, report: bool) -> Iterator[ReplayEvent]:
    """Restore sweep inputs where needed, then submit (or only report) each replay."""
    restored: set[str] = set()
    for group in _groups(replays):
        run = group[0].run
        if group[0].restore is not None and not report and run.commit not in restored:
            paths = sorted({p for r in replays if r.run is run for p in r.restore or ()})
            sha = restore_inputs(root, run.commit, paths, use_annex)
            restored.add(run.commit)
            if sha:
                yield ReplayEvent("restored", run, "restored the sweep's inputs from "
                                  f"{run.commit[:10]} in commit {sha[:10]}", commit=sha)
        if report:
            for item in group:
                yield ReplayEvent("would-submit", run, "would reschedule job of commit "
                                  f"{run.commit[:10]}", spec=item.spec)
            continue
        backend = backend_for(group[0].backend)
        if group[0].spec.sweep:
            jobs = submit_points(root, store, backend, [r.spec for r in group],
                                 use_annex=use_annex)
        else:
            jobs = (submit_job(root, store, backend, r.spec, use_annex=use_annex)
                    for r in group)
        for job in jobs:
            yield ReplayEvent("submitted", run, f"submitted job {job.job_id} again from "
                              f"commit {run.commit[:10]}", spec=job.spec, job=job)
