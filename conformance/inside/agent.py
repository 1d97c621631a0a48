"""The target agent: drives the target's application and reads its TCP states.

Standard library only: it runs inside the target's network namespace (one the
tool made, a container's, a remote host's) as ``python -m conformance.inside.agent``
and speaks JSON lines over stdin/stdout. Each request carries an ``id``; each
answer repeats it and carries the wall-clock ``time`` it was produced at::

    -> {"id": 3, "cmd": "listen", "port": 10001, "backlog": 8}
    <- {"id": 3, "ok": true, "time": 1795605856.21, "sock": 1}
    -> {"id": 4, "cmd": "state", "local": ["198.18.0.2", 10001], "remote": ["198.18.0.1", 20001]}
    <- {"id": 4, "ok": true, "time": ..., "state": "CLOSE-WAIT", "linux": "CLOSE_WAIT", "timer_ms": 0}

Commands: listen, accept, connect, send, recv, shutdown, close, setsockopt,
state (sock_diag: sees SYN-RECEIVED, TIME-WAIT and orphans too), tcp_info,
sysctl. Every command runs on a thread of its own (accept, connect and recv
block), so answers may come out of order. A bad command gets ``ok: false`` with
the error; the agent never dies on one. It exits when its stdin closes.

Started with ``--addr ADDR`` (once per address: the target's test addresses), it
listens and binds only there: ``listen`` on a wildcard (``0.0.0.0``, ``::``) binds
to the given address of that family, and any other address is refused.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import socket
import struct
import sys
import threading
import time
from typing import Any

#: Linux TCP states (include/net/tcp_states.h) -> RFC 9293 names.
LINUX_STATES = {
    1: ("ESTABLISHED", "ESTABLISHED"),
    2: ("SYN_SENT", "SYN-SENT"),
    3: ("SYN_RECV", "SYN-RECEIVED"),
    4: ("FIN_WAIT1", "FIN-WAIT-1"),
    5: ("FIN_WAIT2", "FIN-WAIT-2"),
    6: ("TIME_WAIT", "TIME-WAIT"),
    7: ("CLOSE", "CLOSED"),
    8: ("CLOSE_WAIT", "CLOSE-WAIT"),
    9: ("LAST_ACK", "LAST-ACK"),
    10: ("LISTEN", "LISTEN"),
    11: ("CLOSING", "CLOSING"),
    12: ("NEW_SYN_RECV", "SYN-RECEIVED"),
}

SOCKOPTS: dict[str, tuple[int, int]] = {
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF),
    "SO_REUSEADDR": (socket.SOL_SOCKET, socket.SO_REUSEADDR),
    "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", 4)),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", 5)),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", 6)),
    "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", 18)),
}

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2


class AgentError(Exception):
    pass


def tcp_sockets(family: int = socket.AF_INET) -> list[dict[str, Any]]:
    """Every TCP socket of this namespace, in every state, via sock_diag (inet_diag)."""
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG)
    try:
        # struct inet_diag_req_v2: family, protocol, ext, pad, states; then inet_diag_sockid (48 bytes)
        req = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, 0xFFFFFFFF) + bytes(48)
        hdr = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        nl.sendto(hdr + req, (0, 0))
        out: list[dict[str, Any]] = []
        while True:
            data = nl.recv(1 << 20)
            offset = 0
            while offset < len(data):
                length, kind, _flags, _seq, _pid = struct.unpack_from("=IHHII", data, offset)
                if kind == NLMSG_DONE:
                    return out
                if kind == NLMSG_ERROR:
                    code = struct.unpack_from("=i", data, offset + 16)[0]
                    raise AgentError(f"sock_diag error {os.strerror(-code)}")
                body = data[offset + 16 : offset + length]
                fam, state, timer, retrans = struct.unpack_from("=BBBB", body, 0)
                sport, dport = struct.unpack_from("!HH", body, 4)
                src = body[8:24]
                dst = body[24:40]
                expires = struct.unpack_from("=I", body, 52)[0]
                size = 4 if fam == socket.AF_INET else 16
                out.append(
                    {
                        "local": [socket.inet_ntop(fam, src[:size]), sport],
                        "remote": [socket.inet_ntop(fam, dst[:size]), dport],
                        "state_num": state,
                        "timer": timer,
                        "retrans": retrans,
                        "expires_ms": expires,
                    }
                )
                offset += (length + 3) & ~3
    finally:
        nl.close()


def v4_mapped(addr: str) -> str:
    """`addr` (IPv4) as a dual-stack AF_INET6 socket shows it: ``::ffff:a.b.c.d`` (RFC 4291 §2.5.5.2); the
    wildcard ``0.0.0.0`` as ``::``."""
    return "::" if addr == "0.0.0.0" else f"::ffff:{addr}"


def _find(family: int, local: list[Any], remote: list[Any]) -> dict[str, Any] | None:
    for s in tcp_sockets(family):
        if s["local"] == local and s["remote"] == remote:
            return s
    return None


def state_of(local: list[Any], remote: list[Any]) -> dict[str, Any]:
    """The TCP state of the socket (local, remote). An IPv4 pair not found among the AF_INET sockets is looked
    for among the AF_INET6 ones with v4-mapped addresses: a dual-stack listener (``::`` without
    IPV6_V6ONLY) accepts IPv4 connections as AF_INET6 sockets."""
    here, port, there, rport = str(local[0]), int(local[1]), str(remote[0]), int(remote[1])
    if ":" in here:
        s = _find(socket.AF_INET6, [here, port], [there, rport])
    else:
        s = _find(socket.AF_INET, [here, port], [there, rport]) or _find(
            socket.AF_INET6, [v4_mapped(here), port], [v4_mapped(there), rport]
        )
    if s is None:
        return {"state": "CLOSED", "linux": "(no socket)", "timer": 0, "timer_ms": 0, "retrans": 0}
    linux, rfc = LINUX_STATES.get(s["state_num"], (str(s["state_num"]), f"state {s['state_num']}"))
    return {"state": rfc, "linux": linux, "timer": s["timer"], "timer_ms": s["expires_ms"], "retrans": s["retrans"]}


WILDCARDS = ("", "0.0.0.0", "::")


class Agent:
    def __init__(self, out: Any, addrs: list[str] | None = None) -> None:
        """`addrs`: the only addresses sockets may bind to, at most one of each family (none: any)."""
        self.addrs = {ipaddress.ip_address(a).version: ipaddress.ip_address(a).compressed for a in addrs or []}
        self.out = out
        self.lock = threading.Lock()
        self.socks: dict[int, socket.socket] = {}
        self.next_sock = 1

    def answer(self, msg: dict[str, Any]) -> None:
        msg["time"] = time.time()
        with self.lock:
            self.out.write(json.dumps(msg) + "\n")
            self.out.flush()

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
        ls.settimeout(float(req.get("timeout", 10)))
        c, peer = ls.accept()
        c.settimeout(None)
        return {"sock": self.register(c), "peer": list(peer[:2])}

    def cmd_connect(self, req: dict[str, Any]) -> dict[str, Any]:
        s = socket.socket(socket.AF_INET6 if ":" in req["addr"] else socket.AF_INET, socket.SOCK_STREAM)
        sid = self.register(s)
        for name, value in req.get("options", {}).items():
            self._setopt(s, name, value)
        if req.get("local_port"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.bind_address("", 6 if ":" in req["addr"] else 4), int(req["local_port"])))
        s.connect((req["addr"], int(req["port"])))
        return {"sock": sid, "local": list(s.getsockname()[:2])}

    def cmd_send(self, req: dict[str, Any]) -> dict[str, Any]:
        data = str(req.get("data", "")).encode()
        self.sock(req).sendall(data)
        return {"sent": len(data)}

    def cmd_recv(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        s.settimeout(float(req.get("timeout", 5)))
        try:
            data = s.recv(int(req.get("max", 65536)))
        finally:
            s.settimeout(None)
        return {"data": data.decode(errors="replace"), "eof": data == b""}

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
        if name == "SO_LINGER":
            on, seconds = value if isinstance(value, list) else [1, int(value)]
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", int(on), int(seconds)))
            return
        if name not in SOCKOPTS:
            raise AgentError(f"unknown option {name!r} (known: SO_LINGER, {', '.join(SOCKOPTS)})")
        level, opt = SOCKOPTS[name]
        s.setsockopt(level, opt, int(value))

    def cmd_setsockopt(self, req: dict[str, Any]) -> dict[str, Any]:
        s = self.sock(req)
        for name, value in req.get("options", {}).items():
            self._setopt(s, name, value)
        return {}

    def cmd_state(self, req: dict[str, Any]) -> dict[str, Any]:
        return state_of(req["local"], req["remote"])

    def cmd_tcp_info(self, req: dict[str, Any]) -> dict[str, Any]:
        raw = self.sock(req).getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        state, ca_state, retransmits, probes, backoff = struct.unpack_from("=BBBBB", raw, 0)
        rto_us, ato_us, snd_mss, rcv_mss = struct.unpack_from("=IIII", raw, 8)
        linux, rfc = LINUX_STATES.get(state, (str(state), str(state)))
        return {
            "state": rfc,
            "linux": linux,
            "retransmits": retransmits,
            "probes": probes,
            "backoff": backoff,
            "rto_us": rto_us,
            "ato_us": ato_us,
            "snd_mss": snd_mss,
            "rcv_mss": rcv_mss,
        }

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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="The target agent: JSON-lines commands on stdin, answers on stdout.")
    ap.add_argument("--addr", action="append", default=[], help="an address sockets may bind to (default: any)")
    agent = Agent(sys.stdout, ap.parse_args(argv).addr)
    agent.answer({"id": None, "ok": True, "ready": True, "kernel": os.uname().release})
    for line in sys.stdin:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
