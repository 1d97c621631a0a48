"""End to end against the embedded Linux target: real namespaces, real kernel.

Needs root; skipped with the reason otherwise. Each test checks that nothing it
made (namespaces, veths) is left behind, also when the run fails or is
interrupted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
SELFTEST = ROOT / "tests" / "cases" / "selftest"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="needs iproute2 (bash .ci/setup installs it)"),
]


def conformance(*args: str, timeout: float = 400, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kw,  # type: ignore[call-overload]
    )


def our_leftovers() -> list[str]:
    """Namespaces of finished runs (their PID is gone) and veths stranded in this namespace."""
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    names = []
    for line in ns.splitlines():
        name = line.split()[0]
        if name.startswith(("cfp-", "cft-")) and not Path(f"/proc/{name[4:].split('-')[0]}").exists():
            names.append(name)
    names += [line.split(": ")[1].split("@")[0] for line in links.splitlines() if ": cf" in line]
    return names


def running_namespaces(pid: int) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in ns.splitlines() if line.startswith(f"cft-{pid}-")]


def junit_cases(junit: Path) -> dict[str, ET.Element]:
    tree = ET.parse(junit)
    return {tc.attrib["name"]: tc for tc in tree.iter("testcase")}


@pytest.fixture(autouse=True)
def no_leftovers() -> object:
    before = set(our_leftovers())
    yield
    left = set(our_leftovers()) - before
    assert not left, f"the run left these behind: {sorted(left)}"


# The whole default suite is played once, from a wheel: tests/test_packaging.py.


def test_wrong_expectations_fail_with_a_clear_message(tmp_path: Path) -> None:
    proc = conformance("run", str(SELFTEST), "--reports", str(tmp_path), timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    cases = junit_cases(tmp_path / "junit.xml")
    wrong = cases["selftest-wrong-ack"].find("failure")
    assert wrong is not None
    text = wrong.attrib.get("message", "") + (wrong.text or "")
    assert "expected isn+2" in text and "observed isn+1" in text
    assert "RFC 9293 §3.10.7.2" in text
    early = cases["selftest-early-retransmission"].find("failure")
    assert early is not None
    etext = early.attrib.get("message", "") + (early.text or "")
    assert "early" in etext and "3.000 s" in etext
    state = cases["selftest-wrong-state"].find("failure")
    assert state is not None
    stext = state.attrib.get("message", "") + (state.text or "")
    assert "expected state FIN-WAIT-2, observed TIME-WAIT" in stext
    assert "white box: sock_diag" in stext and "after the previous event" in stext
    # the self-test that declares its failure passes
    assert cases["selftest-expect-failure"].find("failure") is None
    assert (tmp_path / "pcap" / "selftest-wrong-ack.pcap").exists()


def test_existing_namespace_is_used_and_kept(tmp_path: Path) -> None:
    name = f"cftest-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = conformance(
            "run",
            str(CASES / "handshake" / "synack-ack.yaml"),
            str(CASES / "closed"),
            "--target",
            f"netns:{name}",
            "--reports",
            str(tmp_path),
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"namespace {name}" in (tmp_path / "junit.xml").read_text()
        assert name in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = subprocess.run(["ip", "-n", name, "-o", "link"], capture_output=True, text=True).stdout
        names = [line.split(": ")[1].split("@")[0] for line in links.splitlines()]
        assert not [n for n in names if n.startswith("cf")], links  # names only: a MAC may hold "cf"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def test_missing_namespace_is_a_clear_error(tmp_path: Path) -> None:
    proc = conformance("run", str(CASES / "closed"), "--target", "netns:does-not-exist", "--reports", str(tmp_path))
    assert proc.returncode == 2
    assert "does-not-exist" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def signal_mid_run(case: Path, reports: Path, sig: int, settle: float) -> tuple[subprocess.Popen[str], str]:
    """Start a run, wait until its target namespace exists (and `settle` more), send `sig`;
    return the ended process and its stderr. Kills it (our own child) if it hangs."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", str(case), "--reports", str(reports)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not running_namespaces(proc.pid):
            time.sleep(0.05)
        made = bool(running_namespaces(proc.pid))
        time.sleep(settle)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert made or settle == 0, "the run never made its namespace"
    return proc, err


def test_interrupted_run_removes_everything(tmp_path: Path) -> None:
    proc, err = signal_mid_run(CASES / "handshake" / "synack-retransmit.yaml", tmp_path, signal.SIGINT, settle=1.0)
    assert proc.returncode == 2
    assert "interrupted" in err and "Traceback" not in err
    assert not running_namespaces(proc.pid)


def test_sigterm_also_cleans_up(tmp_path: Path) -> None:
    proc, _ = signal_mid_run(CASES / "closed" / "rst.yaml", tmp_path, signal.SIGTERM, settle=0.0)
    assert proc.returncode in (0, 2)


def test_malformed_case_is_rejected_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntitle: t\nrefs: [{id: X, doc: Y, level: MUST}]\nsteps:\n  - send: {flags: S, sqe: 1}\n")
    proc = conformance("run", str(bad), "--reports", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert f"{bad}:5" in proc.stderr and "sqe" in proc.stderr and "valid:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_root_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The venv's interpreter may not be reachable by an unprivileged user, so the
    # check is run in-process with the effective uid of one.
    from conformance.run import cli

    monkeypatch.setattr(os, "geteuid", lambda: 65534)
    monkeypatch.chdir(ROOT)
    code = cli.main(["run", str(CASES / "closed"), "--reports", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs root" in err and "CAP_NET_ADMIN" in err and "sudo" in err


def test_profile_decides_the_outcome_of_the_same_deviation(tmp_path: Path) -> None:
    """Linux's 200 ms RTO floor: a pass under linux, a SHOULD warning under rfc, a failure with --strict."""
    case = str(CASES / "data" / "retransmit-backoff.yaml")
    linux = conformance("run", case, "--reports", str(tmp_path / "linux"), timeout=120)
    assert linux.returncode == 0, linux.stdout + linux.stderr
    rfc = conformance("run", case, "--profile", "rfc", "--reports", str(tmp_path / "rfc"), timeout=120)
    assert rfc.returncode == 0, rfc.stdout + rfc.stderr
    assert "WARN" in rfc.stdout and "RFC 6298 §2.4" in rfc.stdout
    tc = junit_cases(tmp_path / "rfc" / "junit.xml")["data-retransmit-backoff"]
    assert tc.find("failure") is None and tc.find("skipped") is None
    props = {p.attrib["name"]: p.attrib["value"] for p in tc.iter("property")}
    assert props["warnings"] == "1" and props["profile"] == "rfc" and "SHOULD" in props["warning:1"]
    assert "WARNING (does not fail the case)" in (tc.findtext("system-out") or "")
    strict = conformance(
        "run", case, "--profile", "rfc", "--strict", "--reports", str(tmp_path / "strict"), timeout=120
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr


def test_profiles_are_listed_and_a_bad_one_is_a_usage_error(tmp_path: Path) -> None:
    listed = conformance("profiles", timeout=60)
    assert listed.returncode == 0
    for name in ("rfc", "linux", "freebsd", "lwip", "windows"):
        assert f"{name}:" in listed.stdout
    bad = conformance("run", str(CASES / "closed"), "--profile", "bsd-ish", "--reports", str(tmp_path), timeout=60)
    assert bad.returncode == 2 and "no such profile" in bad.stderr and "Traceback" not in bad.stderr
