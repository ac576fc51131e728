"""The retry: section's validation and the scaling of a failed point's
request: no dataset, no Slurm."""
import pytest
import yaml

from datalad_slurmsweep.backends.base import JobId, JobState, JobStatus, Resources, TaskStatus
from datalad_slurmsweep.backends.sbatch import LogSpec
from datalad_slurmsweep.errors import ConfigError
from datalad_slurmsweep.jobs.model import Job, JobSpec, Submission, SweepMember
from datalad_slurmsweep.jobs.resubmit import next_argv, sbatch_groups
from datalad_slurmsweep.jobs.retry import (
    DEFAULT_ON,
    Request,
    Retrying,
    RetryPolicy,
    mem_per_cpu_mb,
    plan_retry,
    scaled_mem,
    scaled_time,
    slurm_time,
)
from datalad_slurmsweep.sweep.config import load_config
from tests.helpers import example_config


def load(tmp_path, retry, slurm=None):
    cfg = example_config({"retry": retry, **({"slurm.local": slurm} if slurm else {})})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def problems(tmp_path, retry, slurm=None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, retry, slurm)
    assert str(tmp_path / "sweep.yaml") in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("time, factor, cap, expected", [
    ("00:01:00", 2, None, "00:02:00"),
    ("10", 1.5, None, "00:15:00"),  # one number is minutes
    ("01:30", 2, None, "00:03:00"),  # MM:SS
    ("00:02", 2, None, "00:01:00"),  # 4 s, rounded up to a minute as Slurm does
    ("00:00:50", 1.1, None, "00:01:00"),
    ("1-12", 2, None, "3-00:00:00"),  # D-HH
    ("20:00:00", 2, "1-00:00:00", "1-00:00:00"),  # capped
    ("00:10:00", 3, "00:20:30", "00:20:30"),  # a cap need not be whole minutes
    ("UNLIMITED", 2, None, "UNLIMITED"),
])
def test_scaled_time(time, factor, cap, expected):
    assert scaled_time(time, factor, cap) == expected


def test_scaled_mem_and_per_cpu():
    assert scaled_mem(0.1, 1.5, None) == 0.15
    assert scaled_mem(40, 2, 64) == 64
    assert mem_per_cpu_mb(0.15, 1) == 154 and mem_per_cpu_mb(3, 2) == 1536
    assert slurm_time(90061) == "1-01:01:01"


def test_retry_section_defaults_and_values(tmp_path):
    assert load(tmp_path, None).retry is None
    policy = load(tmp_path, {}).retry
    assert policy == RetryPolicy() and policy.attempts == 1 and policy.when == list(DEFAULT_ON)
    policy = load(tmp_path, {"attempts": 3, "when": ["timeout", "NODE_FAIL"],
                             "scale": {"time": 2, "mem": 1.5}, "max_time": "1-00:00:00",
                             "max_mem": 64, "exclude_failed_nodes": False}).retry
    assert policy == RetryPolicy(3, ["TIMEOUT", "NODE_FAIL"], 2.0, 1.5, "1-00:00:00", 64, False)


def test_retry_section_mistakes_are_all_named(tmp_path):
    text = problems(tmp_path, {"attempts": 0, "when": ["TIMOUT", "COMPLETED"],
                               "scale": {"time": 0.5, "cpus": 2, "mem": True},
                               "max_time": "tomorrow", "tries": 2})
    for expected in ("'retry.attempts' counts every attempt, the first included: 1 to 100, not 0",
                     "'retry.when' lists 'TIMOUT', which is not a state to retry on (did you "
                     "mean 'TIMEOUT'?)", "'retry.when' lists 'COMPLETED'",
                     "'retry.scale.time' must be a number of at least 1",
                     "'retry.scale.mem' must be a number of at least 1 (2: double it), not True",
                     "unknown key 'retry.scale.cpus'", "unknown key 'retry.tries'",
                     "'retry.max_time' must be a Slurm time"):
        assert expected in text
    assert "at least one state" in problems(tmp_path, {"when": []})
    assert "'retry' must be a mapping" in problems(tmp_path, [1])


def test_caps_must_cap_something_and_lie_above_the_first_request(tmp_path):
    text = problems(tmp_path, {"max_time": "01:00:00", "max_mem": 4})
    assert "'retry.max_time' caps 'retry.scale.time', which is not given" in text
    assert "'retry.max_mem' caps 'retry.scale.mem', which is not given" in text
    text = problems(tmp_path, {"scale": {"time": 2, "mem": 2}, "max_time": "00:05:00",
                               "max_mem": 0.05})
    assert "'retry.max_time' '00:05:00' is below 'slurm.local.time' '00:10:00'" in text
    assert "'retry.max_mem' 0.05 is below 'slurm.local.mem' 0.1" in text


def job(state, *, attempt=1, policy=None, node="n1", task=3, time="00:01:00", mem=1.0):
    spec = JobSpec(sbatch_argv=["sbatch", "p/b.sh"], pwd=".", outputs=["p/b"],
                   logs=LogSpec(output="l/%A_%a.out", error=None, workdir=".", job_name="s"),
                   sweep=SweepMember(root="s", name="s", config="c.yaml", point="p", case="b"))
    policy = policy or RetryPolicy(attempts=2, scale_time=2, scale_mem=1.5, max_mem=1.2)
    spec.retry = Retrying(policy, Request(time, mem, 1), [None] * (attempt - 1))
    sub = Submission(argv=["sbatch", "--array=0-9%2", ".runs/r/b-0.sh"], pwd=".", backend="slurm")
    found = Job(spec=spec, submission=sub, task=task, job_id=JobId("7", task))
    used = Resources(elapsed_s=60.0, time_limit_s=60, req_mem_bytes=2 ** 30, max_rss_bytes=2 ** 29)
    status = JobStatus(JobId("7", task), [TaskStatus("7_3", task, state, node=node,
                                                     resources=used)])
    return found, status


def test_only_the_resource_the_failure_points_at_grows():
    plan = plan_retry(*job(JobState.TIMEOUT))
    assert (plan.request.time, plan.request.mem, plan.request.exclude) == ("00:02:00", 1.0, [])
    plan = plan_retry(*job(JobState.OUT_OF_MEMORY))
    assert (plan.request.time, plan.request.mem) == ("00:01:00", 1.2)  # capped at max_mem
    plan = plan_retry(*job(JobState.NODE_FAIL, node="n1,n2"))
    assert plan.request.exclude == ["n1", "n2"] and plan.request.time == "00:01:00"
    assert plan_retry(*job(JobState.FAILED)) is None  # not listed in when
    assert plan_retry(*job(JobState.COMPLETED)) is None


def test_no_retry_without_attempts_or_room_to_grow():
    plan = plan_retry(*job(JobState.TIMEOUT, attempt=2))
    assert plan.request is None and "attempt 2 of 2: no attempts left" in plan.refusal
    assert "request --time=00:02:00 next time" in plan.refusal
    plan = plan_retry(*job(JobState.OUT_OF_MEMORY, mem=1.2))
    assert plan.request is None and "already at max_mem 1.2" in plan.refusal
    # Nothing to scale: the point is retried as it was.
    plan = plan_retry(*job(JobState.PREEMPTED, policy=RetryPolicy(attempts=2)))
    assert plan.request == Request("00:01:00", 1.0, 1)


def test_one_sbatch_per_array_script_and_request():
    plans = [plan_retry(*job(JobState.TIMEOUT, task=t)) for t in (3, 5)]
    plans.append(plan_retry(*job(JobState.NODE_FAIL, task=8)))
    groups = sbatch_groups(plans)
    assert [[p.job.task for p in g] for g in groups] == [[3, 5], [8]]
    assert next_argv(plans[0].job, plans[0], [3, 5]) == [
        "sbatch", "--array=3,5%2", "--time=00:02:00", "--mem-per-cpu=1024M", ".runs/r/b-0.sh"]
    # A later attempt's options replace the earlier one's.
    plans[2].job.submission.argv = next_argv(plans[0].job, plans[0], [3])
    assert next_argv(plans[2].job, plans[2], [8]) == [
        "sbatch", "--array=8%2", "--time=00:01:00", "--mem-per-cpu=1024M", "--exclude=n1",
        ".runs/r/b-0.sh"]


def test_spec_with_retry_survives_the_store():
    found, _ = job(JobState.TIMEOUT)
    found.spec.retry.history = []
    again = JobSpec.from_json(found.spec.to_json())
    assert again.retry == found.spec.retry
