"""The tool travels with its suite: a wheel, installed in a fresh venv, lists and plays the default suite anywhere."""

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


def _checked_default_run(junit: Path, shipped: set[str]) -> None:
    """Every shipped case over IPv4 and IPv6, none failed, each naming its references; the full default schedule
    of synack-retransmit took the target's own sysctl, the CI copy its own count."""
    from .test_integration import junit_cases

    cases = junit_cases(junit)
    assert set(cases) == shipped | {f"{i}.ipv6" for i in shipped}
    for name, tc in cases.items():
        assert tc.find("failure") is None and tc.find("error") is None, name
        assert any(p.attrib["name"].startswith("ref:") for p in tc.iter("property")), name
    synack = cases["synack-retransmit"]
    assert "target sysctl net.ipv4.tcp_synack_retries" in " ".join(p.attrib["value"] for p in synack.iter("property"))
    assert "5 retransmissions (tcp_synack_retries)" in (synack.findtext("system-out") or "")
    ci = cases["synack-retransmit-ci"]
    assert "2 retransmissions (tcp_synack_retries)" in (ci.findtext("system-out") or "")


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: `conformance run` makes network namespaces")
def test_a_wheel_in_a_fresh_venv_plays_the_default_suite_from_root(tmp_path: Path) -> None:
    """The issue's "done": from a wheel, in a fresh venv, from `/`, `conformance run` plays the whole default suite
    against the embedded target and passes. The only test that plays the whole default suite."""
    from conformance.core.loader import discover

    from .test_integration import our_leftovers

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
    assert version.returncode == 0 and version.stdout.startswith("conformance "), version.stderr
    listed = subprocess.run([tool, "list", "--format", "json"], capture_output=True, text=True, cwd="/", timeout=60)
    assert listed.returncode == 0, listed.stderr
    shipped = {c.id for c in discover([ROOT / "cases"])}
    assert {c["id"] for c in json.loads(listed.stdout)} == shipped

    before = set(our_leftovers())
    reports = tmp_path / "reports"
    played = subprocess.run(
        [tool, "run", "--seed", "7", "--reports", str(reports)], capture_output=True, text=True, cwd="/", timeout=400
    )
    assert played.returncode == 0, played.stdout + played.stderr
    assert "from the suite shipped with the tool" in played.stdout and "seed 7" in played.stdout
    assert not set(our_leftovers()) - before, "the run left namespaces or veths behind"
    played_ids = {c.id for c in discover([ROOT / "cases"]) if "long" not in c.tags}  # long ones play with --long
    _checked_default_run(reports / "junit.xml", played_ids)
    doc = json.loads((reports / "results.json").read_text())
    assert doc["seed"] == 7 and {c["status"] for c in doc["cases"]} <= {"passed", "warning", "skipped"}
    assert (reports / "pcap" / "synack-ack.pcap").stat().st_size > 0

    explained = subprocess.run([tool, "explain", "closed-syn"], capture_output=True, text=True, cwd="/", timeout=60)
    assert explained.returncode == 0 and "RFC text not available" not in explained.stdout, explained.stderr
