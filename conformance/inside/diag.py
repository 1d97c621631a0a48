"""What the agent reads of the target's TCP: every socket's state through sock_diag (inet_diag), and a socket's
``struct tcp_info``. Standard library only (it runs in the target with the agent); Linux.
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any


class AgentError(Exception):
    """A request the agent cannot serve as asked: answered as a ``bad request``."""


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

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2


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


def tcp_info(s: socket.socket) -> dict[str, Any]:
    """The fields of Linux's ``struct tcp_info`` the protocol names (``tcp_info``)."""
    raw = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    state, _ca_state, retransmits, probes, backoff = struct.unpack_from("=BBBBB", raw, 0)
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
