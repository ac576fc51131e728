"""Every option ``sbatch`` accepts, Slurm 22.05 through 24.11.

Taken from ``common_options[]`` in Slurm's ``src/common/slurm_opt.c`` at every
release tag from slurm-22-05-0-1 to slurm-24-11-7-1: the entries whose setter
applies to sbatch (``set_func`` or ``set_func_sbatch``), with their
``has_arg`` and short letter. An option any of those releases accepts is
accepted here; the notes say which releases lack it, so that sbatch itself,
not this table, refuses it on an older or newer cluster. Site plugins (SPANK)
can add options; those are unknown here.
"""
from __future__ import annotations

from typing import NamedTuple

REQUIRED = "required"  # --opt=v, --opt v, -Xv, -X v
OPTIONAL = "optional"  # only --opt=v or -Xv; a separate word is not its value
NONE = "none"  # a flag: --opt=v is an error


class OptionSpec(NamedTuple):
    name: str  # the long name, the key of SbatchCall.options
    short: str | None
    arity: str


_ROWS = (
    ("account", "A", REQUIRED),
    ("acctg-freq", None, REQUIRED),
    ("array", "a", REQUIRED),
    ("autocomplete", None, REQUIRED),  # since 23.02
    ("batch", None, REQUIRED),
    ("bb", None, REQUIRED),
    ("bbf", None, REQUIRED),
    ("begin", "b", REQUIRED),
    ("chdir", "D", REQUIRED),
    ("cluster-constraint", None, REQUIRED),
    ("clusters", "M", REQUIRED),
    ("comment", None, REQUIRED),
    ("constraint", "C", REQUIRED),
    ("container", None, REQUIRED),
    ("container-id", None, REQUIRED),  # since 23.02
    ("context", None, REQUIRED),
    ("contiguous", None, NONE),
    ("core-spec", "S", REQUIRED),
    ("cores-per-socket", None, REQUIRED),
    ("cpu-freq", None, REQUIRED),
    ("cpus-per-gpu", None, REQUIRED),
    ("cpus-per-task", "c", REQUIRED),
    ("deadline", None, REQUIRED),
    ("delay-boot", None, REQUIRED),
    ("dependency", "d", REQUIRED),
    ("distribution", "m", REQUIRED),
    ("error", "e", REQUIRED),
    ("exclude", "x", REQUIRED),
    ("exclusive", None, OPTIONAL),
    ("export", None, REQUIRED),  # --help shows [=names], but the value is required
    ("export-file", None, REQUIRED),  # not in 23.11 (removed, then restored in 24.05)
    ("extra", None, REQUIRED),  # since 23.02
    ("extra-node-info", "B", REQUIRED),
    ("get-user-env", None, OPTIONAL),
    ("gid", None, REQUIRED),
    ("gpu-bind", None, REQUIRED),
    ("gpu-freq", None, REQUIRED),
    ("gpus", "G", REQUIRED),
    ("gpus-per-node", None, REQUIRED),
    ("gpus-per-socket", None, REQUIRED),
    ("gpus-per-task", None, REQUIRED),
    ("gres", None, REQUIRED),
    ("gres-flags", None, REQUIRED),
    ("help", "h", NONE),
    ("hint", None, REQUIRED),
    ("hold", "H", NONE),
    ("ignore-pbs", None, NONE),
    ("input", "i", REQUIRED),
    ("job-name", "J", REQUIRED),
    ("kill-on-invalid-dep", None, REQUIRED),
    ("licenses", "L", REQUIRED),
    ("mail-type", None, REQUIRED),
    ("mail-user", None, REQUIRED),
    ("mcs-label", None, REQUIRED),
    ("mem", None, REQUIRED),
    ("mem-bind", None, REQUIRED),
    ("mem-per-cpu", None, REQUIRED),
    ("mem-per-gpu", None, REQUIRED),
    ("mincpus", None, REQUIRED),
    ("network", None, REQUIRED),
    ("nice", None, OPTIONAL),
    ("no-kill", "k", OPTIONAL),
    ("no-requeue", None, NONE),
    ("nodefile", "F", REQUIRED),
    ("nodelist", "w", REQUIRED),
    ("nodes", "N", REQUIRED),
    ("ntasks", "n", REQUIRED),
    ("ntasks-per-core", None, REQUIRED),
    ("ntasks-per-gpu", None, REQUIRED),
    ("ntasks-per-node", None, REQUIRED),
    ("ntasks-per-socket", None, REQUIRED),
    ("ntasks-per-tres", None, REQUIRED),
    ("oom-kill-step", None, OPTIONAL),  # since 24.11
    ("open-mode", None, REQUIRED),
    ("output", "o", REQUIRED),
    ("overcommit", "O", NONE),
    ("oversubscribe", "s", NONE),
    ("parsable", None, NONE),
    ("partition", "p", REQUIRED),
    ("power", None, REQUIRED),  # until 23.11
    ("prefer", None, REQUIRED),
    ("priority", None, REQUIRED),
    ("profile", None, REQUIRED),
    ("propagate", None, OPTIONAL),
    ("qos", "q", REQUIRED),
    ("quiet", "Q", NONE),
    ("reboot", None, NONE),
    ("requeue", None, NONE),
    ("reservation", None, REQUIRED),
    ("resv-ports", None, OPTIONAL),  # since 24.05
    ("segment", None, REQUIRED),  # since 24.05
    ("signal", None, REQUIRED),
    ("sockets-per-node", None, REQUIRED),
    ("spread-job", None, NONE),
    ("stepmgr", None, NONE),  # since 24.05
    ("switches", None, REQUIRED),
    ("test-only", None, NONE),
    ("thread-spec", None, REQUIRED),
    ("threads-per-core", None, REQUIRED),
    ("time", "t", REQUIRED),
    ("time-min", None, REQUIRED),
    ("tmp", None, REQUIRED),
    ("tres-bind", None, REQUIRED),  # since 23.11
    ("tres-per-task", None, REQUIRED),  # since 23.02
    ("uid", None, REQUIRED),
    ("usage", None, NONE),
    ("use-min-nodes", None, NONE),
    ("verbose", "v", NONE),
    ("version", "V", NONE),
    ("wait", "W", NONE),
    ("wait-all-nodes", None, REQUIRED),
    ("wckey", None, REQUIRED),
    ("wrap", None, REQUIRED),  # --help shows [=command], but the value is required
)

# Second names of one option: parsed under the first name's key, so callers
# look up one key only.
_ALIASES = {"cluster": "clusters", "tasks-per-node": "ntasks-per-node"}

OPTIONS: dict[str, OptionSpec] = {row[0]: OptionSpec(*row) for row in _ROWS}
LONG: dict[str, OptionSpec] = {**OPTIONS, **{a: OPTIONS[n] for a, n in _ALIASES.items()}}
SHORT: dict[str, OptionSpec] = {s.short: s for s in OPTIONS.values() if s.short}

# sbatch reads these on its first pass over the command line only; in a
# script's #SBATCH lines they are accepted and then ignored.
COMMAND_LINE_ONLY = frozenset({"help", "quiet", "usage", "verbose", "version", "wrap"})

# srun and salloc options that sbatch refuses: named in the error message,
# because people copy them from srun lines.
OTHER_COMMANDS_LONG = frozenset({
    "accel-bind", "bcast", "bcast-exclude", "bell", "compress", "cpu-bind", "cpu_bind",
    "debugger-test", "disable-status", "epilog", "exact", "external-launcher",
    "het-group", "immediate", "interactive", "jobid", "kill-command",
    "kill-on-bad-exit", "label", "mpi", "msg-timeout", "multi-prog", "no-allocate",
    "no-bell", "no-shell", "overlap", "pack-group", "preserve-env", "prolog", "pty",
    "quit-on-interrupt", "relative", "send-libs", "slurmd-debug", "task-epilog",
    "task-prolog", "threads", "treewidth", "unbuffered", "whole", "x11",
})
OTHER_COMMANDS_SHORT = frozenset("EIKlrTuXZ")
