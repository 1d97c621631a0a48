"""The TCP options a connection agrees on in its handshake: window scale and timestamps (RFC 7323), and ECN
(RFC 3168), which is agreed by flags.

:func:`negotiate` reads the peer's SYN when a listener takes it (§3.10.7.2 third): each option is used only when
the SYN offered it and the profile has it (RFC 7323 §2.2, §3.2: "only if" the option "was received in the
initial <SYN>"; RFC 3168 §6.1.1: an ECN-setup SYN, ECE and CWR, gets an ECN-setup SYN-ACK, ECE alone). The
segments of the connection then carry them (:meth:`~.tcb.Tcb.segment`); the peer's window field is scaled on
every segment but a SYN (:func:`send_window`, RFC 7323 §2.3).

Timestamps: TS.Recent is the TSval to echo (:func:`heard`, RFC 7323 §4.3), and a SYN that meets TIME-WAIT with a
TSval newer than it opens a new connection (:func:`newer_timestamp`, RFC 6191 §2, SHLD-4). The model does not
implement PAWS (RFC 7323 §5): no shipped case sends an old timestamp.

The model's own SYN (an active OPEN) offers only the MSS, so the options are agreed only by a passive OPEN.
"""

from __future__ import annotations

from ..segment import Segment, seq_diff
from .tcb import State, Tcb

#: RFC 7323 §2.3: "the shift count ... MUST be limited to 14".
MAX_SHIFT = 14


def negotiate(tcb: Tcb, syn: Segment) -> None:
    """The options of the peer's SYN that the connection will use."""
    p = tcb.profile
    shift = syn.option("wscale")
    if isinstance(shift, int) and p.window_scale is not None:
        tcb.snd_shift, tcb.rcv_shift = min(shift, MAX_SHIFT), p.window_scale
    stamp = syn.option("timestamp")
    if p.timestamps and isinstance(stamp, tuple | list) and len(stamp) == 2:
        tcb.ts_ok, tcb.ts_recent = True, int(stamp[0])
    tcb.ecn_ok = p.ecn and "E" in syn.flags and "C" in syn.flags


def send_window(tcb: Tcb, seg: Segment, window: int) -> int:
    """SND.WND from the window field `window` of a segment that is not a SYN: scaled by the peer's shift (RFC
    7323 §2.3), a 32-bit number (§3.1, REC-1); in 16 bits under the deviation that keeps it so."""
    scaled = window << tcb.snd_shift
    return scaled & 0xFFFF if tcb.profile.window_16_bit else scaled


def heard(tcb: Tcb, seg: Segment) -> None:
    """An acceptable segment arrived: RFC 7323 §4.3 (2), TS.Recent <- SEG.TSval when it is not older and the
    segment starts at or before RCV.NXT (Last.ACK.sent)."""
    stamp = seg.option("timestamp")
    if not tcb.ts_ok or not isinstance(stamp, tuple | list) or len(stamp) != 2:
        return
    if seq_diff(int(stamp[0]), tcb.ts_recent) >= 0 and seq_diff(seg.seq, tcb.rcv_nxt) <= 0:
        tcb.ts_recent = int(stamp[0])


def reopens(tcb: Tcb, seg: Segment) -> bool:
    """RFC 6191 §2 outside Linux's timewait socks (:mod:`.minisocks` applies it there): a SYN that meets TIME-WAIT
    with a newer timestamp is honoured, "creating a connection in the SYN-RECEIVED state", whatever its sequence
    number. Without timestamps the model takes RFC 9293's sequence-number test (MAY-2) only in Linux's path."""
    syn = "S" in seg.flags and not set(seg.flags) & set("RA")
    return tcb.state is State.TIME_WAIT and syn and newer_timestamp(tcb, seg)


def newer_timestamp(tcb: Tcb, syn: Segment) -> bool:
    """RFC 6191 §2: the connection used timestamps and the SYN's TSval is greater than TS.Recent."""
    stamp = syn.option("timestamp")
    if not (tcb.profile.rfc6191 and tcb.ts_ok) or not isinstance(stamp, tuple | list) or len(stamp) != 2:
        return False
    return seq_diff(int(stamp[0]), tcb.ts_recent) > 0
