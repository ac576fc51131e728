"""``slurm-sweep --check`` refuses, before anything is written, every
configuration that would fail later or silently do something else.

Each bad configuration starts from the example (examples/model) and changes
one thing; the refusal must be a ConfigError naming the file and the key.
Mistakes that need the dataset (validate) use one model dataset per module.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from datalad_slurmsweep.errors import ConfigError
from datalad_slurmsweep.sweep.checks import COMMAND_FIELDS
from datalad_slurmsweep.sweep.config import load_config
from datalad_slurmsweep.sweep.points import SweepLayout, Task, expand_points
from datalad_slurmsweep.sweep.scripts import command_fields, render_command, render_script
from datalad_slurmsweep.sweep.validate import validate
from tests.helpers import MODEL, example_config, model_dataset

TEXT = (MODEL / "slurm_config_setup.yaml").read_text()
BASE = yaml.safe_load(TEXT)
SST = "synaptic_models/synapses_final/SST2PV.json"
PULSE = "synaptic_models/synapses_final/Pulse2IT.json"


def doc(changes: dict | None = None, drop=()) -> str:
    """The example with dotted keys set (``slurm.local.time``) or dropped."""
    return yaml.safe_dump(example_config(changes, drop))


def grid(*params, mode=None, **changes) -> str:
    """A grid search (no BMTool sweep) over ``params``."""
    section = {"parameters": list(params), **({"mode": mode} if mode else {})}
    return doc({"simulation.seed_sweep": "none", "grid": section, **changes},
               drop=["sweep_config"])


def param(key="initW", values=(1.0, 2.0), file=SST, **extra) -> dict:
    return {"file": file, "key": key, "values": list(values), **extra}


def command(template: str) -> str:
    return doc({"simulation_cases.baseline.command": template})


def multiseed(*files, values=(2.0, 3.0)) -> str:
    return doc({"simulation.seed_sweep": "multiseed", "sweep_config.param_values": list(values),
                "sweep_config.multiseed_files": list(files)})


def percentage(base=1.0, pct=10, iterations=3) -> str:
    return doc({"sweep_config.sweep_method": "percentage", "sweep_config.base_value": base,
                "sweep_config.percent_change": pct, "sweep_config.iterations": iterations},
               drop=["sweep_config.param_values"])


def aliased(levels: int) -> str:
    """A document whose aliases expand to 10**levels values."""
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return TEXT + "\n".join(lines).replace("a0:", "x_a0:", 1) + "\n"


CASES = TEXT[TEXT.index("simulation_cases:"):TEXT.index("sweep_config:")]

LOAD_CASES = [
    # 1. command templates
    pytest.param(command("run {nope}"), "uses the unknown field '{nope}'", id="cmd-unknown"),
    pytest.param(command("run {config_file"), "'simulation_cases.baseline.command' is not a "
                 "valid template", id="cmd-open-brace"),
    pytest.param(command("run } x"), "Single '}' encountered", id="cmd-close-brace"),
    pytest.param(command("run {}"), "positional field '{}'", id="cmd-positional"),
    pytest.param(command("run ${HOME}"), "unknown field '{HOME}'", id="cmd-shell-braces"),
    pytest.param(command("run {config_file.upper}"), "unknown field '{config_file.upper}'",
                 id="cmd-attribute"),
    pytest.param(command("run {initW!x}"), "'{initW!x}' is not a conversion", id="cmd-conv"),
    pytest.param(command("run {initW:{point}}"), "format spec of '{initW}' may not hold",
                 id="cmd-nested-spec"),
    pytest.param(command("run {cofig_file}"), "did you mean 'config_file'?", id="cmd-typo"),
    # 2. duplicate points
    pytest.param(doc({"sweep_config.param_values": [1.0, 1.0]}),
                 "'sweep_config.param_values' gives 'initW' the value 1.0 more than once",
                 id="dup-values"),
    pytest.param(doc({"sweep_config.param_values": [1, 2, 1.0]}),
                 "gives 'initW' the value 1.0 more than once", id="dup-int-float"),
    pytest.param(percentage(pct=0), "'sweep_config.percent_change' gives 'initW' the value 1.0",
                 id="dup-percent-zero"),
    pytest.param(percentage(base=0.0), "gives 'initW' the value 0.0 more than once",
                 id="dup-percent-base-zero"),
    pytest.param(grid(param(values=[1.0, 2.0, 1.0])),
                 "'grid.parameters[0].values' gives 'initW' the value 1.0", id="dup-grid"),
    pytest.param(grid(param(values=[1.0, 1.0]), param("tau1", [1.0, 2.0], PULSE), mode="zip"),
                 None, id="zip-distinct-ok"),
    pytest.param(grid(param(values=[1.0, 1.0]), param("tau1", [2.0, 2.0], PULSE), mode="zip"),
                 "'grid.mode' zip: values 0 and 1", id="dup-zip"),
    pytest.param(grid(param(), param("initW", file=PULSE)),
                 "both sweep a parameter called 'initW'", id="dup-name"),
    pytest.param(grid(param(), param("tau1", file=PULSE, name="case")),
                 "the parameter name 'case' is the command field {case}", id="name-is-field"),
    pytest.param(grid(param(name="a-b"), param("tau1", file=PULSE, name="a_b")),
                 "would both be exported as SWEEP_PARAM_a_b", id="name-env-clash"),
    pytest.param(doc({"grid": {"parameters": [param(name="w", values=[5.0, 6.0])]}}),
                 "'sweep_config.base_json_file' and 'grid.parameters[0].key' both set 'initW'",
                 id="edit-twice"),
    pytest.param(multiseed({"path": SST, "ratio": 2}), "'sweep_config.base_json_file' and "
                 "'sweep_config.multiseed_files[0].path' both set 'initW'", id="edit-multiseed"),
    pytest.param(grid(param("nested.gain"), param("nested.gain.value", name="v")),
                 "both set 'nested.gain'", id="edit-inside-edit"),
    # 3. values JSON cannot hold
    pytest.param(doc({"sweep_config.param_values": [1.0, float("nan")]}),
                 "'sweep_config.param_values' must hold finite numbers, not nan", id="nan"),
    pytest.param(doc({"sweep_config.param_values": [float("inf")]}),
                 "must hold finite numbers, not inf", id="inf"),
    pytest.param(doc({"sweep_config.param_values": [10 ** 400]}),
                 "'sweep_config.param_values' must hold finite numbers", id="huge-int"),
    pytest.param(grid(param(values=[1.0, float("-inf")])),
                 "'grid.parameters[0].values' holds -inf", id="grid-inf"),
    pytest.param(grid(param("nested.gain", values=[{"value": float("nan")}, {"value": 1}])),
                 "'grid.parameters[0].values' holds nan", id="grid-nested-nan"),
    pytest.param(TEXT.replace("mem: 0.1", "mem: 0.1\n    grid_date: 1") + "grid:\n  parameters:"
                 "\n  - {file: x.json, key: d, values: [2024-01-01]}\n",
                 "a date, which JSON cannot hold", id="grid-date"),
    pytest.param(percentage(base=1e300, pct=1e6, iterations=10),
                 "'sweep_config.percent_change' 1000000.0 compounds 'initW' past the largest "
                 "float after 3 of 10 iterations", id="percent-overflow"),
    pytest.param(percentage(base=float("inf")), "'sweep_config.base_value' must be a finite "
                 "number, not inf", id="percent-base-inf"),
    pytest.param(percentage(pct=10 ** 400), "'sweep_config.percent_change' must be a finite",
                 id="percent-huge-int"),
    pytest.param(percentage(iterations=10 ** 7), "'sweep_config.iterations' 10000000 would "
                 "make more than", id="percent-too-many"),
    pytest.param(multiseed({"path": PULSE, "ratio": 1e308}),
                 "'sweep_config.multiseed_files[0].ratio' 1e+308 scales 'initW' past",
                 id="multiseed-overflow"),
    pytest.param(doc({"slurm.local.mem": float("nan")}), "'slurm.local.mem' (GB for the whole "
                 "job) must be positive, not nan", id="mem-nan"),
    pytest.param(doc({"slurm.local.mem": 10 ** 400}), "'slurm.local.mem' (GB", id="mem-huge"),
    pytest.param(doc({"slurm.local.cpus_per_task": float("inf")}),
                 "'slurm.local.cpus_per_task' must be a finite number", id="slurm-inf"),
    # 4. Slurm's filename patterns
    pytest.param(doc({"simulation.output_name": "res\\x"}),
                 "'simulation.output_name' must not contain a backslash", id="output-backslash"),
    # 5. control characters in single-line fields
    pytest.param(doc({"slurm.local.partition": "debug\n#SBATCH --x"}),
                 "'slurm.local.partition' holds a newline", id="partition-newline"),
    pytest.param(doc({"slurm.local.constraint": "a\tb"}),
                 "'slurm.local.constraint' holds the control character '\\t'", id="option-tab"),
    pytest.param(doc({"slurm.local.time": "00:10:00\n"}), "'slurm.local.time' holds a newline",
                 id="time-newline"),
    pytest.param(doc({"module_commands.local": ["module load a\nrm -rf x"]}),
                 "'module_commands.local[0]' holds a newline", id="module-newline"),
    pytest.param(doc({"simulation.output_name": "a\tb"}),
                 "'simulation.output_name' holds the control character", id="output-tab"),
    pytest.param(doc({"simulation.name": "a\nb"}), "'simulation.name' holds a newline",
                 id="name-newline"),
    pytest.param(doc({"simulation_cases.baseline.config_file": "a\nb.json"}),
                 "'simulation_cases.baseline.config_file' holds a newline", id="config-newline"),
    pytest.param(command("run {config_file}\r"), "'simulation_cases.baseline.command' holds "
                 "the control character '\\r'", id="cmd-cr"),
    pytest.param(doc({"simulation_cases": {"base\nline": {"config_file": "x.json"}}}),
                 "case name 'base\\nline' may hold only", id="case-newline"),
    pytest.param(doc({"slurm.local.exclusive\n": True}),
                 "is not a valid sbatch option name", id="option-key-newline"),
    pytest.param(grid(param(values=["a\x00b", "c"])), "'grid.parameters[0].values' holds the "
                 "control character '\\x00'", id="value-nul"),
    # 6. files outside the component directory
    pytest.param(grid(param(file="/etc/passwd")), "'grid.parameters[0].file' '/etc/passwd' "
                 "must be relative to simulation.component_path", id="file-absolute"),
    pytest.param(grid(param(file="../slurm_config_setup.yaml")),
                 "'grid.parameters[0].file' '../slurm_config_setup.yaml' leaves", id="file-up"),
    pytest.param(grid(param(file="a/../../b.json")), "leaves simulation.component_path",
                 id="file-up-inside"),
    pytest.param(doc({"sweep_config.base_json_file": "../../x.json"}),
                 "'sweep_config.base_json_file' '../../x.json' leaves", id="base-file-up"),
    pytest.param(multiseed({"path": "/tmp/x.json", "ratio": 1}),
                 "'sweep_config.multiseed_files[0].path' '/tmp/x.json' must be relative",
                 id="multiseed-absolute"),
    pytest.param(grid(param(file="")), "'grid.parameters[0].file' must name a file",
                 id="file-empty"),
    # 7. empty keys and key steps
    pytest.param(grid(param(key="")), "'grid.parameters[0].key' must not be empty",
                 id="key-empty"),
    pytest.param(doc({"sweep_config.param_name": ""}), "'sweep_config.param_name' must not be "
                 "empty", id="param-name-empty"),
    pytest.param(grid(param(key="nested..value")), "'grid.parameters[0].key' 'nested..value' "
                 "has an empty step", id="key-double-dot"),
    pytest.param(grid(param(key="initW.")), "has an empty step", id="key-trailing-dot"),
    pytest.param(grid(param(key="/")), "'grid.parameters[0].key' '/' has an empty step",
                 id="key-pointer-empty"),
    pytest.param(grid(param(name="")), "'grid.parameters[0].name' must not be empty",
                 id="name-empty"),
    # 8. duplicate YAML keys
    pytest.param(TEXT.replace(CASES, CASES + "  baseline:\n    config_file: other.json\n"),
                 "duplicate key 'simulation_cases.baseline' at line 20 (first at line 18)",
                 id="yaml-dup-case"),
    pytest.param(TEXT + "simulation:\n  output_name: x\n", "duplicate key 'simulation' at line",
                 id="yaml-dup-top"),
    pytest.param(TEXT.replace('    time: "00:10:00"\n', '    time: "00:10:00"\n    time: 1\n'),
                 "duplicate key 'slurm.local.time'", id="yaml-dup-nested"),
    # never anything but a ConfigError
    pytest.param(doc({"simulation": 5}), "'simulation' must be a mapping, not int",
                 id="simulation-int"),
    pytest.param(doc({"simulation_cases": [1, 2]}), "'simulation_cases' must be a mapping",
                 id="cases-list"),
    pytest.param(grid(5), "'grid.parameters[0]' must be a mapping", id="grid-param-int"),
    pytest.param(doc({"sweep_config.param_values": "abc"}),
                 "'sweep_config.param_values' must be a non-empty list", id="values-str"),
    pytest.param(TEXT + "1: x\n", "key 1 at line 25 in 'the document' is read as int, not a "
                 "string: quote it ('1')", id="key-int"),
    pytest.param(TEXT.replace("  baseline:", "  ~:"), "key ~ at line 18 in 'simulation_cases' "
                 "is read as null", id="key-null"),
    pytest.param(TEXT.replace("nodes: 1", "nodes: !!int one"), "'slurm.local.nodes' (line "
                 "11): 'one' cannot be read as int", id="tag-bad-int"),
    pytest.param(TEXT.replace("nodes: 1", "nodes: !nodes 1"),
                 "'slurm.local.nodes' (line 11): unknown tag !nodes", id="tag-unknown"),
    pytest.param(TEXT.replace("nodes: 1", "nodes: 2024-13-45"),
                 "'slurm.local.nodes' (line 11): '2024-13-45' cannot be read as timestamp",
                 id="bad-date"),
    pytest.param(TEXT + "grid: &g\n  parameters: [*g]\n", "'grid.parameters[0]' (line 25) is "
                 "an alias of a node that contains it", id="recursive-alias"),
    pytest.param(aliased(7), "more than 1000000 values once its aliases are expanded",
                 id="alias-bomb"),
    pytest.param(TEXT.replace('"../Run-Storage/sweep_initW"', '"\\ud800"'),
                 "'simulation.output_name' (line 2) is not valid Unicode", id="surrogate"),
    pytest.param(TEXT.replace("    - 'export", "    - !!binary aGk=\n    - 'export"),
                 "'module_commands.local' must be a list of strings", id="binary"),
    pytest.param("- a\n- b\n", "must hold a mapping", id="not-a-mapping"),
    pytest.param("", "must hold a mapping", id="empty-file"),
    pytest.param("a: [\n", "not valid YAML", id="bad-yaml"),
    pytest.param("a: 1\n---\nb: 2\n", "not valid YAML", id="two-documents"),
    pytest.param("[" * 5000 + "]" * 5000, "nested too deeply", id="deep"),
    pytest.param(TEXT.encode("utf-16"), "not UTF-8 text", id="utf16"),
    pytest.param(TEXT.replace("local", "lo\xe7al").encode("latin-1"),
                 "not UTF-8 text: byte 0xe7", id="latin1"),
    pytest.param(multiseed({"path": PULSE, "ratio": 2}, values=["a", "b"]),
                 "'sweep_config.param_values' must hold finite numbers, not 'a'",
                 id="multiseed-strings"),
    pytest.param(doc({"simulation.parallel_submission": "false"}),
                 "'simulation.parallel_submission' must be bool, not 'false'", id="bool-str"),
    pytest.param(doc({"simulation.output_name": ""}), "'simulation.output_name' must not be "
                 "empty", id="output-empty"),
    # options the sweep sets itself, and sbatch options given twice
    pytest.param(doc({"slurm.local.array": "0-3"}), "'slurm.local.array': the sweep sets "
                 "--array itself", id="slurm-array"),
    pytest.param(doc({"slurm.local.job_name": "x"}), "the sweep sets --job-name itself",
                 id="slurm-job-name"),
    pytest.param(doc({"slurm.local.mem_per_cpu": "1G"}), "the sweep sets --mem-per-cpu",
                 id="slurm-mem-per-cpu"),
    pytest.param(doc({"slurm.local.cpus_per_task": 2, "slurm.local.cpus-per-task": 3}),
                 "are both --cpus-per-task", id="slurm-twice"),
    pytest.param(doc({"simulation_cases": {"x": {"config_file": "a.json"},
                                           "x.sh": {"config_file": "a.json"}}}),
                 "case names 'x' and 'x.sh' clash", id="case-script-clash"),
]


@pytest.mark.parametrize("content,expected", LOAD_CASES)
def test_load_config_refuses(tmp_path, content, expected):
    path = tmp_path / "model" / "sweep.yaml"
    path.parent.mkdir()
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8",
                                                                               "surrogatepass"))
    if expected is None:  # a control: close to a refused one, but fine
        load_config(path)
        return
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value), info.value.problems


def test_unreadable_paths_are_config_errors(tmp_path):
    for path, expected in ((tmp_path, "Is a directory"), (tmp_path / "no.yaml", "No such file"),
                           (tmp_path / "a\0b.yaml", "null")):
        with pytest.raises(ConfigError, match=expected):
            load_config(path)


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(doc({"simulation.output_name": "res\\j", "slurm.local.partition": "a\nb",
                         "sweep_config.param_values": [1.0, 1.0],
                         "simulation_cases.baseline.command": "run {nope}"}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 4, info.value.problems


# -- what stays allowed -----------------------------------------------------------

def test_templates_may_span_lines_and_hold_literal_braces(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(command("for f in a b; do\n  echo ${{f}} {{}} {initW:.3f}\ndone\t{case!s}"))
    cfg = load_config(path)
    task = Task(expand_points(cfg)[0], cfg.cases[0], "s.sh", "o", "c")
    assert render_command(task, cfg) == ("for f in a b; do\n  echo ${f} {} 2.000\n"
                                         "done\tbaseline")


def test_merge_keys_and_quoted_numeric_keys_are_fine(tmp_path):
    path = tmp_path / "sweep.yaml"
    text = TEXT.replace("slurm:\n  local:\n", "slurm:\n  base: &base\n    time: '01:00:00'\n"
                        "    nodes: 1\n  local:\n    <<: *base\n")
    text = text.replace("    nodes: 1\n    ntasks", "    nodes: 2\n    ntasks")
    path.write_text(text.replace("  baseline:", "  '2024':"))
    cfg = load_config(path)
    assert cfg.slurm["nodes"] == 2 and cfg.slurm["time"] == "00:10:00"
    assert cfg.cases[0].name == "2024"


def test_command_fields_are_the_checked_ones(tmp_path):
    """load_config checks templates against COMMAND_FIELDS; the scripts
    fill in command_fields: the two must agree."""
    path = tmp_path / "sweep.yaml"
    path.write_text(grid(param(), param("/nested/gain/value", [0.5, 0.7], name="g-v")))
    cfg = load_config(path)
    task = Task(expand_points(cfg)[0], cfg.cases[0], "s.sh", "o", "c")
    assert set(command_fields(task, cfg)) == COMMAND_FIELDS | {"initW"}
    lay = SweepLayout("out", ".", "components", "0" * 40)
    assert "export SWEEP_PARAM_g_v=0.5" in render_script(task, cfg, lay, array=False)


def test_file_spellings_are_one_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(grid(param(file="./synaptic_models//synapses_final/SST2PV.json"),
                         param("tau1", file=PULSE)))
    cfg = load_config(path)
    assert cfg.axes[0].edits[0][0].file == SST


# -- against the dataset (validate) ---------------------------------------------------

@pytest.fixture(scope="module")
def ds_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("check") / "ds"
    ds = model_dataset(root)
    outside = tmp_path_factory.mktemp("outside") / "w.json"
    outside.write_text('{"w": 1}\n')
    os.symlink(outside, root / "model" / "components" / "outside.json")
    ds.save(message="a symlink leaving the dataset", result_renderer="disabled")
    (root / "a-file").write_text("x\n")
    (root / "foreign").mkdir()
    (root / "foreign" / "sweep.yaml").write_text("mine: 1\n")
    (root / "taken" / "initW-2.0" / "baseline").mkdir(parents=True)
    (root / "taken" / "initW-2.0" / "baseline.sh").mkdir()
    (root / "taken" / "initW-3.0").write_text("x\n")
    os.symlink(tmp_path_factory.mktemp("elsewhere"), root / "linked")
    (root / "pct\\1").mkdir()
    return root


REL = {"simulation.component_path": "../model/components",
       "simulation_cases.baseline.config_file": "../model/simulation_config_baseline.json"}

DATASET_CASES = [
    pytest.param("model", {"simulation.output_name": "../a-file"},
                 "simulation.output_name: a-file is an existing file, not a directory",
                 id="output-is-file"),
    pytest.param("model", {"simulation.output_name": "../a-file/sub"},
                 "a-file is an existing file", id="output-below-file"),
    pytest.param("model", {"simulation.output_name": "../.git/x"},
                 "simulation.output_name .git/x is inside .git", id="output-in-git"),
    pytest.param("model", {"simulation.output_name": "sub/.git/x"},
                 "simulation.output_name model/sub/.git/x is inside .git", id="output-git-part"),
    pytest.param("model", {"simulation.output_name": "../linked/x"},
                 "linked is a symbolic link", id="output-through-symlink"),
    pytest.param("model", {"simulation.output_name": "."},
                 "holds the configuration file model/", id="output-holds-config"),
    pytest.param("model", {"simulation.output_name": "../foreign"},
                 "foreign holds a sweep.yaml or manifest.json that no sweep wrote",
                 id="output-foreign"),
    pytest.param("model", {"simulation.output_name": "../taken"},
                 "taken/initW-3.0 is a file or symbolic link; the sweep needs a directory",
                 id="point-is-file"),
    pytest.param("model", {"simulation.output_name": "../taken"},
                 "taken/initW-2.0/baseline.sh is a directory", id="script-is-dir"),
    pytest.param("pct\\1", {"simulation.output_name": "out", **REL},
                 "'simulation.output_name (in the dataset: pct\\1/out)' must not contain a "
                 "backslash", id="output-dir-backslash"),
    pytest.param("model", {"simulation_cases": {"components": {
        "config_file": "simulation_config_baseline.json"}}},
        "case name 'components' clashes with the component clone", id="case-is-clone"),
    pytest.param("model", {"simulation.seed_sweep": "none", "grid": {"parameters": [
        {"file": "synaptic_models", "key": "a", "values": [1, 2]}]}},
        "synaptic_models cannot be read: Is a directory", id="file-is-dir"),
    pytest.param("model", {"simulation.seed_sweep": "none", "grid": {"parameters": [
        {"file": "outside.json", "key": "w", "values": [1, 2]}]}},
        "outside.json leads outside the dataset", id="file-symlink-outside"),
    pytest.param("model", {"simulation_cases.baseline.command": "run {initW:d}"},
                 "simulation_cases.baseline.command: cannot be filled in for point initW-2.0",
                 id="cmd-spec-misfit"),
]


@pytest.mark.parametrize("where,changes,expected", DATASET_CASES)
def test_validate_refuses(ds_root, request, where, changes, expected):
    text = doc(changes, drop=["sweep_config"] if "grid" in changes else ())
    path = ds_root / where / f"{request.node.callspec.id}.yaml"
    path.write_text(text)
    cfg = load_config(path)  # fine on its own: only the dataset shows the mistake
    with pytest.raises(ConfigError) as info:
        validate(ds_root, cfg)
    assert str(path) in str(info.value)
    assert expected in str(info.value), info.value.problems


def test_the_example_passes(ds_root):
    path = ds_root / "model" / "slurm_config_setup.yaml"
    lay = validate(ds_root, load_config(path))
    assert [t.point.name for t in lay.tasks] == ["initW-2.0", "initW-3.0", "initW-4.0"]
