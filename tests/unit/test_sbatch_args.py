import pytest

from datalad_slurmsweep.backends.sbatch import (
    SbatchArgumentError,
    effective_options,
    expand_log_pattern,
    log_spec,
    parse_array_spec,
    parse_sbatch_argv,
    script_directives,
)


def test_parse_argv_finds_script_and_args():
    call = parse_sbatch_argv(["-J", "name", "--array=0-3%2", "--mem", "1G",
                              "-o", "logs/%x-%A_%a.out", "job.sh", "--flag", "x"])
    assert call.script == "job.sh"
    assert call.script_args == ["--flag", "x"]
    assert call.options["job-name"] == "name"
    assert call.options["array"] == "0-3%2"
    assert call.options["mem"] == "1G"
    assert call.options["output"] == "logs/%x-%A_%a.out"


def test_parse_argv_flags_do_not_swallow_the_script():
    call = parse_sbatch_argv(["--hold", "--parsable", "-v", "job.sh"])
    assert call.script == "job.sh"


def test_wrap_needs_no_script_but_something_is_required():
    assert parse_sbatch_argv(["--wrap=echo hi"]).wrap == "echo hi"
    with pytest.raises(SbatchArgumentError, match="no batch script"):
        parse_sbatch_argv(["--mem=1G"])
    with pytest.raises(SbatchArgumentError, match="--time needs a value"):
        parse_sbatch_argv(["--time"])


def test_directives_stop_at_first_command_and_cli_wins():
    script = ("#!/bin/bash\n#SBATCH --array=1-5\n#SBATCH -o out/%A.%a.log  # c\n"
              "\necho hi\n#SBATCH --job-name=ignored\n")
    opts = script_directives(script)
    assert opts == {"array": "1-5", "output": "out/%A.%a.log"}
    merged = effective_options(parse_sbatch_argv(["--array=0-1", "job.sh"]), script)
    assert merged["array"] == "0-1" and merged["output"] == "out/%A.%a.log"


@pytest.mark.parametrize("spec,tasks", [
    ("0-3", [0, 1, 2, 3]), ("1,3,5-6", [1, 3, 5, 6]), ("0-15:4", [0, 4, 8, 12]),
    ("0-9%2", list(range(10))), ("7", [7]),
])
def test_array_specs(spec, tasks):
    assert parse_array_spec(spec) == tasks


@pytest.mark.parametrize("spec", ["a-b", "5-1", "1-3:0", ""])
def test_bad_array_specs_name_the_option(spec):
    with pytest.raises(SbatchArgumentError, match="--array"):
        parse_array_spec(spec)


def test_log_patterns_expand_like_slurm():
    kw = dict(job_id="42", array_job_id="40", task_id=2, job_name="sim", user="ann")
    assert expand_log_pattern("slurm-%A_%a.out", **kw) == "slurm-40_2.out"
    assert expand_log_pattern("%x-%j-%u-%%.log", **kw) == "sim-42-ann-%.log"
    assert expand_log_pattern("t%3a.out", **kw) == "t002.out"
    assert expand_log_pattern("raw\\%j", **kw) == "raw%j"


def test_default_logs_depend_on_array_and_chdir():
    assert log_spec({}, "job.sh", ".").output == "slurm-%j.out"
    spec = log_spec({"array": "0-1", "chdir": "sub"}, "job.sh", "a")
    assert spec.output == "slurm-%A_%a.out"
    assert spec.workdir == "a/sub"
    assert spec.job_name == "job.sh"
    with pytest.raises(SbatchArgumentError, match="--chdir"):
        log_spec({"chdir": "/abs"}, "job.sh", ".")
