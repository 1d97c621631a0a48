"""The paragraphs of RFC 9293 §3.10 the model follows, one :class:`Rule` each, and the acceptability table.

Every decision of the model (a segment sent, a segment dropped, a state entered) names one of these rules, so a
test, a report or a matrix case can say which paragraph produced it. The ``ep`` of a rule is the EP-* id of
``tcp-behaviour-catalog.md`` (§1) where the catalog has one; ``section`` and ``text`` quote RFC 9293.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..segment import seq_diff


@dataclass(frozen=True)
class Rule:
    """One paragraph of RFC 9293 (or of a document it points to) the model applies."""

    key: str
    section: str
    text: str
    ep: str | None = None

    def cite(self) -> str:
        ep = f", {self.ep}" if self.ep else ""
        return f"RFC 9293 {self.section}{ep}: {self.text}"


_RULES = (
    # §3.1 the header, before any state
    Rule("checksum/bad", "§3.1", "the receiver checks the checksum (MUST-3): a wrong one drops the segment"),
    Rule("deviation", "§3.10 (a mutation)", "a deviation of the model: dropped, without the reply the document asks"),
    # §3.10.7.1 CLOSED
    Rule("closed/rst", "§3.10.7.1", "an incoming segment containing a RST is discarded", "EP-3"),
    Rule("closed/no-ack", "§3.10.7.1", "ACK bit off: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>", "EP-1"),
    Rule("closed/ack", "§3.10.7.1", "ACK bit on: <SEQ=SEG.ACK><CTL=RST>", "EP-2"),
    # §3.10.7.2 LISTEN
    Rule("listen/rst", "§3.10.7.2 first", "an incoming RST should be ignored", "EP-3"),
    Rule("listen/ack", "§3.10.7.2 second", "any ACK-bearing segment: <SEQ=SEG.ACK><CTL=RST>", "EP-4"),
    Rule("listen/syn", "§3.10.7.2 third", "SYN: RCV.NXT=SEG.SEQ+1, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>", "EP-5"),
    Rule("listen/syn-fin", "§3.10.7.2 third", "SYN with FIN: dropped (a stack's choice, Linux)", "EP-5"),
    Rule("listen/other", "§3.10.7.2 fourth", "other data or control: drop the segment", None),
    # §3.10.7.3 SYN-SENT
    Rule("syn-sent/bad-ack", "§3.10.7.3 first", "SEG.ACK =< ISS or > SND.NXT: <SEQ=SEG.ACK><CTL=RST>", "EP-17"),
    Rule("syn-sent/bad-ack-rst", "§3.10.7.3 first", "unacceptable ACK with RST: drop", "EP-17"),
    Rule("syn-sent/rst", "§3.10.7.3 second", "RST with an acceptable ACK: connection reset, CLOSED", "EP-17"),
    Rule("syn-sent/rst-no-ack", "§3.10.7.3 second", "RST without ACK (or not RCV.NXT, RFC 5961): drop", "EP-17"),
    Rule("syn-sent/synack", "§3.10.7.3 fourth", "SYN, our SYN ACKed: ESTABLISHED, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>"),
    Rule(
        "syn-sent/syn",
        "§3.10.7.3 fourth",
        "SYN without ACK: SYN-RECEIVED, <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>",
        "EP-18",
    ),
    Rule("syn-sent/other", "§3.10.7.3 fifth", "neither SYN nor RST: drop the segment", None),
    Rule("syn-received/simultaneous", "§3.5 Figure 7", "simultaneous open: the peer's SYN,ACK: ESTABLISHED", "EP-18"),
    Rule(
        "linux/flagless",
        "§3.10.7.4 fifth (Linux net/ipv4/tcp_input.c tcp_rcv_established)",
        "no ACK, RST or SYN: dropped before the sequence check, no reply (Linux)",
    ),
    Rule(
        "linux/end-beyond-window",
        "§3.10.7.4 first (Linux net/ipv4/tcp_input.c tcp_sequence)",
        "text ending beyond RCV.NXT+RCV.WND: not acceptable, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (Linux)",
    ),
    # Linux's mini sockets (net/ipv4/tcp_minisocks.c): the timewait sock and the request sock
    Rule(
        "linux/tw-ack",
        "§3.10.7.4 first (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process)",
        "FIN-WAIT-2 (closed by the application) out of window, or TIME-WAIT anything but a bare ACK or RST at "
        "RCV.NXT: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (Linux)",
    ),
    Rule(
        "linux/tw-drop",
        "§3.10.7.4 (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process)",
        "timewait sock: a duplicate ACK, a segment without ACK, a RST out of window: dropped, no reply (Linux)",
    ),
    Rule(
        "linux/tw-kill",
        "§3.10.7.4 second (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process)",
        "timewait sock: a RST in the window (TIME-WAIT: at RCV.NXT) removes it, no challenge ACK (Linux)",
    ),
    Rule(
        "linux/tw-reset",
        "§3.10.7.4 (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process, TCP_TW_RST)",
        "FIN-WAIT-2 (closed by the application): a SYN at or after RCV.NXT, or new data: a RST, CLOSED (Linux)",
    ),
    Rule(
        "linux/tw-fin",
        "§3.10.7.4 eighth (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process)",
        "FIN-WAIT-2 (closed by the application): the FIN at RCV.NXT, any ACK: TIME-WAIT, ACK it (Linux)",
    ),
    Rule(
        "time-wait/rfc6191",
        "§3.6.1 SHLD-4 (RFC 6191 §2)",
        "TIME-WAIT, a SYN with a timestamp newer than the last one seen: a new connection, SYN-RECEIVED",
    ),
    Rule(
        "linux/tw-syn",
        "§3.6.1 MAY-2 (Linux net/ipv4/tcp_minisocks.c tcp_timewait_state_process, TCP_TW_SYN)",
        "TIME-WAIT, a SYN beyond RCV.NXT: a new connection, ISS = SND.NXT+65537 (Linux)",
    ),
    Rule(
        "linux/req-bad-ack",
        "§3.10.7.4 fifth (Linux net/ipv4/tcp_minisocks.c tcp_check_req)",
        "SYN-RECEIVED, an ACK other than ISS+1, before the sequence check: <SEQ=SEG.ACK><CTL=RST> (Linux)",
    ),
    Rule(
        "linux/req-syn",
        "§3.10.7.4 fourth (Linux net/ipv4/tcp_minisocks.c tcp_check_req)",
        "SYN-RECEIVED (passive OPEN), a SYN in the window: a RST, the request dropped (Linux)",
    ),
    Rule(
        "linux/syn-queue-full",
        "§3.10.7.2 third (Linux net/ipv4/tcp_input.c tcp_conn_request; RFC 4987 §2.2)",
        "a SYN finds the SYN queue full, without syncookies: dropped (Linux)",
    ),
    Rule(
        "linux/accept-queue-full",
        "§3.10.7.2 third (Linux net/ipv4/tcp_input.c tcp_conn_request, sk_acceptq_is_full)",
        "a SYN finds the accept queue full: dropped (Linux)",
    ),
    Rule(
        "linux/syncookie",
        "§3.10.7.2 third (RFC 4987 §3.6; Linux tcp_conn_request, tcp_syncookies)",
        "SYN: <SEQ=cookie><ACK=RCV.NXT><CTL=SYN,ACK>, no state kept (Linux)",
        "EP-5",
    ),
    Rule(
        "linux/cookie-ack",
        "§3.10.7.2 (RFC 4987 §3.6; Linux net/ipv4/syncookies.c cookie_v4_check)",
        "an ACK for a listener whose SEG.ACK-1 is a valid cookie: the connection it encodes is made (Linux)",
    ),
    Rule(
        "linux/listen-overflow",
        "§3.10.7.4 fifth (Linux net/ipv4/tcp_minisocks.c tcp_check_req, listen_overflow)",
        "SYN-RECEIVED, the final ACK finds the accept queue full: dropped, the request kept (Linux)",
    ),
    Rule(
        "linux/listen-overflow-rst",
        "§3.10.7.4 fifth (Linux tcp_check_req, tcp_abort_on_overflow=1)",
        "SYN-RECEIVED, the final ACK finds the accept queue full: <SEQ=SEG.ACK><CTL=RST>, the request dropped",
    ),
    Rule(
        "close/data-after-close",
        "§3.6.1 (RFC 1122 §4.2.2.13)",
        "new data received after CLOSE: send a RST to show that data was lost, CLOSED",
    ),
    # §3.10.7.4 first: sequence number
    Rule("seq/unacceptable", "§3.10.7.4 first", "not acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, drop", "EP-7"),
    Rule("seq/unacceptable-rst", "§3.10.7.4 first", "not acceptable and RST: drop the segment", "EP-12"),
    Rule("seq/dup-syn", "§3.10.7.4 first", "SYN-RECEIVED, the SYN again: the SYN-ACK is sent again (Linux)", "EP-11"),
    Rule("seq/ratelimit", "§3.10.7.4 first; RFC 5961 §7", "reply to an invalid segment suppressed (rate limit)"),
    Rule("seq/out-of-order", "§3.10.7.4 first", "in window, not at RCV.NXT: held (SHLD-31), ACK RCV.NXT (MAY-13)"),
    # §3.10.7.4 second: RST
    Rule("rst/challenge", "§3.10.7.4 second 3)", "RST in window, not RCV.NXT: challenge ACK (RFC 5961 §3.2)", "EP-12"),
    Rule("rst/syn-received-passive", "§3.10.7.4 second", "SYN-RECEIVED from a passive OPEN: back to LISTEN", "EP-9"),
    Rule("rst/syn-received-active", "§3.10.7.4 second", "SYN-RECEIVED from an active OPEN: refused, CLOSED"),
    Rule("rst/reset", "§3.10.7.4 second", "RST: connection reset, enter CLOSED, delete the TCB", "EP-12"),
    Rule("rst/time-wait-1337", "RFC 1337 §3 F1", "ignore RST segments in TIME-WAIT state"),
    # §3.10.7.4 fourth: SYN
    Rule("syn/syn-received-passive", "§3.10.7.4 fourth", "SYN-RECEIVED (passive OPEN), SYN: back to LISTEN"),
    Rule("syn/challenge", "§3.10.7.4 fourth", "SYN in a synchronized state: challenge ACK (RFC 5961 §4)", "EP-13"),
    Rule("syn/reset", "§3.10.7.4 fourth; §3.5.2", "SYN in the window (RFC 793): send a reset, CLOSED", "EP-13"),
    # §3.10.7.4 fifth: ACK
    Rule("ack/off", "§3.10.7.4 fifth", "the ACK bit is off: drop the segment", None),
    Rule(
        "ack/range",
        "§3.10.7.4 fifth (RFC 5961 §5)",
        "SEG.ACK outside [SND.UNA-MAX.SND.WND, SND.NXT]: ACK, drop",
        "EP-14",
    ),
    Rule("ack/syn-received", "§3.10.7.4 fifth", "SYN-RECEIVED, SND.UNA < SEG.ACK =< SND.NXT: ESTABLISHED"),
    Rule("ack/syn-received-bad", "§3.10.7.4 fifth", "SYN-RECEIVED, unacceptable ACK: <SEQ=SEG.ACK><CTL=RST>", "EP-10"),
    Rule("ack/ahead", "§3.10.7.4 fifth", "SEG.ACK > SND.NXT: send an ACK, drop the segment", "EP-14"),
    Rule("ack/duplicate", "§3.10.7.4 fifth", "SEG.ACK =< SND.UNA: a duplicate, it can be ignored"),
    Rule("ack/new", "§3.10.7.4 fifth", "SND.UNA < SEG.ACK =< SND.NXT: SND.UNA <- SEG.ACK"),
    Rule("ack/fin-wait-1", "§3.10.7.4 fifth", "FIN-WAIT-1, our FIN acknowledged: FIN-WAIT-2"),
    Rule("ack/closing", "§3.10.7.4 fifth", "CLOSING, our FIN acknowledged: TIME-WAIT"),
    Rule("ack/last-ack", "§3.10.7.4 fifth", "LAST-ACK, our FIN acknowledged: CLOSED"),
    Rule("ack/time-wait", "§3.10.7.4 fifth", "TIME-WAIT: an ACK restarts the 2 MSL timer (Linux)", "EP-16"),
    # §3.10.7.4 seventh: text, eighth: FIN
    Rule("text/accept", "§3.10.7.4 seventh", "text: advance RCV.NXT, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>", "EP-7"),
    Rule("text/ignore", "§3.10.7.4 seventh", "CLOSE-WAIT, CLOSING, LAST-ACK, TIME-WAIT: ignore the text"),
    Rule("text/delayed", "§3.8.6.3", "text: its ACK delayed (SHLD-18), less than 0.5 s (MUST-40)"),
    Rule("delack/timeout", "§3.8.6.3", "the delayed ACK's timer: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> (MUST-40)"),
    Rule("fin/ack", "§3.10.7.4 eighth", "FIN: advance RCV.NXT over it and acknowledge it", "EP-15"),
    Rule("fin/time-wait", "§3.10.7.4 eighth", "TIME-WAIT, FIN again: ACK it, restart the 2 MSL timer", "EP-16"),
    # §3.10.1-5 user calls
    Rule("open/active", "§3.10.1", "active OPEN: <SEQ=ISS><CTL=SYN>, SYN-SENT"),
    Rule("send/data", "§3.10.2", "SEND: segmentize, send with ACK = RCV.NXT"),
    Rule("close/fin", "§3.10.4", "CLOSE: form a FIN segment and send it"),
    Rule("abort/rst", "§3.10.5", "ABORT: <SEQ=SND.NXT><CTL=RST>, CLOSED"),
    # §3.10.8 timeouts
    Rule("timeout/retransmit", "§3.10.8; RFC 6298 §5.4-5.5", "send the front of the queue again, back off the RTO"),
    Rule("timeout/give-up", "§3.10.8; §3.8.3", "retransmissions exhausted (R2): delete the TCB, CLOSED"),
    Rule("timeout/user", "§3.10.8 USER TIMEOUT", "flush all queues, delete the TCB, CLOSED"),
    Rule("timeout/time-wait", "§3.10.8 TIME-WAIT TIMEOUT", "delete the TCB, enter CLOSED"),
    Rule(
        "timeout/fin-wait-2",
        "§3.6 (Linux net/ipv4/tcp.c tcp_close, tcp_fin_timeout)",
        "an orphaned FIN-WAIT-2 times out: deleted without a segment, CLOSED (Linux)",
    ),
    # §3.8.6 the send window: the persist timer
    Rule("persist/probe", "§3.8.6.1", "zero window: probe it (MUST-36), the interval doubling (SHLD-30)"),
    Rule("keepalive/probe", "§3.8.4", "idle: a probe <SEQ=SND.NXT-1><CTL=ACK>, no data (MAY-5, SHLD-12)"),
    Rule("keepalive/reset", "§3.8.4 (Linux tcp_keepalive_timer)", "probes unanswered: <CTL=RST,ACK>, CLOSED"),
    Rule("persist/override", "§3.8.6.2.1 (4)", "the override timeout: send what the usable window takes (MUST-38)"),
)

#: Every rule, by key.
RULES: dict[str, Rule] = {r.key: r for r in _RULES}


def _eq(seq: int, end: int, nxt: int, wnd: int) -> bool:
    return seq == nxt


def _starts_in(seq: int, end: int, nxt: int, wnd: int) -> bool:
    return 0 <= seq_diff(seq, nxt) < wnd


def _never(seq: int, end: int, nxt: int, wnd: int) -> bool:
    return False


def _starts_or_ends_in(seq: int, end: int, nxt: int, wnd: int) -> bool:
    return _starts_in(seq, end, nxt, wnd) or 0 <= seq_diff(end, nxt) < wnd


#: RFC 9293 §3.10.7.4 Table 6, "Segment Acceptability Tests": (SEG.LEN > 0, RCV.WND > 0) -> test.
ACCEPTABILITY = {
    (False, False): _eq,  # SEG.SEQ = RCV.NXT
    (False, True): _starts_in,  # RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
    (True, False): _never,  # not acceptable
    (True, True): _starts_or_ends_in,  # ... or RCV.NXT =< SEG.SEQ+SEG.LEN-1 < RCV.NXT+RCV.WND
}


def acceptable(seq: int, seg_len: int, rcv_nxt: int, rcv_wnd: int) -> bool:
    """The acceptability test of RFC 9293 §3.10.7.4 (Table 6) for a segment at `seq` of `seg_len`."""
    test = ACCEPTABILITY[(seg_len > 0, rcv_wnd > 0)]
    return test(seq, (seq + seg_len - 1) % (1 << 32), rcv_nxt, rcv_wnd)


def in_window(seq: int, rcv_nxt: int, rcv_wnd: int) -> bool:
    """RFC 5961 §3.2: is `seq` in the current receive window (RCV.NXT =< seq < RCV.NXT+RCV.WND)?"""
    return 0 <= seq_diff(seq, rcv_nxt) < max(rcv_wnd, 1)
