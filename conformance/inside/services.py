"""The embedded target's application: listeners run inside the target namespace.

Standard library only, so it runs in any namespace or container with a Python.
Started by :mod:`conformance.targets.netns` as ``python -m conformance.inside.services`` inside
the namespace; it

1. applies the sysctls asked for (``--sysctl tcp_synack_retries=2``) and turns
   IPv6 off if asked;
2. opens the services the cases talk to: ``listen`` (accept, read and discard),
   ``banner`` (accept, send a banner, then read and discard), ``echo`` (send back
   what it reads, RFC 862) and ``http`` (read a request up to its blank line,
   answer it with :data:`HTTP_HEAD` then :data:`HTTP_BODY`, then close first: the
   target's active close); the ``closed`` port
   is simply not opened. Each listens on the addresses given (``--addr``, once per
   address: the target's test addresses, one socket each), or on every address
   of both families with ``--addr 0.0.0.0`` (the default);
3. prints one JSON line: ``{"ready": true, "protocol": 2, "sysctls": {...}, "kernel": "..."}``
   (or ``{"ready": false, "error": "..."}``) and serves until its stdin closes,
   so it never outlives the tool that started it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
from collections.abc import Callable

# the version of the hello line (the agent protocol's, docs/agent-protocol.md: the same client reads both)
from .agent import PROTOCOL

BANNER = b"conformance banner: hello from the target\r\n"
HTTP_BODY = b"conformance: hello from the target\n"
HTTP_HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
    HTTP_BODY
)
#: The most of a request the http service reads before it answers anyway.
MAX_REQUEST = 65536
SYSCTL_DIR = "/proc/sys/net/ipv4"


def _drain(conn: socket.socket) -> None:
    while conn.recv(65536):
        pass


def _banner(conn: socket.socket) -> None:
    conn.sendall(BANNER)
    _drain(conn)


def _echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)


def _http(conn: socket.socket) -> None:
    """Read the request up to its blank line (or the peer's FIN), answer in one write, close first."""
    request = b""
    while b"\r\n\r\n" not in request and b"\n\n" not in request and len(request) < MAX_REQUEST:
        data = conn.recv(65536)
        if not data:
            break
        request += data
    if request:  # two writes, as most servers do (Python's http.server among them): the head, then the body
        conn.sendall(HTTP_HEAD)
        conn.sendall(HTTP_BODY)


def _handled(handler: Callable[[socket.socket], None], conn: socket.socket) -> None:
    try:
        handler(conn)
    except OSError:
        pass
    finally:
        conn.close()


def _serve(sock: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=_handled, args=(handler, conn), daemon=True).start()


#: Each service: what it does with an accepted connection.
HANDLERS: dict[str, Callable[[socket.socket], None]] = {
    "listen": _drain,
    "banner": _banner,
    "echo": _echo,
    "http": _http,
}


def _bound(family: int, addr: str, port: int, backlog: int, dual: bool = False) -> socket.socket:
    """A listening socket of `family` on (addr, port); OSError saying where when it cannot listen."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        if dual:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        s.listen(backlog)
    except OSError as exc:
        s.close()
        raise OSError(exc.errno, f"cannot listen on {addr} port {port}: {exc.strerror}") from None
    return s


def _listener(addr: str, port: int, backlog: int) -> socket.socket:
    """A listener on `addr` (of its family); "0.0.0.0" means both families when the namespace has IPv6."""
    if ":" in addr:
        return _bound(socket.AF_INET6, addr, port, backlog)
    if addr == "0.0.0.0" and socket.has_ipv6:
        try:
            return _bound(socket.AF_INET6, "::", port, backlog, dual=True)
        except OSError:
            pass  # no IPv6 here: IPv4 only
    return _bound(socket.AF_INET, addr, port, backlog)


def sysctl_path(name: str) -> str:
    """The file of sysctl net.ipv4.NAME; a name that is not a plain sysctl name (``[a-z0-9_]+``) is refused, so
    nothing but a file under net/ipv4 can ever be written, whatever a case file or a caller asks."""
    if not name or not all(c.islower() or c.isdigit() or c == "_" for c in name) or not name.isascii():
        raise OSError(f"not a sysctl name under net/ipv4: {name!r}")
    return os.path.join(SYSCTL_DIR, name)


#: Sysctls a case may set that are kept per interface (net/ipv4/conf/IF/NAME), each with the values it may take:
#: written to conf/all, conf/default and every interface of the namespace the services run in (a target of the
#: case's own), never to a path a caller gives. accept_source_route: RFC 7126 advises IP layers to drop source
#: routed datagrams, and Linux does unless conf/all and the interface both say 1 (ip-sysctl.rst).
CONF_SYSCTLS: dict[str, tuple[str, ...]] = {"accept_source_route": ("0", "1")}
CONF_DIR = "/proc/sys/net/ipv4/conf"


def write_sysctl(name: str, value: str) -> None:
    """Set net.ipv4.NAME, or for a per-interface name of :data:`CONF_SYSCTLS` its files in every conf dir."""
    if not value.isdigit():
        raise OSError(f"sysctl {name}: not a non-negative integer: {value!r}")
    if name not in CONF_SYSCTLS:
        with open(sysctl_path(name), "w") as f:
            f.write(value)
        return
    if value not in CONF_SYSCTLS[name]:
        raise OSError(f"sysctl {name}: {value!r} is not one of {', '.join(CONF_SYSCTLS[name])}")
    devices = sorted(set(os.listdir(CONF_DIR)) - {"all", "default"})
    for scope in ("all", "default", *devices):  # all first: a device's value counts only with it (IN_DEV_ANDCONF)
        with open(os.path.join(CONF_DIR, scope, name), "w") as f:
            f.write(value)


def read_sysctls(names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in names:
        try:
            with open(sysctl_path(name)) as f:
                out[name] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--addr", action="append", default=[], help="an address to listen on (default 0.0.0.0: all)")
    for service in HANDLERS:
        ap.add_argument(f"--{service}", type=int, help=f"the {service} service's port (none: not opened)")
    ap.add_argument("--backlog", type=int, default=128)
    ap.add_argument("--sysctl", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--read", action="append", default=[], metavar="NAME")
    ap.add_argument("--no-ipv6", action="store_true")
    args = ap.parse_args(argv)
    try:
        if args.no_ipv6:
            for scope in ("all", "default"):
                with open(f"/proc/sys/net/ipv6/conf/{scope}/disable_ipv6", "w") as f:
                    f.write("1")
        for item in args.sysctl:
            name, _, value = item.partition("=")
            write_sysctl(name, value)
        listeners = [
            (_listener(addr, port, args.backlog), handler)
            for service, handler in HANDLERS.items()
            if (port := getattr(args, service)) is not None
            for addr in args.addr or ["0.0.0.0"]
        ]
    except OSError as exc:
        error = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)
        print(json.dumps({"ready": False, "error": error}), flush=True)
        return 1
    for sock, handler in listeners:
        threading.Thread(target=_serve, args=(sock, handler), daemon=True).start()
    ready = {"ready": True, "protocol": PROTOCOL, "sysctls": read_sysctls(args.read), "kernel": os.uname().release}
    print(json.dumps(ready), flush=True)
    sys.stdin.read()  # serve until the tool closes our stdin (or dies)
    return 0


if __name__ == "__main__":
    sys.exit(main())
