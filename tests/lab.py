"""Network namespaces for the target integration tests, all removed by :meth:`Lab.close`.

Everything is made inside namespaces of the test's own (named ``cf<role>-<pid>``):
links are created directly in them, so nothing touches the machine's root
namespace. Processes are started by the lab and ended by their Popen handles.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def missing_tools(*tools: str) -> str | None:
    """A skip reason when not root or a program is missing, else None."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces, raw sockets and nftables tables"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"needs the program {tool!r} (bash .ci/setup installs it)"
    return None


def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
    return proc


def nft_tables(ns: str) -> str:
    """`nft list tables` inside namespace `ns`."""
    return run("ip", "netns", "exec", ns, "nft", "list", "tables").stdout


class Lab:
    """Namespaces, links and processes of one test."""

    def __init__(self) -> None:
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[str]] = []

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def netns(self, role: str, *, ipv6: bool = False) -> str:
        name = f"cf{role}-{os.getpid()}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        self.ip(name, "link", "set", "lo", "up")
        if not ipv6:  # no router solicitations or MLD reports in the captures
            for scope in ("all", "default"):
                self.sysctl(name, f"net.ipv6.conf.{scope}.disable_ipv6", "1")
        else:  # link-local addresses usable at once: a router solicits from one (none while it is tentative)
            self.sysctl(name, "net.ipv6.conf.default.accept_dad", "0")
        return name

    def ip(self, ns: str, *args: str) -> None:
        run("ip", "-n", ns, *args)

    def sysctl(self, ns: str, name: str, value: str) -> None:
        run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{name}={value}")

    def veth(self, ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
        """A veth pair made directly in the two namespaces (never in the root namespace)."""
        run("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)

    def address(self, ns: str, ifname: str, cidr: str) -> None:
        """An address on `ifname`, up; an IPv6 one without duplicate address detection (usable at once)."""
        self.ip(ns, "addr", "add", cidr, "dev", ifname, *(["nodad"] if ":" in cidr else []))
        self.ip(ns, "link", "set", ifname, "up")

    def services(self, ns: str, addr: str, listen: int, banner: int) -> subprocess.Popen[str]:
        """The project's listeners (``conformance.inside.services``) in `ns`; returns once they listen."""
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "conformance.inside.services"]
        cmd += ["--addr", addr, "--listen", str(listen), "--banner", str(banner)]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(10):
            raise AssertionError("the listeners did not start within 10 s")
        ready = json.loads(proc.stdout.readline() or "{}")
        assert ready.get("ready"), ready
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    if proc.stdin:
                        proc.stdin.close()  # the listeners serve until their stdin closes
                    proc.wait(timeout=5)
                except (subprocess.TimeoutExpired, OSError):
                    proc.kill()  # ours, by its handle
                    proc.wait(timeout=5)
        self.procs.clear()
        for name in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=30)
        self.namespaces.clear()


def remote_lab(lab: Lab, listen: int, banner: int) -> dict[str, str]:
    """prober ─ router (forwarding) ─ host (listeners on both families), over IPv4 and IPv6::

    prober prb0 198.18.1.2/24   ─ rtr0 198.18.1.1/24   router   rtr1 198.18.2.1/24   ─ hst0 198.18.2.2/24   host
                2001:2:0:1::2/64      2001:2:0:1::1/64                2001:2:0:2::1/64      2001:2:0:2::2/64
    """
    prober, router, host = (lab.netns(role, ipv6=True) for role in ("prober", "router", "host"))
    lab.veth(prober, "prb0", router, "rtr0")
    lab.veth(router, "rtr1", host, "hst0")
    for ns, ifname, cidrs in (
        (prober, "prb0", ("198.18.1.2/24", "2001:2:0:1::2/64")),
        (router, "rtr0", ("198.18.1.1/24", "2001:2:0:1::1/64")),
        (router, "rtr1", ("198.18.2.1/24", "2001:2:0:2::1/64")),
        (host, "hst0", ("198.18.2.2/24", "2001:2:0:2::2/64")),
    ):
        for cidr in cidrs:
            lab.address(ns, ifname, cidr)
    lab.ip(prober, "route", "add", "default", "via", "198.18.1.1")
    lab.ip(prober, "-6", "route", "add", "default", "via", "2001:2:0:1::1")
    lab.sysctl(router, "net.ipv4.ip_forward", "1")
    lab.sysctl(router, "net.ipv6.conf.all.forwarding", "1")
    lab.ip(host, "route", "add", "default", "via", "198.18.2.1")
    lab.ip(host, "-6", "route", "add", "default", "via", "2001:2:0:2::1")
    # the host's checksums computed by the host, not left to a (virtual) NIC, so the prober checks real ones
    run("ip", "netns", "exec", host, "ethtool", "-K", "hst0", "tx", "off")
    lab.services(host, "0.0.0.0", listen, banner)  # one dual-stack listener per port
    return {"prober": prober, "router": router, "host": host, "iface": "prb0"}
