"""The datasets and files the benchmark's workloads run on."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

JOB_SCRIPT = """#!/bin/bash
mkdir -p "$1"
echo "$SLURM_JOB_ID" > "$1/out.txt"
"""


def git_identity_env(env: dict) -> dict:
    env = dict(env)
    for var, value in (("GIT_AUTHOR_NAME", "bench"), ("GIT_COMMITTER_NAME", "bench"),
                       ("GIT_AUTHOR_EMAIL", "bench@localhost"),
                       ("GIT_COMMITTER_EMAIL", "bench@localhost")):
        env.setdefault(var, value)
    return env


def create_dataset(path: Path, datalad: str, env: dict) -> None:
    subprocess.run([datalad, "create", str(path)], check=True, capture_output=True, env=env)


def save(path: Path, datalad: str, env: dict, message: str) -> None:
    subprocess.run([datalad, "save", "-m", message], cwd=path, check=True,
                   capture_output=True, env=env)


def single_job_files(ds: Path) -> None:
    (ds / "job.sh").write_text(JOB_SCRIPT)
    (ds / "job.sh").chmod(0o755)


def component_dir(root: Path, n_files: int = 50) -> None:
    """A model's component directory: n_files small files, one JSON parameter."""
    root.mkdir(parents=True)
    for i in range(n_files - 1):
        sub = root / ("mechanisms" if i % 2 else "synaptic_models")
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:02d}.txt").write_text(f"component file {i}\n" * 4)
    (root / "params.json").write_text(json.dumps({"gain": 1.0, "tau": 5.0}, indent=2) + "\n")


def sweep_files(ds: Path, n_points: int, component_files: int = 50,
                slurm_extra: dict | None = None) -> Path:
    """Our sweep configuration over n_points values of params.json:gain;
    ``slurm_extra`` adds keys to its slurm section (n_workers)."""
    model = ds / "model"
    component_dir(model / "components", component_files)
    (model / "case.json").write_text("{}\n")
    config = {
        "simulation": {"output_name": "../runs/bench", "environment": "bench",
                       "component_path": "components", "seed_sweep": "none"},
        "slurm": {"bench": {"time": "00:05:00", "ntasks": 1, "mem": 0.05, **(slurm_extra or {})}},
        "simulation_cases": {"run": {
            "config_file": "case.json",
            "command": 'cp "$COMPONENT_PATH/params.json" "$OUTPUT_DIR/seen.json"'}},
        "grid": {"parameters": [{"file": "params.json", "key": "gain",
                                 "values": [round(1 + i * 0.001, 6) for i in range(n_points)]}]},
    }
    path = model / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def manual_sweep_files(ds: Path, n_points: int) -> list[tuple[str, str]]:
    """What a datalad-slurm user writes by hand for the same sweep: one clone
    of the component directory and one script per point.
    Returns (script, output) pairs, dataset-relative."""
    import shutil
    base = ds / "model" / "components"
    component_dir(base)
    jobs = []
    for i in range(n_points):
        point = ds / "points" / f"p{i:05d}"
        shutil.copytree(base, point / "components")
        params = json.loads((point / "components/params.json").read_text())
        params["gain"] = round(1 + i * 0.001, 6)
        (point / "components/params.json").write_text(json.dumps(params, indent=2) + "\n")
        script = point / "job.sh"
        script.write_text('#!/bin/bash\nmkdir -p "$1"\ncp "$2/params.json" "$1/seen.json"\n')
        script.chmod(0o755)
        jobs.append((f"points/p{i:05d}", f"points/p{i:05d}/out"))
    return jobs
