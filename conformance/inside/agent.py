"""The target agent: drives the target's application and reads its TCP states.

Standard library only: it runs inside the target's network namespace (one the
tool made, a container's, a remote host's) as ``python -m conformance.inside.agent``
and speaks JSON lines, protocol version :data:`PROTOCOL` (the contract:
``docs/agent-protocol.md``). Each request carries an ``id``; each answer repeats
it and carries the wall-clock ``time`` it was produced at::

    -> {"id": 3, "cmd": "listen", "port": 10001, "backlog": 8}
    <- {"id": 3, "ok": true, "time": 1795605856.21, "sock": 1}
    -> {"id": 4, "cmd": "state", "local": ["198.18.0.2", 10001], "remote": ["198.18.0.1", 20001]}
    <- {"id": 4, "ok": true, "time": ..., "state": "CLOSE-WAIT", "linux": "CLOSE_WAIT", "timer_ms": 0}

Commands: version, ping, listen, accept, connect, send (urgent: MSG_OOB), recv,
poll, sockatmark, shutdown, close, setsockopt, getsockopt (the options:
:mod:`.sockopts`), state (sock_diag, :mod:`.diag`: sees SYN-RECEIVED, TIME-WAIT
and orphans too), tcp_info, sysctl. Every command runs on a thread of its own (accept, connect and
recv block), so answers may come out of order. A bad command gets ``ok: false``
with the error; the agent never dies on one.

Two transports. By default it reads stdin and writes stdout, and exits when its
stdin closes (the tool starts it: a namespace, a container). With ``--listen
ADDR:PORT --token-file F`` (a remote host the user starts it on) it listens on
that one address (in 198.18.0.0/15 or 2001:2::/48), serves one client at a
time, and a client's first line must be the token of F, else it is closed
without a word; ``--peer IP`` closes any other peer at once. A client's
sockets are closed when it goes.

Started with ``--addr ADDR`` (once per address: the target's test addresses), it
listens and binds only there: ``listen`` on a wildcard (``0.0.0.0``, ``::``) binds
to the given address of that family, and any other address is refused. With
``--listen`` and no ``--addr``, that address is ADDR.
"""

from __future__ import annotations

import argparse
import errno
import hmac
import ipaddress
import json
import os
import select
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from .diag import AgentError, state_of, tcp_info
from .sockopts import NAMES, OptionError, at_mark, get_option, set_option

#: The version of the JSON-lines protocol (docs/agent-protocol.md) this agent speaks; in its hello and `version`.
PROTOCOL = 2
IMPLEMENTATION = "conformance.inside.agent"

WILDCARDS = ("", "0.0.0.0", "::")


class Agent:
    def __init__(self, out: Any, addrs: list[str] | None = None) -> None:
        """`addrs`: the only addresses sockets may bind to, at most one of each family (none: any)."""
        self.addrs = {ipaddress.ip_address(a).version: ipaddress.ip_address(a).compressed for a in addrs or []}
        self.out = out
        self.lock = threading.Lock()
        self.socks: dict[int, socket.socket] = {}
        self.next_sock = 1
        self.silenced = False

    def answer(self, msg: dict[str, Any]) -> None:
        msg["time"] = time.time()
        with self.lock:
            if self.silenced:
                return
            try:
                self.out.write(json.dumps(msg) + "\n")
                self.out.flush()
            except (OSError, ValueError):  # the client has gone (--listen): nobody to answer
                pass

    def hello(self) -> dict[str, Any]:
        """The first line the agent writes: it is ready, and which protocol it speaks."""
        return {"id": None, "ok": True, "ready": True, "protocol": PROTOCOL, "kernel": os.uname().release}

    def close_all(self) -> None:
        """Close every socket the client opened (it has gone)."""
        with self.lock:
            socks, self.socks = list(self.socks.values()), {}
        for s in socks:
            s.close()

    def register(self, s: socket.socket) -> int:
        with self.lock:
            sid = self.next_sock
            self.next_sock += 1
            self.socks[sid] = s
        return sid

    def sock(self, req: dict[str, Any]) -> socket.socket:
        try:
            return self.socks[int(req["sock"])]
        except (KeyError, ValueError, TypeError):
            raise AgentError(f"no socket {req.get('sock')!r}") from None

    def handle(self, req: dict[str, Any]) -> None:
        rid = req.get("id")
        try:
            cmd = req.get("cmd")
            fn = getattr(self, f"cmd_{cmd}", None)
            if fn is None:
                raise AgentError(f"unknown command {cmd!r}")
            result = fn(req)
            self.answer({"id": rid, "ok": True, **result})
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, "") if exc.errno else type(exc).__name__
            self.answer({"id": rid, "ok": False, "error": name or str(exc), "detail": str(exc)})
        except (AgentError, KeyError, ValueError, TypeError) as exc:
            self.answer({"id": rid, "ok": False, "error": "bad request", "detail": str(exc)})

    # ---------------------------------------------------------------- commands
    def cmd_version(self, req: dict[str, Any]) -> dict[str, Any]:
        commands = sorted(name[4:] for name in dir(self) if name.startswith("cmd_"))
        return {"protocol": PROTOCOL, "implementation": IMPLEMENTATION, "commands": commands}

    def cmd_ping(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"kernel": os.uname().release}

    def bind_address(self, addr: str, version: int) -> str:
        """The address a socket of IP `version` asked to bind to `addr` binds to (see the module docstring)."""
        if not self.addrs:
            return addr
        if addr in WILDCARDS:
            if version not in self.addrs:
                raise AgentError(
                    f"no IPv{version} address to listen on (the agent's: {', '.join(self.addrs.values())})"
                )
            return self.addrs[version]
        if ipaddress.ip_address(addr).compressed not in self.addrs.values():
            raise AgentError(f"{addr} is not the target's address: the agent binds to {', '.join(self.addrs.values())}")
        return addr

    def cmd_listen(self, req: dict[str, Any]) -> dict[str, Any]:
        addr = str(req.get("addr", "0.0.0.0"))
        version = 6 if ":" in addr else 4
        bind = self.bind_address(addr, version)
        s = socket.socket(socket.AF_INET6 if version == 6 else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for name, value in req.get("options", {}).items():
            self._setopt(s, name, value)
        s.bind((bind, int(req["port"])))
        s.listen(int(req.get("backlog", 8)))
        return {"sock": self.register(s)}

    def cmd_accept(self, req: dict[str, Any]) -> dict[str, Any]:
        ls = self.sock(req)
        ls.settimeout(bounded_timeout(req, 10))
        c, peer = ls.accept()
        c.settimeout(None)
        return {"sock": self.register(c), "peer": list(peer[:2])}

    def cmd_connect(self, req: dict[str, Any]) -> dict[str, Any]:
        s = socket.socket(socket.AF_INET6 if ":" in req["addr"] else socket.AF_INET, socket.SOCK_STREAM)
        sid = self.register(s)
        for name, value in req.get("options", {}).items():
            self._setopt(s, name, value)
        if req.get("local_port") or req.get("local_addr"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            local = self.bind_address(str(req.get("local_addr", "")), 6 if ":" in req["addr"] else 4)
            s.bind((local, int(req.get("local_port", 0))))
        s.connect((req["addr"], int(req["port"])))
        return {"sock": sid, "local": list(s.getsockname()[:2])}

    def cmd_send(self, req: dict[str, Any]) -> dict[str, Any]:
        data = str(req.get("data", "")).encode()
        self.sock(req).sendall(data, socket.MSG_OOB if req.get("urgent") else 0)
        return {"sent": len(data)}

    def cmd_recv(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        urgent = bool(req.get("urgent"))
        s.settimeout(None if urgent else bounded_timeout(req, 5))  # MSG_OOB never blocks; Python would poll
        try:
            data = s.recv(int(req.get("max", 65536)), socket.MSG_OOB if urgent else 0)
        finally:
            s.settimeout(None)
        return {"data": data.decode(errors="replace"), "eof": data == b"", "at_mark": at_mark(s)}

    def cmd_poll(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        poller = select.poll()
        poller.register(s, select.POLLIN | select.POLLPRI)
        ready = poller.poll(bounded_timeout(req, 5) * 1000)
        events = ready[0][1] if ready else 0
        if not events:
            raise TimeoutError("nothing to read within the timeout")
        return {
            "readable": bool(events & select.POLLIN),
            "urgent": bool(events & select.POLLPRI),
            "at_mark": at_mark(s),
        }

    def cmd_sockatmark(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"at_mark": at_mark(self.sock(req))}

    def cmd_shutdown(self, req: dict[str, Any]) -> dict[str, Any]:
        how = {"read": socket.SHUT_RD, "write": socket.SHUT_WR, "both": socket.SHUT_RDWR}[req.get("how", "write")]
        self.sock(req).shutdown(how)
        return {}

    def cmd_close(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        with self.lock:
            self.socks.pop(int(req["sock"]), None)
        s.close()
        return {}

    def _setopt(self, s: socket.socket, name: str, value: Any) -> None:
        try:
            set_option(s, name, value)
        except OptionError as exc:
            raise AgentError(str(exc)) from None

    def cmd_setsockopt(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        for name, value in req.get("options", {}).items():
            self._setopt(s, name, value)
        return {}

    def cmd_getsockopt(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        names = req.get("names") or list(NAMES)
        try:
            return {"options": {str(name): get_option(s, str(name)) for name in names}}
        except OptionError as exc:
            raise AgentError(str(exc)) from None

    def cmd_state(self, req: dict[str, Any]) -> dict[str, Any]:
        return state_of(req["local"], req["remote"])

    def cmd_tcp_info(self, req: dict[str, Any]) -> dict[str, Any]:
        return tcp_info(self.sock(req))

    def cmd_sysctl(self, req: dict[str, Any]) -> dict[str, Any]:
        name = str(req["name"])
        if "/" in name or name.startswith("."):
            raise AgentError("sysctl names are plain names under net/ipv4")
        path = f"/proc/sys/net/ipv4/{name}"
        if "value" in req:
            with open(path, "w") as f:
                f.write(str(req["value"]))
        with open(path) as f:
            return {"value": f.read().strip()}


#: The longest a blocking command (accept, recv, poll) may wait, in seconds: a request is untrusted input.
MAX_TIMEOUT = 3600.0


def bounded_timeout(req: dict[str, Any], default: float) -> float:
    """A request's ``timeout``: a number of seconds in [0, MAX_TIMEOUT], else ValueError (a bad request)."""
    value = float(req.get("timeout", default))
    if not 0.0 <= value <= MAX_TIMEOUT:  # also refuses NaN
        raise ValueError(f"timeout must be between 0 and {MAX_TIMEOUT:g} seconds, not {value!r}")
    return value


def serve(agent: Agent, lines: Iterable[str]) -> None:
    """Answer the requests of `lines` (one JSON object each) until they end; each on a thread of its own."""
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a request is a JSON object")
        except ValueError as exc:
            agent.answer({"id": None, "ok": False, "error": "bad request", "detail": f"not JSON: {exc}"})
            continue
        threading.Thread(target=agent.handle, args=(req,), daemon=True).start()


# ---------------------------------------------------------------- --listen: a connection the user starts
BENCHMARK_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"))
TOKEN_TIMEOUT = 5.0
MAX_TOKEN_LINE = 4096


class UsageError(Exception):
    """A bad --listen, --peer or --token-file: the message says what to give instead."""


def checked_address(text: str, what: str) -> str:
    """`text` as an address the agent may bind to or accept: one of the benchmarking ranges, not a wildcard."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise UsageError(f"{what} {text!r} is not an IP address") from None
    if ip.is_unspecified:
        raise UsageError(f"{what} {text} is every address: give the one test address of this host")
    if not any(ip in net for net in BENCHMARK_NETS):
        raise UsageError(f"{what} {text} is outside 198.18.0.0/15 and 2001:2::/48, the only ranges the tool uses")
    return ip.compressed


def parse_listen(text: str, option: str = "--listen", form: str = "ADDR:PORT") -> tuple[str, int]:
    """``ADDR:PORT`` or ``[ADDR6]:PORT`` (the value of `option`, whose form is `form`)."""
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"{option} {text!r}: expected {form}, e.g. 198.18.2.2:7700 or [2001:2:0:2::2]:7700")
    return checked_address(host, f"{option} address"), int(port)


def read_token(path: str, option: str = "--token-file") -> bytes:
    """The shared secret: the file's first line, which must not be empty nor readable by others than its owner. A
    regular file: opening never blocks (a FIFO) and reading is bounded (/dev/zero)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            mode = os.fstat(fd).st_mode  # of the file read, not of what the name pointed to a moment before
            data = os.read(fd, MAX_TOKEN_LINE + 1) if stat.S_ISREG(mode) else b""
        finally:
            os.close(fd)
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{option} {path}: not a regular file (a FIFO, a device or a folder?): name the secret's file")
    first = data.split(b"\n", 1)[0]
    if len(first) >= MAX_TOKEN_LINE:  # the agent reads at most that much of a peer's first line
        raise UsageError(f"{option} {path}: a first line over {MAX_TOKEN_LINE - 1} octets: use a shorter secret")
    token = first.strip()
    if mode & 0o077:
        raise UsageError(f"{option} {path} can be read by others than its owner: chmod 600 {path}")
    if not token:
        raise UsageError(f"{option} {path} is empty: put a secret in it, e.g. head -c 32 /dev/urandom | base64")
    return token


def _log(message: str) -> None:
    print(f"agent: {message}", file=sys.stderr, flush=True)


def _authenticated(conn: socket.socket, token: bytes) -> Any:
    """The connection's reader once its first line is the token (within TOKEN_TIMEOUT), else None."""
    conn.settimeout(TOKEN_TIMEOUT)
    reader = conn.makefile("rb")
    try:
        first = reader.readline(MAX_TOKEN_LINE).strip()
    except OSError:
        return None
    if not hmac.compare_digest(first, token):
        return None
    conn.settimeout(None)
    return conn.makefile("r", encoding="utf-8", newline="\n")


def serve_tcp(addr: str, port: int, token: bytes, peer: str | None, binds: list[str]) -> None:
    """Listen on (addr, port); serve one authenticated client at a time, until interrupted."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        srv.bind((addr, port))
        srv.listen(1)
        _log(f"protocol {PROTOCOL}, listening on {addr} port {port}" + (f", for {peer} only" if peer else ""))
        while True:
            conn, who = srv.accept()
            try:
                _serve_client(conn, f"{who[0]} port {who[1]}", token, peer, binds)
            finally:
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # now: files made from it would keep it open
                except OSError:
                    pass
                conn.close()


def _serve_client(conn: socket.socket, who: str, token: bytes, peer: str | None, binds: list[str]) -> None:
    """One client: refused unless it is the peer (when one is given) and its first line is the token."""
    if peer is not None and ipaddress.ip_address(who.split()[0].split("%")[0]).compressed != peer:
        _log(f"refused {who}: not the peer {peer}")
        return
    reader = _authenticated(conn, token)
    if reader is None:
        _log(f"closed {who}: its first line was not the token")
        return
    _log(f"serving {who}")
    agent = Agent(conn.makefile("w", encoding="utf-8", newline="\n"), binds)
    agent.answer(agent.hello())
    try:
        serve(agent, reader)
    except OSError as exc:
        _log(f"{who}: {exc}")
    agent.close_all()
    _log(f"{who} has gone; its sockets are closed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="The target agent: JSON-lines commands on stdin (or a TCP connection: --listen), answers back."
    )
    ap.add_argument("--addr", action="append", default=[], help="an address sockets may bind to (default: any)")
    ap.add_argument("--listen", metavar="ADDR:PORT", help="serve a TCP client on this address instead of stdin")
    ap.add_argument("--token-file", metavar="F", help="with --listen: the shared secret, a client's first line")
    ap.add_argument("--peer", metavar="IP", help="with --listen: the only client address accepted")
    args = ap.parse_args(argv)
    if args.listen is None:
        if args.token_file or args.peer:
            ap.error("--token-file and --peer go with --listen ADDR:PORT")
        agent = Agent(sys.stdout, args.addr)
        agent.answer(agent.hello())
        serve(agent, sys.stdin)
        with agent.lock:  # no handler thread may be in stdout's lock when the interpreter's exit flushes it
            agent.silenced = True
        return 0
    if not args.token_file:
        ap.error("--listen needs --token-file F (a shared secret the client sends first)")
    try:
        addr, port = parse_listen(args.listen)
        token = read_token(args.token_file)
        peer = checked_address(args.peer, "--peer") if args.peer else None
        serve_tcp(addr, port, token, peer, args.addr or [addr])
    except UsageError as exc:
        ap.error(str(exc))
    except OSError as exc:
        _log(f"cannot listen on {args.listen}: {exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
