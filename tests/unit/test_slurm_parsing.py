"""Parsers against output recorded from the real local cluster
(tests/data/slurm/README.md says which job was what)."""

import pytest

from datalad_slurmsweep.backends.base import JobId, JobState, combine_states
from datalad_slurmsweep.backends.slurm import (
    SlurmError,
    parse_parsable,
    parse_sacct,
    parse_scontrol_jobs,
)
from datalad_slurmsweep.backends.slurm import (
    assemble as assemble_ids,
)
from tests.helpers import DATA as TEST_DATA

DATA = TEST_DATA / "slurm"


def assemble(job_ids, rows, expected, source):
    """assemble() with ids given and returned as text, as sacct prints them."""
    statuses = assemble_ids([JobId.parse(j) for j in job_ids], rows,
                            {JobId.parse(j): t for j, t in expected.items()}, source)
    return {str(j): s for j, s in statuses.items()}


@pytest.fixture(scope="module")
def sacct_rows():
    return parse_sacct((DATA / "sacct_mixed.txt").read_text())


def test_sacct_plain_jobs(sacct_rows):
    (ok,) = sacct_rows["6"]
    assert (ok.state, ok.exit_code, ok.node, ok.start) == (
        JobState.COMPLETED, 0, "vm", "2026-11-21T07:32:48")
    (failed,) = sacct_rows["7"]
    assert (failed.state, failed.exit_code) == (JobState.FAILED, 3)
    assert sacct_rows["12"][0].state is JobState.TIMEOUT
    assert sacct_rows["13"][0].state is JobState.CANCELLED  # "CANCELLED by 0"
    running = sacct_rows["14"][0]
    assert running.state is JobState.RUNNING and running.end is None
    pending = sacct_rows["16"][0]
    assert pending.node is None and pending.start is None


def test_sacct_array_tasks_and_pending_ranges(sacct_rows):
    statuses = assemble(["8", "15"], sacct_rows, {"8": [0, 1, 2, 3], "15": [0, 1, 2, 3]}, "sacct")
    array = statuses["8"]
    assert [(t.task_id, t.raw_id, t.state.value) for t in array.tasks] == [
        (0, "9", "COMPLETED"), (1, "10", "COMPLETED"), (2, "11", "FAILED"), (3, "8", "COMPLETED")]
    assert array.state is JobState.FAILED and array.exit_code == 7
    pending = statuses["15"]
    assert [t.task_id for t in pending.tasks] == [0, 1, 2, 3]
    assert pending.state.is_active


def test_jobs_slurm_does_not_report_are_lost():
    statuses = assemble(["999", "8"], {}, {"8": [0, 1]}, "sacct")
    assert statuses["999"].state is JobState.LOST
    assert [t.state for t in statuses["8"].tasks] == [JobState.LOST, JobState.LOST]
    assert not JobState.LOST.is_success and JobState.LOST.is_terminal


def test_scontrol_fallback_parses_arrays_and_plain_jobs():
    rows = parse_scontrol_jobs((DATA / "scontrol_array_running_oneline.txt").read_text())
    tasks = {t.task_id: t.state for t in rows["15"]}
    assert tasks[0] is JobState.RUNNING and tasks[3] is JobState.PENDING
    rows = parse_scontrol_jobs((DATA / "scontrol_failed_oneline.txt").read_text())
    (failed,) = next(iter(rows.values()))
    assert failed.state is JobState.FAILED and failed.exit_code == 3
    rows = parse_scontrol_jobs((DATA / "scontrol_array_finished_oneline.txt").read_text())
    (array,) = rows.values()
    assert len(array) == 4 and combine_states([t.state for t in array]) is JobState.FAILED


def test_parsable_output():
    assert str(parse_parsable("123\n")) == "123"
    assert str(parse_parsable("123;cluster\n")) == "123"
    with pytest.raises(SlurmError):
        parse_parsable("Submitted batch job 5\n")


@pytest.mark.parametrize("text,state", [
    ("COMPLETED", JobState.COMPLETED), ("CANCELLED by 0", JobState.CANCELLED),
    ("RUNNING", JobState.RUNNING), ("OUT_OF_MEMORY", JobState.OUT_OF_MEMORY),
    ("SOMETHING_NEW", JobState.UNKNOWN), ("RESV_DEL_HOLD", JobState.RESV_DEL_HOLD),
])
def test_state_words(text, state):
    assert JobState.parse(text) is state


def test_state_classes_match_the_issue():
    assert [s for s in JobState if s.is_success] == [JobState.COMPLETED]
    for name in ("FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "CANCELLED",
                 "PREEMPTED", "BOOT_FAIL", "DEADLINE", "LOST"):
        assert JobState(name).is_failure
    for name in ("PENDING", "RUNNING", "REQUEUED", "SUSPENDED", "COMPLETING", "CONFIGURING"):
        assert JobState(name).is_active


def test_one_task_of_an_array_can_be_asked_for_alone(sacct_rows):
    statuses = assemble(["8_2", "8_3", "15_1", "8_9"], sacct_rows, {}, "sacct")
    assert statuses["8_2"].state is JobState.FAILED and statuses["8_2"].tasks[0].raw_id == "11"
    assert statuses["8_3"].state is JobState.COMPLETED
    assert statuses["15_1"].state is JobState.PENDING
    assert statuses["8_9"].state is JobState.LOST
