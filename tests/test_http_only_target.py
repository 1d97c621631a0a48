"""A remote host with nothing but a web server (``python3 -m http.server``) plays the close and data cases black
box, through ``--service http=PORT``; the rest are skipped with the reason, and ``list --target`` says so first.

    prober ns                         host ns
    prb0 198.18.4.1/24 ───veth─── hst0 198.18.4.2/24, python3 -m http.server 8080 (nothing else)

Everything is made in namespaces of the test's own and removed in a finally; the server is ended by its PID.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import Lab, missing_tools, run
from .tool_runs import junit_cases, outcome, play_in, skip_message, tool_in

HOST, PORT = "198.18.4.2", 8080
TARGET = f"{HOST}:{PORT}"
BLACK_BOX = [
    "active-close-http",
    "data-retransmit-backoff-http",
    "data-ack-seq-plus-len",
    "data-ack-ahead",
    "data-out-of-order",
    "data-rst-with-data",
]

_skip = missing_tools("ip", "nft", "ethtool", "ss")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture
def http_only(tmp_path: Path) -> Iterator[str]:
    """The prober's namespace, beside a host whose one service is Python's http.server."""
    with Lab() as lab:
        prober, host = lab.netns("hprober"), lab.netns("hhost")
        lab.veth(prober, "prb0", host, "hst0")
        lab.address(prober, "prb0", "198.18.4.1/24")
        lab.address(host, "hst0", f"{HOST}/24")
        run("ip", "netns", "exec", host, "ethtool", "-K", "hst0", "tx", "off")  # real checksums on the wire
        docroot = tmp_path / "www"
        docroot.mkdir()
        cmd = ["ip", "netns", "exec", host, sys.executable, "-m", "http.server", str(PORT), "--bind", HOST]
        server = subprocess.Popen(cmd, cwd=docroot, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while f":{PORT}" not in run("ip", "netns", "exec", host, "ss", "-Hltn").stdout:
                assert time.monotonic() < deadline and server.poll() is None, "http.server did not start"
                time.sleep(0.1)
            yield prober
        finally:
            server.terminate()  # ours, by its PID
            try:
                server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)


def test_list_says_what_an_http_only_host_plays(http_only: str) -> None:
    proc = tool_in(http_only, "list", "--target", TARGET, "--service", f"http={PORT}", "--ip", "4", timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("\t", 2)[1::-1] for line in proc.stdout.splitlines())
    for case in BLACK_BOX:
        assert lines[case] == "plays", case
    assert lines["passive-close-echo"] == "skipped"
    assert "cases play on --target" in proc.stderr


def test_http_only_host_plays_the_close_and_data_cases_black_box(http_only: str, tmp_path: Path) -> None:
    options = ("--service", f"http={PORT}", "--ip", "4", "-k", "not slow", "--seed", "13")
    proc = play_in(http_only, TARGET, ["close", "data"], tmp_path / "reports", *options, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "reports" / "junit.xml")
    for case in BLACK_BOX:
        assert not outcome(junit[case]), (case, proc.stdout)
    assert "'echo' service" in skip_message(junit["passive-close-echo"])
    assert "'banner' service" in skip_message(junit["data-retransmit-backoff"])
    assert "needs the target agent" in skip_message(junit["passive-close"])
    played = sorted(name for name, tc in junit.items() if not outcome(tc))
    assert played == sorted(BLACK_BOX), played
