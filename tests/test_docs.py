import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_generated_from_the_current_commands():
    proc = subprocess.run([sys.executable, str(ROOT / "tools/gen-cli-docs"), "--check"])
    assert proc.returncode == 0, "docs/cli-reference.rst is stale: run tools/gen-cli-docs"
