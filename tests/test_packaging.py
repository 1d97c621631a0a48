"""The tool travels with its suite: a wheel, installed in a fresh venv, lists and plays the shipped cases anywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: What the build needs: the project's metadata, the package and the top-level suite it maps in.
_SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "conformance", "cases")


def test_every_code_folder_is_a_package() -> None:
    """setup.py finds packages by their __init__.py: a folder of modules without one would miss the wheel."""
    folders = {p.parent for p in (ROOT / "conformance").rglob("*.py")}
    missing = sorted(str(f.relative_to(ROOT)) for f in folders if not (f / "__init__.py").is_file())
    assert not missing, f"add an __init__.py to: {', '.join(missing)}"


def test_the_command_line_finds_the_shipped_suite_anywhere(tmp_path: Path) -> None:
    from conformance.run.suite import case_source

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        source = case_source(None)
        assert source is not None and source.description.startswith("the suite shipped with the tool")
        (tmp_path / "cases").mkdir()
        local = case_source(None)
        assert local is not None and local.description.startswith("cases/ in the current folder")
        given = case_source(["x.yaml"])
        assert given is not None and given.paths == (Path("x.yaml"),)
    finally:
        os.chdir(here)


def _build_wheel(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in _SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", "-w", dist, src],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("conformance-*.whl")
    return wheel


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: `conformance run` makes a network namespace")
def test_a_wheel_in_a_fresh_venv_plays_the_shipped_suite_from_root(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "conformance/data/cases/closed/syn.yaml" in names
    assert "conformance/data/reference/rfc9293.txt" in names and "conformance/data/results.schema.json" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, wheel], check=True, timeout=600)
    tool = venv / "bin" / "conformance"

    version = subprocess.run([tool, "--version"], capture_output=True, text=True, cwd="/", timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("conformance ")
    listed = subprocess.run([tool, "list", "--format", "json"], capture_output=True, text=True, cwd="/", timeout=60)
    assert listed.returncode == 0, listed.stderr
    ids = {c["id"] for c in json.loads(listed.stdout)}
    assert {"closed-syn", "closed-ack", "closed-rst"} <= ids
    reports = tmp_path / "reports"
    run = [tool, "run", "-k", "closed and not rst", "--ip", "4", "--seed", "7", "--reports", str(reports)]
    played = subprocess.run(run, capture_output=True, text=True, cwd="/", timeout=300)
    assert played.returncode == 0, played.stdout + played.stderr
    assert "from the suite shipped with the tool" in played.stdout and "seed 7" in played.stdout
    doc = json.loads((reports / "results.json").read_text())
    assert doc["seed"] == 7 and {c["status"] for c in doc["cases"]} == {"passed"}
    explained = subprocess.run([tool, "explain", "closed-syn"], capture_output=True, text=True, cwd="/", timeout=60)
    assert explained.returncode == 0 and "RFC text not available" not in explained.stdout, explained.stderr
