"""sbatch command lines and #SBATCH lines, case by case, as Slurm reads them.

The expected behaviour was checked against Slurm's sources (src/common/
slurm_opt.c, src/sbatch/opt.c, slurm_parse_array_tok, src/slurmd/common/
fname.c) for 22.05 to 24.11, and where possible against sbatch 22.05 itself.
"""
from __future__ import annotations

import random

import pytest

from datalad_slurmsweep.backends import sbatch_options as table
from datalad_slurmsweep.backends.sbatch import (
    ABSOLUTE_MAX_ARRAY_SIZE,
    SbatchArgumentError,
    effective_options,
    expand_log_pattern,
    log_spec,
    parse_array_spec,
    parse_sbatch_argv,
    script_directives,
)

# -- command lines: (argv, options, script, script args) ----------------------------

VALID_ARGV = [
    (["job.sh"], {}, "job.sh", []),
    (["--nice", "job.sh"], {"nice": None}, "job.sh", []),
    (["--nice=5", "job.sh"], {"nice": "5"}, "job.sh", []),
    (["--exclusive", "job.sh", "x"], {"exclusive": None}, "job.sh", ["x"]),
    (["--exclusive=user", "job.sh"], {"exclusive": "user"}, "job.sh", []),
    (["--get-user-env", "job.sh"], {"get-user-env": None}, "job.sh", []),
    (["--get-user-env=10L", "job.sh"], {"get-user-env": "10L"}, "job.sh", []),
    (["--propagate", "job.sh"], {"propagate": None}, "job.sh", []),
    (["--propagate=STACK", "job.sh"], {"propagate": "STACK"}, "job.sh", []),
    (["-k", "job.sh"], {"no-kill": None}, "job.sh", []),
    (["-koff", "job.sh"], {"no-kill": "off"}, "job.sh", []),
    (["--no-kill=off", "job.sh"], {"no-kill": "off"}, "job.sh", []),
    # An optional value takes the rest of a bundle, as getopt does.
    (["-kv", "job.sh"], {"no-kill": "v"}, "job.sh", []),
    (["--oom-kill-step", "job.sh"], {"oom-kill-step": None}, "job.sh", []),
    (["--resv-ports", "job.sh"], {"resv-ports": None}, "job.sh", []),
    (["-C", "gpu", "job.sh"], {"constraint": "gpu"}, "job.sh", []),
    (["-Cgpu&intel", "job.sh"], {"constraint": "gpu&intel"}, "job.sh", []),
    (["-G", "2", "job.sh"], {"gpus": "2"}, "job.sh", []),
    (["-G2", "job.sh"], {"gpus": "2"}, "job.sh", []),
    (["-vv", "-Qv", "job.sh"], {"verbose": None, "quiet": None}, "job.sh", []),
    (["-HQv", "job.sh"], {"hold": None, "quiet": None, "verbose": None}, "job.sh", []),
    (["-o%j.out", "job.sh"], {"output": "%j.out"}, "job.sh", []),
    (["-o", "%j.out", "job.sh"], {"output": "%j.out"}, "job.sh", []),
    (["-vJname", "job.sh"], {"verbose": None, "job-name": "name"}, "job.sh", []),
    (["-vJ", "name", "job.sh"], {"verbose": None, "job-name": "name"}, "job.sh", []),
    # getopt keeps the '=' of a short option's value.
    (["-J=x", "job.sh"], {"job-name": "=x"}, "job.sh", []),
    # A required value is the next word, even one that looks like an option.
    (["-J", "--hold", "job.sh"], {"job-name": "--hold"}, "job.sh", []),
    (["--job-name", "-v", "job.sh"], {"job-name": "-v"}, "job.sh", []),
    (["--time=", "job.sh"], {"time": ""}, "job.sh", []),
    (["--", "job.sh", "-v"], {}, "job.sh", ["-v"]),
    (["-v", "--", "--hold"], {"verbose": None}, "--hold", []),
    (["-"], {}, "-", []),
    (["job.sh", "--mem=1G", "-J", "x"], {}, "job.sh", ["--mem=1G", "-J", "x"]),
    (["--part=debug", "job.sh"], {"partition": "debug"}, "job.sh", []),
    (["--wr=echo hi"], {"wrap": "echo hi"}, None, []),
    (["--wrap", "echo hi"], {"wrap": "echo hi"}, None, []),
    (["--job", "x", "--arr=1-3", "job.sh"], {"job-name": "x", "array": "1-3"}, "job.sh", []),
    (["--mem", "1G", "job.sh"], {"mem": "1G"}, "job.sh", []),  # exact name beats longer ones
    (["--cluster=a", "job.sh"], {"clusters": "a"}, "job.sh", []),
    (["--clusters=a", "job.sh"], {"clusters": "a"}, "job.sh", []),
    (["--tasks-per-node=2", "job.sh"], {"ntasks-per-node": "2"}, "job.sh", []),
    (["--export", "NONE", "job.sh"], {"export": "NONE"}, "job.sh", []),
    (["--kill-on-invalid-dep", "yes", "job.sh"], {"kill-on-invalid-dep": "yes"}, "job.sh", []),
    (["--requeue", "--no-requeue", "job.sh"], {"requeue": None, "no-requeue": None},
     "job.sh", []),
    (["--segment=4", "--tres-per-task=gres/gpu:1", "job.sh"],
     {"segment": "4", "tres-per-task": "gres/gpu:1"}, "job.sh", []),
    (["-t", "1", "-t", "2", "job.sh"], {"time": "2"}, "job.sh", []),  # the last one wins
    (["-a", "0-3%2", "-p", "x", "-q", "y", "-A", "z", "job.sh"],
     {"array": "0-3%2", "partition": "x", "qos": "y", "account": "z"}, "job.sh", []),
    (["--test-only", "--parsable", "--wait", "job.sh"],
     {"test-only": None, "parsable": None, "wait": None}, "job.sh", []),
]


@pytest.mark.parametrize("argv,options,script,args", VALID_ARGV,
                         ids=[" ".join(c[0]) for c in VALID_ARGV])
def test_valid_command_lines(argv, options, script, args):
    call = parse_sbatch_argv(argv)
    assert (call.options, call.script, call.script_args) == (options, script, args)


INVALID_ARGV = [
    (["--foo", "job.sh"], "unknown sbatch option --foo"),
    (["--exact", "job.sh"], "unknown sbatch option --exact (an srun/salloc option)"),
    (["--x11", "job.sh"], "unknown sbatch option --x11"),
    (["--immediate", "job.sh"], "unknown sbatch option --immediate"),
    (["--burst-buffer=x", "job.sh"], "unknown sbatch option --burst-buffer"),
    (["-I", "job.sh"], "unknown sbatch option -I"),
    (["-l", "job.sh"], "unknown sbatch option -l"),
    (["-vZ", "job.sh"], "unknown sbatch option -Z (in -vZ)"),
    (["-v-", "job.sh"], "unknown sbatch option --"),
    (["--no", "job.sh"], "ambiguous sbatch option --no: could be --no-kill, --no-requeue"),
    (["--clu=x", "job.sh"], "ambiguous sbatch option --clu"),
    (["--mem-p=1", "job.sh"], "could be --mem-per-cpu, --mem-per-gpu"),
    (["--=x", "job.sh"], "ambiguous sbatch option"),
    (["--hold=1", "job.sh"], "--hold takes no value"),
    (["--parsable=yes", "job.sh"], "--parsable takes no value"),
    (["--time"], "--time needs a value"),
    (["job.sh", "--time"], None),  # after the script: an argument, valid
    (["-J"], "-J (--job-name) needs a value"),
    (["-vJ"], "-J (--job-name) needs a value"),
    (["--mem=1G"], "no batch script"),
    ([], "no batch script"),
    (["--"], "no batch script"),
    (["--nice"], "no batch script"),
    (["--wrap=x", "job.sh"], "Script arguments not permitted with --wrap"),
    (["-N1", ":", "-N2", "job.sh"], "heterogeneous jobs"),
    (["job.sh", ":"], "heterogeneous jobs"),
]


@pytest.mark.parametrize("argv,fragment", INVALID_ARGV,
                         ids=[" ".join(c[0]) or "empty" for c in INVALID_ARGV])
def test_invalid_command_lines(argv, fragment):
    if fragment is None:
        assert parse_sbatch_argv(argv).script_args == argv[1:]
        return
    with pytest.raises(SbatchArgumentError) as info:
        parse_sbatch_argv(argv)
    assert fragment in str(info.value)


# -- the table itself ----------------------------------------------------------------

def test_the_table_covers_sbatch_and_nothing_else():
    assert len(table.OPTIONS) == 113 and len(table.LONG) == 115
    assert len(table.SHORT) == 34
    assert not table.OTHER_COMMANDS_LONG & set(table.LONG)
    assert not table.OTHER_COMMANDS_SHORT & set(table.SHORT)
    assert {s.arity for s in table.OPTIONS.values()} == {table.REQUIRED, table.OPTIONAL,
                                                         table.NONE}
    optional = {n for n, s in table.OPTIONS.items() if s.arity == table.OPTIONAL}
    assert optional == {"exclusive", "get-user-env", "nice", "no-kill", "oom-kill-step",
                        "propagate", "resv-ports"}


def _forms(spec):
    """Every way of writing ``spec`` with value v, and what it parses to."""
    longs = [f"--{spec.name}"]
    shorts = [f"-{spec.short}"] if spec.short else []
    if spec.arity == table.REQUIRED:
        return ([([f"{o}=v"], "v") for o in longs] + [([o, "v"], "v") for o in longs + shorts]
                + [([f"{o}v"], "v") for o in shorts])
    if spec.arity == table.OPTIONAL:
        return [([o], None) for o in longs + shorts] + [([f"{o}=v"], "v") for o in longs]
    return [([o], None) for o in longs + shorts]


@pytest.mark.parametrize("name", sorted(table.OPTIONS))
def test_every_option_in_every_form(name):
    spec = table.OPTIONS[name]
    script = None if name == "wrap" else "job.sh"  # --wrap allows no script
    for words, value in _forms(spec):
        call = parse_sbatch_argv([*words, script] if script else words)
        assert (call.options, call.script) == ({name: value}, script), words
        directives = script_directives("#!/bin/sh\n#SBATCH " + " ".join(words) + "\n")
        expected = {} if name in table.COMMAND_LINE_ONLY else {name: value}
        assert directives == expected, words
    if spec.arity == table.NONE:
        with pytest.raises(SbatchArgumentError, match="takes no value"):
            parse_sbatch_argv([f"--{name}=v", "job.sh"])


# -- #SBATCH lines: (text, options) -----------------------------------------------------

VALID_DIRECTIVES = [
    ("#!/bin/bash\n#SBATCH -C cpu\n", {"constraint": "cpu"}),
    ("#!/bin/bash\n#SBATCH --comment='a b'\n", {"comment": "a b"}),
    ('#SBATCH --comment="a b"\n', {"comment": "a b"}),
    ('#SBATCH --comment="say \\"hi\\""\n', {"comment": 'say "hi"'}),
    ("#SBATCH --comment=a\\ b\n", {"comment": "a b"}),
    # Backslashes escape inside quotes too (unlike the shell).
    ("#SBATCH --comment='a\\b'\n", {"comment": "ab"}),
    ("#SBATCH --comment='a#b' # note\n", {"comment": "a#b"}),
    ("#SBATCH --comment=a\\#b\n", {"comment": "a#b"}),
    ("#SBATCH --mem=1G#no space needed\n", {"mem": "1G"}),
    # What shlex.quote writes reads back the same.
    ("#SBATCH '--job-name=it'\"'\"'s'\n", {"job-name": "it's"}),
    ("#SBATCH -J\n#SBATCH name\n", {"job-name": "name"}),  # one argument list
    ("#SBATCH -J x -o out.log\n", {"job-name": "x", "output": "out.log"}),
    ("#SBATCH --nice\n#SBATCH --hold\n", {"nice": None, "hold": None}),
    ("#SBATCH --part=debug\n", {"partition": "debug"}),
    ("#SBATCH\t--mem=1G\r\n", {"mem": "1G"}),
    ("#SBATCH--mem=1G\n", {"mem": "1G"}),  # Slurm needs no space after the magic word
    ("#SLURM --mem=1G\n", {"mem": "1G"}),
    ("#!/bin/sh\n\n# comment\n   \n#SBATCH --mem=1G\n", {"mem": "1G"}),
    ("#!/bin/sh\necho hi\n#SBATCH --mem=1G\n", {}),
    ("#!/bin/sh\n  echo hi\n#SBATCH --mem=1G\n", {}),
    # Indented, it is a comment for Slurm.
    ("#!/bin/sh\n  #SBATCH --mem=1G\n#SBATCH -J x\n", {"job-name": "x"}),
    ("#SBATCH --wrap=x -v --usage\n", {}),  # command-line-only options are ignored
    ("#SBATCH -- \n", {}),
    ("#SBATCH\n#SBATCH # nothing\n", {}),
    ("", {}),
]


@pytest.mark.parametrize("text,options", VALID_DIRECTIVES,
                         ids=[repr(c[0])[:40] for c in VALID_DIRECTIVES])
def test_valid_directives(text, options):
    assert script_directives(text) == options


INVALID_DIRECTIVES = [
    ('#!/bin/bash\n#SBATCH --comment="x\n', "job.sh: line 2: unmatched \""),
    ("#SBATCH --comment='x\n", "job.sh: line 1: unmatched '"),
    ("#SBATCH --comment='x\\'\n", "line 1: unmatched '"),
    ("#SBATCH -J x\n#SBATCH --foo\n", "job.sh: line 2: unknown sbatch option --foo"),
    ("#SBATCH -J x\n#SBATCH foo\n", "job.sh: line 2: invalid #SBATCH directive foo"),
    ("#SBATCH -- -J x\n", "line 1: invalid #SBATCH directive -J"),
    ("#SBATCH --mem=1G\n#SBATCH -J\n", "job.sh: line 2: sbatch option -J (--job-name) needs"),
    ("#SBATCH --hold=yes\n", "--hold takes no value"),
    ("#SBATCH --no\n", "ambiguous sbatch option --no"),
    ("#SBATCH hetjob\n", "heterogeneous jobs"),
    ("#SBATCH -N1\n#SBATCH packjob -N2\n", "line 2: heterogeneous jobs"),
    ("#SBATCH :\n", "unexpected ':'"),
    ("#SBATCHING starts here\n", "invalid #SBATCH directive ING"),  # as sbatch reads it
    ('#SBATCH --comment "" --mem=1G\n', "empty quoted word"),
    # Slurm stops reading the line at an escaped tab.
    ("#SBATCH --comment \\\t--mem=1G\n", "--comment needs a value"),
]


@pytest.mark.parametrize("text,fragment", INVALID_DIRECTIVES,
                         ids=[repr(c[0])[:40] for c in INVALID_DIRECTIVES])
def test_invalid_directives_name_the_line(text, fragment):
    with pytest.raises(SbatchArgumentError) as info:
        script_directives(text, "job.sh")
    assert fragment in str(info.value)


def test_directive_errors_without_a_source_and_through_effective_options():
    with pytest.raises(SbatchArgumentError, match='batch script: line 1: unmatched "'):
        script_directives('#SBATCH --comment="x\n')
    call = parse_sbatch_argv(["job.sh"])
    with pytest.raises(SbatchArgumentError, match="run.sh: line 2: unknown"):
        effective_options(call, "#!/bin/sh\n#SBATCH --bogus\n", source="run.sh")
    assert effective_options(call, "#!/bin/sh\n#SBATCH --part=x\n") == {"partition": "x"}


# -- --array --------------------------------------------------------------------------

VALID_ARRAYS = [
    ("0-3", None, [0, 1, 2, 3]),
    ("3,1,2-2,1", None, [1, 2, 3]),
    ("0-10:5", None, [0, 5, 10]),
    ("0-11:5%1", None, [0, 5, 10]),
    ("007", None, [7]),
    (" 1-2 ", None, [1, 2]),
    ("0-999", 1000, list(range(1000))),
    ("4000000", None, [4000000]),
]


@pytest.mark.parametrize("spec,limit,tasks", VALID_ARRAYS)
def test_valid_arrays(spec, limit, tasks):
    assert parse_array_spec(spec, limit=limit) == tasks


INVALID_ARRAYS = [
    ("0-3000000000", None, "below 4000001"),
    ("0-4000001", None, "task id 4000001"),
    ("4000001", None, "Slurm's largest possible MaxArraySize"),
    ("9" * 5000, None, "far too large"),
    ("0-1000", 1000, "task id 1000, but task ids and steps must be below 1000"),
    ("0-10:1000", 1000, "step 1000"),
    ("5", 0, "below 0"),
    ("-1", None, "negative"),
    ("1,-2", None, "negative"),
    ("1,,2", None, "empty part"),
    ("1,", None, "empty part"),
    ("", None, "empty part"),
    ("1-3:0", None, "step of 0"),
    ("1-3:00", None, "step of 0"),
    ("1-3%0", None, "%0"),
    ("1-3%", None, "throttle"),
    ("1-3%x", None, "throttle"),
    ("5:2", None, "not a task id or range"),
    ("5-1", None, "ends before it starts"),
    ("[1-3]", None, "not a task id or range"),
    ("1-3%2%3", None, "throttle"),
    ("\u0663", None, "not a task id"),  # an Arabic-Indic three: not for Slurm
]


@pytest.mark.parametrize("spec,limit,fragment", INVALID_ARRAYS)
def test_invalid_arrays_name_the_option(spec, limit, fragment):
    with pytest.raises(SbatchArgumentError) as info:
        parse_array_spec(spec, limit=limit)
    assert "--array" in str(info.value) and fragment in str(info.value)
    assert len(str(info.value)) < 400


def test_the_largest_array_is_refused_before_it_is_built():
    assert ABSOLUTE_MAX_ARRAY_SIZE == 4_000_001
    with pytest.raises(SbatchArgumentError, match="MaxArraySize"):
        parse_array_spec(",".join(["0-4000000"] * 1000 + ["4000001"]))


# -- log file names ---------------------------------------------------------------------

LOGS = [
    ("slurm-%A_%a.out", "slurm-40_2.out"),
    ("%x-%j-%u-%%.log", "sim-42-ann-%.log"),
    ("t%3a.out", "t002.out"),
    ("t%1000a.out", "t0000000002.out"),  # Slurm pads to 10 digits at most
    ("%0a", "2"),
    ("%b", "2"),
    ("%5x", "sim"),
    ("%q", "%q"),
    ("%12q", "2q"),
    ("a%5", "a5"),
    ("%%j", "%j"),
    ("raw\\%j", "raw%j"),
    ("a\\\\b", "a\\b"),
    ("%s-%t-%n-%J", "batch-0-0-42"),
]


@pytest.mark.parametrize("pattern,name", LOGS)
def test_log_patterns(pattern, name):
    kw = dict(job_id="42", array_job_id="40", task_id=2, job_name="sim", user="ann")
    assert expand_log_pattern(pattern, **kw) == name


def test_a_job_that_is_not_an_array():
    kw = dict(job_id="42", array_job_id=None, task_id=None, job_name="sim", user="ann")
    assert expand_log_pattern("%A-%a-%b", **kw) == "42-4294967294-4"


# -- no input escapes as anything but SbatchArgumentError --------------------------------

WORDS = ["--", "-", "--=", "=", "job.sh", "-v", "-vv", "-J", "-Jx", "--job-name", "--job",
         "--nice", "--nice=3", "--no", "--no-kill", "-k", "-kv", "-C", "--wrap", "--wrap=x",
         "--array", "--array=0-3", "-a", "-o", "-o%j", "--hold=1", "--foo", ":", "'", '"',
         "x", "", "-Q", "--export", "--cluster", "--part", "--exact", "-I", "\\", "#", " "]
TEXT = ["#SBATCH ", "#SBATCH", "#SLURM ", "\n", " ", "\t", "'", '"', "\\", "#", "-J", "x",
        "--mem=1G", "--foo", "hetjob", ":", "--", "echo", "-vv", "--nice", "=", "--comment="]
SPECS = ["0", "1", "9", "-", ",", ":", "%", "99999999", " ", "x", "4000000", "0-"]


def test_random_command_lines_fail_only_cleanly():
    rng = random.Random(20240611)
    for _ in range(2000):
        argv = [rng.choice(WORDS) + rng.choice(["", "", "", "=", "=v", "x"])
                for _ in range(rng.randint(0, 6))]
        try:
            call = parse_sbatch_argv(argv)
        except SbatchArgumentError:
            continue
        assert call.script is not None or call.wrap is not None
        log_spec(call.options, call.script, ".")


def test_random_directives_and_array_specs_fail_only_cleanly():
    rng = random.Random(7)
    for _ in range(2000):
        text = "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 12)))
        try:
            script_directives(text, "job.sh")
        except SbatchArgumentError:
            pass
        spec = "".join(rng.choice(SPECS) for _ in range(rng.randint(0, 6)))
        try:
            tasks = parse_array_spec(spec, limit=rng.choice([None, 1001]))
        except SbatchArgumentError:
            continue
        assert tasks == sorted(set(tasks)) and tasks[-1] < ABSOLUTE_MAX_ARRAY_SIZE
        pattern = "".join(rng.choice(["%", "a", "5", "\\", "j", "%%", "x"]) for _ in range(6))
        expand_log_pattern(pattern, job_id="1", array_job_id=None, task_id=None,
                           job_name="n", user="u")
