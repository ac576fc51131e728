"""datalad slurm-sweep end to end.

tests/local and tests/cluster each run this suite, with the ``backend``
fixture of their conftest.py (local or slurm). The model in examples/model
stands in for a BMTK network: its run_network.py writes what it saw through
COMPONENT_PATH into OUTPUT_DIR."""
from __future__ import annotations

import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from datalad_slurmsweep.jobs.store import JobStore

from ..helpers import PULSE, SST, api, git, seen, sweep, sweep_records
from ..helpers import sweep_config as config


def test_value_sweep_every_point_committed_with_its_clone(model_ds, backend):
    path = config(model_ds)
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert [r["status"] for r in finished] == ["ok"] * 3
    root = "Run-Storage/sweep_initW"
    for value in (2.0, 3.0, 4.0):
        view = seen(model_ds, root, f"initW-{value}")
        assert view["seen"]["SST2PV"]["initW"] == value
        assert view["seen"]["SST2PV"]["tau1"] == 10.0  # untouched keys stay
        assert view["component_path"].endswith(f"{root}/initW-{value}/components")
    # The original component directory is never modified.
    original = json.loads((Path(model_ds.path) / "model/components" / SST).read_text())
    assert original["initW"] == 1.0
    ((sha, rec),) = sweep_records(model_ds)
    assert sorted(p["params"]["initW"] for p in rec.record["points"]) == [2.0, 3.0, 4.0]
    assert all(p["state"] == "COMPLETED" and p["exit_code"] == 0 for p in rec.record["points"])
    assert rec.record["sweep"]["root"] == root
    assert git(model_ds, "status", "--porcelain") == ""
    assert JobStore.for_dataset(model_ds.repo.dot_git).jobs() == []
    # Running the same sweep again submits nothing.
    again = sweep(model_ds, path, backend)
    assert any("nothing to submit" in r["message"] and "3 completed" in r["message"]
               for r in again)


def test_single_run_several_cases_percentage_and_multiseed(model_ds, backend):
    cases = {c: {"config_file": f"simulation_config_{c}.json"}
             for c in ("baseline", "short", "long")}
    path = config(model_ds, simulation={"seed_sweep": "none", "output_name": "../Run-Storage/single_run"},
                  sweep_config=None, simulation_cases=cases)
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    for case in cases:
        view = seen(model_ds, "Run-Storage/single_run", "base", case)
        assert view["case"] == case and view["seen"]["SST2PV"]["initW"] == 1.0

    path = config(model_ds, simulation={"seed_sweep": "seed", "output_name": "../Run-Storage/pct"},
                  simulation_cases={"baseline": cases["baseline"]},
                  sweep_config={"param_name": "tau1", "sweep_method": "percentage",
                                "base_value": 10.0, "percent_change": 25, "iterations": 3,
                                "base_json_file": SST})
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    got = sorted(seen(model_ds, "Run-Storage/pct", p.name)["seen"]["SST2PV"]["tau1"]
                 for p in (Path(model_ds.path) / "Run-Storage/pct").glob("tau1-*"))
    assert got == [10.0, 12.5, 15.625, 19.53125]

    path = config(model_ds, simulation={"seed_sweep": "multiseed", "output_name": "../Run-Storage/ms"},
                  sweep_config={"param_name": "initW", "sweep_method": "value",
                                "param_values": [2.0, 4.0, 6.0], "base_json_file": SST,
                                "multiseed_files": [{"path": PULSE, "ratio": 1.28}]})
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    for value, linked in ((2.0, 2.56), (4.0, 5.12), (6.0, 7.68)):
        view = seen(model_ds, "Run-Storage/ms", f"initW-{value}")["seen"]
        assert view["SST2PV"]["initW"] == value and view["Pulse2IT"]["initW"] == linked


def test_grid_of_two_by_three(model_ds, backend):
    grid = {"parameters": [
        {"file": SST, "key": "tau2", "values": [1.0, 2.0]},
        {"file": PULSE, "key": "nested.gain.value", "values": [0.1, 0.2, 0.3], "name": "gain"}]}
    path = config(model_ds, simulation={"seed_sweep": "none", "output_name": "../Run-Storage/grid"},
                  sweep_config=None, grid=grid)
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    ((_, rec),) = sweep_records(model_ds)
    combos = sorted((p["params"]["tau2"], p["params"]["gain"]) for p in rec.record["points"])
    assert combos == [(a, b) for a in (1.0, 2.0) for b in (0.1, 0.2, 0.3)]
    view = seen(model_ds, "Run-Storage/grid", "tau2-2.0_gain-0.3")["seen"]
    assert view["SST2PV"]["tau2"] == 2.0 and view["Pulse2IT"]["nested"]["gain"]["value"] == 0.3


def test_sequential_blocks_run_one_after_another(model_ds, backend):
    path = config(model_ds, simulation={"parallel_submission": False,
                                        "output_name": "../Run-Storage/seq"})
    sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    ((_, rec),) = sweep_records(model_ds)
    points = sorted(rec.record["points"], key=lambda p: p["params"]["initW"])
    for earlier, later in zip(points, points[1:], strict=False):
        assert later["start"] >= earlier["end"], (earlier, later)
    assert len({p["slurm_job_id"] for p in points}) == 3  # one job per point


def test_aggressive_blocks_overlap_and_every_point_has_resource_figures(model_ds, backend):
    # BMTool's "aggressive" status_list: a block starts once the previous one runs.
    slow = "sleep 4; mpirun nrniv -mpi -python run_network.py {config_file}"
    path = config(model_ds, simulation={
        "parallel_submission": False, "output_name": "../Run-Storage/aggr",
        "status_list": ["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]},
        sweep_config={"param_values": [2.0, 3.0]},
        simulation_cases={"baseline": {"config_file": "simulation_config_baseline.json",
                                       "command": slow}})
    sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    ((_, rec),) = sweep_records(model_ds)
    first, second = sorted(rec.record["points"], key=lambda p: p["params"]["initW"])
    assert second["start"] < first["end"], (first, second)
    for point in (first, second):
        used = point["resources"]
        assert used["elapsed_s"] >= 3 and used["total_cpu_s"] is not None, used
        assert used["alloc_cpus"] == 1 and used["req_mem_bytes"] == 103 * 1024 ** 2  # mem: 0.1
        assert used["time_limit_s"] == 600 and used["cpu_efficiency"] is not None


def test_skip_completed_and_no_skip(model_ds, backend):
    path = config(model_ds, sweep_config={"param_values": [2.0, 3.0]})
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    path = config(model_ds, sweep_config={"param_values": [2.0, 3.0, 5.0]})
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    submitted = [r for r in results if r.get("points")]
    assert [r["points"] for r in submitted] == [["initW-5.0"]]
    results = sweep(model_ds, path, backend, no_skip=True)
    assert sorted(p for r in results if r.get("points") for p in r["points"]) == [
        "initW-2.0", "initW-3.0", "initW-5.0"]
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)


def test_failed_point_stays_open_and_is_rescheduled_alone(model_ds, backend, monkeypatch):
    path = config(model_ds)
    monkeypatch.setenv("FAIL_IF_INITW", "3.0")  # the jobs inherit it, as with sbatch
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    failed = [r for r in results if r["action"] == "slurm-finish" and r["status"] != "ok"]
    assert len(failed) == 1 and "FAILED" in failed[0]["message"]
    (open_job,) = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert open_job.sweep.point == "initW-3.0"
    (acc,) = api(model_ds, "slurm_finish", accept_failed_jobs=True)
    assert acc["status"] == "ok"
    sha, rec = sweep_records(model_ds)[0]
    assert [(p["point"], p["state"], p["exit_code"]) for p in rec.record["points"]] == [
        ("initW-3.0", "FAILED", 5)]
    monkeypatch.delenv("FAIL_IF_INITW")
    results = api(model_ds, "slurm_reschedule", sha, only_failed=True)
    assert [r["status"] for r in results] == ["ok"]
    (job,) = JobStore.for_dataset(model_ds.repo.dot_git).jobs()
    assert job.sweep.point == "initW-3.0" and job.sweep.root == "Run-Storage/sweep_initW"
    (fin,) = api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert fin["status"] == "ok"
    sha2, rec2 = sweep_records(model_ds)[0]
    assert rec2.record["chain"] == [sha] and rec2.record["points"][0]["state"] == "COMPLETED"


def test_replay_from_the_sweeps_commit_after_the_configuration_changed(model_ds, backend):
    path = config(model_ds, sweep_config={"param_values": [2.0]})
    sweep(model_ds, path, backend, wait=True, wait_timeout=180)
    ((first, _),) = sweep_records(model_ds)
    # Change the components and the configuration, and sweep the same point again.
    comp = Path(model_ds.path) / "model/components" / SST
    data = json.loads(comp.read_text())
    data["tau1"] = 99.0
    comp.unlink()
    comp.write_text(json.dumps(data, indent=2) + "\n")
    path = config(model_ds, sweep_config={"param_values": [2.0]},
                  simulation={"output_name": "../Run-Storage/sweep_initW"})
    model_ds.save(message="new components", result_renderer="disabled")
    sweep(model_ds, path, backend, no_skip=True, wait=True, wait_timeout=180)
    assert seen(model_ds, "Run-Storage/sweep_initW", "initW-2.0")["seen"]["SST2PV"]["tau1"] == 99.0
    # The rerun's output replaced the first one in history, not in the annex object.
    result = "Run-Storage/sweep_initW/initW-2.0/baseline/result.json"
    assert len(git(model_ds, "log", "--format=%H", "--", result).split()) == 2
    results = api(model_ds, "slurm_reschedule", first)
    assert any("restored" in r["message"] for r in results), results
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
    assert seen(model_ds, "Run-Storage/sweep_initW", "initW-2.0")["seen"]["SST2PV"]["tau1"] == 10.0
    latest_sha, latest = sweep_records(model_ds)[0]
    assert latest.record["chain"] == [first]
    assert git(model_ds, "status", "--porcelain") == ""


def _state(ds):
    return (git(ds, "rev-parse", "HEAD"), git(ds, "status", "--porcelain"),
            JobStore.for_dataset(ds.repo.dot_git).jobs())


@pytest.mark.parametrize("sections,expected", [
    ({"simulation": {"outptu_name": "x"}}, "did you mean 'output_name'"),
    ({"slurm": {"local": {"ntasks": "many"}}}, "'slurm.local.ntasks' must be int"),
    ({"sweep_config": {"base_json_file": "nope.json"}}, "nope.json does not exist"),
    ({"sweep_config": {"param_name": "initw"}}, "'initw' does not exist"),
    ({"simulation": {"environment": "hellbender"}}, "no 'slurm.hellbender' section"),
    ({"simulation_cases": {"baseline": {"config_file": "missing.json"}}},
     "simulation_cases.baseline.config_file"),
    ({"simulation": {"output_name": "components/out"}}, "overlaps simulation.component_path"),
    ({"simulation": {"webhook_url": "not a url"}}, "simulation.webhook_url"),
])
def test_bad_input_is_refused_and_leaves_no_trace(model_ds, backend, sections, expected):
    path = config(model_ds, **sections)
    model_ds.save(message="config", result_renderer="disabled")
    before = _state(model_ds)
    for kwargs in ({"check": True}, {}):
        results = api(model_ds, "slurm_sweep", str(path), backend=backend, **kwargs)
        assert results[-1]["status"] == "impossible", results
        assert expected in results[-1]["message"] and str(path) in results[-1]["message"]
    assert _state(model_ds) == before
    assert not (Path(model_ds.path) / "Run-Storage").exists()


def test_dry_run_and_check_write_nothing(model_ds, backend):
    path = config(model_ds)
    model_ds.save(message="config", result_renderer="disabled")
    before = _state(model_ds)
    results = api(model_ds, "slurm_sweep", str(path), backend=backend, dry_run=True)
    scripts = [r for r in results if r.get("script_text")]
    assert len(scripts) == 3 and "#SBATCH --time=00:10:00" in scripts[0]["script_text"]
    assert "mpirun nrniv -mpi -python run_network.py simulation_config_baseline.json" in \
        scripts[0]["script_text"]
    assert scripts[0]["params"] == {"initW": 2.0}
    assert api(model_ds, "slurm_sweep", str(path), backend=backend, check=True)[0]["status"] == "ok"
    assert _state(model_ds) == before and not (Path(model_ds.path) / "Run-Storage").exists()


class _Hook(BaseHTTPRequestHandler):
    mode = "ok"
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        if _Hook.mode == "hang":
            threading.Event().wait(30)
            return
        self.send_response(500 if _Hook.mode == "fail" else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_failing_webhook_never_fails_the_sweep_and_never_reaches_a_commit(
        model_ds, mode, monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.mode, _Hook.received = mode, []
    url = f"http://127.0.0.1:{server.server_port}/hooks/s3cr3t-token"
    monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_WORKERS", "2")
    try:
        path = config(model_ds, simulation={"webhook_url": url})
        results = sweep(model_ds, path, "local", wait=True, wait_timeout=180)
        assert [r["status"] for r in results if r["action"] == "slurm-finish"] == ["ok"] * 3
        assert _Hook.received and "sweep_initW" in json.dumps(_Hook.received[0])
    finally:
        server.shutdown()
    assert "s3cr3t-token" not in git(model_ds, "log", "-p", "--all")
    assert "<redacted>" in (Path(model_ds.path) / "Run-Storage/sweep_initW/sweep.yaml").read_text()


def test_interrupted_submission_is_resumed(model_ds, backend):
    cases = {c: {"config_file": f"simulation_config_{c}.json"} for c in ("baseline", "short")}
    path = config(model_ds, simulation_cases=cases,
                  simulation={"submission": "jobs"})
    model_ds.save(message="config", result_renderer="disabled")
    env = dict(os.environ, DATALAD_SLURMSWEEP_KILL_AT="sweep-submitted")
    proc = subprocess.run(["datalad", "slurm-sweep", "--backend", backend, str(path)],
                          cwd=model_ds.path, env=env, capture_output=True, text=True)
    assert proc.returncode == -9, proc.stdout + proc.stderr
    store = JobStore.for_dataset(model_ds.repo.dot_git)
    assert {j.status for j in store.jobs()} == {"submitting"}  # all reserved, none lost
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    adopted = [r for r in results if "submitted by an interrupted" in r.get("message", "")]
    assert len(adopted) == 1  # the one job sbatch had accepted
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert [r["status"] for r in finished] == ["ok"] * 6, [r["message"] for r in finished]
    assert store.jobs() == []


@pytest.fixture
def small_max_array(backend, monkeypatch):
    """MaxArraySize=3 on the backend under test, restored afterwards."""
    if backend == "local":
        monkeypatch.setenv("DATALAD_SLURMSWEEP_LOCAL_MAX_ARRAY_SIZE", "3")
        yield 3
        return
    script = Path(__file__).resolve().parent.parent.parent / "tools" / "local-slurm"
    # Keep the node's CPU count as it is (make exports LOCAL_SLURM_CPUS).
    cpus = subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    env = dict(os.environ, LOCAL_SLURM_CPUS=os.environ.get("LOCAL_SLURM_CPUS", cpus))
    subprocess.run([str(script), "start"], env=dict(env, LOCAL_SLURM_MAX_ARRAY_SIZE="3"),
                   check=True, capture_output=True)
    try:
        yield 3
    finally:
        subprocess.run([str(script), "start"], env=env, check=True, capture_output=True)


@pytest.mark.restarts_cluster
def test_array_larger_than_max_array_size_is_split(model_ds, backend, small_max_array):
    path = config(model_ds, sweep_config={"param_values": [1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]},
                  slurm={"local": {"array_parallelism": 2}})
    results = sweep(model_ds, path, backend, wait=True, wait_timeout=240)
    arrays = [r for r in results if r.get("points")]
    assert [len(r["points"]) for r in arrays] == [3, 3, 1]
    finished = [r for r in results if r["action"] == "slurm-finish"]
    assert [r["status"] for r in finished] == ["ok"] * 7
    run_scripts = sorted((Path(model_ds.path) / "Run-Storage/sweep_initW/.runs").rglob("*.sh"))
    assert "#SBATCH" in run_scripts[0].read_text()
    ((_, rec),) = sweep_records(model_ds)
    assert sorted(p["params"]["initW"] for p in rec.record["points"]) == [
        1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5]


def test_list_open_jobs_sums_a_sweep_per_case(model_ds, backend):
    """A sweep is one listing record with counts per state and per case,
    not a record per point; --points still lists every point."""
    cases = {c: {"config_file": f"simulation_config_{c}.json"} for c in ("baseline", "short")}
    path = config(model_ds, simulation={"output_name": "../Run-Storage/listed"},
                  simulation_cases=cases)
    sweep(model_ds, path, backend)
    listed = [r for r in api(model_ds, "slurm_finish", list_open_jobs=True)
              if r.get("action") == "slurm-list"]
    assert [r["sweep"] for r in listed] == ["Run-Storage/listed"]
    (summary,) = listed
    assert summary["n_jobs"] == 6 and sum(summary["counts"].values()) == 6
    assert {c: sum(n.values()) for c, n in summary["cases"].items()} == {
        "baseline": 3, "short": 3}
    detail = [r for r in api(model_ds, "slurm_finish", list_open_jobs=True, points=True)
              if r.get("action") == "slurm-list" and r.get("point")]
    assert sorted((r["case"], r["point"]) for r in detail) == sorted(
        (c, f"initW-{v}") for c in cases for v in (2.0, 3.0, 4.0))
    api(model_ds, "slurm_finish", wait=True, wait_timeout=180)
