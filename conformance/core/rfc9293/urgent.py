"""The urgent mechanism (RFC 9293 §3.8.5, MUST-30 to MUST-33, MUST-62; RFC 6093), both ways.

Theory of operation
-------------------
**Sending.** A SEND with the urgent flag sets SND.UP to the sequence number after its data (§3.10.2: "SND.UP <-
SND.NXT" once the buffer is segmentized; Linux ``tcp_mark_urg``: ``snd_up = write_seq``). While SND.UP is ahead
of SND.UNA (Linux ``tcp_urg_mode``), every segment that starts before SND.UP carries URG and the urgent pointer
SND.UP - SEG.SEQ (:func:`pointer`): "the urgent pointer MUST point to the sequence number of the octet following
the urgent data" (MUST-62), and urgent data of any length spans segments (MUST-31). As Linux's
``__tcp_transmit_skb``, a pointer that does not fit in 16 bits is sent as 0xFFFF while SND.NXT is that close,
else the segment goes without URG.

**Receiving**, the sixth check of §3.10.7.4 (:func:`check_urg`, ESTABLISHED and FIN-WAIT-1/2): RCV.UP <-
max(RCV.UP, SEG.SEQ + SEG.UP), the end of the urgent data. The model keeps it as Linux ``tcp_check_urg`` does:
a pointer to urgent data the application has read already, behind RCV.NXT, or not beyond the one known is
ignored. The *mark* is where a read stops (§3.9.1.2: data after the urgent data "cannot be delivered to the user
in the same buffer with preceding urgent data unless the boundary is clearly marked") and where ``sockatmark``
says the application is (MUST-33):

- RFC 9293 (the profile's ``urgent_oob`` off): the urgent data stays in the stream, the mark is RCV.UP, and
  there is no octet to read apart (RFC 6093 §5 recommends urgent data in line: ``recv(MSG_OOB)`` is EINVAL);
- Linux (``urgent_oob``, ``tcp_stdurg=0``): the mark is the *last* urgent octet, RCV.UP - 1 (``urg_seq``),
  which is taken out of the stream (``tcp_recvmsg_locked`` skips it) and read apart with MSG_OOB
  (``tcp_recv_urg``), one octet, unless SO_OOBINLINE is set. Urgent data is *pending* (``poll`` POLLPRI,
  ``tcp_poll``: ``urg_data & TCP_URG_VALID``; the asynchronous notice of MUST-32) once that octet has arrived
  (``tcp_urg`` copies it from the segment that carries it) and until it is read.

The application's position in the stream (Linux ``copied_seq``) is RCV.NXT less what it has not read.
"""

from __future__ import annotations

from typing import Protocol

from ..segment import Segment, seq_add, seq_diff
from .profile import ModelProfile

#: The largest urgent pointer field (16 bits, §3.1).
MAX_FIELD = 0xFFFF


class Connection(Protocol):
    """What this module reads and keeps of a connection (a :class:`~.tcb.Tcb`)."""

    profile: ModelProfile
    snd_una: int
    snd_nxt: int
    snd_up: int | None
    pending: bytes
    rcv_nxt: int
    received: bytes
    fin_received: bool
    rcv_up: int | None
    urgent_octet: bytes | None
    urgent_read: bool
    oob_inline: bool


# ---------------------------------------------------------------- sending
def mark_send(conn: Connection) -> None:
    """SEND with the urgent flag (§3.10.2), its data queued: SND.UP after the last octet of it."""
    if conn.profile.urgent_send:
        conn.snd_up = seq_add(conn.snd_nxt, len(conn.pending))


def urgent_mode(conn: Connection) -> bool:
    """Is urgent data sent and not acknowledged yet (Linux ``tcp_urg_mode``: SND.UP != SND.UNA)?"""
    return conn.snd_up is not None and seq_diff(conn.snd_up, conn.snd_una) > 0


def pointer(conn: Connection, flags: str, seq: int, length: int) -> int | None:
    """The urgent pointer of an outgoing segment with `flags` at `seq` with `length` octets of text (None: no URG;
    never on a SYN or a RST, which Linux builds apart)."""
    up, p = conn.snd_up, conn.profile
    if up is None or set(flags) & set("SR") or not urgent_mode(conn) or seq_diff(up, seq) <= 0:
        return None  # not in urgent mode, or the segment is past the urgent data
    if not p.urgent_every_segment and seq_diff(up, seq_add(seq, length)) > 0:
        return None  # the deviation: only the segment where the urgent data ends is marked
    offset = seq_diff(up, seq) - (0 if p.urgent_pointer_after else 1)
    if offset <= MAX_FIELD:
        return offset
    return MAX_FIELD if seq_diff(seq_add(seq, MAX_FIELD), conn.snd_nxt) > 0 else None


# ---------------------------------------------------------------- receiving
def copied(conn: Connection) -> int:
    """The sequence number of the next octet the application reads (Linux ``copied_seq``)."""
    return seq_add(conn.rcv_nxt, -(len(conn.received) + int(conn.fin_received)))


def mark(conn: Connection) -> int | None:
    """Where reads stop: RCV.UP, or the last urgent octet with ``urgent_oob`` (Linux ``urg_seq``); None: no
    urgent data known."""
    if conn.rcv_up is None:
        return None
    return seq_add(conn.rcv_up, -1) if conn.profile.urgent_oob else conn.rcv_up


def check_urg(conn: Connection, seg: Segment) -> None:
    """§3.10.7.4 sixth, "check the URG bit", for a segment that passed the first five checks."""
    p = conn.profile
    if "U" in seg.flags and p.urgent_receive:
        up = seg.urgptr if p.urgent_any_length else min(seg.urgptr, len(seg.payload))
        # RFC 9293 (and Linux tcp_stdurg=0, "if (ptr && !stdurg) ptr--"): SEG.SEQ + SEG.UP is after the urgent data
        end = seq_add(seg.seq, up + (0 if p.urgent_pointer_after or not up else 1))
        _new_pointer(conn, end)
    at = mark(conn)
    if at is not None and p.urgent_oob and conn.urgent_octet is None:
        start = seq_add(seg.seq, int("S" in seg.flags))
        offset = seq_diff(at, start)
        if 0 <= offset < len(seg.payload):  # tcp_urg: the urgent octet is in this segment
            conn.urgent_octet = seg.payload[offset : offset + 1]


def _new_pointer(conn: Connection, end: int) -> None:
    """RCV.UP <- max(RCV.UP, `end`), by Linux ``tcp_check_urg``'s rules."""
    last = seq_add(end, -1)
    if seq_diff(copied(conn), last) > 0 or seq_diff(last, conn.rcv_nxt) < 0:
        return  # urgent data already read, or behind RCV.NXT: "do not replay urg ptr"
    if conn.rcv_up is not None and seq_diff(end, conn.rcv_up) <= 0:
        return  # not in advance of the pointer known: the user is not signalled again (§3.10.7.4 sixth)
    if _held_at_head(conn) and copied(conn) != conn.rcv_nxt:
        conn.received = conn.received[1:]  # the old urgent octet is not read as data (tcp_check_urg: copied_seq++)
    conn.rcv_up, conn.urgent_octet, conn.urgent_read = end, None, False


def _inline(conn: Connection) -> bool:
    return not conn.profile.urgent_oob or conn.oob_inline


def _held_at_head(conn: Connection) -> bool:
    """Is the next octet to read the urgent octet that is read apart (so an ordinary read skips it)?"""
    return mark(conn) == copied(conn) and not _inline(conn) and bool(conn.received)


def read(conn: Connection, limit: int) -> bytes:
    """One ordinary read of at most `limit` octets (Linux ``tcp_recvmsg_locked``): it stops at the mark when it
    has read anything; at the mark, the urgent octet read apart is skipped and the read goes on past it."""
    if _held_at_head(conn):
        conn.received = conn.received[1:]
        _passed(conn)
    at = mark(conn)
    size = min(len(conn.received), limit)
    if at is not None:
        ahead = seq_diff(at, copied(conn))
        if ahead > 0:
            size = min(size, ahead)
    data, conn.received = conn.received[:size], conn.received[size:]
    _passed(conn)
    return data


def _passed(conn: Connection) -> None:
    """The application has read past the mark: no urgent data any more (Linux ``urg_data = 0``)."""
    at = mark(conn)
    if at is not None and seq_diff(copied(conn), at) > 0:
        conn.rcv_up, conn.urgent_octet, conn.urgent_read = None, None, False


def read_oob(conn: Connection) -> bytes | str:
    """``recv(MSG_OOB)`` (Linux ``tcp_recv_urg``): the urgent octet, b"" at the end of the stream, or the errno
    name: EINVAL when there is none to read apart, EAGAIN when it is announced but has not arrived."""
    if _inline(conn) or conn.rcv_up is None or conn.urgent_read:
        return "EINVAL"
    if conn.urgent_octet is not None:
        conn.urgent_read = True
        return conn.urgent_octet
    return b"" if conn.fin_received else "EAGAIN"


def pending(conn: Connection) -> bool:
    """Urgent data the application has not read (``poll`` POLLPRI, MUST-32)."""
    if conn.rcv_up is None or conn.urgent_read or not conn.profile.urgent_notify:
        return False
    if conn.profile.urgent_oob:
        return conn.urgent_octet is not None
    return seq_diff(conn.rcv_up, copied(conn)) > 0


def readable(conn: Connection) -> bool:
    """``poll`` POLLIN: an ordinary read would return something (the urgent octet read apart does not count)."""
    return len(conn.received) > int(_held_at_head(conn)) or conn.fin_received


def at_mark(conn: Connection) -> bool:
    """``sockatmark`` (Linux SIOCATMARK: ``urg_data && urg_seq == copied_seq``), how the application learns
    whether urgent data remains to be read (MUST-33)."""
    return conn.profile.urgent_at_mark and mark(conn) == copied(conn)
