"""The robustness suite's runner (``make robustness``).

    python -m tests.robustness.run [--quick] --report docs/robustness.md

runs every trial of the plan (see plan.py), prints one line per trial (and
what went wrong, precisely, when a trial fails), and writes the report. The
exit status is 1 when any trial failed: the report is written either way.
``--only KIND`` runs one kind (bad-inputs, kills, concurrent, racing,
store-faults, slurm-faults, secrets); ``--keep`` keeps the datasets.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import bad_inputs, faults, kills, races, secrets
from .plan import Plan, make_plan, only_matching
from .report import provenance, write_report
from .sandbox import Bench, Outcome, cluster_problem

ONLY = {"bad-inputs": "bad input", "kills": "kill -9", "concurrent": "concurrent finishes",
        "racing": "racing commits", "store-faults": "store fault",
        "slurm-faults": "Slurm fault", "secrets": "secrets"}


def _ensure_identity() -> None:
    """Commits need an identity; a fresh machine may have none."""
    import subprocess
    for key, value in (("user.name", "robustness"), ("user.email", "robustness@example.invalid")):
        if not subprocess.run(["git", "config", key], capture_output=True).stdout.strip():
            var = "NAME" if key == "user.name" else "EMAIL"
            os.environ.setdefault(f"GIT_AUTHOR_{var}", value)
            os.environ.setdefault(f"GIT_COMMITTER_{var}", value)


def run_plan(plan: Plan, workdir: Path, only: set[str] | None = None,
             progress: Callable[[Outcome], None] | None = None
             ) -> tuple[dict[str, list[Outcome]], dict[str, float]]:
    results: dict[str, list[Outcome]] = {}
    seconds: dict[str, float] = {}

    def note(kind: str, outcome: Outcome) -> None:
        results.setdefault(kind, []).append(outcome)
        if progress:
            progress(outcome)

    def timed(kind: str, body: Callable[[], None]) -> None:
        if only and kind not in only:
            return
        start = time.monotonic()
        body()
        seconds[kind] = time.monotonic() - start

    def bad() -> None:
        bad_inputs.run_cases(plan.bad_inputs, workdir / "bad-inputs",
                             progress=lambda o: note("bad input", o))

    def kill() -> None:
        benches = {b: Bench(workdir, f"kill-{b}", b, capacity=12) for b in ("local", "slurm")}
        try:
            for trial in plan.kills:
                note("kill -9", _guard(kills.KIND, trial.name,
                                       lambda t=trial: kills.run_trial(t, benches[t.backend]),
                                       benches[trial.backend]))
        finally:
            for bench in benches.values():
                bench.close()

    def concurrent() -> None:
        bench = Bench(workdir, "concurrent", "local", annex=False, capacity=10)
        try:
            for n, pairing in plan.concurrent:
                note("concurrent finishes", _guard(
                    "concurrent finishes", f"{n} jobs, {' + '.join(pairing)}",
                    lambda n=n, p=pairing: races.concurrent_finish(bench, n, p), bench))
        finally:
            bench.close()

    def racing() -> None:
        bench = Bench(workdir, "racing", "local", capacity=6)
        try:
            for n, seed in plan.racing:
                note("racing commits", _guard(
                    "racing commits", f"{n} jobs",
                    lambda n=n, s=seed: races.racing_commits(bench, n, s), bench))
        finally:
            bench.close()

    def store() -> None:
        for i, fault in enumerate(plan.store_faults):
            note("store fault", faults.store_fault(workdir, fault, i))

    def slurm() -> None:
        for i, fault in enumerate(plan.slurm_faults):
            note("Slurm fault", faults.slurm_fault(workdir, fault, i))

    def secret() -> None:
        for backend in plan.secrets:
            note("secrets", secrets.secrets_trial(workdir, backend))

    workdir.mkdir(parents=True, exist_ok=True)
    for kind, body in (("bad input", bad), ("kill -9", kill), ("concurrent finishes", concurrent),
                       ("racing commits", racing), ("store fault", store),
                       ("Slurm fault", slurm), ("secrets", secret)):
        timed(kind, body)
    return results, seconds


def _guard(kind: str, name: str, body: Callable[[], Outcome], bench: Bench) -> Outcome:
    """A trial whose harness broke is a failed trial, reported, not a stop."""
    try:
        return body()
    except Exception as exc:  # noqa: BLE001
        bench.spoil()
        outcome = Outcome(kind, name)
        outcome.count("trials")
        outcome.fail(f"the trial itself failed: {type(exc).__name__}: {exc}")
        return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.robustness.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="about a tenth of each kind")
    parser.add_argument("--report", type=Path, help="write the report here (markdown)")
    parser.add_argument("--only", action="append", choices=sorted(ONLY),
                        help="run only this kind (repeatable)")
    parser.add_argument("--match", metavar="TEXT",
                        help="run only the trials whose name holds TEXT (as in the report)")
    parser.add_argument("--keep", action="store_true", help="keep the trial datasets")
    parser.add_argument("--workdir", type=Path, help="where the datasets go (default: a new "
                        "temporary directory)")
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args(argv)
    _ensure_identity()
    problem = cluster_problem()
    cluster = "not used: " + problem if problem else "used (a real single-node cluster, " \
        "shared with other users of this machine)"
    plan = make_plan("quick" if args.quick else "full", slurm=problem is None, seed=args.seed)
    if args.match:
        plan = only_matching(plan, args.match)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="robustness-"))
    only = {ONLY[o] for o in args.only} if args.only else None
    command = "python -m tests.robustness.run" + (" --quick" if args.quick else "") \
        + "".join(f" --only {o}" for o in args.only or ()) \
        + (f" --match {shlex.quote(args.match)}" if args.match else "") \
        + (f" --seed {args.seed}" if args.seed != 8 else "") \
        + (f" --report {shlex.quote(str(args.report))}" if args.report else "")
    print(f"robustness: {plan.mode} run in {workdir}; Slurm {cluster}", flush=True)
    info = provenance()
    started = time.time()

    def progress(o: Outcome) -> None:
        line = f"{o.seconds:6.1f}s  " + (f"ok      [{o.kind}] {o.name}" if o.ok else o.summary())
        print(line, flush=True)

    try:
        results, seconds = run_plan(plan, workdir, only, progress)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    after = provenance()
    if (after["commit"], after["digest"]) != (info["commit"], info["digest"]):
        info["changed"] = (f"the package changed while the suite ran: commit "
                           f"`{after['commit']}`, digest `{after['digest']}` at the end")
    if args.report:
        write_report(args.report, results, plan=plan, command=command, started=started,
                     seconds=seconds, info=info, cluster=cluster)
        print(f"robustness: report written to {args.report}")
    failed = sum(1 for group in results.values() for o in group if not o.ok)
    total = sum(len(group) for group in results.values())
    print(f"robustness: {total} trials, {failed} failed, "
          f"{sum(seconds.values()) / 60:.1f} min", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
