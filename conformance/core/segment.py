"""A TCP segment as the core sees it: plain data, no Scapy.

The wire module converts Scapy packets to and from :class:`Segment`; everything
else (matching, timing, ladders) works on this type so that it can be tested
offline with scripted segments.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

#: Flag letters in canonical order (RFC 9293 §3.1, plus ECE/CWR of RFC 3168).
FLAG_ORDER = "FSRPAUEC"
FLAG_NAMES = {
    "F": "FIN",
    "S": "SYN",
    "R": "RST",
    "P": "PSH",
    "A": "ACK",
    "U": "URG",
    "E": "ECE",
    "C": "CWR",
}
SEQ_MOD = 1 << 32


def canonical_flags(letters: str) -> str:
    """Return `letters` as a set in canonical order ("AS" -> "SA")."""
    unknown = set(letters) - set(FLAG_ORDER)
    if unknown:
        raise ValueError(f"unknown TCP flag letter(s) {''.join(sorted(unknown))!r}")
    return "".join(ch for ch in FLAG_ORDER if ch in letters)


def seq_add(a: int, b: int) -> int:
    """Sequence-number addition modulo 2**32."""
    return (a + b) % SEQ_MOD


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b in sequence space, in [-2**31, 2**31)."""
    d = (a - b) % SEQ_MOD
    return d - SEQ_MOD if d >= SEQ_MOD // 2 else d


Option = tuple[str, object]


@dataclass(frozen=True)
class Segment:
    """One TCP segment with the addressing and the wire time it was seen at."""

    src: str
    dst: str
    sport: int
    dport: int
    seq: int = 0
    ack: int = 0
    flags: str = ""
    window: int = 65535
    payload: bytes = b""
    options: tuple[Option, ...] = ()
    time: float = 0.0
    #: None when unknown (a segment we build), else whether the TCP checksum was right.
    checksum_ok: bool | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def seg_len(self) -> int:
        """SEG.LEN of RFC 9293: payload octets plus one each for SYN and FIN."""
        return len(self.payload) + ("S" in self.flags) + ("F" in self.flags)

    def at(self, time: float) -> Segment:
        return replace(self, time=time)

    def option(self, kind: str) -> object | None:
        for name, value in self.options:
            if name == kind:
                return value
        return None

    def describe(self) -> str:
        flags = ".".join(FLAG_NAMES[f] for f in self.flags) or "<none>"
        return (
            f"{self.src}:{self.sport} > {self.dst}:{self.dport} {flags} "
            f"seq={self.seq} ack={self.ack} win={self.window} len={len(self.payload)}"
        )
