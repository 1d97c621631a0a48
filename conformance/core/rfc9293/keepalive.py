"""Keep-alives (RFC 9293 §3.8.4) and the per-connection user timeout (§3.8.3 R2, §3.10.8), as socket options.

§3.8.4: "Implementers MAY include 'keep-alives' in their TCP implementations (MAY-5) ... [a probe] generally
contains SEG.SEQ = SND.NXT-1 and may or may not contain one garbage octet of data. If keep-alives are included, the
application MUST be able to turn them on or off for each TCP connection (MUST-24), and they MUST default to off
(MUST-25). Keep-alive packets MUST only be sent when no sent data is outstanding, and no data or acknowledgment
packets have been received for the connection within an interval (MUST-26). This interval MUST be configurable
(MUST-27) and MUST default to no less than two hours (MUST-28). ... it MUST NOT interpret failure to respond to any
specific probe as a dead connection (MUST-29). An implementation SHOULD send a keep-alive segment with no data
(SHLD-12)".

The model's keep-alive follows Linux's ``tcp_keepalive_timer`` (net/ipv4/tcp_timer.c), whose knobs are the socket
options SO_KEEPALIVE, TCP_KEEPIDLE (the interval of MUST-27), TCP_KEEPINTVL (between unanswered probes) and
TCP_KEEPCNT (how many go unanswered before the connection is reset): the probe is an ACK at SND.UNA-1 without data
(``tcp_write_wakeup``; SND.UNA = SND.NXT, no data being outstanding); any ACK the connection takes counts as
"received" and resets the count of unanswered probes (``tcp_ack``: ``icsk_probes_out = 0``); after TCP_KEEPCNT
unanswered probes (or, with a user timeout, once it has passed since the last segment heard) the connection is
reset, <SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK> (``tcp_send_active_reset``), and the application told ETIMEDOUT.

The defaults (:data:`DEFAULTS`) are Linux's (Documentation/networking/ip-sysctl.rst: tcp_keepalive_time 7200 s,
tcp_keepalive_intvl 75 s, tcp_keepalive_probes 9), which meet RFC 9293's: off, and an idle of two hours.
"""

from __future__ import annotations

from .tcb import State, Tcb

#: Socket options of the model and their defaults, with the document of each.
DEFAULTS: dict[str, int] = {
    "SO_KEEPALIVE": 0,  # §3.8.4 MUST-25: off
    "TCP_KEEPIDLE": 7200,  # s; MUST-28: at least two hours (Linux tcp_keepalive_time)
    "TCP_KEEPINTVL": 75,  # s; Linux tcp_keepalive_intvl
    "TCP_KEEPCNT": 9,  # Linux tcp_keepalive_probes
    "TCP_USER_TIMEOUT": 0,  # ms, 0: none (Linux tcp(7); RFC 9293 §3.10.8 leaves the default to the stack)
}
#: The states in which the keep-alive timer runs (Linux: not CLOSE, SYN-SENT; a timewait sock has none).
KEEPING = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.CLOSING, State.LAST_ACK})


def value(tcb: Tcb, name: str) -> int:
    """The connection's value of option `name` (its default unless set)."""
    return int(tcb.sockopts.get(name, DEFAULTS[name]))


def set_options(tcb: Tcb, options: dict[str, int], now: float) -> None:
    """setsockopt: keep the values; (re)start the keep-alive timer as Linux does (``tcp_set_keepalive``: the
    idle from now; ``tcp_sock_set_keepidle_locked``: the idle counted from the last segment heard)."""
    was_on = bool(value(tcb, "SO_KEEPALIVE"))
    tcb.sockopts.update(options)
    if "TCP_USER_TIMEOUT" in options:
        ms = value(tcb, "TCP_USER_TIMEOUT")
        tcb.user_timeout = ms / 1000 if ms else tcb.profile.user_timeout
    if not value(tcb, "SO_KEEPALIVE"):
        tcb.keep_deadline = None
    elif not was_on:
        tcb.keep_deadline = now + value(tcb, "TCP_KEEPIDLE")
    elif "TCP_KEEPIDLE" in options:
        tcb.keep_deadline = max(now, tcb.last_heard + value(tcb, "TCP_KEEPIDLE"))


def heard(tcb: Tcb, now: float) -> None:
    """An ACK was taken (§3.10.7.4 fifth): the connection is not idle, and a probe was answered."""
    tcb.last_heard = now
    tcb.keep_probes = 0


def expire(tcb: Tcb, now: float) -> str | None:
    """The keep-alive timer expired: "probe", "reset" (the connection is dead), or None (nothing to send); the
    timer is set again unless the connection is reset."""
    idle, elapsed = value(tcb, "TCP_KEEPIDLE"), now - tcb.last_heard
    if tcb.state not in KEEPING or tcb.queue or tcb.pending:  # MUST-26: not while data is outstanding
        tcb.keep_deadline = now + idle
        return None
    if elapsed < idle - 1e-9:
        tcb.keep_deadline = tcb.last_heard + idle
        return None
    ms = value(tcb, "TCP_USER_TIMEOUT")
    dead = elapsed >= ms / 1000 and tcb.keep_probes > 0 if ms else tcb.keep_probes >= value(tcb, "TCP_KEEPCNT")
    if dead:
        tcb.keep_deadline = None
        return "reset"
    tcb.keep_probes += 1
    tcb.keep_deadline = now + value(tcb, "TCP_KEEPINTVL")
    return "probe"
