"""Socket options and urgent-data queries of the agent's sockets: one table of the options the protocol names
(docs/agent-protocol.md, ``setsockopt`` and ``getsockopt``), how each is set and read, and SIOCATMARK.

Standard library only (it runs in the target with the agent).
"""

from __future__ import annotations

import fcntl
import socket
import struct
from typing import Any

#: Linux values of the constants Python does not name on every version (include/uapi/linux/...).
_TCP_KEEPIDLE, _TCP_KEEPINTVL, _TCP_KEEPCNT, _TCP_USER_TIMEOUT = 4, 5, 6, 18
_IPV6_UNICAST_HOPS, _IPV6_TCLASS = 16, 67
#: ioctl(SIOCATMARK): whether the read pointer is at the urgent mark (include/uapi/linux/sockios.h).
SIOCATMARK = 0x8905

#: Integer options by protocol name: (level, option) for an IPv4 socket, and for an IPv6 one when they differ.
SOCKOPTS: dict[str, tuple[int, int]] = {
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF),
    "SO_REUSEADDR": (socket.SOL_SOCKET, socket.SO_REUSEADDR),
    "SO_OOBINLINE": (socket.SOL_SOCKET, socket.SO_OOBINLINE),
    "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", _TCP_KEEPIDLE)),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", _TCP_KEEPINTVL)),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", _TCP_KEEPCNT)),
    "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", _TCP_USER_TIMEOUT)),
    # IP_TTL and IP_TOS name the IPv6 equivalents on an IPv6 socket (hop limit, traffic class): see _level.
    "IP_TTL": (socket.IPPROTO_IP, socket.IP_TTL),
    "IP_TOS": (socket.IPPROTO_IP, socket.IP_TOS),
}
_IPV6_EQUIVALENT = {
    "IP_TTL": (socket.IPPROTO_IPV6, getattr(socket, "IPV6_UNICAST_HOPS", _IPV6_UNICAST_HOPS)),
    "IP_TOS": (socket.IPPROTO_IPV6, getattr(socket, "IPV6_TCLASS", _IPV6_TCLASS)),
}
#: Every name setsockopt takes (SO_LINGER is a pair) and getsockopt reads.
NAMES = ("SO_LINGER", *SOCKOPTS)


class OptionError(ValueError):
    """An option the protocol does not name, or a value of the wrong shape: a ``bad request``."""


def _level(s: socket.socket, name: str) -> tuple[int, int]:
    if name not in SOCKOPTS:
        raise OptionError(f"unknown option {name!r} (known: {', '.join(NAMES)})")
    if s.family == socket.AF_INET6 and name in _IPV6_EQUIVALENT:
        return _IPV6_EQUIVALENT[name]
    return SOCKOPTS[name]


def set_option(s: socket.socket, name: str, value: Any) -> None:
    """setsockopt(`name`, `value`): an integer, or SO_LINGER's ``[on, seconds]`` (``seconds`` alone: on)."""
    if name == "SO_LINGER":
        on, seconds = value if isinstance(value, list) else [1, int(value)]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", int(on), int(seconds)))
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(f"option {name}: an integer, not {value!r}")
    level, opt = _level(s, name)
    s.setsockopt(level, opt, value)


def get_option(s: socket.socket, name: str) -> int | list[int]:
    """getsockopt(`name`): an integer, or SO_LINGER's ``[on, seconds]``."""
    if name == "SO_LINGER":
        on, seconds = struct.unpack("ii", s.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
        return [on, seconds]
    level, opt = _level(s, name)
    return s.getsockopt(level, opt)


def at_mark(s: socket.socket) -> bool:
    """Whether the next octet to read is the one after the urgent data (ioctl SIOCATMARK, sockatmark(3))."""
    out = fcntl.ioctl(s.fileno(), SIOCATMARK, struct.pack("i", 0))
    return bool(struct.unpack("i", out)[0])
