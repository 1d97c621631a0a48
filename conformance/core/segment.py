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
#: An option kind of a segment we send whose value is the option bytes themselves, written as they are (an
#: unknown kind, an illegal length): ``("raw", b"\xfd\x04\xab\xcd")``. A decoded segment never has one.
RAW_OPTION = "raw"


def octets_after_eol(raw: bytes) -> bytes | None:
    """The octets that follow an EOL option (kind 0) in the TCP option octets `raw`, up to the header's end; None
    when no EOL is met. Walks the options as Scapy's dissector does (a length below 2 counts as 2), so both
    decoders find the same EOL."""
    i = 0
    while i < len(raw):
        if raw[i] == 0:
            return raw[i + 1 :]
        if raw[i] == 1:
            i += 1
            continue
        i += max(raw[i + 1] if i + 1 < len(raw) else 0, 2)
    return None


@dataclass(frozen=True)
class IpHeader:
    """IPv4 header fields of a segment we send, where a case sets them (None: what every segment carries, TTL 64,
    TOS 0, ID 1); `options` are the IP options' octets, padded to a multiple of four (RFC 791 §3.1)."""

    ttl: int | None = None
    tos: int | None = None
    id: int | None = None
    options: bytes = b""


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
    #: None when unknown (a segment we build), else whether the TCP checksum was right. A segment we build with
    #: False is sent with a wrong checksum on purpose (a ``send`` with ``checksum: bad``, MUST-3).
    checksum_ok: bool | None = None
    extra: dict[str, object] = field(default_factory=dict, compare=False)
    #: IPv4 header fields a case set on a segment we send (None: the usual header).
    ip: IpHeader | None = None
    #: The urgent pointer (RFC 9293 §3.1): an offset from seq, read only when URG is set.
    urgptr: int = 0
    #: The header octets after an End of Option List option, which RFC 9293 §3.1 says are zero padding
    #: (MUST-69); None when the segment has no EOL (see :func:`octets_after_eol`).
    after_eol: bytes | None = None

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


#: ICMP (RFC 792) and ICMPv6 (RFC 4443) error types, by IP version, and the names of their codes.
ICMP_ERRORS: dict[int, dict[int, tuple[str, dict[int, str]]]] = {
    4: {
        3: (
            "destination unreachable",
            {0: "net unreachable", 1: "host unreachable", 2: "protocol unreachable", 3: "port unreachable",
             4: "fragmentation needed", 9: "net administratively prohibited", 10: "host administratively prohibited",
             13: "communication administratively prohibited"},
        ),
        4: ("source quench", {}),
        11: ("time exceeded", {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"}),
        12: ("parameter problem", {}),
    },
    6: {
        1: (
            "destination unreachable",
            {0: "no route to destination", 1: "communication administratively prohibited",
             2: "beyond scope of source address", 3: "address unreachable", 4: "port unreachable",
             5: "source address failed ingress/egress policy", 6: "reject route to destination"},
        ),
        2: ("packet too big", {}),
        3: ("time exceeded", {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"}),
        4: ("parameter problem", {}),
    },
}  # fmt: skip


@dataclass(frozen=True)
class IcmpError:
    """An ICMP or ICMPv6 error about one of our flows: who sent it, its type and code, and the segment it
    quotes (ours: its addresses, ports and seq; flags and ack when the quote is long enough). The wire routes
    it to the dialogue that owns the quoted segment's source port, like a segment of that flow."""

    src: str  # the host that sent the error (the target, or a router on the way)
    dst: str
    version: int  # 4: ICMP, 6: ICMPv6
    type: int
    code: int
    quoted: Segment
    time: float = 0.0
    kind = "icmp"

    @property
    def unreachable(self) -> bool:
        """A destination unreachable error (ICMP type 3, ICMPv6 type 1): the host refuses the flow itself. Other
        errors (time exceeded, packet too big, source quench) say nothing about what the target answers."""
        return self.type == (3 if self.version == 4 else 1)

    @property
    def type_name(self) -> str:
        """``ICMP destination unreachable``, ``ICMPv6 packet too big``."""
        name = ICMP_ERRORS.get(self.version, {}).get(self.type, (f"type {self.type}", {}))[0]
        return f"ICMP{'v6' if self.version == 6 else ''} {name}"

    @property
    def text(self) -> str:
        """``port unreachable``, ``time exceeded`` or ``destination unreachable (code 7)``."""
        name, codes = ICMP_ERRORS.get(self.version, {}).get(self.type, (f"type {self.type}", {}))
        if self.code in codes:
            return codes[self.code]
        return name if not self.code and not codes else f"{name} (code {self.code})"

    @property
    def label(self) -> str:
        return f"ICMP{'v6' if self.version == 6 else ''} {self.text}"

    def describe(self) -> str:
        q = self.quoted
        return (
            f"{self.src} > {self.dst} {self.label} about {q.src}:{q.sport} > {q.dst}:{q.dport} "
            f"{'.'.join(FLAG_NAMES[f] for f in q.flags) or '<flags not quoted>'} seq={q.seq}"
        )

    def as_segment(self) -> Segment:
        """The error as a trace entry: from its sender to our port, no flags, the error in ``extra['icmp']``."""
        q = self.quoted
        return Segment(self.src, self.dst, q.dport, q.sport, seq=q.seq, flags="", time=self.time, extra={"icmp": self})
