"""End to end against a "remote" host two hops away, all inside namespaces of the test.

    prober ns                router ns                          host ns
    prb0 198.18.1.2/24 ─── rtr0 198.18.1.1 | rtr1 198.18.2.1 ─── hst0 198.18.2.2/24
         2001:2:0:1::2/64      2001:2:0:1::1 | 2001:2:0:2::1          2001:2:0:2::2/64
    (the CLI runs here:      (forwarding on)                     conformance.inside.services
     ip netns exec prober)                                       listening on 7000 (both families)

The tool runs inside the prober namespace (``ip netns exec``), so nothing touches
the machine's root namespace; every namespace is removed in a finally (the Lab).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.run.session import PORT_WINDOW

from .lab import ROOT, Lab, missing_tools, nft_tables, remote_lab, run
from .tool_runs import CASES, junit_cases, outcome, play_in, properties, skip_message, tool_command, wait_until

LISTEN, BANNER = 7000, 7001
HOST, HOST6 = "198.18.2.2", "2001:2:0:2::2"
PLAYED = ["closed-syn", "closed-ack", "closed-rst", "closed-synfin-data", "synack-ack", "data-ack-seq-plus-len"]

_skip = missing_tools("ip", "nft", "ethtool")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture
def remote() -> Iterator[dict[str, str]]:
    with Lab() as lab:
        yield remote_lab(lab, LISTEN, BANNER)


def mac_of(ns: str, ifname: str) -> str:
    return run("ip", "-n", ns, "-br", "link", "show", ifname).stdout.split()[2]


def test_remote_host_two_hops_away(remote: dict[str, str], tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    prober = remote["prober"]
    cases = [
        "closed",
        "handshake/synack-ack.yaml",
        "data/ack-seq-plus-len.yaml",  # data after the handshake: fails if our kernel resets it
        "data/retransmit-backoff.yaml",  # needs the banner service
        "handshake/synack-retransmit-ci.yaml",  # sets a sysctl
    ]
    proc = play_in(prober, f"{HOST},[{HOST6}]:{LISTEN}", cases, tmp_path, "--iface", remote["iface"], "--ip", "both")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in PLAYED:
        assert not outcome(junit[name]), name
        assert not outcome(junit[f"{name}.ipv6"]), f"{name}.ipv6"  # played over IPv6, and passed
    for suffix in ("", ".ipv6"):
        assert "'banner' service" in skip_message(junit[f"data-retransmit-backoff{suffix}"])
        assert "tcp_synack_retries=2" in skip_message(junit[f"synack-retransmit-ci{suffix}"])
    assert "4 skipped" in proc.stdout

    router_mac = mac_of(remote["router"], "rtr0")
    props = properties(junit["synack-ack"])
    assert f"next hop 198.18.1.1 at {router_mac}" in props["target"]
    assert f"next hop 2001:2:0:1::1 at {router_mac}" in props["target"]  # asked by Neighbor Discovery
    assert "documented defaults" in props["target"]
    assert props["rto_initial"].endswith("(profile rfc)")  # a remote stack is judged by the standards by default
    assert props["profile"] == "rfc"

    # on the wire: our SYN went to the router's MAC, from our address and a port of the run's window
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.pcap"))
    syn, synack = frames[0], frames[1]
    assert syn[Ether].dst == router_mac and syn[IP].src == "198.18.1.2" and syn[IP].dst == HOST
    assert 20000 <= syn[TCP].sport < 40000 + PORT_WINDOW  # a window from a base in 20000-40000
    assert str(synack[TCP].flags) == "SA" and synack[IP].src == HOST
    # and over IPv6, the same path: the frames of the .ipv6 copy are IPv6 frames, both ways
    frames = rdpcap(str(tmp_path / "pcap" / "synack-ack.ipv6.pcap"))
    assert frames and all(IPv6 in f and IP not in f for f in frames)
    syn, synack = frames[0], frames[1]
    assert syn[Ether].dst == router_mac and (syn[IPv6].src, syn[IPv6].dst) == ("2001:2:0:1::2", HOST6)
    assert str(synack[TCP].flags) == "SA" and synack[IPv6].src == HOST6 and synack[TCP].dport == syn[TCP].sport

    assert "conformance" not in nft_tables(prober)


def test_remote_host_over_ipv6_only(remote: dict[str, str], tmp_path: Path) -> None:
    """HOST given as IPv6 alone: the IPv4 copies are skipped with the reason, the IPv6 ones play. Without the
    table's IPv6 rule the prober's kernel resets the host's half-open connections: data-ack-seq-plus-len, which
    sends data after the handshake, then fails."""
    prober = remote["prober"]
    cases = ["closed/syn.yaml", "handshake/synack-ack.yaml", "data/ack-seq-plus-len.yaml"]
    proc = play_in(prober, f"[{HOST6}]:{LISTEN}", cases, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in ("closed-syn", "synack-ack", "data-ack-seq-plus-len"):
        assert not outcome(junit[f"{name}.ipv6"]), name
        assert skip_message(junit[name]) == "this target has no IPv4 address"
    assert "conformance" not in nft_tables(prober)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_removes_its_nft_table(remote: dict[str, str], tmp_path: Path, signum: int) -> None:
    prober = remote["prober"]
    proc = subprocess.Popen(
        tool_command(
            prober,
            "run",
            "--target",
            f"{HOST}:{LISTEN}",
            str(CASES / "handshake" / "synack-retransmit.yaml"),  # 63 s: interrupted long before
            "--reports",
            str(tmp_path),
        ),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # `ip netns exec` execs the command: the Popen's PID is the tool's, which names the table
        table = f"conformance_{proc.pid}"
        wait_until(lambda: table in nft_tables(prober) or proc.poll() is not None, step=0.1)
        assert table in nft_tables(prober), "the run never installed its table"
        time.sleep(1.0)  # mid-run: the case is waiting on the SYN-ACK retransmissions
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()  # ours, by its handle
            proc.wait()
    assert proc.returncode == 2, err
    assert "interrupted" in err and "Traceback" not in err
    assert "conformance" not in nft_tables(prober)


def test_unreachable_target_fails_within_seconds(remote: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    proc = play_in(
        remote["prober"], "198.18.1.99:7000", ["closed/syn.yaml"], tmp_path, "--iface", remote["iface"], timeout=30
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert "no ARP answer from 198.18.1.99 on prb0 within 3 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert elapsed < 10, elapsed
    assert "conformance" not in nft_tables(remote["prober"])


def test_silent_ipv6_neighbour_fails_within_seconds(remote: dict[str, str], tmp_path: Path) -> None:
    started = time.monotonic()
    proc = play_in(remote["prober"], "[2001:2:0:1::99]:7000", ["closed/syn.yaml"], tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "no ND answer from 2001:2:0:1::99 on prb0 within 3 s" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert time.monotonic() - started < 10
    assert "conformance" not in nft_tables(remote["prober"])


def test_address_outside_the_benchmark_range_is_refused(remote: dict[str, str], tmp_path: Path) -> None:
    proc = play_in(remote["prober"], "192.0.2.1:80", ["closed"], tmp_path)
    assert proc.returncode == 2
    assert "192.0.2.1 is outside 198.18.0.0/15: refused" in proc.stderr
    proc = play_in(remote["prober"], "[2001:db8::1]:80", ["closed"], tmp_path)
    assert proc.returncode == 2
    assert "2001:db8::1 is outside 2001:2::/48: refused" in proc.stderr


def test_missing_interface_is_a_clear_error(remote: dict[str, str], tmp_path: Path) -> None:
    proc = play_in(remote["prober"], f"{HOST}:{LISTEN}", ["closed/syn.yaml"], tmp_path, "--iface", "nope0")
    assert proc.returncode == 2
    assert "no interface 'nope0'" in proc.stderr and "Traceback" not in proc.stderr


def test_cleanup_removes_tables_of_dead_runs_only(remote: dict[str, str], tmp_path: Path) -> None:
    """The nftables part of `conformance cleanup` (tested offline with the namespaces), run in the prober namespace
    with records of its own: only a table a dead run recorded goes, not one merely named like ours."""
    import json

    prober = remote["prober"]
    gone = subprocess.Popen(["true"])
    gone.wait()
    recorded, unrecorded = f"conformance_{gone.pid}", f"conformance_{gone.pid + 1}"
    for name in (recorded, unrecorded):
        run("ip", "netns", "exec", prober, "nft", "add", "table", "inet", name)
    made = {"pid": gone.pid, "start": 1, "made": [["nft", f"inet {recorded}"]]}
    (tmp_path / f"{gone.pid}-1").write_text(json.dumps(made))
    code = (
        "import sys, pathlib; from conformance.targets import netns; "
        "done = netns.cleanup(pathlib.Path(sys.argv[1])); print(done.removed, done.left)"
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", prober, sys.executable, "-c", code, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"nft table inet {recorded}'" in proc.stdout
    assert f"nft table inet {unrecorded}: not ours, left in place" in proc.stdout
    tables = nft_tables(prober)
    assert recorded not in tables and unrecorded in tables


AGENT_PORT = 7700


def test_connections_the_remote_host_opens_to_us_are_not_reset(remote: dict[str, str], tmp_path: Path) -> None:
    """The host's application connects to the prober (client cases, agent over TCP): the SYN reaches this
    namespace's kernel, which has the address and no listener on the port, and would answer it with a RST that
    ends the dialogue. The run's table drops those RSTs too, and only for the run."""
    token = tmp_path / "token"
    token.write_text("a-shared-secret-of-the-test\n")
    token.chmod(0o600)
    agent = [sys.executable, "-m", "conformance.inside.agent", "--listen", f"{HOST}:{AGENT_PORT}"]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", remote["host"], *agent, "--token-file", str(token), "--peer", "198.18.1.2"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert proc.stderr is not None and "listening on" in proc.stderr.readline()
        options = ["--agent", f"tcp:{HOST}:{AGENT_PORT}", "--agent-token", str(token)]
        cases = ["client/simultaneous-open.yaml", "client/synack-wrong-ack.yaml"]
        played = play_in(remote["prober"], f"{HOST},[{HOST6}]:{LISTEN}", cases, tmp_path, *options, "--ip", "both")
    finally:
        proc.kill()  # ours, by its handle
        proc.wait()
    assert played.returncode == 0, played.stdout + played.stderr
    junit = junit_cases(tmp_path / "junit.xml")
    for name in ("client-simultaneous-open", "client-synack-wrong-ack"):
        for suffix in ("", ".ipv6"):  # played over both families, and passed
            assert not outcome(junit[name + suffix]), (name + suffix, played.stdout)
    assert "conformance" not in nft_tables(remote["prober"])
