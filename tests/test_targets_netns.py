"""Integration (root): a namespace of the user's (``netns:NAME``) keeps its sysctls and its services, a namespace
another run made is refused, and ``conformance cleanup`` removes only what dead runs recorded (issue 11).

Every namespace, record and process a test makes is removed in a ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.targets import records

from .lab import ROOT, Lab, missing_tools, run
from .tool_runs import CASES, junit_cases, skip_message, status, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.skipif(bool(missing_tools("ip", "ethtool")), reason="root")]

DEAD = 4194304 + 1  # above the kernel's largest PID: never a live process
#: The cases: two plain ones (the listen service; the agent's listener), two that set sysctls.
PLAIN = ["handshake/synack-ack.yaml", "close/fin-ack-together.yaml"]
SETS_SYSCTLS = {"close/fin-wait-2-timeout.yaml": "tcp_fin_timeout=3", "queues/accept-queue-abort.yaml": "tcp_abort"}


def tool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "conformance", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def tcp_sysctls(ns: str) -> dict[str, str]:
    """Every readable net.ipv4.tcp_* sysctl of namespace `ns`."""
    out = run("ip", "netns", "exec", ns, "sh", "-c", "grep -H . /proc/sys/net/ipv4/tcp_* 2>/dev/null", check=False)
    return dict(line.rsplit("/", 1)[1].split(":", 1) for line in out.stdout.splitlines())


@pytest.fixture
def user_ns() -> Iterator[tuple[Lab, str]]:
    """A namespace of the user's: lo down, a service of its own on ports 7000 and 7001 of its own address."""
    with Lab() as lab:
        name = f"cfuser-{os.getpid()}"
        run("ip", "netns", "add", name)
        lab.namespaces.append(name)
        lab.veth(name, "mine0", name, "mine1")
        lab.address(name, "mine0", "198.18.200.1/24")
        lab.services(name, "198.18.200.1", 7000, 7001)
        yield lab, name


def test_a_users_namespace_keeps_its_sysctls_and_services(user_ns: tuple[Lab, str], tmp_path: Path) -> None:
    lab, name = user_ns
    before = tcp_sysctls(name)
    assert before["tcp_fin_timeout"] != "3"
    cases = [str(CASES / c) for c in [*PLAIN, *SETS_SYSCTLS]]
    proc = tool("run", "--target", f"netns:{name}", *cases, "--reports", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for case in SETS_SYSCTLS:
        for suffix in ("", ".ipv6"):
            tc = junit[Path(case).stem + suffix]
            assert status(tc) == "skipped"
            assert f"namespace {name} is yours and keeps its sysctls" in skip_message(tc)
            assert SETS_SYSCTLS[case] in skip_message(tc)
    for case in PLAIN:
        assert status(junit[Path(case).stem]) == "passed", case
    assert tcp_sysctls(name) == before
    links = run("ip", "-n", name, "-o", "link").stdout
    names = [line.split(": ")[1].split("@")[0] for line in links.splitlines()]
    assert not [n for n in names if n.startswith("cf")], links  # our veth end gone (a MAC may hold "cf")
    assert "lo: <LOOPBACK>" in links  # lo down as we found it
    # The user's own service still answers on its address (the tool listened on the target's only); local
    # traffic goes through lo.
    lab.ip(name, "link", "set", "lo", "up")
    ask = "import socket; print(socket.create_connection(('198.18.200.1', 7001), 5).recv(100))"
    assert "conformance banner" in run("ip", "netns", "exec", name, sys.executable, "-c", ask).stdout


def test_a_namespace_of_a_live_run_is_refused(tmp_path: Path) -> None:
    case = CASES / "handshake" / "synack-retransmit.yaml"  # long enough
    other = subprocess.Popen(
        [sys.executable, "-m", "conformance", "run", str(case), "--reports", str(tmp_path / "other")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        theirs = f"cft-{other.pid}-0"
        made = wait_until(lambda: theirs in run("ip", "netns", "list").stdout)
        assert made, "the other run never made its namespace"
        before = tcp_sysctls(theirs)
        proc = tool("run", "--target", f"netns:{theirs}", str(CASES / "closed"), "--reports", str(tmp_path / "r"))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"belongs to the conformance run of process {other.pid}, which is still running" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert tcp_sysctls(theirs) == before
    finally:
        if other.poll() is None:
            other.send_signal(signal.SIGINT)  # our own child: it removes its namespaces
            try:
                other.wait(timeout=30)
            except subprocess.TimeoutExpired:
                other.kill()
                other.wait()
    assert theirs not in run("ip", "netns", "list").stdout


def test_cleanup_removes_only_what_dead_runs_recorded() -> None:
    mine = ["cft-99999-mylab", "cfd-31999-keepme"]  # a user's, named like ours
    leftover = f"cft-{DEAD}-0"
    record = records.RECORD_DIR / f"{DEAD}-1"
    made: list[str] = []
    try:
        for name in [*mine, leftover]:
            run("ip", "netns", "add", name)
            made.append(name)
        records.RECORD_DIR.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"pid": DEAD, "start": 1, "made": [["netns", leftover]]}))
        proc = tool("cleanup")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert leftover in proc.stdout.splitlines()[0]
        for name in mine:
            assert f"{name}: not ours, left in place" in proc.stdout
        listed = run("ip", "netns", "list").stdout
        assert all(name in listed for name in mine) and leftover not in listed
        assert not record.exists()
    finally:
        record.unlink(missing_ok=True)
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)


def test_a_kernel_default_namespace_answers_a_broadcast_source_and_fails_must_63(tmp_path: Path) -> None:
    """The embedded target filters reverse paths as distributions ship it (rp_filter=2); a namespace left at the
    kernel's 0 answers a SYN from the subnet's directed broadcast, and the MUST-63 case says so."""
    case = str(CASES / "ip/syn-from-invalid-source.yaml")
    with Lab() as lab:
        name = f"cfrp-{os.getpid()}"
        run("ip", "netns", "add", name)
        lab.namespaces.append(name)
        assert run("ip", "netns", "exec", name, "cat", "/proc/sys/net/ipv4/conf/all/rp_filter").stdout.strip() == "0"
        theirs = tool("run", "--target", f"netns:{name}", "--ip", "4", case, "--reports", str(tmp_path / "theirs"))
    assert theirs.returncode == 1, theirs.stdout + theirs.stderr
    assert "MUST-63" in theirs.stdout and "line 23" in theirs.stdout
    ours = tool("run", "--ip", "4", case, "--reports", str(tmp_path / "ours"))
    assert ours.returncode == 0, ours.stdout + ours.stderr
