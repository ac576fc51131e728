import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_cli_reference_is_generated_from_the_current_commands():
    proc = subprocess.run([sys.executable, str(ROOT / "tools/gen-cli-docs"), "--check"])
    assert proc.returncode == 0, "docs/cli-reference.rst is stale: run tools/gen-cli-docs"


def test_cli_reference_lists_every_command_of_the_suite():
    from datalad_slurmsweep import command_suite
    text = (ROOT / "docs" / "cli-reference.rst").read_text()
    for entry in command_suite[1]:
        assert f"\n{entry[2]}\n" in text, entry[2]
