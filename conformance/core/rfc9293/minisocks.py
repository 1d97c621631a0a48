"""Linux's mini sockets: where Linux does not run RFC 9293 §3.10.7.4 on a full TCB (net/ipv4/tcp_minisocks.c).

Two states of a Linux connection are small structures with checks of their own, not the full SEGMENT ARRIVES:

- the **timewait sock** (:func:`timewait`, ``tcp_timewait_state_process``): TIME-WAIT, and FIN-WAIT-2 once the
  application has closed the socket (``tcp_rcv_state_process`` hands an orphaned FIN-WAIT-1 socket whose FIN is
  acknowledged to ``tcp_time_wait(sk, TCP_FIN_WAIT2, ...)``): an orphan's FIN-WAIT-2 (after close(), not a
  shutdown: :attr:`~.tcb.Tcb.orphan`), under :attr:`~.profile.ModelProfile.timewait_socks`;
- the **request sock** of SYN-RECEIVED after a passive OPEN (:func:`request_bad_ack`, ``tcp_check_req``), which
  checks the ACK before the sequence number.

Each function follows its Linux function's order; every decision names a ``linux/*`` rule of :mod:`.rules`.
"""

from __future__ import annotations

from ..segment import Segment, seq_add, seq_diff
from . import options
from .arrive import Out, close, invalid_reply, reset_for, start_time_wait
from .tcb import State, Tcb

#: Linux's ISS for a connection reopened from TIME-WAIT: SND.NXT of the old one plus this (tcp_timewait_state_process:
#: ``tw_snd_nxt + 65535 + 2``).
REOPEN_ISS_OFFSET = 65535 + 2


def is_timewait(tcb: Tcb) -> bool:
    """Is this connection a Linux timewait sock under its profile? FIN-WAIT-2 only for an orphan (close(), not a
    shutdown: tcp_rcv_state_process calls tcp_time_wait(sk, TCP_FIN_WAIT2, ...) only when SOCK_DEAD is set)."""
    fin_wait_2 = tcb.state is State.FIN_WAIT_2 and tcb.orphan
    return tcb.profile.timewait_socks and (tcb.state is State.TIME_WAIT or fin_wait_2)


def in_window(seq: int, end: int, nxt: int, wnd: int) -> bool:
    """Linux's tcp_in_window (tcp_minisocks.c): starts at RCV.NXT, or overlaps the window, or is empty at its edge.
    `end` is SEG.SEQ+SEG.LEN (SYN and FIN included)."""
    if seq == nxt:
        return True
    right = seq_add(nxt, wnd)
    if seq_diff(end, nxt) > 0 and seq_diff(seq, right) < 0:
        return True
    return seq == right and seq == end


def timewait(tcb: Tcb, seg: Segment, now: float, out: Out) -> bool:
    """A segment for a timewait sock. True when it is a SYN the listener must take (TCP_TW_SYN, MAY-2)."""
    if tcb.state is State.FIN_WAIT_2:
        _fin_wait_2(tcb, seg, now, out)
        return False
    return _time_wait(tcb, seg, now, out)


def _fin_wait_2(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """``tw_substate == TCP_FIN_WAIT2``: "just repeat all the checks of tcp_rcv_state_process()", in its order."""
    p, flags = tcb.profile, seg.flags
    end = seq_add(seg.seq, seg.seg_len)
    if not in_window(seg.seq, end, tcb.rcv_nxt, tcb.rcv_wnd):
        _oow_ack(tcb, seg, now, out)
    elif "R" in flags:
        out.note("linux/tw-kill")
        close(tcb, "reset")
    elif "S" in flags and seq_diff(seg.seq, tcb.rcv_nxt) >= 0:
        out.send(reset_for(seg, "linux/tw-reset", p))
        close(tcb, "reset")
    elif "A" not in flags or seq_diff(end, tcb.rcv_nxt) <= 0 or end == seg.seq:
        out.note("linux/tw-drop")  # a duplicate ACK, or no ACK
    elif "F" not in flags or end != seq_add(tcb.rcv_nxt, 1):
        out.send(reset_for(seg, "linux/tw-reset", p))  # new data after the close
        close(tcb, "reset")
    else:  # the FIN at RCV.NXT, whatever its ACK: true TIME-WAIT
        tcb.rcv_nxt, tcb.fin_received = end, True
        start_time_wait(tcb, now)
        if p.ack_fin:
            out.send(tcb.ack_now("linux/tw-fin"))
        else:
            out.note("linux/tw-fin")


def _time_wait(tcb: Tcb, seg: Segment, now: float, out: Out) -> bool:
    """True TIME-WAIT: a bare ACK or a RST at RCV.NXT is taken silently; a new SYN may reopen; anything else is
    ACKed (a RST elsewhere dropped)."""
    p, flags = tcb.profile, seg.flags
    if seg.seq == tcb.rcv_nxt and (seg.seg_len == 0 or "R" in flags):
        if "R" in flags and not p.rfc1337:
            out.note("linux/tw-kill")  # TIME-WAIT assassination (tcp_rfc1337=0)
            close(tcb, "reset")
            return False
        out.note("rst/time-wait-1337" if "R" in flags else "linux/tw-drop")
        if "R" not in flags and p.time_wait_restart_on_ack:
            start_time_wait(tcb, now)
        return False
    newer = seq_diff(seg.seq, tcb.rcv_nxt) > 0 or options.newer_timestamp(tcb, seg)  # RFC 6191 §2, SHLD-4
    new_syn = "S" in flags and not set(flags) & set("RA") and newer
    if new_syn and p.time_wait_reopen:
        return True
    if "R" in flags:
        out.note("linux/tw-drop")
        return False
    if "A" in flags and p.time_wait_restart_on_ack:
        start_time_wait(tcb, now)
    _oow_ack(tcb, seg, now, out)
    return False


def _oow_ack(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """tcp_timewait_check_oow_rate_limit: an ACK, rate-limited unless the segment takes sequence space without a
    SYN (tcp_oow_rate_limited: "data packets without SYNs are not likely part of an ACK loop", tested as
    ``seq != end_seq``, and end_seq counts a FIN: a retransmitted FIN is always acknowledged)."""
    if seg.seg_len and "S" not in seg.flags:
        out.send(tcb.ack_now("linux/tw-ack"))
    else:
        invalid_reply(tcb, now, out, tcb.ack_now("linux/tw-ack"))


def reopen_iss(tcb: Tcb) -> int:
    """The ISS of the connection a SYN reopens from TIME-WAIT (never 0)."""
    return seq_add(tcb.snd_nxt, REOPEN_ISS_OFFSET) or 1


def request_bad_ack(tcb: Tcb, seg: Segment, out: Out) -> bool:
    """tcp_check_req: in SYN-RECEIVED of a passive OPEN, an ACK other than ISS+1 goes to the listener before any
    other check, which answers <SEQ=SEG.ACK><CTL=RST> (a RST it answers with nothing, and that is left to the RST
    check: Linux 6.18 drops the request on a RST at RCV.NXT whatever its ACK, observed by the matrix). True when
    the segment was dealt with."""
    p = tcb.profile
    if not (p.synrcvd_ack_first and tcb.state is State.SYN_RECEIVED and tcb.passive):
        return False
    if "A" not in seg.flags or "R" in seg.flags or seg.ack == seq_add(tcb.iss, 1):
        return False
    if p.rst_for_bad_ack_in_syn_received:
        out.send(reset_for(seg, "linux/req-bad-ack", p))
    else:
        out.note("deviation")
    return True
