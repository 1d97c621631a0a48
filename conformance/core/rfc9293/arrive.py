"""SEGMENT ARRIVES, RFC 9293 §3.10.7: what one endpoint does with one segment, in each state.

Read it next to the RFC. :func:`closed` is §3.10.7.1, :func:`listen` §3.10.7.2, :func:`syn_sent` §3.10.7.3 and
:func:`other` §3.10.7.4 with its eight checks in the RFC's order (first the sequence number, second RST, fourth
SYN, fifth ACK, sixth URG in :mod:`.urgent`, seventh the text, eighth FIN; the third, security, changes nothing here).
Every decision is recorded in an :class:`Out` with the :class:`~.rules.Rule` that made it; the choices RFC 9293
leaves open are the :class:`~.profile.ModelProfile`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from ..segment import Segment, seq_add, seq_diff
from . import delack, options
from .profile import ModelProfile
from .rules import RULES, Rule, acceptable, in_window
from .tcb import SYNCHRONIZED, Emitted, Sent, State, Tcb
from .urgent import check_urg


class Out:
    """What one event produced: the segments to send, and every rule applied (drops included), in order."""

    def __init__(self) -> None:
        self.sent: list[Emitted] = []
        self.log: list[tuple[Rule, Segment | None]] = []

    def send(self, emitted: Emitted) -> None:
        self.sent.append(emitted)
        self.log.append((emitted.rule, emitted.segment))

    def note(self, key: str) -> None:
        self.log.append((RULES[key], None))


def reset_for(seg: Segment, rule: str, profile: ModelProfile) -> Emitted:
    """The RST that answers `seg` (§3.10.7.1, §3.5.2): <SEQ=SEG.ACK><CTL=RST> when it has an ACK, else
    <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    if "A" in seg.flags:
        flags, seq, ack = "R", seg.ack, 0
    else:
        flags, seq, ack = "RA", 0, seq_add(seg.seq, seg.seg_len + profile.ack_offset)
    rst = Segment(src=seg.dst, dst=seg.src, sport=seg.dport, dport=seg.sport, seq=seq, ack=ack, flags=flags, window=0)
    return Emitted(rst, RULES[rule])


def window(seg: Segment, profile: ModelProfile) -> int:
    """SEG.WND, an unsigned 16-bit number (§3.1, MUST-1); signed under the deviation that reads it so."""
    return seg.window - 0x10000 if profile.window_signed and seg.window >= 0x8000 else seg.window


def closed(seg: Segment, profile: ModelProfile, out: Out) -> None:
    """§3.10.7.1: no TCB. A RST is discarded; anything else gets a RST that the sender accepts."""
    if "R" in seg.flags:
        out.note("closed/rst")
    elif not profile.rst_for_closed:
        out.note("closed/rst")  # the deviation: treated as if nothing could be said
    elif not seg.flags and not profile.rst_for_closed_flagless:
        out.note("deviation")
    else:
        out.send(reset_for(seg, "closed/ack" if "A" in seg.flags else "closed/no-ack", profile))


def listen(seg: Segment, profile: ModelProfile, new_tcb: Callable[[], Tcb], out: Out) -> Tcb | None:
    """§3.10.7.2: a listener. Returns the new connection (SYN-RECEIVED) when a SYN opens one."""
    if "R" in seg.flags:  # first
        out.note("listen/rst")
        return None
    if "A" in seg.flags:  # second
        if profile.rst_in_listen:
            out.send(reset_for(seg, "listen/ack", profile))
        else:
            out.note("listen/other")
        return None
    if "S" not in seg.flags:  # fourth
        out.note("listen/other")
        return None
    if "F" in seg.flags and profile.synfin_dropped:
        out.note("listen/syn-fin")
        return None
    tcb = new_tcb()  # third: the SYN
    options.negotiate(tcb, seg)
    tcb.irs, tcb.rcv_nxt = seg.seq, seq_add(seg.seq, 1)
    tcb.snd_una, tcb.snd_nxt = tcb.iss, seq_add(tcb.iss, 1)
    tcb.snd_wnd = tcb.max_snd_wnd = window(seg, profile)
    mss = seg.option("mss")
    honoured = isinstance(mss, int) and profile.honour_peer_mss  # MUST-16; else MUST-15
    tcb.send_mss = mss if isinstance(mss, int) and honoured else profile.default_send_mss
    tcb.rcv_wnd = tcb.window_left()
    if (seg.payload or "F" in seg.flags) and profile.syn_data_accepted:
        # "any other control or text should be queued for processing later" (in SYN-RECEIVED)
        tcb.out_of_order[tcb.rcv_nxt] = (seg.payload, "F" in seg.flags)
    tcb.queue.append(Sent(tcb.iss, "SA"))
    out.send(Emitted(tcb.segment("SA", tcb.iss, tcb.rcv_nxt), RULES["listen/syn"]))
    return tcb


def syn_sent(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """§3.10.7.3: our SYN is out."""
    if "A" in seg.flags:  # first
        if seq_diff(seg.ack, tcb.iss) <= 0 or seq_diff(seg.ack, tcb.snd_nxt) > 0:
            if "R" in seg.flags:
                out.note("syn-sent/bad-ack-rst")
            elif not tcb.profile.rst_for_bad_ack_in_syn_sent:
                out.note("deviation")
            else:
                out.send(reset_for(seg, "syn-sent/bad-ack", tcb.profile))
            return
    if "R" in seg.flags:  # second
        if "A" in seg.flags:
            out.note("syn-sent/rst")
            close(tcb, "refused")
        else:
            out.note("syn-sent/rst-no-ack")
        return
    if "S" not in seg.flags:  # fifth
        out.note("syn-sent/other")
        return
    tcb.irs, tcb.rcv_nxt = seg.seq, seq_add(seg.seq, 1)  # fourth
    tcb.snd_wnd = tcb.max_snd_wnd = window(seg, tcb.profile)
    tcb.snd_wl1, tcb.snd_wl2 = seg.seq, seg.ack
    if "A" in seg.flags:
        acked(tcb, seg.ack, now)
        tcb.state = State.ESTABLISHED
        out.send(tcb.ack_now("syn-sent/synack"))
        if seg.payload or "F" in seg.flags:
            text_and_fin(tcb, seg, now, out)
        return
    if not tcb.profile.simultaneous_open:
        out.note("deviation")
        return
    tcb.state = State.SYN_RECEIVED
    tcb.queue = [Sent(tcb.iss, "SA", first_sent=now, retransmitted=True)]
    out.send(Emitted(tcb.segment("SA", tcb.iss, tcb.rcv_nxt), RULES["syn-sent/syn"]))


def other(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """§3.10.7.4: SYN-RECEIVED and the synchronized states, the checks in the RFC's order."""
    p = tcb.profile
    tcb.rcv_wnd = tcb.window_left()
    if _simultaneous_open(tcb, seg):
        out.note("syn-received/simultaneous")
        tcb.state = State.ESTABLISHED
        tcb.snd_wnd, tcb.snd_wl1, tcb.snd_wl2 = options.send_window(tcb, seg, window(seg, p)), seg.seq, seg.ack
        acked(tcb, seg.ack, now)
        return
    if p.flagless_dropped and tcb.state in SYNCHRONIZED - {State.TIME_WAIT} and not set(seg.flags) & set("ARS"):
        out.note("linux/flagless")
        return
    if _ends_beyond_window(tcb, seg):
        invalid_reply(tcb, now, out, tcb.ack_now("linux/end-beyond-window"))
        return
    if not acceptable(seg.seq, seg.seg_len, tcb.rcv_nxt, tcb.rcv_wnd):  # first
        _unacceptable(tcb, seg, now, out)
        return
    options.heard(tcb, seg)
    if "R" in seg.flags and seg.payload and not p.rst_with_data_accepted:
        out.note("deviation")
        return
    if "R" in seg.flags:  # second
        _rst(tcb, seg, now, out)
        return
    if "S" in seg.flags:  # fourth
        if tcb.state is State.SYN_RECEIVED and tcb.passive and p.synrcvd_syn_resets:
            out.send(reset_for(seg, "linux/req-syn", p))  # tcp_check_req: embryonic_reset
            close(tcb, "listen")
        elif tcb.state is State.SYN_RECEIVED and tcb.passive:
            out.note("syn/syn-received-passive")
            close(tcb, "listen")
        elif p.rfc5961:
            invalid_reply(tcb, now, out, tcb.ack_now("syn/challenge"), challenge=True)
        else:
            out.send(reset_for(seg, "syn/reset", p))
            close(tcb, "reset")
        return
    if "A" not in seg.flags:  # fifth
        out.note("ack/off")
        return
    if _ack(tcb, seg, now, out):
        if tcb.state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2):
            check_urg(tcb, seg)  # sixth, the URG bit (:mod:`.urgent`); in the other states "ignore the URG"
        if _data_after_close(tcb, seg):
            out.send(reset_for(seg, "close/data-after-close", p))
            close(tcb, "reset")
            return
        text_and_fin(tcb, seg, now, out)  # seventh and eighth


def _ends_beyond_window(tcb: Tcb, seg: Segment) -> bool:
    """Linux's tcp_sequence: text that starts in the window but ends beyond it (a FIN may stick out) is not
    acceptable while the receive queue holds unread data."""
    p = tcb.profile
    if not p.end_beyond_window_unacceptable or not seg.payload or tcb.state is State.TIME_WAIT:
        return False
    if not tcb.received and not tcb.fin_unread:
        return False
    end = seq_add(seg.seq, len(seg.payload))
    return seq_diff(end, seq_add(tcb.rcv_nxt, tcb.rcv_wnd)) > 0 and in_window(seg.seq, tcb.rcv_nxt, tcb.rcv_wnd)


def _data_after_close(tcb: Tcb, seg: Segment) -> bool:
    """RFC 9293 §3.6.1: after our application's close() (FIN-WAIT-1/2; CLOSING and LAST-ACK for text before
    RCV.NXT), new text (or a FIN past RCV.NXT) is data that will never be read (Linux: TCPABORTONDATA). Linux's
    tcp_rcv_state_process checks ``sk->sk_shutdown & RCV_SHUTDOWN``: set by close() or shutdown(SHUT_RD), not by
    shutdown(SHUT_WR), whose FIN-WAIT-1/2 still takes data; in CLOSING and LAST-ACK the peer's FIN set it."""
    if not tcb.profile.rst_on_data_after_close or seg.seg_len == 0:
        return False
    fin = "F" in seg.flags
    new = seq_diff(seq_add(seg.seq, seg.seg_len - int(fin)), tcb.rcv_nxt) > 0
    if tcb.state in (State.FIN_WAIT_1, State.FIN_WAIT_2):
        return new and tcb.rcv_shutdown
    return tcb.state in (State.CLOSING, State.LAST_ACK) and seq_diff(seg.seq, tcb.rcv_nxt) < 0 and new


def _simultaneous_open(tcb: Tcb, seg: Segment) -> bool:
    """§3.5 Figure 7, line 6: in SYN-RECEIVED after an active OPEN, the peer's SYN,ACK (its SYN again, at IRS,
    with an ACK of ours) completes the handshake; Table 6 would call it old."""
    return (
        tcb.state is State.SYN_RECEIVED
        and not tcb.passive
        and "S" in seg.flags
        and "A" in seg.flags
        and "R" not in seg.flags
        and seg.seq == tcb.irs
        and tcb.acked_by(seg.ack)
    )


def _unacceptable(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    p = tcb.profile
    if "R" in seg.flags:
        out.note("seq/unacceptable-rst")
        return
    if tcb.state is State.TIME_WAIT and "F" in seg.flags and seq_add(seg.seq, seg.seg_len) == tcb.rcv_nxt:
        out.send(tcb.ack_now("fin/time-wait"))  # the remote FIN again: ACK it, restart the 2 MSL timer
        start_time_wait(tcb, now)
        return
    dup_syn = "S" in seg.flags and "A" not in seg.flags and seg.seq == tcb.irs
    if tcb.state is State.SYN_RECEIVED and dup_syn and not p.answer_dup_syn:
        out.note("deviation")
        return
    if tcb.state is State.SYN_RECEIVED and dup_syn and p.dup_syn_resends_synack:
        out.send(Emitted(tcb.segment("SA", tcb.iss, tcb.rcv_nxt), RULES["seq/dup-syn"]))
        return
    invalid_reply(tcb, now, out, tcb.ack_now("seq/unacceptable"))
    if tcb.state is State.TIME_WAIT and "A" in seg.flags and p.time_wait_restart_on_ack:
        start_time_wait(tcb, now)


def _rst(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """Second, the RST bit (RFC 5961 §3.2 when the profile implements it)."""
    p = tcb.profile
    if p.rfc5961 and seg.seq != tcb.rcv_nxt:
        if in_window(seg.seq, tcb.rcv_nxt, tcb.rcv_wnd):
            invalid_reply(tcb, now, out, tcb.ack_now("rst/challenge"), challenge=True)
        else:
            out.note("seq/unacceptable-rst")
        return
    if tcb.state is State.SYN_RECEIVED:
        if not p.rst_in_syn_received:
            out.note("listen/other")
        elif tcb.passive:
            out.note("rst/syn-received-passive")
            close(tcb, "listen")
        else:
            out.note("rst/syn-received-active")
            close(tcb, "refused")
    elif tcb.state is State.TIME_WAIT and p.rfc1337:
        out.note("rst/time-wait-1337")
    else:
        out.note("rst/reset")
        close(tcb, "reset")


def _ack(tcb: Tcb, seg: Segment, now: float, out: Out) -> bool:
    """Fifth, the ACK field. True when processing goes on to the text and FIN."""
    p, st = tcb.profile, tcb.state
    if st in SYNCHRONIZED and p.rfc5961_ack_check:
        low = (tcb.snd_una - tcb.max_snd_wnd) % (1 << 32)
        if seq_diff(seg.ack, low) < 0 or seq_diff(seg.ack, tcb.snd_nxt) > 0:
            invalid_reply(tcb, now, out, tcb.ack_now("ack/range"))
            return False
    if st is State.SYN_RECEIVED:
        if not tcb.acked_by(seg.ack):
            if p.rst_for_bad_ack_in_syn_received:
                out.send(reset_for(seg, "ack/syn-received-bad", p))
            else:
                out.note("deviation")
            return False
        out.note("ack/syn-received")
        tcb.state = State.ESTABLISHED
        tcb.snd_wnd, tcb.snd_wl1, tcb.snd_wl2 = options.send_window(tcb, seg, window(seg, p)), seg.seq, seg.ack
        acked(tcb, seg.ack, now)
        return True
    if seq_diff(seg.ack, tcb.snd_nxt) > 0:
        invalid_reply(tcb, now, out, tcb.ack_now("ack/ahead"))
        return False
    our_fin_acked = False
    if tcb.acked_by(seg.ack):
        out.note("ack/new")
        our_fin_acked = acked(tcb, seg.ack, now)
    else:
        out.note("ack/duplicate")
    if seq_diff(seg.ack, tcb.snd_una) >= 0 and (
        seq_diff(tcb.snd_wl1, seg.seq) < 0 or (tcb.snd_wl1 == seg.seq and seq_diff(tcb.snd_wl2, seg.ack) <= 0)
    ):
        tcb.snd_wnd, tcb.snd_wl1, tcb.snd_wl2 = options.send_window(tcb, seg, window(seg, p)), seg.seq, seg.ack
        tcb.max_snd_wnd = max(tcb.max_snd_wnd, tcb.snd_wnd)
    if st is State.FIN_WAIT_1 and our_fin_acked:
        out.note("ack/fin-wait-1")
        tcb.state = State.FIN_WAIT_2
        if p.timewait_socks:  # the timewait sock starts with no rate-limited reply (tcp_time_wait)
            tcb.last_invalid_reply = None
    elif st is State.CLOSING:
        if not our_fin_acked:
            return False  # "otherwise, ignore the segment"
        out.note("ack/closing")
        start_time_wait(tcb, now)
    elif st is State.LAST_ACK and our_fin_acked:
        out.note("ack/last-ack")
        close(tcb, "closed")
        return False
    elif st is State.TIME_WAIT and p.time_wait_restart_on_ack:
        out.note("ack/time-wait")
        start_time_wait(tcb, now)
    return True


def text_and_fin(tcb: Tcb, seg: Segment, now: float, out: Out) -> None:
    """Seventh, the segment text, and eighth, the FIN; one ACK for both (MUST-58)."""
    start = seq_add(seg.seq, 1) if "S" in seg.flags else seg.seq
    data, fin = seg.payload, "F" in seg.flags
    behind = seq_diff(tcb.rcv_nxt, start)
    if behind > 0:  # the part before RCV.NXT was received already
        if behind > len(data):
            return  # an old FIN: dealt with by the sequence check
        data, start = data[behind:], tcb.rcv_nxt
    if len(data) > tcb.rcv_wnd:  # trim what exceeds the window, the FIN with it
        data, fin = data[: tcb.rcv_wnd], False
    if not data and not fin:
        return  # a bare ACK (acceptable, §3.10.7.4 first): no text to hold or acknowledge
    if tcb.fin_received and seq_diff(start, tcb.rcv_nxt) >= 0:
        out.note("text/ignore")  # after the peer's FIN, text or a FIN beyond it "should not occur": ignored
        return
    if seq_diff(start, tcb.rcv_nxt) > 0:
        if tcb.profile.queue_out_of_order:
            tcb.out_of_order[start] = (data, fin)
        out.send(tcb.ack_now("seq/out-of-order"))
        return
    gap = bool(tcb.out_of_order)  # filling a gap is acknowledged at once (RFC 5681 §4.2)
    rule = _deliver(tcb, data, fin, now, out)
    while rule is not None and tcb.rcv_nxt in tcb.out_of_order and tcb.state is not State.CLOSED:
        rule = _deliver(tcb, *tcb.out_of_order.pop(tcb.rcv_nxt), now, out) or rule
    if rule == "fin/ack" and not tcb.profile.ack_fin:
        out.note(rule)
    elif rule == "text/accept" and not gap and not delack.take(tcb, len(data), now):
        out.note("text/delayed")
    elif rule is not None:
        out.send(tcb.ack_now(rule))


def _deliver(tcb: Tcb, data: bytes, fin: bool, now: float, out: Out) -> str | None:
    """Take in-order text and FIN at RCV.NXT; the rule of the ACK it calls for (None: no ACK)."""
    rule: str | None = None
    if data and tcb.state in (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2):
        tcb.received += data
        tcb.rcv_wnd = tcb.window_left(len(data))  # the right edge stays: RCV.WND shrinks by what RCV.NXT advances
        tcb.rcv_nxt = seq_add(tcb.rcv_nxt, len(data) + tcb.profile.ack_offset)
        rule = "text/accept"
    elif data:
        out.note("text/ignore")
    if fin and tcb.state is not State.TIME_WAIT:
        tcb.rcv_nxt = seq_add(tcb.rcv_nxt, 1)
        tcb.fin_received = tcb.fin_unread = True
        rule = "fin/ack"
        if tcb.state in (State.SYN_RECEIVED, State.ESTABLISHED):
            tcb.state = State.CLOSE_WAIT
        elif tcb.state is State.FIN_WAIT_1:
            if tcb.snd_una == tcb.snd_nxt:
                start_time_wait(tcb, now)
            else:
                tcb.state = State.CLOSING
        elif tcb.state is State.FIN_WAIT_2:
            start_time_wait(tcb, now)
    return rule


def acked(tcb: Tcb, ack: int, now: float) -> bool:
    """SND.UNA <- SEG.ACK: drop what it acknowledges from the queue, take an RTT sample (Karn: not from a
    retransmitted segment), restart or stop the timer (RFC 6298 §5.2-5.3). True when it acknowledges our FIN."""
    fin = False
    while tcb.queue and seq_diff(tcb.queue[0].end, ack) <= 0:
        sent = tcb.queue.pop(0)
        fin = fin or "F" in sent.flags
        if not sent.retransmitted:
            tcb.timer.sample(now - sent.first_sent)
        elif "S" in sent.flags:  # RFC 6298 §5.7: a SYN or SYN-ACK was lost
            tcb.timer.rto = max(tcb.timer.rto, tcb.profile.rto_fallback)
    tcb.snd_una = ack
    tcb.retries = 0
    if not any(s.retransmitted for s in tcb.queue):  # Linux tcp_any_retrans_done: the run is over
        tcb.retrans_stamp = None
    tcb.rtx_deadline = now + tcb.timer.rto if tcb.queue else None
    # §3.10.8 USER TIMEOUT: the time data may stay unacknowledged, counted again for what is left
    tcb.user_deadline = now + tcb.user_timeout if tcb.queue and tcb.user_timeout is not None else None
    return fin


def invalid_reply(tcb: Tcb, now: float, out: Out, reply: Emitted, challenge: bool = False) -> None:
    """An ACK that answers an invalid segment, at most one per ``invalid_ratelimit`` (RFC 5961 §7)."""
    p = tcb.profile
    if challenge and not p.challenge_ack:
        out.note("seq/ratelimit")
        return
    if p.invalid_ratelimit and tcb.last_invalid_reply is not None:
        if now - tcb.last_invalid_reply < p.invalid_ratelimit:
            out.note("seq/ratelimit")
            return
    tcb.last_invalid_reply = now
    out.send(reply)


def start_time_wait(tcb: Tcb, now: float) -> None:
    """Enter (or stay in) TIME-WAIT: start the 2 MSL timer, turn off the other timers."""
    if tcb.profile.timewait_socks and tcb.state not in (State.FIN_WAIT_2, State.TIME_WAIT):
        tcb.last_invalid_reply = None  # a new timewait sock: tw_last_oow_ack_time = 0 (tcp_time_wait)
    tcb.state = State.TIME_WAIT
    tcb.time_wait_deadline = now + tcb.profile.time_wait
    tcb.rtx_deadline = tcb.user_deadline = None
    tcb.queue.clear()


def close(tcb: Tcb, reason: str) -> None:
    """Enter CLOSED and delete the TCB (the host forgets it); `reason` is what the application is told."""
    tcb.state = State.CLOSED
    tcb.closed_by = reason
    tcb.rtx_deadline = tcb.user_deadline = tcb.time_wait_deadline = None
    tcb.queue.clear()
