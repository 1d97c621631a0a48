"""TCP options in their three forms: a segment's ``(name, value)`` pairs, the header's octets, Scapy's option list.

The codec (:mod:`conformance.wire.codec`) builds and parses the common options here with ``struct``
(:func:`options_bytes`, :func:`parse_options`) and converts the rest to and from Scapy's list
(:func:`to_scapy`, :func:`from_scapy`), which stays the reference: ``tests/test_codec.py`` checks that both give
the same octets and the same options. Each function that is not sure of an option says so (None) rather than
guess: the caller hands the frame to Scapy.
"""

from __future__ import annotations

import struct
from typing import Any

from ..core.segment import RAW_OPTION, Segment

#: Scapy's option names and ours.
OPTION_NAMES = {
    "MSS": "mss",
    "WScale": "wscale",
    "SAckOK": "sackok",
    "Timestamp": "timestamp",
    "NOP": "nop",
    "EOL": "eol",
    "SAck": "sack",
}
SCAPY_NAMES = {v: k for k, v in OPTION_NAMES.items()}


def from_scapy(options: list[Any]) -> tuple[tuple[str, object], ...]:
    """Scapy's dissected option list as a segment's options (an unknown kind is ``kindN``)."""
    out: list[tuple[str, object]] = []
    for opt in options:
        name, value = opt if isinstance(opt, tuple) else (opt, None)
        if isinstance(name, int):
            out.append((f"kind{name}", value))
        else:
            out.append((OPTION_NAMES.get(name, str(name).lower()), value if value != b"" else None))
    return tuple(out)


def to_scapy(options: tuple[tuple[str, object], ...]) -> list[tuple[str, Any]]:
    """A segment's options as Scapy's option list (options of kinds Scapy does not name are left out)."""
    opts: list[tuple[str, Any]] = []
    for kind, value in options:
        scapy_name = SCAPY_NAMES.get(kind)
        if scapy_name is None:
            continue
        if kind == "sackok":
            opts.append((scapy_name, b""))
        elif kind in ("nop", "eol"):
            opts.append((scapy_name, None))
        elif kind == "timestamp":
            assert isinstance(value, tuple | list), "a timestamp option's value is (TSval, TSecr)"
            opts.append((scapy_name, tuple(value)))
        else:
            opts.append((scapy_name, value))
    return opts


def options_bytes(options: tuple[tuple[str, object], ...]) -> bytes | None:
    """The option bytes Scapy would build (padded with zeros to 32 bits); None: leave it to Scapy."""
    out = bytearray()
    for kind, value in options:
        if kind == "nop":
            out.append(1)
        elif kind == "eol":
            out.append(0)
        elif kind == "sackok":
            out += b"\x04\x02"
        elif kind == "mss" and type(value) is int and 0 <= value <= 0xFFFF:
            out += struct.pack("!BBH", 2, 4, value)
        elif kind == "wscale" and type(value) is int and 0 <= value <= 0xFF:
            out += struct.pack("!BBB", 3, 3, value)
        elif kind == "timestamp" and isinstance(value, tuple | list) and len(value) == 2:
            if not all(type(v) is int and 0 <= v <= 0xFFFFFFFF for v in value):
                return None
            out += struct.pack("!BBII", 8, 10, *value)
        elif kind == "sack" and isinstance(value, tuple) and 0 < len(value) <= 8:
            if not all(type(v) is int and 0 <= v <= 0xFFFFFFFF for v in value):
                return None
            out += struct.pack(f"!BB{len(value)}I", 5, 2 + 4 * len(value), *value)
        elif kind == RAW_OPTION and isinstance(value, bytes):
            out += value  # written as they are: an unknown kind, an illegal length
        elif kind in SCAPY_NAMES:
            return None  # a known option with a value the fast path does not build
        # any other kind: left out, as Scapy's frames do (to_scapy)
    out += b"\x00" * (-len(out) % 4)
    return bytes(out) if len(out) <= 40 else None


def raw_options(seg: Segment) -> bytes | None:
    """The option bytes of a segment that has raw options (None: it has none, Scapy builds its options)."""
    if not any(kind == RAW_OPTION for kind, _ in seg.options):
        return None
    opts = options_bytes(seg.options)
    if opts is None:
        raise ValueError(f"options {seg.options!r} do not fit in a TCP header (40 octets)")
    return opts


def parse_options(raw: bytes) -> tuple[tuple[str, object], ...] | None:
    """The options in TCP header octets, named as :func:`from_scapy` names Scapy's dissection of them; None when
    Scapy should decide."""
    out: list[tuple[str, object]] = []
    i, n = 0, len(raw)
    while i < n:
        kind = raw[i]
        if kind == 0:
            out.append(("eol", None))
            break
        if kind == 1:
            out.append(("nop", None))
            i += 1
            continue
        if i + 1 >= n:
            return None
        size = raw[i + 1]
        if size < 2 or i + size > n:
            return None
        value = raw[i + 2 : i + size]
        if kind == 2 and size == 4:
            out.append(("mss", int.from_bytes(value, "big")))
        elif kind == 3 and size == 3:
            out.append(("wscale", value[0]))
        elif kind == 4 and size == 2:
            out.append(("sackok", None))
        elif kind == 8 and size == 10:
            out.append(("timestamp", struct.unpack("!II", value)))
        elif kind == 5 and (size - 2) % 4 == 0:
            out.append(("sack", struct.unpack(f"!{(size - 2) // 4}I", value)))
        else:
            return None
        i += size
    return tuple(out)
