"""A small sample of the robustness suite (issue 8) on the local backend:
bad inputs refused clearly and without a trace, kill -9 at every crash
point, two finishes at once, a user committing during a finish, a lost and a
read-only store, and secrets in every form. The full suite, with its
figures in docs/robustness.md, is ``make robustness``; the trials are the
same (tests/robustness), only fewer."""
from __future__ import annotations

import pytest

from ..robustness import bad_inputs, faults, kills, races, secrets
from ..robustness.plan import make_plan
from ..robustness.sandbox import Bench

PLAN = make_plan("fast", slurm=False)


def _check(outcome) -> None:
    assert outcome.ok, outcome.summary()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("robustness")


@pytest.fixture(scope="module")
def fixtures(workdir):
    made = bad_inputs.Fixtures(workdir / "bad-inputs")
    yield made
    made.close()


@pytest.fixture(scope="module")
def bench(workdir):
    made = Bench(workdir, "shared", "local", capacity=20)
    yield made
    made.close()


@pytest.mark.parametrize("case", PLAN.bad_inputs, ids=[c.name for c in PLAN.bad_inputs])
def test_a_bad_input_is_refused_clearly_without_a_trace(case, fixtures):
    _check(bad_inputs.run_case(case, fixtures))


@pytest.mark.parametrize("trial", PLAN.kills, ids=[t.name for t in PLAN.kills])
def test_kill_9_loses_and_duplicates_nothing(trial, bench):
    _check(kills.run_trial(trial, bench))


@pytest.mark.parametrize("n,pairing", PLAN.concurrent,
                         ids=[" + ".join(p) for _, p in PLAN.concurrent])
def test_two_finishes_at_once_record_each_job_once(n, pairing, bench):
    _check(races.concurrent_finish(bench, n, pairing))


@pytest.mark.parametrize("n,seed", PLAN.racing)
def test_user_commits_during_a_finish_stay_apart_from_records(n, seed, bench):
    _check(races.racing_commits(bench, n, seed))


@pytest.mark.parametrize("fault", PLAN.store_faults)
def test_a_store_fault_is_said_clearly_and_loses_no_job(fault, workdir):
    _check(faults.store_fault(workdir, fault))


def test_no_secret_reaches_what_we_write(workdir):
    _check(secrets.secrets_trial(workdir, "local"))
