"""Frames to segments and back: Scapy as the reference, a struct codec on the hot path.

Scapy builds and dissects every frame correctly, but at a price that matters
here: on this machine it took about 1.2 ms to build a SYN-ACK's answer and
0.45 ms to dissect a segment, on the capture thread that serves every dialogue.
A reaction (the target's segment in, ours out) cost both, and the issue's goal
is 2 ms at p99 with many dialogues at once. So the wire uses

* :func:`encode` and :func:`decode`: plain ``struct`` code for the frames the
  tool meets all the time (Ethernet + IPv4 without options or IPv6 without
  extension headers + TCP with the usual options), tens of microseconds each;
* :func:`to_frame` and :func:`to_segment`: Scapy, for everything else (an
  unusual option, IP options, fragments, extension headers), and as the
  reference the fast path is tested against: ``tests/test_codec.py`` checks,
  over thousands of random segments and frames, that :func:`encode` gives the
  bytes Scapy builds and :func:`decode` the segment Scapy's dissection gives.

A frame the fast path is not sure of is handed to Scapy, never guessed at. The TCP options, in each of these
forms, are :mod:`conformance.wire.tcp_options`'s.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import replace
from typing import Any

from ..core.segment import (
    FLAG_ORDER,
    ICMP_ERRORS,
    IcmpError,
    IpHeader,
    Segment,
    canonical_flags,
    octets_after_eol,
)
from .tcp_options import from_scapy, options_bytes, parse_options, raw_options, to_scapy

ETH_IPV4, ETH_IPV6 = b"\x08\x00", b"\x86\xdd"
PROTO_TCP, PROTO_ICMP, PROTO_ICMPV6 = 6, 1, 58
#: What Scapy puts in the fields a segment does not set (IPv4 id 1, TTL / hop limit 64).
IP_ID, TTL = 1, 64

_FLAG_BITS = {ch: 1 << i for i, ch in enumerate(FLAG_ORDER)}  # F=0x01 ... C=0x80
_FLAGS_OF = ["".join(ch for i, ch in enumerate(FLAG_ORDER) if b >> i & 1) for b in range(256)]
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")


# --- Scapy: the reference, and the fallback ------------------------------------------------------


def to_segment(pkt: Any) -> Segment | None:
    """Convert a Scapy Ether/IP/TCP or Ether/IPv6/TCP packet; None for anything else."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    if TCP not in pkt:
        return None
    if IP in pkt:
        ip = pkt[IP]
        body = None if ip.len is None else ip.len - ip.ihl * 4
        extra: dict[str, object] = {"ttl": ip.ttl, "ip_id": ip.id, "tos": ip.tos}
        if ip.ihl is not None and ip.ihl > 5:  # the option octets as they came (core.ipfields reads a route)
            extra["ip_options"] = bytes(ip)[20 : ip.ihl * 4]
    elif IPv6 in pkt:
        ip = pkt[IPv6]
        body = ip.plen  # assumes no extension headers before TCP (none are sent to us here)
        extra = {"hlim": ip.hlim, "tclass": ip.tc}
    else:
        return None
    tcp = pkt[TCP]
    payload = bytes(tcp.payload)
    if body is not None:  # drop Ethernet padding of short frames
        payload = payload[: max(0, body - tcp.dataofs * 4)]
    chk = tcp.chksum
    ok = checksum_ok(bytes(pkt.original)) if getattr(pkt, "original", None) else None
    return Segment(
        src=ip.src,
        dst=ip.dst,
        sport=tcp.sport,
        dport=tcp.dport,
        seq=tcp.seq,
        ack=tcp.ack,
        # The low eight bits: the reserved ones (Scapy's N, now AccECN's AE) are not flags of ours.
        flags=canonical_flags(str(tcp.flags).replace("N", "")),
        window=tcp.window,
        payload=payload,
        options=from_scapy(tcp.options),
        time=float(pkt.time),
        checksum_ok=ok if chk is not None else None,
        extra=extra,
        urgptr=tcp.urgptr,
        # Scapy's options stop at an EOL: the octets after it are read from the header itself (MUST-69)
        after_eol=octets_after_eol(bytes(tcp)[20 : tcp.dataofs * 4]) if ("EOL", None) in tcp.options else None,
    )


def to_frame(seg: Segment, our_mac: str, target_mac: str) -> Any:
    """Build the Scapy frame for a segment we send (options of unknown kinds are left out; raw option bytes
    are written as they are; ``checksum_ok=False`` gives a wrong TCP checksum, see :func:`spoil`)."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    raw = raw_options(seg)
    tcp = TCP(
        sport=seg.sport,
        dport=seg.dport,
        seq=seg.seq,
        ack=seg.ack,
        flags=seg.flags or 0,
        window=seg.window,
        urgptr=seg.urgptr,
        options=[] if raw is not None else to_scapy(seg.options),
    )
    if raw is not None:  # Scapy builds well-formed options only: the header's bytes go in front of the payload
        tcp.dataofs = (20 + len(raw)) // 4
    network = IPv6(src=seg.src, dst=seg.dst) if ":" in seg.dst else _scapy_ip(seg.src, seg.dst, seg.ip)
    frame = Ether(src=our_mac, dst=target_mac) / network / tcp
    if seg.payload or raw:
        frame = frame / ((raw or b"") + seg.payload)
    if seg.ip is not None and _source_routed(seg.ip.options):
        # Scapy sums the pseudo-header over a source route's last hop whatever its pointer; ours is complete, so
        # the IP destination is the final one (RFC 9293 §3.1) and the sum is made here
        wire = bytes(frame)
        ihl = (wire[14] & 0x0F) * 4
        tcp_octets = wire[14 + ihl : 14 + ihl + 16] + b"\0\0" + wire[14 + ihl + 18 :]
        frame[TCP].chksum = internet_checksum(wire[26:34] + b"\0\x06" + len(tcp_octets).to_bytes(2, "big") + tcp_octets)
    if seg.checksum_ok is False:
        frame[TCP].chksum = spoil(Ether(bytes(frame))[TCP].chksum)
    return frame


def _source_routed(options: bytes) -> bool:
    """Whether IP option octets hold a loose or strict source route (types 131, 137), walking them (RFC 791)."""
    i = 0
    while i < len(options) and options[i] != 0:
        if options[i] in (131, 137):
            return True
        i += 1 if options[i] == 1 else max(options[i + 1] if i + 1 < len(options) else 0, 2)
    return False


def spoil(checksum: int) -> int:
    """A wrong checksum in place of the right one: its lowest bit flipped. This changes the ones' complement
    sum by one, which never gives an equivalent value (0x0000 and 0xFFFF both mean zero; one apart they are not)."""
    return checksum ^ 1


def _scapy_ip(src: str, dst: str, ip: IpHeader | None) -> Any:
    """Scapy's IPv4 header with the fields a case set (the reference :func:`encode` is tested against)."""
    from scapy.layers.inet import IP

    if ip is None:
        return IP(src=src, dst=dst)
    fields: dict[str, Any] = {"src": src, "dst": dst}
    for name in ("ttl", "tos", "id"):
        if getattr(ip, name) is not None:
            fields[name] = getattr(ip, name)
    if ip.options:
        fields["options"] = ip.options  # raw octets, already padded (Scapy dissects them)
    return IP(**fields)


def icmp_frame(error: IcmpError, our_mac: str, target_mac: str) -> Any:
    """Scapy's frame for an ICMP error we send (the reference :func:`encode_icmp` is tested against)."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.l2 import Ether

    return (
        Ether(src=our_mac, dst=target_mac)
        / IP(src=error.src, dst=error.dst)
        / ICMP(type=error.type, code=error.code)
        / quote(error.quoted)
    )


def scapy_decode(frame: bytes, time: float) -> Segment | None:
    """:func:`to_segment` of a raw frame, dissected by Scapy."""
    import scapy.layers.inet  # noqa: F401 - registers IP/TCP under Ether
    import scapy.layers.inet6  # noqa: F401
    from scapy.layers.l2 import Ether

    try:
        pkt = Ether(frame)
    except Exception:  # a frame Scapy cannot dissect (its socket's recv() would give Raw): not a segment
        return None
    pkt.time = time
    return to_segment(pkt)


# --- checksums -----------------------------------------------------------------------------------


def ones_sum(data: bytes) -> int:
    """The 16-bit ones' complement sum of `data` (RFC 1071), zero-padded to an even length."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum_ok(frame: bytes) -> bool | None:
    """Whether the TCP checksum of an Ethernet/IPv4 or IPv6/TCP frame is right (RFC 9293 §3.1).

    Computed over the raw bytes as captured (a re-dissection with Scapy cost 1 ms a
    packet); None when the frame is not one of those.
    """
    if len(frame) < 14:
        return None
    ethertype = frame[12:14]
    if ethertype == ETH_IPV4 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        total = int.from_bytes(frame[16:18], "big")
        tcp = frame[14 + ihl : 14 + total]
        pseudo = frame[26:34] + b"\0\x06" + len(tcp).to_bytes(2, "big")
    elif ethertype == ETH_IPV6 and len(frame) >= 54 and frame[20] == PROTO_TCP:
        plen = int.from_bytes(frame[18:20], "big")
        tcp = frame[54 : 54 + plen]
        pseudo = frame[22:54] + len(tcp).to_bytes(4, "big") + b"\0\0\0\x06"
    else:
        return None
    return ones_sum(pseudo + tcp) == 0xFFFF


def internet_checksum(data: bytes) -> int:
    """The checksum field for `data` (with its checksum field zeroed): RFC 1071."""
    return ~ones_sum(data) & 0xFFFF


# --- the fast path -------------------------------------------------------------------------------


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _ipv4_header(src: bytes, dst: bytes, proto: int, body: int, ip: IpHeader | None) -> bytes:
    """An IPv4 header (RFC 791) for `body` octets of `proto`, with the fields a case set and its checksum."""
    opts = ip.options if ip is not None else b""
    ttl = ip.ttl if ip is not None and ip.ttl is not None else TTL
    tos = ip.tos if ip is not None and ip.tos is not None else 0
    ident = ip.id if ip is not None and ip.id is not None else IP_ID
    ihl = 5 + len(opts) // 4
    header = _IPV4.pack(0x40 | ihl, tos, ihl * 4 + body, ident, 0, ttl, proto, 0, src, dst) + opts
    return header[:10] + internet_checksum(header).to_bytes(2, "big") + header[12:]


#: An ICMP error carries at most this much of the datagram it quotes: the whole ICMP datagram within 576
#: octets (RFC 1812 §4.3.2.3).
QUOTE_MAX = 576 - 20 - 8


def quote(seg: Segment) -> bytes:
    """The datagram an ICMP error about `seg` quotes (RFC 792: its IP header and at least 64 bits of its
    data; as much as fits here): `seg` re-encoded with the TTL, TOS and ID it was captured with."""
    ip = IpHeader(ttl=_int(seg.extra.get("ttl")), tos=_int(seg.extra.get("tos")), id=_int(seg.extra.get("ip_id")))
    frame = encode(replace(seg, ip=ip, checksum_ok=None), "00:00:00:00:00:00", "00:00:00:00:00:00")
    return frame[14 : 14 + QUOTE_MAX]


def _int(value: object) -> int | None:
    return value if type(value) is int else None


def encode_icmp(error: IcmpError, our_mac: str, target_mac: str) -> bytes:
    """The frame of an ICMP error (RFC 792) we send about a segment of the target's: type, code, an unused
    word of zeros, and :func:`quote` of the segment. IPv4 only."""
    body = bytes([error.type, error.code, 0, 0, 0, 0, 0, 0]) + quote(error.quoted)
    body = body[:2] + internet_checksum(body).to_bytes(2, "big") + body[4:]
    src, dst = socket.inet_aton(error.src), socket.inet_aton(error.dst)
    return _mac(target_mac) + _mac(our_mac) + ETH_IPV4 + _ipv4_header(src, dst, PROTO_ICMP, len(body), None) + body


def encode(seg: Segment, our_mac: str, target_mac: str) -> bytes:
    """The frame for a segment we send: the bytes ``bytes(to_frame(...))`` gives, without Scapy. A segment
    that stands for an ICMP error we send (``extra['icmp']``) is that error's frame (:func:`encode_icmp`)."""
    error = seg.extra.get("icmp")
    if isinstance(error, IcmpError):
        return encode_icmp(error, our_mac, target_mac)
    opts = options_bytes(seg.options)
    if opts is None or set(seg.flags) - set(FLAG_ORDER):
        return bytes(to_frame(seg, our_mac, target_mac))
    flags = 0
    for ch in seg.flags:
        flags |= _FLAG_BITS[ch]
    doff = (20 + len(opts)) // 4
    tcp = _TCP.pack(seg.sport, seg.dport, seg.seq, seg.ack, doff << 4, flags, seg.window, 0, seg.urgptr)
    tcp += opts + seg.payload
    eth = _mac(target_mac) + _mac(our_mac)
    if ":" in seg.dst:
        src, dst = socket.inet_pton(socket.AF_INET6, seg.src), socket.inet_pton(socket.AF_INET6, seg.dst)
        pseudo = src + dst + len(tcp).to_bytes(4, "big") + b"\0\0\0\x06"
        chk = internet_checksum(pseudo + tcp)
        ip = _IPV6.pack(6 << 28, len(tcp), PROTO_TCP, TTL, src, dst)
        eth += ETH_IPV6
    else:
        src, dst = socket.inet_aton(seg.src), socket.inet_aton(seg.dst)
        chk = internet_checksum(src + dst + b"\0\x06" + len(tcp).to_bytes(2, "big") + tcp)
        ip = _ipv4_header(src, dst, PROTO_TCP, len(tcp), seg.ip)
        eth += ETH_IPV4
    if seg.checksum_ok is False:
        chk = spoil(chk)
    return eth + ip + tcp[:16] + chk.to_bytes(2, "big") + tcp[18:]


def decode(frame: bytes, time: float) -> Segment | None:
    """The segment in a captured frame (None when it holds no TCP segment): what Scapy's dissection
    and :func:`to_segment` give, computed with ``struct`` for the common frames."""
    if len(frame) < 14:
        return scapy_decode(frame, time)
    ethertype = frame[12:14]
    if ethertype == ETH_IPV4:
        if len(frame) < 34:
            return scapy_decode(frame, time)
        vihl, tos, total, ip_id, frag, ttl, proto, _chk, src_b, dst_b = _IPV4.unpack_from(frame, 14)
        start = 14 + (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or start < 34 or proto != PROTO_TCP or frag & 0x3FFF or total < start - 14 + 20:
            return scapy_decode(frame, time)
        end = min(len(frame), 14 + total)
        src, dst = socket.inet_ntoa(src_b), socket.inet_ntoa(dst_b)
        extra: dict[str, object] = {"ttl": ttl, "ip_id": ip_id, "tos": tos}
        if start > 34:  # IP options (RFC 791 §3.1): their octets as they came, as to_segment keeps them
            extra["ip_options"] = frame[34:start]
    elif ethertype == ETH_IPV6:
        if len(frame) < 54:
            return scapy_decode(frame, time)
        vtf, plen, nh, hlim, src_b, dst_b = _IPV6.unpack_from(frame, 14)
        if vtf >> 28 != 6 or nh != PROTO_TCP or plen < 20:
            return scapy_decode(frame, time)
        start, end = 54, min(len(frame), 54 + plen)
        src, dst = socket.inet_ntop(socket.AF_INET6, src_b), socket.inet_ntop(socket.AF_INET6, dst_b)
        extra = {"hlim": hlim, "tclass": vtf >> 20 & 0xFF}
    elif ethertype == b"\x08\x06":
        return None  # ARP
    else:
        return scapy_decode(frame, time)
    if end - start < 20:
        return scapy_decode(frame, time)
    sport, dport, seq, ack, off, flags, window, _chk, urgptr = _TCP.unpack_from(frame, start)
    doff = (off >> 4) * 4
    if doff < 20 or start + doff > end or flags >> 8:
        return scapy_decode(frame, time)
    options = parse_options(frame[start + 20 : start + doff])
    if options is None:
        return scapy_decode(frame, time)
    return Segment(
        src=src,
        dst=dst,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=_FLAGS_OF[flags],
        window=window,
        payload=frame[start + doff : end],
        options=options,
        time=time,
        checksum_ok=checksum_ok(frame),
        extra=extra,
        urgptr=urgptr,
        after_eol=octets_after_eol(frame[start + 20 : start + doff]) if ("eol", None) in options else None,
    )


# --- ICMP errors about our flows -----------------------------------------------------------------


def _quoted_tcp(ip: bytes, version: int, time: float) -> Segment | None:
    """The TCP segment an ICMP error quotes (RFC 792: the IP header and at least 8 octets; RFC 4443: as much
    as fits): addresses, ports and seq always, ack and flags when they are quoted."""
    if version == 4:
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != PROTO_TCP:
            return None
        start = (ip[0] & 0x0F) * 4
        src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    else:
        if len(ip) < 40 or ip[0] >> 4 != 6 or ip[6] != PROTO_TCP:
            return None
        start = 40
        src, dst = socket.inet_ntop(socket.AF_INET6, ip[8:24]), socket.inet_ntop(socket.AF_INET6, ip[24:40])
    tcp = ip[start:]
    if len(tcp) < 8:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", tcp)
    ack = int.from_bytes(tcp[8:12], "big") if len(tcp) >= 12 else 0
    flags = _FLAGS_OF[tcp[13]] if len(tcp) >= 14 else ""
    return Segment(src, dst, sport, dport, seq=seq, ack=ack, flags=flags, time=time)


def decode_icmp(frame: bytes, time: float) -> IcmpError | None:
    """The ICMP or ICMPv6 error in a captured frame, when it quotes a TCP segment; None for anything else
    (a TCP segment, an echo, Neighbor Discovery, an error about another protocol)."""
    ethertype = frame[12:14]
    if ethertype == ETH_IPV4 and len(frame) >= 34 and frame[23] == PROTO_ICMP and frame[14] >> 4 == 4:
        version, start = 4, 14 + (frame[14] & 0x0F) * 4
        frame = frame[: 14 + int.from_bytes(frame[16:18], "big")]  # no Ethernet padding in the quote
        src, dst = socket.inet_ntoa(frame[26:30]), socket.inet_ntoa(frame[30:34])
    elif ethertype == ETH_IPV6 and len(frame) >= 54 and frame[20] == PROTO_ICMPV6:
        version, start = 6, 54
        frame = frame[: 54 + int.from_bytes(frame[18:20], "big")]
        src, dst = socket.inet_ntop(socket.AF_INET6, frame[22:38]), socket.inet_ntop(socket.AF_INET6, frame[38:54])
    else:
        return None
    if len(frame) < start + 8 or frame[start] not in ICMP_ERRORS[version]:
        return None
    quoted = _quoted_tcp(frame[start + 8 :], version, time)
    if quoted is None:
        return None
    return IcmpError(src, dst, version, frame[start], frame[start + 1], quoted, time)
