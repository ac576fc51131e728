"""n_workers and points_in_parallel: validation, the split into tasks, the
dispatch script run by bash (no Slurm), and how a point's outcome decides
its state."""
import json
import subprocess

import pytest
import yaml

from datalad_slurmsweep.backends.base import JobId, JobState, JobStatus, TaskStatus
from datalad_slurmsweep.errors import ConfigError
from datalad_slurmsweep.jobs.outcomes import PointOutcome, outcome_path, point_result
from datalad_slurmsweep.sweep.chunking import dispatch_body, task_starts
from datalad_slurmsweep.sweep.config import load_config
from datalad_slurmsweep.sweep.scripts import sbatch_directives
from tests.helpers import example_config


def write(tmp_path, changes=None):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(example_config(changes)))
    return path


@pytest.mark.parametrize("changes,expected", [
    ({"slurm.local.n_workers": 0}, "'slurm.local.n_workers' must be a whole number of at least 1"),
    ({"slurm.local.n_workers": "3"}, "'slurm.local.n_workers' must be a whole number"),
    ({"slurm.local.n_workers": True}, "'slurm.local.n_workers' must be a whole number"),
    ({"slurm.local.n_workers": 2, "slurm.local.points_in_parallel": 1.5},
     "'slurm.local.points_in_parallel' must be a whole number"),
    ({"slurm.local.points_in_parallel": 2},
     "'slurm.local.points_in_parallel' needs 'slurm.local.n_workers'"),
    ({"slurm.local.n_workers": 2, "simulation.submission": "jobs"},
     "'slurm.local.n_workers' packs points into the tasks of array jobs"),
    ({"slurm.local.n_workers": 2, "simulation.parallel_submission": False},
     "needs simulation.submission 'array' and simulation.parallel_submission true"),
    ({"slurm.local.n_workers": 2, "retry.attempts": 2},
     "retry: automatic retries do not work with slurm.local.n_workers"),
])
def test_mistakes_name_the_file_and_key(tmp_path, changes, expected):
    path = write(tmp_path, changes)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and expected in str(info.value)


def test_ours_are_never_sbatch_options_and_parallel_defaults_to_cpus(tmp_path):
    cfg = load_config(write(tmp_path, {"slurm.local.n_workers": 4,
                                       "slurm.local.cpus_per_task": 3}))
    assert (cfg.chunking.workers, cfg.chunking.parallel) == (4, 3)
    assert not any("workers" in o or "parallel" in o for o in sbatch_directives(cfg))
    cfg = load_config(write(tmp_path, {"slurm.local.n_workers": 4,
                                       "slurm.local.points_in_parallel": 2,
                                       "slurm.local.cpus_per_task": 3}))
    assert cfg.chunking.parallel == 2
    assert load_config(write(tmp_path, {"slurm.local.n_workers": 4})).chunking.parallel == 1
    assert load_config(write(tmp_path)).chunking is None


def test_tasks_are_nearly_equal_and_never_empty():
    assert task_starts(7, 3) == [0, 2, 4, 7]
    assert task_starts(2, 5) == [0, 1, 2]
    starts = task_starts(100_000, 100)
    sizes = {b - a for a, b in zip(starts, starts[1:], strict=False)}
    assert len(starts) == 101 and sizes == {1000} and starts[-1] == 100_000


def _run_task(tmp_path, codes: list[int], task: int, starts: list[int]) -> subprocess.CompletedProcess:
    scripts = []
    for i, code in enumerate(codes):
        script = f"O/p{i}/case.sh"
        (tmp_path / script).parent.mkdir(parents=True)
        (tmp_path / script).write_text(f"echo point {i}\nexit {code}\n")
        scripts.append(script)
    (tmp_path / "list.tasks").write_text("".join(s + "\n" for s in scripts))
    body = "\n".join(["#!/bin/bash", *dispatch_body("list.tasks", starts, 2)])
    (tmp_path / "dispatch.sh").write_text(body)
    env = {"PATH": "/usr/bin:/bin", "SLURM_SUBMIT_DIR": str(tmp_path),
           "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_JOB_ID": "77"}
    return subprocess.run(["bash", str(tmp_path / "dispatch.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False)


def test_a_task_runs_its_points_and_writes_each_outcome(tmp_path):
    proc = _run_task(tmp_path, [0, 0, 3, 0, 0], 1, [0, 2, 5])
    assert proc.returncode != 0  # one of its points failed
    assert sorted(proc.stdout.split("\n")) == ["", "point 2", "point 3", "point 4"]
    outcomes = {i: json.loads((tmp_path / outcome_path(f"O/p{i}/case.sh")).read_text())
                for i in (2, 3, 4)}
    assert [outcomes[i]["exit_code"] for i in (2, 3, 4)] == [3, 0, 0]
    assert all(o["array_job_id"] == "77" and o["elapsed_s"] is not None and o["start"]
               for o in outcomes.values())
    assert not (tmp_path / outcome_path("O/p0/case.sh")).exists()  # task 0's
    assert sorted(p.name for p in (tmp_path / "O/p2").iterdir()) == [
        ".case.outcome.json", "case.sh"]  # nothing else left behind
    (tmp_path / "ok").mkdir()
    assert _run_task(tmp_path / "ok", [0, 0], 0, [0, 2]).returncode == 0


def _status(state: JobState) -> JobStatus:
    return JobStatus(JobId("5", 1), [TaskStatus(raw_id="5_1", task_id=1, state=state)])


@pytest.mark.parametrize("task,outcome,expected", [
    (JobState.COMPLETED, PointOutcome(0), JobState.COMPLETED),
    (JobState.FAILED, PointOutcome(0), JobState.COMPLETED),
    (JobState.COMPLETED, PointOutcome(3), JobState.FAILED),
    (JobState.COMPLETED, None, JobState.FAILED),  # the dispatcher wrote no outcome
    (JobState.TIMEOUT, None, JobState.TIMEOUT),
    (JobState.TIMEOUT, PointOutcome(143), JobState.TIMEOUT),  # the kill ended it
    (JobState.TIMEOUT, PointOutcome(2), JobState.FAILED),
    (JobState.OUT_OF_MEMORY, None, JobState.OUT_OF_MEMORY),
    (JobState.RUNNING, PointOutcome(0), JobState.RUNNING),  # committed with its task
])
def test_a_points_state_is_its_own(task, outcome, expected):
    assert point_result(None, _status(task), outcome).state is expected


def test_outcome_files_are_hidden_beside_the_script_and_checked():
    assert outcome_path("O/p/case.v1.sh") == "O/p/.case.v1.outcome.json"
    assert PointOutcome.from_json({"exit_code": "0"}) is None
    found = PointOutcome.from_json({"exit_code": 1, "elapsed_s": "x", "start": 3})
    assert (found.exit_code, found.elapsed_s, found.start) == (1, None, None)
    assert str(JobId.parse("12_3.p4")) == "12_3.p4" and JobId.parse("12_3.p4").scheduler_id \
        == JobId("12", 3)


def test_packed_arrays_split_at_max_array_size_write_two_files_each(tmp_path):
    from datalad_slurmsweep.sweep.plan import SweepPlan, _dispatches
    from datalad_slurmsweep.sweep.points import Point, SweepLayout, Task

    cfg = load_config(write(tmp_path, {"slurm.local.n_workers": 7}))
    tasks = [Task(Point(f"p{i}", {}, []), cfg.cases[0], f"O/p{i}/baseline.sh",
                  f"O/p{i}/baseline", f"O/p{i}/c") for i in range(10)]
    plan = SweepPlan(cfg, SweepLayout("O", ".", "c", "t" * 40), "s.yaml", tasks, run_id="r")
    found = _dispatches(tmp_path, plan, 3, [])
    assert [d.argv[1] for d in found] == ["--array=0-2", "--array=0-2", "--array=0-0"]
    assert [t.point.name for d in found for t in d.tasks] == [f"p{i}" for i in range(10)]
    # 10 points on 7 workers: tasks of 1, 1, 2, 1, 2, 1, 2 points.
    assert [d.packing for d in found] == [[(0, 0), (1, 0), (2, 0), (2, 1)],
                                          [(0, 0), (1, 0), (1, 1), (2, 0)],
                                          [(0, 0), (0, 1)]]
    assert len(list((tmp_path / "O/.runs/r").iterdir())) == 6
    assert "starts=(0 1 2 4)" in (tmp_path / "O/.runs/r/baseline-0.sh").read_text()


def test_an_outcome_another_array_wrote_is_not_this_points(tmp_path):
    from datalad_slurmsweep.backends.sbatch import LogSpec
    from datalad_slurmsweep.jobs.model import Job, JobSpec, Submission
    from datalad_slurmsweep.jobs.outcomes import read_outcome

    spec = JobSpec(["sbatch", "O/p/case.sh"], ".", ["O/p/case"],
                   LogSpec(output="x", error=None, workdir=".", job_name="j"), chunk_slot=0)
    job = Job(spec, Submission(["sbatch"], ".", "local"), task=1, job_id=JobId("9", 1, 0))
    (tmp_path / "O/p").mkdir(parents=True)
    target = tmp_path / outcome_path("O/p/case.sh")
    target.write_text(json.dumps({"exit_code": 0, "array_job_id": "8"}))
    assert read_outcome(tmp_path, job) is None
    target.write_text(json.dumps({"exit_code": 4, "array_job_id": "9"}))
    assert read_outcome(tmp_path, job).exit_code == 4
    target.write_text("{half")
    assert read_outcome(tmp_path, job) is None
