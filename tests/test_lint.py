"""The code stays ruff- and mypy-clean: checked by the test command, so CI keeps it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    paths = [p for p in ("conformance", "tests", "scripts") if (ROOT / p).is_dir()]
    proc = subprocess.run([BIN / "ruff", "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean() -> None:
    paths = [p for p in ("conformance", "tests", "scripts") if (ROOT / p).is_dir()]
    proc = subprocess.run([BIN / "ruff", "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean() -> None:
    proc = subprocess.run([BIN / "mypy", "conformance"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_core_is_mypy_strict_clean() -> None:
    proc = subprocess.run([BIN / "mypy", "--strict", "conformance/core"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_benchmark_script_still_imports() -> None:
    """scripts/benchmark.py is not run by the tests (it needs minutes and root): at least its imports and
    command line must follow the package as it moves."""
    proc = subprocess.run([sys.executable, "scripts/benchmark.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
