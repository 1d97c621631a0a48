"""PyTCP, a user-space TCP/IP stack in pure Python, played the whole shipped suite through ``link:``.

In a namespace of the test's own, ``ip tuntap add`` makes ``tap1``; PyTCP (``pip install pytcp==2.7.6``, in the
``test`` extra) runs as a child process of the test that holds the device's descriptor (198.18.3.2/24 and
2001:2:0:3::2/64, listeners on 7000 through its BSD-like ``pytcp.lib.socket`` that read until the peer closes).
The tool runs in that namespace with ``--target link:tap1:...``: its packet socket is on the interface side of
the device. PyTCP takes about 8 s to probe its addresses before it answers; the whole suite then takes about
20 s (22 dialogues of 56 play: the others need the agent, the banner service or sysctls). Its deviations are
real: ``tests/baselines/pytcp.yaml`` lists them, and the run passes with it. The child is ended by its PID and
the namespace removed in a finally.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .lab import ROOT, Lab, missing_tools
from .tool_runs import junit_cases, play_in, skip_message, status

TAP, ADDR, ADDR6, LISTEN = "tap1", "198.18.3.2", "2001:2:0:3::2", 7000
TARGET = f"link:{TAP}:{ADDR},[{ADDR6}]:{LISTEN}"
BASELINE = ROOT / "tests" / "baselines" / "pytcp.yaml"

_skip = missing_tools("ip")
if _skip is None and importlib.util.find_spec("pytcp") is None:
    _skip = "needs PyTCP (pip install pytcp==2.7.6, in the test extra)"
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]

#: The child: PyTCP on tap1, a listener per family that reads until the peer closes; READY once it answers.
STACK = f"""
import os, sys, threading
from pytcp import config
config.LOG_CHANEL = set()
from pytcp import TcpIpStack
from pytcp.lib import socket

stack = TcpIpStack(interface="{TAP}", ip4_address="{ADDR}/24", ip6_address="{ADDR6}/64")
stack.start()  # returns once its addresses are probed (about 8 s)

def serve(conn):
    try:
        while conn.recv():
            pass
    except Exception:
        pass
    conn.close()

def listen(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((addr, {LISTEN}))
    s.listen()
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

for family, addr in ((socket.AF_INET4, "{ADDR}"), (socket.AF_INET6, "{ADDR6}")):
    threading.Thread(target=listen, args=(family, addr), daemon=True).start()
print("READY", flush=True)
sys.stdin.read()  # until the test closes our stdin
os._exit(0)
"""


@pytest.fixture(scope="module")
def pytcp_ns() -> Iterator[str]:
    with Lab() as lab:
        ns = lab.netns("pytcp")
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.ip(ns, "link", "set", TAP, "up")  # no address: the link target's own interface side
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c", STACK],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            sel = selectors.DefaultSelector()
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(30) and proc.stdout.readline().strip()
            assert ready == "READY", f"PyTCP did not start: {ready!r} {proc.poll()}"
            yield ns
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)  # ours, by its PID (ip netns exec execs python)
            proc.wait(timeout=10)


def test_pytcp_plays_the_suite_and_passes_with_its_baseline(pytcp_ns: str, tmp_path: Path) -> None:
    proc = play_in(pytcp_ns, TARGET, [], tmp_path, "--profile", "pytcp", "--baseline", str(BASELINE), timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    statuses = {name: status(tc) for name, tc in junit.items()}
    known = {e["case"] for e in yaml.safe_load(BASELINE.read_text())}
    for name in known:  # a known deviation is a skip with its reason, never a pass
        assert statuses[name] == "skipped" and skip_message(junit[name]).startswith("known deviation"), name
    assert statuses["synack-ack"] == statuses["synack-ack.ipv6"] == "passed"
    assert f"baseline {BASELINE}: {len(known)} known deviation(s) seen, 0 fixed" in proc.stdout


def test_a_deviation_left_out_of_the_baseline_fails_the_run(pytcp_ns: str, tmp_path: Path) -> None:
    entries = yaml.safe_load(BASELINE.read_text())
    dropped = next(e for e in entries if e["case"] == "closed-ack")
    smaller = tmp_path / "baseline.yaml"
    smaller.write_text(yaml.safe_dump([e for e in entries if e is not dropped]))
    cases = ["closed/ack.yaml", "closed/rst.yaml"]
    proc = play_in(pytcp_ns, TARGET, cases, tmp_path / "r", "--profile", "pytcp", "--baseline", str(smaller))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"FAIL  closed-ack: line 11: {dropped['check']}" in proc.stdout  # named: case and check
    junit = junit_cases(tmp_path / "r" / "junit.xml")
    assert status(junit["closed-ack"]) == "failure" and status(junit["closed-ack.ipv6"]) == "skipped"
