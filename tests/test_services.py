"""The target's services (``conformance.inside.services``) on this machine's loopback: they listen on the addresses
given, one socket each, and nowhere else (issue 11); the banner service sends its line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.inside.services import BANNER

from .helpers import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    listen, banner = free_port(), free_port()
    cmd = [sys.executable, "-m", "conformance.inside.services", "--listen", str(listen), "--banner", str(banner)]
    cmd += ["--addr=127.0.0.1", "--addr=::1"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["ready"], ready
        yield listen, banner
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # the services end when their stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()  # our own child
            proc.wait()


def connect(addr: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
    s.settimeout(3)
    s.connect((addr, port))
    return s


@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_services_listen_on_the_addresses_given(ports: tuple[int, int], addr: str) -> None:
    listen, banner = ports
    with connect(addr, banner) as s:
        assert s.recv(len(BANNER)) == BANNER
    with connect(addr, listen) as s:
        s.sendall(b"discarded")  # accepted and read


def test_services_listen_nowhere_else(ports: tuple[int, int]) -> None:
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            connect("127.0.0.2", port).close()


def test_an_address_it_cannot_listen_on_is_named() -> None:
    cmd = [sys.executable, "-m", "conformance.inside.services", "--listen", str(free_port()), "--addr=198.18.99.2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=10, stdin=subprocess.DEVNULL)
    answer = json.loads(proc.stdout)
    assert answer["ready"] is False
    assert answer["error"].startswith("cannot listen on 198.18.99.2 port ")


def test_sysctl_names_are_plain_names_under_net_ipv4() -> None:
    """A second line of defence behind the loader: a case wrote any file as root through a sysctl name."""
    from conformance.inside.services import SYSCTL_DIR, sysctl_path

    assert sysctl_path("tcp_synack_retries") == f"{SYSCTL_DIR}/tcp_synack_retries"
    for bad in ("../../../../tmp/x", "tcp/../x", "", "Tcp", "tcp_x\n", "tcp x", "ｔｃｐ"):
        with pytest.raises(OSError):
            sysctl_path(bad)


def test_services_refuse_a_bad_sysctl_before_writing_anything(tmp_path: Path) -> None:
    from conformance.inside import services

    target = tmp_path / "x"
    code = services.main(["--sysctl", f"../../../..{target}=1234"])
    assert code == 1 and not target.exists()
