"""End to end against a real docker container (``--target docker:NAME[:PORT]``).

A module fixture starts a docker daemon of the test's own: inside a network
namespace of the test (``cfdockh-PID``, so its bridge and veths live there and
nothing touches this machine's own interfaces), with ``--bip 198.19.0.1/16
--iptables=false --ip6tables=false`` and its data root, exec root, socket and
pid file in a temporary folder. It imports a one-binary image (Debian's static
busybox and a few symlinks: no Python in it, like a distroless image) and runs
containers of it; the tool runs in the daemon's namespace (``ip netns exec``),
as it would on a docker host. Everything (containers, networks, the image, the
daemon by its Popen handle, the namespace, the folder) is removed in finally
blocks. When no docker engine can start here, the tests are skipped with the
daemon's own error.
"""

from __future__ import annotations

import io
import os
import re
import selectors
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .lab import ROOT, Lab, missing_tools, run
from .tool_runs import CASES, junit_cases, play_in, properties, skip_message, status, tool_command, tool_in

BIP = "198.19.0.1/16"
LISTEN = 7000
PREFIX = f"cfconf-{os.getpid()}"
#: The container's server: accept and read (busybox nc runs the command per connection; -ll keeps listening).
DISCARD = ["/bin/busybox", "nc", "-ll", "-p", str(LISTEN), "-e", "/bin/sh", "-c", "cat >/dev/null"]
START_TIMEOUT = 60.0


def _busybox() -> str | None:
    path = shutil.which("busybox")
    if path is None:
        return None
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    return None if b"ld-linux" in head else path  # a dynamic busybox would need a libc in the image


_skip = missing_tools("ip", "nsenter", "dockerd", "docker", "tcpdump", "nft", "ethtool")
if _skip is None and _busybox() is None:
    _skip = "needs a static busybox for the test image (apt-get install busybox-static; bash .ci/setup installs it)"
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@dataclass
class DockerHost:
    ns: str
    env: dict[str, str]
    image: str
    folder: str

    def docker(self, *args: str, check: bool = True, stdin: bytes | None = None) -> str:
        proc = subprocess.run(["docker", *args], input=stdin, capture_output=True, env=self.env, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr.decode().strip()}")
        return proc.stdout.decode()

    def pid(self, name: str) -> int:
        return int(self.docker("inspect", "-f", "{{.State.Pid}}", name))

    def conformance(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return tool_in(self.ns, *args, timeout=timeout, env=self.env)

    def play(self, target: str, cases: list[str], reports: Path, *options: str) -> subprocess.CompletedProcess[str]:
        return play_in(self.ns, target, cases, reports, *options, timeout=180, env=self.env)


def _daemon_error(log: Path) -> str:
    """The daemon's reason for not starting, from its log."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("failed to start daemon") or "level=fatal" in line:
            return line
    return lines[-1] if lines else "(no output)"


def _image_tar(busybox: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder in ("bin", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in ("sh", "nc", "cat", "sleep"):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
    return buf.getvalue()


def _mounts_under(folder: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(folder)]


def _processes_using(folder: str) -> list[str]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if folder in cmd:
            out.append(f"{pid}: {cmd.strip()}")
    return out


@pytest.fixture(scope="module")
def dockerhost(request: pytest.FixtureRequest) -> Iterator[DockerHost]:
    bip = getattr(request.module, "DOCKER_BIP", BIP)  # a module importing this fixture may give docker0 another range
    folder = tempfile.mkdtemp(prefix="cfdock-", dir="/tmp")  # short: the socket path must fit in 108 bytes
    lab = Lab()
    daemon: subprocess.Popen[bytes] | None = None
    host: DockerHost | None = None
    try:
        ns = lab.netns("dockh", ipv6=True)  # IPv6 on, for the IPv6 network of one test; nothing leaves the namespace
        sock = f"{folder}/docker.sock"
        log = Path(folder) / "dockerd.log"
        env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
        # nsenter --net, not ip netns exec: the daemon needs this machine's /sys (cgroups), only its network is ours.
        cmd = ["nsenter", f"--net=/var/run/netns/{ns}", "dockerd", "--bip", bip, "--iptables=false"]
        cmd += ["--ip6tables=false", "--ip-masq=false", "--data-root", f"{folder}/data", "--exec-root"]
        cmd += [f"{folder}/exec", "-H", f"unix://{sock}", "--pidfile", f"{folder}/dockerd.pid"]
        with open(log, "wb") as out:
            daemon = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        end = time.monotonic() + START_TIMEOUT
        while True:
            if daemon.poll() is not None:
                pytest.skip(f"no docker engine can start on this machine: {_daemon_error(log)}")
            probe = subprocess.run(["docker", "version"], capture_output=True, env=env, timeout=30)
            if probe.returncode == 0:
                break
            if time.monotonic() > end:
                pytest.skip(f"the docker daemon did not answer within {START_TIMEOUT:g} s: {_daemon_error(log)}")
            time.sleep(0.5)
        busybox = _busybox()
        assert busybox is not None
        host = DockerHost(ns, env, f"{PREFIX}-busybox:test", folder)
        host.docker("import", "-c", 'CMD ["/bin/sh"]', "-", host.image, stdin=_image_tar(busybox))
        yield host
    finally:
        if daemon is not None:
            if host is not None and daemon.poll() is None:
                names = host.docker("ps", "-aq", "--filter", f"name={PREFIX}", check=False).split()
                if names:
                    host.docker("rm", "-f", *names, check=False)
                for net in host.docker("network", "ls", "-q", "--filter", f"name={PREFIX}", check=False).split():
                    host.docker("network", "rm", net, check=False)
                host.docker("rmi", "-f", host.image, check=False)
            if daemon.poll() is None:
                daemon.terminate()  # ours, by its handle; it stops the containerd it started
                try:
                    daemon.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait(timeout=30)
        for mount in reversed(_mounts_under(folder)):  # a safety net: dockerd unmounts its own on shutdown
            subprocess.run(["umount", "-l", mount], capture_output=True, timeout=30)
        lab.close()
        left = _processes_using(folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not left, f"processes of the test's docker daemon outlived it: {left}"


@dataclass
class Running:
    name: str
    pid: int
    veth: str  # the host side of its eth0, found by the test itself (ip link's @ifN)
    mac: str


def _start(host: DockerHost, role: str, command: list[str], *extra: str) -> Running:
    name = f"{PREFIX}-{role}"
    host.docker("run", "-d", "--name", name, *extra, host.image, *command)
    pid = host.pid(name)
    link = run("nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show", "eth0").stdout
    m = re.search(r"eth0@if(\d+):.*link/ether (\S+)", link)
    assert m, link
    peer = m.group(1)
    host_links = run("ip", "-n", host.ns, "-o", "link").stdout.splitlines()
    veth = next(line.split(": ")[1].split("@")[0] for line in host_links if line.split(":")[0] == peer)
    if command[0:3] == DISCARD[0:3]:  # wait for its listener
        end = time.monotonic() + 10
        while f":{LISTEN:04X} " not in Path(f"/proc/{pid}/net/tcp6").read_text().upper():
            assert time.monotonic() < end, "the container's server did not listen within 10 s"
            time.sleep(0.1)
    return Running(name, pid, veth, m.group(2))


@pytest.fixture
def web(dockerhost: DockerHost) -> Iterator[Running]:
    running = _start(dockerhost, "web", DISCARD, "--sysctl", "net.ipv6.conf.all.disable_ipv6=1")
    try:
        yield running
    finally:
        dockerhost.docker("rm", "-f", running.name, check=False)


def in_container(c: Running, *cmd: str) -> str:
    return run("nsenter", "-t", str(c.pid), "-n", *cmd).stdout


def snapshot(host: DockerHost, c: Running) -> dict[str, Any]:
    """What a run must leave as it found it."""
    return {
        "offload": in_container(c, "ethtool", "-k", "eth0"),
        "neighbours": in_container(c, "ip", "neigh", "show") + in_container(c, "ip", "-6", "neigh", "show"),
        "listeners": sorted(in_container(c, "ss", "-Htln").split("\n")),
        # connections: none may outlive a run (TIME-WAIT aside, which sends nothing by itself)
        "connections": [
            line for line in in_container(c, "ss", "-Htan").splitlines() if not line.startswith(("LISTEN", "TIME-WAIT"))
        ],
        "nft": run("ip", "netns", "exec", host.ns, "nft", "list", "ruleset").stdout,
        "netns": sorted(n for n in run("ip", "netns", "list").stdout.split() if n.startswith("cfd-")),
        "host links": run("ip", "-n", host.ns, "-o", "link").stdout.count("\n"),
    }


class Capture:
    """tcpdump on an interface of the daemon's namespace, ended by its Popen handle."""

    def __init__(self, ns: str, iface: str, path: Path) -> None:
        self.path = path
        cmd = ["ip", "netns", "exec", ns, "tcpdump", "-i", iface, "-n", "-U", "-w", str(path)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        with selectors.DefaultSelector() as sel:  # "listening on ..." once it captures
            sel.register(self.proc.stderr, selectors.EVENT_READ)
            assert sel.select(10), f"tcpdump on {iface} did not start"
        self.proc.stderr.readline()

    def stop(self) -> list[Any]:
        from scapy.utils import rdpcap

        if self.proc.poll() is None:
            time.sleep(0.3)
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return list(rdpcap(str(self.path)))


def assert_only_the_veth_saw_the_prober(frames: dict[str, list[Any]], prober: str, our_mac: str, pcaps: Path) -> None:
    """No kernel answered for the prober, and nothing went past the container's veth: the bridge neither passed
    the container's frames up nor flooded them, no connection outlived the run, and every RST from the prober is
    one of the tool's (in its pcaps)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import rdpcap

    def about_prober(pkts: list[Any]) -> list[Any]:
        return [p for p in pkts if IP in p and prober in (p[IP].src, p[IP].dst)]

    on_veth = about_prober(frames["veth"])
    assert len(on_veth) > 20
    assert not [p for p in on_veth if p[IP].src == prober and p[Ether].src != our_mac]
    assert not about_prober(frames["bridge"]), "the bridge passed the container's frames up to the host"
    assert not about_prober(frames["bystander"]), "the bridge flooded the container's frames to another container"
    arps = [p for p in frames["bridge"] if ARP in p and p[ARP].pdst == prober]
    assert not arps, "after the run, the container asked for the prober: a connection outlived the run"
    rsts = [p for p in on_veth if p[IP].src == prober and "R" in str(p[TCP].flags)]
    ours = [
        p
        for pcap in pcaps.glob("*.pcap")
        for p in rdpcap(str(pcap))
        if IP in p and p[IP].src == prober and "R" in str(p[TCP].flags)
    ]
    assert sorted((p[TCP].sport, p[TCP].seq) for p in rsts) == sorted((p[TCP].sport, p[TCP].seq) for p in ours)


def test_cases_against_a_container(dockerhost: DockerHost, web: Running, tmp_path: Path) -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    bystander = _start(dockerhost, "bystander", ["/bin/busybox", "sleep", "600"])
    before = snapshot(dockerhost, web)
    assert "tx-checksumming: on" in before["offload"]  # so the run has something to turn off and restore
    captures = {
        name: Capture(dockerhost.ns, iface, tmp_path / f"{name}.pcap")
        for name, iface in (("bridge", "docker0"), ("veth", web.veth), ("bystander", bystander.veth))
    }
    try:
        cases = [
            "closed",
            "handshake/synack-ack.yaml",
            "close/passive-close.yaml",  # agent steps: the agent runs in the container's namespace
            "data/retransmit-backoff.yaml",  # banner: the tool's listener in the container
            "handshake/synack-retransmit-ci.yaml",  # sets a sysctl: skipped
        ]
        proc = dockerhost.play(f"docker:{web.name}:{LISTEN}", cases, tmp_path / "reports")
        time.sleep(3)  # long enough for a SYN-ACK the tool left behind to be retransmitted and ARPed for
    finally:
        frames = {name: cap.stop() for name, cap in captures.items()}
    assert proc.returncode == 0, proc.stdout + proc.stderr
    junit = junit_cases(tmp_path / "reports" / "junit.xml")
    played = ["closed-syn", "closed-ack", "closed-rst", "closed-synfin-data", "synack-ack", "passive-close"]
    for name in [*played, "data-retransmit-backoff"]:
        assert status(junit[name]) == "passed", name
        assert "no IPv6 address" in skip_message(junit[f"{name}.ipv6"])
    skipped = skip_message(junit["synack-retransmit-ci"])
    assert "tcp_synack_retries=2" in skipped and "docker container" in skipped

    props = properties(junit["passive-close"])
    target = props["target"]
    assert f"in docker container {web.name}" in target and f"injected on the host side {web.veth}" in target
    assert f"listen {LISTEN} (the container's)" in target and "banner 7001" in target and "closed 9" in target
    assert "tx checksum offload off on eth0" in target
    assert props["profile"] == "linux"  # a Linux kernel's namespace, like the embedded target
    m = re.search(r"prober (198\.19\.\d+\.\d+) \((02:cf:[0-9a-f:]+),", target)
    assert m, target
    prober, our_mac = m.group(1), m.group(2)
    assert prober == "198.19.255.254"  # the highest address of 198.19.0.0/16 nobody uses

    # The tool's frames reach the container's eth0, and the container answers the prober's MAC.
    syn, synack = rdpcap(str(tmp_path / "reports" / "pcap" / "synack-ack.pcap"))[:2]
    assert (syn[IP].src, syn[Ether].src, syn[Ether].dst) == (prober, our_mac, web.mac)
    assert (synack[IP].dst, synack[Ether].dst, str(synack[TCP].flags)) == (prober, our_mac, "SA")

    assert_only_the_veth_saw_the_prober(frames, prober, our_mac, tmp_path / "reports" / "pcap")
    assert snapshot(dockerhost, web) == before  # offload, neighbours, listeners, nft, attached names, links


def test_listen_port_is_found_and_mistakes_are_explained(dockerhost: DockerHost, web: Running, tmp_path: Path) -> None:
    before = snapshot(dockerhost, web)
    synack = str(CASES / "handshake" / "synack-ack.yaml")
    reports = ["--reports", str(tmp_path), "--ip", "4"]
    proc = dockerhost.conformance("run", "--target", f"docker:{web.name}", synack, *reports)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    target = properties(junit_cases(tmp_path / "junit.xml")["synack-ack"])["target"]
    assert f"listen {LISTEN} (the container's)" in target

    mistakes = [
        (["--target", f"docker:{web.name}", "--closed-port", str(LISTEN)], f"--closed-port {LISTEN}: container"),
        (["--target", f"docker:{web.name}:7100"], "nothing listens on port 7100"),
        (["--target", f"docker:{PREFIX}-nosuch:80"], "No such container"),
        (["--target", f"docker:{web.name}:{LISTEN}", "--prober-ip", "198.18.0.9"], "not a host address"),
    ]
    for args, message in mistakes:
        proc = dockerhost.conformance("run", *args, synack, *reports)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert snapshot(dockerhost, web) == before, args  # undone, also after a failure half-way

    dockerhost.docker("stop", "-t", "1", web.name)
    proc = dockerhost.conformance("run", "--target", f"docker:{web.name}", synack, *reports)
    assert proc.returncode == 2 and "is not running" in proc.stderr, proc.stderr


def test_sigterm_in_the_middle_undoes_everything(dockerhost: DockerHost, web: Running, tmp_path: Path) -> None:
    before = snapshot(dockerhost, web)
    cmd = tool_command(dockerhost.ns, "run", "--target", f"docker:{web.name}:{LISTEN}")
    cmd += [str(CASES / "data" / "retransmit-backoff.yaml")]
    cmd += ["--ip", "4", "--reports", str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dockerhost.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 30
        while "tx-checksumming: off" not in in_container(web, "ethtool", "-k", "eth0"):  # set up, playing
            assert proc.poll() is None and time.monotonic() < end, "the run did not set up"
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # ours, by its handle (ip netns exec became the tool)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode != 0
    assert snapshot(dockerhost, web) == before


def test_ipv6_on_a_user_defined_network(dockerhost: DockerHost, tmp_path: Path) -> None:
    """A network as docker compose makes one (br-...), with IPv6 from 2001:2::/48: both families are played."""
    net = f"{PREFIX}-lab6"
    dockerhost.docker("network", "create", "--ipv6", "--subnet", "198.18.250.0/24", "--subnet", "2001:2:0:d1::/64", net)
    try:
        c = _start(dockerhost, "web6", DISCARD, "--network", net)
        try:
            cases = ["closed/syn.yaml", "handshake/synack-ack.yaml", "close/passive-close.yaml"]
            proc = dockerhost.play(f"docker:{c.name}:{LISTEN}", cases, tmp_path)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            junit = junit_cases(tmp_path / "junit.xml")
            for name in ("closed-syn", "synack-ack", "passive-close"):
                assert status(junit[name]) == "passed" and status(junit[f"{name}.ipv6"]) == "passed", name
            props = properties(junit["synack-ack.ipv6"])
            assert "198.18.250.2, 2001:2:0:d1::2 on eth0" in props["target"]
            assert "prober 198.18.250.254, 2001:2:0:d1:ffff:ffff:ffff:fffe" in props["target"]
            assert "(bridge br-" in props["target"]
            assert not in_container(c, "ip", "-6", "neigh", "show", "2001:2:0:d1:ffff:ffff:ffff:fffe")
        finally:
            dockerhost.docker("rm", "-f", c.name, check=False)
    finally:
        dockerhost.docker("network", "rm", net, check=False)
