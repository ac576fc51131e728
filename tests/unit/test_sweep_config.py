"""Configuration parsing, expansion and JSON editing: no dataset, no Slurm."""
import json

import pytest
import yaml

from datalad_slurmsweep.errors import ConfigError
from datalad_slurmsweep.sweep.config import load_config, percentage_values
from datalad_slurmsweep.sweep.json_edit import JsonEditError, apply_edits
from datalad_slurmsweep.sweep.points import expand_points
from datalad_slurmsweep.sweep.scripts import render_command, sbatch_directives
from tests.helpers import MODEL, example_config

BASE = yaml.safe_load(
    (MODEL / "slurm_config_setup.yaml").read_text())


def write(tmp_path, changes=None, drop=()):
    cfg = example_config(changes, drop)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_percentage_sweep_compounds_without_rounding():
    assert percentage_values(10.0, 25, 3) == [10.0, 12.5, 15.625, 19.53125]


def test_multiseed_applies_every_file_with_its_ratio(tmp_path):
    cfg = load_config(write(tmp_path, {
        "simulation.seed_sweep": "multiseed",
        "sweep_config.param_values": [2.0, 4.0],
        "sweep_config.multiseed_files": [{"path": "a.json", "ratio": 1.28},
                                         {"path": "b.json", "ratio": 0.5}]}))
    points = expand_points(cfg)
    assert [(e.file, e.value) for e in points[0].edits] == [
        ("synaptic_models/synapses_final/SST2PV.json", 2.0), ("a.json", 2.56), ("b.json", 1.0)]
    assert points[1].name == "initW-4.0"


def test_grid_product_and_zip(tmp_path):
    grid = {"parameters": [{"file": "x.json", "key": "a.b", "values": [1, 2]},
                           {"file": "y.json", "key": "/c/d~1e", "values": ["p", "q", "r"]}]}
    cfg = load_config(write(tmp_path, {"simulation.seed_sweep": "none", "grid": grid},
                            drop=["sweep_config"]))
    points = expand_points(cfg)
    assert len(points) == 6 and points[0].params == {"b": 1, "d/e": "p"}
    assert points[5].edits[1].key == ("c", "d/e")
    grid["mode"] = "zip"
    grid["parameters"][1]["values"] = ["p", "q"]
    cfg = load_config(write(tmp_path, {"simulation.seed_sweep": "none", "grid": grid},
                            drop=["sweep_config"]))
    assert [p.params for p in expand_points(cfg)] == [{"b": 1, "d/e": "p"}, {"b": 2, "d/e": "q"}]


@pytest.mark.parametrize("changes,drop,expected", [
    ({"simulation.outptu_name": "x"}, (), "unknown key 'simulation.outptu_name' (did you mean 'output_name'?)"),
    ({"slurm.local.ntasks": "many"}, (), "'slurm.local.ntasks' must be int"),
    ({"simulation.environment": "expanse"}, (), "environment 'expanse' has no 'slurm.expanse' section"),
    ({"sweep_config.iterations": -1, "sweep_config.sweep_method": "percentage",
      "sweep_config.base_value": 1.0, "sweep_config.percent_change": 5}, (), "iterations' must not be negative"),
    ({"slurm.local.mem": 0}, (), "'slurm.local.mem' (GB for the whole job) must be positive"),
    ({"sweep_config.sweep_method": "percent"}, (), "(did you mean 'percentage'?)"),
    ({"slurm.local.time": "ten hours"}, (), "'slurm.local.time' must look like HH:MM:SS"),
    ({}, ("simulation_cases",), "'simulation_cases' must name at least one case"),
    ({"simulation.seed_sweep": "multiseed"}, (), "multiseed_files' must list at least one file"),
])
def test_mistakes_name_the_file_and_key(tmp_path, changes, drop, expected):
    path = write(tmp_path, changes, drop)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_every_mistake_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, {"simulation.outptu_name": "x", "slurm.local.nodes": 0}))
    assert len(info.value.problems) == 2


def test_forwarded_slurm_keys_and_memory_per_cpu(tmp_path):
    cfg = load_config(write(tmp_path, {"slurm.local.ntasks": 40, "slurm.local.mem": 80,
                                       "slurm.local.cpus_per_task": 2,
                                       "slurm.local.exclusive": True,
                                       "slurm.local.account": "umc113"}))
    assert sbatch_directives(cfg) == [
        "--time=00:10:00", "--nodes=1", "--ntasks=40", "--account=umc113",
        "--mem-per-cpu=2048M", "--cpus-per-task=2", "--exclusive"]


def test_commands_quote_every_substituted_value(tmp_path):
    cfg = load_config(write(tmp_path, {
        "simulation_cases.baseline.config_file": "it's a $(bad) file.json",
        "simulation_cases.baseline.command": "run {config_file} --out {output_dir} --w {initW}"}))
    point = expand_points(cfg)[0]
    from datalad_slurmsweep.sweep.points import Task
    task = Task(point, cfg.cases[0], "s.sh", "o", "c")
    assert render_command(task, cfg) == (
        "run 'it'\"'\"'s a $(bad) file.json' --out \"$OUTPUT_DIR\" --w 2.0")


def test_default_command_is_bmtools(tmp_path):
    cfg = load_config(write(tmp_path))
    assert cfg.cases[0].command == "mpirun nrniv -mpi -python run_network.py {config_file}"


def test_json_edits_keep_order_indent_newline_and_type():
    text = '{\n\t"z": 1,\n\t"initW": 1,\n\t"a": {"b": [0, 1]}\n}\n'
    out = apply_edits(text, [(("initW",), 2.5), (("a", "b", "1"), 7)])
    assert out == '{\n\t"z": 1,\n\t"initW": 2.5,\n\t"a": {\n\t\t"b": [\n\t\t\t0,\n\t\t\t7\n\t\t]\n\t}\n}\n'
    assert apply_edits('{"x": 1}', [(("x",), 2)]) == '{"x": 2}'
    with pytest.raises(JsonEditError, match="'initw' does not exist.*did you mean 'initW'"):
        apply_edits(text, [(("initw",), 2.0)])
    with pytest.raises(JsonEditError, match="holds a number"):
        apply_edits(text, [(("initW",), "two")])


def test_clones_link_a_read_only_snapshot_and_edit_only_their_files(tmp_path):
    """Component files kept in git (not annex) are plain files: the snapshot
    makes them read-only, so a job cannot change the other points' inputs."""
    from datalad_slurmsweep.sweep.clones import write_clone, write_snapshot
    from datalad_slurmsweep.sweep.points import SweepLayout
    comp = tmp_path / "components"
    (comp / "mech").mkdir(parents=True)
    (comp / "mech" / "a.mod").write_text("A\n")
    (comp / "syn").mkdir()
    (comp / "syn" / "w.json").write_text('{"w": 1}\n')
    (comp / "syn" / "other.json").write_text("{}\n")
    lay = SweepLayout(root="out", config_dir=".", component_dir="components",
                      component_tree="0123456789abcdef")
    assert write_snapshot(tmp_path, lay) == [lay.snapshot]
    snap = tmp_path / lay.snapshot
    assert (snap / "mech" / "a.mod").stat().st_mode & 0o222 == 0
    assert (snap / "mech").stat().st_mode & 0o200  # directories stay writable for git
    from datalad_slurmsweep.sweep.points import Task
    task = Task(None, None, "out/p/case.sh", "out/p/case", "out/p/components")
    write_clone(tmp_path, lay, task, {"syn/w.json": '{"w": 2}\n'}, {})
    clone = tmp_path / "out/p/components"
    assert (clone / "mech").is_symlink() and (clone / "mech" / "a.mod").read_text() == "A\n"
    assert (clone / "syn").is_dir() and not (clone / "syn").is_symlink()
    assert (clone / "syn" / "other.json").is_symlink()
    assert (clone / "syn" / "w.json").read_text() == '{"w": 2}\n'
    assert json.loads((comp / "syn" / "w.json").read_text()) == {"w": 1}


def test_status_list_chooses_the_dependency_of_later_blocks(tmp_path):
    assert load_config(write(tmp_path)).block_dependency == "afterany"
    aggressive = ["RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    cfg = load_config(write(tmp_path, {"simulation.status_list": aggressive}))
    assert cfg.block_dependency == "after"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, {"simulation.status_list": ["COMPLETED"]}))
    assert "'simulation.status_list' must be" in str(err.value)


def test_results_section(tmp_path):
    cfg = load_config(write(tmp_path))
    assert (cfg.results.file, cfg.results.keys) == ("metrics.json", [])
    cfg = load_config(write(tmp_path, {"simulation.results": {"file": "out/m.json",
                                                              "keys": ["a.b", "c"]}}))
    assert (cfg.results.file, cfg.results.keys) == ("out/m.json", ["a.b", "c"])
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, {"simulation.results": {"file": "../x.json", "kyes": []}}))
    assert "simulation.results.file" in str(err.value)
    assert "unknown key 'simulation.results.kyes'" in str(err.value)
