"""The wrapper a containerised job is submitted as (jobs/container.py)."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from datalad_slurmsweep.backends.sbatch import script_directives
from datalad_slurmsweep.errors import ScheduleError
from datalad_slurmsweep.jobs.container import (
    ContainerRun,
    check_cmdexec,
    check_script,
    without_wrap,
    wrapped_argv,
    wrapper_text,
)

SCRIPT = ("#!/usr/bin/env python3\n#SBATCH --job-name=\"a b\"\n# a comment\n"
          "#SBATCH --time=1 # trailing\n\nprint('hi')\n#SBATCH --late=ignored\n")
FAKE = ContainerRun(name="c'1", image="img dir/x.sif", cmdexec="run {img} -- {cmd}")


def test_directives_are_copied_verbatim_and_only_those_slurm_reads():
    text = wrapper_text(FAKE, Path("/d s"), SCRIPT, Path("/d s/job.py"))
    assert script_directives(text) == script_directives(SCRIPT)
    assert "--late" not in text and text.startswith("#!/bin/bash\n")


def test_paths_are_quoted_and_the_interpreter_line_is_kept():
    text = wrapper_text(FAKE, Path("/d s"), SCRIPT, Path("/d s/job.py"))
    last = text.rstrip("\n").split("\n")[-1]
    words = shlex.split(last.replace('"$@"', "ARGS"))
    assert words == ["run", "/d s/img dir/x.sif", "--", "/usr/bin/env", "python3",
                     "/d s/job.py", "ARGS"]
    assert "export DATALAD_CONTAINER_NAME='c'\"'\"'1'" in text


def test_no_cmdexec_prepends_the_image():
    bare = ContainerRun(name="b", image="x.img")
    last = wrapper_text(bare, Path("/d"), "#!/bin/sh\ntrue\n", Path("/d/j.sh")).split("\n")[-2]
    assert last == "/d/x.img /bin/sh /d/j.sh \"$@\""


def test_the_wrapper_takes_the_scripts_place_and_name(tmp_path):
    (tmp_path / "job.sh").write_text("#!/bin/bash\ntrue\n")
    argv = ["sbatch", "--array=0-1", "job.sh", "a", "b"]
    with wrapped_argv(argv, ContainerRun("c", "x.img"), tmp_path, tmp_path) as out:
        assert out[:2] == argv[:2] and out[3:] == ["a", "b"]
        assert Path(out[2]).name == "job.sh" and Path(out[2]).is_file()
    assert not Path(out[2]).exists()


@pytest.mark.parametrize("words", [
    ["--wrap=echo hi", "-J", "n"], ["-J", "n", "--wrap", "echo hi"], ["--wra=echo hi", "-Jn"],
    ["--output=o", "--wrap", "--output=x", "-J", "n"]])
def test_wrap_is_taken_out_however_spelt(words):
    rest = without_wrap(words)
    assert len(rest) == len(words) - (1 if any(w.startswith("--wra") and "=" in w
                                                for w in words) else 2)
    assert "wrap" not in str(rest) and "echo hi" not in rest


def test_a_wrap_job_runs_its_command_through_sh_in_a_wrapper_called_wrap(tmp_path):
    argv = ["sbatch", "-J", "n", "--wrap", "echo 'a b'"]
    with wrapped_argv(argv, ContainerRun("c", "x.img"), tmp_path, tmp_path) as out:
        assert out[:3] == ["sbatch", "-J", "n"] and Path(out[3]).name == "wrap"
        last = Path(out[3]).read_text().rstrip("\n").split("\n")[-1]
    assert shlex.split(last) == [str(tmp_path / "x.img"), "/bin/sh", "-c", "echo 'a b'"]


def test_unknown_placeholder_and_bad_scripts_are_refused():
    with pytest.raises(ScheduleError, match="unknown placeholder"):
        check_cmdexec(ContainerRun("c", "x", cmdexec="run {image} {cmd}"))
    check_script(None, "")  # --wrap: nothing to check
    with pytest.raises(ScheduleError, match="'#!' line"):
        check_script("echo\n", "job.sh")
