"""Helpers shared by the test modules: datasets, command calls, history.

Test modules import from here, never from each other; fixtures live in the
conftest.py files.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import yaml
from datalad.api import Dataset

from datalad_slurmsweep.backends.base import JobId
from datalad_slurmsweep.backends.slurm import SlurmBackend

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "model"
DATA = ROOT / "tests" / "data"
SST = "synaptic_models/synapses_final/SST2PV.json"
PULSE = "synaptic_models/synapses_final/Pulse2IT.json"

# Batch scripts of the single-job tests.
OK = "#!/bin/bash\nset -e\nmkdir -p {out}\necho \"$SLURM_JOB_ID\" > {out}/result.txt\n"
FAIL = "#!/bin/bash\nmkdir -p {out}\necho partial > {out}/partial.txt\nexit 3\n"
ARRAY = ("#!/bin/bash\n#SBATCH --array=0-2\nmkdir -p {out}\n"
         "echo $SLURM_ARRAY_TASK_ID > {out}/task-$SLURM_ARRAY_TASK_ID.txt\n"
         "[ \"$SLURM_ARRAY_TASK_ID\" != {bad} ]\n")


def make_dataset(path: Path, annex: bool = True, files: dict[str, str] | None = None) -> Dataset:
    ds = Dataset(path).create(annex=annex, result_renderer="disabled")
    for name, text in (files or {}).items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        if name.endswith(".sh"):
            target.chmod(0o755)
    if files:
        ds.save(message="add job files", result_renderer="disabled")
    return ds


def ids(*texts) -> list[JobId]:
    return [JobId.parse(t) for t in texts]


def wait_terminal(job_ids: list, tasks: dict | None = None, timeout: float = 120,
                  backend=None, interval: float = 0.5) -> dict:
    """Poll the backend (default: the real cluster) until every job has ended.
    Statuses are keyed by the job ids as given (text or JobId)."""
    backend = backend or SlurmBackend()
    parsed = {JobId.parse(j): j for j in job_ids}
    expected = {JobId.parse(j): t for j, t in (tasks or {}).items()}
    deadline = time.monotonic() + timeout
    while True:
        statuses = backend.query(list(parsed), expected)
        if all(s.state.is_terminal for s in statuses.values()):
            return {parsed[j]: s for j, s in statuses.items()}
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs still running after {timeout}s: "
                                 f"{ {str(j): s.state for j, s in statuses.items()} }")
        time.sleep(interval)


def git(ds: Dataset, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ds.path, capture_output=True,
                          text=True, check=True).stdout


def commit_count(ds: Dataset) -> int:
    return int(git(ds, "rev-list", "--count", "HEAD").strip())


def api(ds: Dataset, name: str, *args, **kwargs) -> list[dict]:
    """Call a command through the Python API and return all its results."""
    kwargs.setdefault("result_renderer", "disabled")
    kwargs.setdefault("on_failure", "ignore")
    kwargs.setdefault("return_type", "list")
    return getattr(ds, name)(*args, **kwargs)


def records(ds: Dataset) -> list:
    """(commit, parsed run record) of every record in history, newest first,
    with large sweeps' point tables put back."""
    from datalad_slurmsweep.provenance.record import parse_record
    from datalad_slurmsweep.provenance.tables import inflate
    found = []
    for entry in git(ds, "log", "--format=%H%x00%B%x01").split("\x01"):
        if "\x00" in entry:
            sha, msg = entry.strip().split("\x00", 1)
            rec = parse_record(msg)
            if rec:
                found.append((sha, rec))
    return inflate(Path(ds.path), found)


def open_jobs(ds: Dataset) -> list:
    from datalad_slurmsweep.jobs.store import JobStore
    return JobStore.for_dataset(ds.repo.dot_git).jobs()


def schedule(ds: Dataset, *argv, outputs, **kwargs) -> str:
    (res,) = api(ds, "slurm_schedule", list(argv), outputs=outputs, **kwargs)
    assert res["status"] == "ok", res["message"]
    return res["slurm_job_id"]


# -- sweeps ---------------------------------------------------------------------

def model_dataset(path: Path) -> Dataset:
    import shutil
    ds = make_dataset(path)
    shutil.copytree(MODEL, path / "model", symlinks=True)
    ds.save(message="model", result_renderer="disabled")
    return ds


def example_config(changes: dict | None = None, drop=()) -> dict:
    """The example sweep configuration with dotted keys set (``slurm.local.time``)
    or dropped."""
    cfg = yaml.safe_load((MODEL / "slurm_config_setup.yaml").read_text())
    for dotted in drop:
        *head, last = dotted.split(".")
        node = cfg
        for k in head:
            node = node[k]
        del node[last]
    for dotted, value in (changes or {}).items():
        *head, last = dotted.split(".")
        node = cfg
        for k in head:
            node = node.setdefault(k, {})
        node[last] = value
    return cfg


def sweep_config(ds: Dataset, **sections) -> Path:
    """The example configuration with sections replaced; written (not committed)."""
    cfg = yaml.safe_load((MODEL / "slurm_config_setup.yaml").read_text())
    for key, value in sections.items():
        if value is None:
            cfg.pop(key, None)
        else:
            cfg[key] = value if not isinstance(value, dict) or key not in cfg \
                else {**cfg[key], **value}
    path = Path(ds.path) / "model" / "slurm_config_setup.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def sweep(ds: Dataset, path, backend, **kwargs) -> list[dict]:
    results = api(ds, "slurm_sweep", str(path), backend=backend, **kwargs)
    bad = [r for r in results if r["status"] not in ("ok", "notneeded")
           and r.get("action") == "slurm-sweep"]
    assert not bad, bad
    return results


def seen(ds: Dataset, root, point, case="baseline") -> dict:
    return json.loads((Path(ds.path) / root / point / case / "result.json").read_text())


def sweep_records(ds: Dataset) -> list:
    return [(sha, rec) for sha, rec in records(ds) if "points" in rec.record]


# A stand-in container image for datalad-container (cmdexec "bash {img} {cmd}"):
# it marks the environment, then runs the command it is given.
FAKE_IMAGE = "#!/bin/sh\nexport IN_FAKE_CONTAINER=yes\nexec \"$@\"\n"


# -- the report in a real browser ----------------------------------------------------

BROWSER_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--enable-logging=stderr", "--v=0", "--window-size=1280,2600"]


def chromium() -> str | None:
    """Debian's headless Chromium (make test installs it), None if absent."""
    import shutil
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render_page(page: Path, screenshot: Path) -> tuple[str, list[str]]:
    """The DOM Chromium rendered from ``page`` and the console errors it
    logged; writes a PNG screenshot. Tests may call subprocess directly."""
    browser = chromium()
    url = page.absolute().as_uri()
    dom = subprocess.run([browser, *BROWSER_ARGS, "--dump-dom", url], capture_output=True,
                         text=True, timeout=120, check=True)
    shot = subprocess.run([browser, *BROWSER_ARGS, f"--screenshot={screenshot}", url],
                          capture_output=True, text=True, timeout=120, check=True)
    # Chromium logs console messages as ``...:CONSOLE(line)] "message"``.
    console = [line for line in (dom.stderr + shot.stderr).splitlines()
               if ":CONSOLE(" in line or "Uncaught" in line]
    return dom.stdout, console


def distinct_colours(png: Path) -> int:
    from PIL import Image
    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20


def commit_while_running(ds: Dataset, finish: subprocess.Popen, limit: int = 200) -> int:
    """Commit files of the user's own, as fast as git lets them, while the
    ``finish`` process runs; then wait for it (it must succeed). Returns the
    number of the user's commits. Like any two git processes, the user's
    may meet our index.lock for a moment: a refused step is tried again, and
    a commit left staged at the end is made then, as git tells the user."""
    user_commits = 0
    while finish.poll() is None and user_commits < limit:
        name = f"mine-{user_commits}.txt"
        (Path(ds.path) / name).write_text("the user's own work\n")
        added = subprocess.run(["git", "add", name], cwd=ds.path, capture_output=True)
        if added.returncode == 0 and subprocess.run(
                ["git", "commit", "-qm", f"user {user_commits}"], cwd=ds.path,
                capture_output=True).returncode == 0:
            user_commits += 1
        time.sleep(0.01)
    _, err = finish.communicate(timeout=300)
    assert finish.returncode == 0, err
    if git(ds, "diff", "--cached", "--name-only").strip():
        git(ds, "commit", "-qm", f"user {user_commits}")
    return user_commits


def retry_config(ds: Dataset, *, time: str, values: list, retry: dict | None,
                 **sections) -> Path:
    """The example sweep whose points sleep initW seconds, with a time limit
    and a retry section (written, not committed); other sections replaced
    as given."""
    command = "sleep {initW} && mpirun nrniv -mpi -python run_network.py {config_file}"
    return sweep_config(ds, slurm={"local": {"time": time, "nodes": 1, "ntasks": 1, "mem": 0.1}},
                        simulation_cases={"baseline": {
                            "config_file": "simulation_config_baseline.json",
                            "command": command}},
                        sweep_config={"param_name": "initW", "sweep_method": "value",
                                      "param_values": values,
                                      "base_json_file": SST},
                        retry=retry, **sections)
