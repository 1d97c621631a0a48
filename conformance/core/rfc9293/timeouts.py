"""When a connection is given up: R2 as a time, an orphan's R2, retransmissions to a shrunk window, the orphaned
FIN-WAIT-2.

**R2** (RFC 9293 §3.8.3): "R1 and R2 might be measured in time units or as a count of retransmissions". The RFC
profile counts retransmissions; Linux measures time (:attr:`~.profile.ModelProfile.r2_as_time`): its
``retransmits_timed_out`` (net/ipv4/tcp_timer.c) gives up once the time since the first retransmission of the
run (``retrans_stamp``) reaches ``tcp_model_timeout(sk, tcp_retries2, TCP_RTO_MIN)``, the time ``tcp_retries2``
backoffs from TCP_RTO_MIN would take (:func:`model_timeout`; tcp_retries2=15: 924.6 s, ip-sysctl.rst). With RTOs
above TCP_RTO_MIN the connection dies at the first expiry past that time.

**An orphan** (:func:`orphan`): the application's close() makes the socket an orphan (Linux ``tcp_close`` ->
``sock_orphan``: SOCK_DEAD), a shutdown(SHUT_WR) does not: it sends the same FIN but the application still holds
the socket and reads from it. For an orphan ``tcp_write_timeout`` counts ``tcp_orphan_retries`` in place of
``tcp_retries2`` (:func:`retry_limit`, :attr:`~.profile.ModelProfile.orphan_retries`).

**A shrunk window** (§3.8.6, SHLD-17: "the sender ... SHOULD NOT time out the connection if data beyond the right
window edge is not acknowledged"): when the timer expires with SND.WND = 0 and data in flight, the retransmission
is a zero-window probe that R2 does not count (:attr:`~.profile.ModelProfile.shrunk_window_kept`). Linux's
``tcp_retransmit_timer``: "Receiver dastardly shrinks window. Our retransmits become zero probes, but we should
not timeout this connection. If the socket is an orphan, time it out": the RTO still doubles, ``tcp_write_timeout``
is not consulted, and ``tcp_rtx_probe0_timed_out`` ends the connection only when nothing was heard from the peer,
and nothing acknowledged, for 2 x TCP_RTO_MAX.

**FIN-WAIT-2** (:attr:`~.profile.ModelProfile.fin_timeout`): RFC 9293 has no timer there. Linux's ``tcp_close``
and ``tcp_rcv_state_process`` make an orphaned FIN-WAIT-2 a timewait sock that dies, silently, after
``tcp_fin_time``: tcp_fin_timeout, at least 3.5 RTO (``(rto << 2) - (rto >> 1)``). Only an orphan's
(``sock_flag(sk, SOCK_DEAD)``): a FIN-WAIT-2 after a shutdown stays a full socket with no timer until close(). The
timer is the timewait sock's (:mod:`.minisocks`), kept in :attr:`~.tcb.Tcb.time_wait_deadline` until a FIN starts
true TIME-WAIT.
"""

from __future__ import annotations

from .tcb import State, Tcb

#: Rounding slack of the fake clock's sums.
EPS = 1e-9


def model_timeout(boundary: int, rto_base: float, rto_max: float) -> float:
    """Linux tcp_model_timeout: the time `boundary` retransmissions take from `rto_base`, doubling up to
    `rto_max` (``linear_backoff_thresh = ilog2(TCP_RTO_MAX / rto_base)``)."""
    thresh = max(round(rto_max / rto_base), 1).bit_length() - 1
    if boundary <= thresh:
        return ((2 << boundary) - 1) * rto_base
    return ((2 << thresh) - 1) * rto_base + (boundary - thresh) * rto_max


def orphaned(tcb: Tcb) -> bool:
    """Has the application closed the socket with close() (Linux SOCK_DEAD)? A shutdown does not orphan it."""
    return tcb.orphan


def orphan(tcb: Tcb, now: float) -> None:
    """close(): the socket is an orphan, its receive side shut (tcp_close: ``sk->sk_shutdown = SHUTDOWN_MASK``,
    ``sock_orphan``). Already in FIN-WAIT-2 (after a shutdown), it starts the orphan's timer there (tcp_close:
    ``tcp_time_wait(sk, TCP_FIN_WAIT2, tmo)``, or the keepalive timer for tmo - TCP_TIMEWAIT_LEN first)."""
    tcb.orphan = tcb.rcv_shutdown = True
    length = fin_time(tcb)
    if tcb.state is State.FIN_WAIT_2 and length is not None and tcb.time_wait_deadline is None:
        tcb.time_wait_deadline = now + length


def retry_limit(tcb: Tcb) -> int:
    """R2's count of retransmissions: data_retries (tcp_retries2), or for an orphan orphan_retries (Linux
    tcp_write_timeout -> tcp_orphan_retries: its 0 means 8 while ``icsk_rto < TCP_RTO_MAX``, "alive", else 0)."""
    p = tcb.profile
    if p.orphan_retries is None or not orphaned(tcb):
        return p.data_retries
    if p.orphan_retries:
        return p.orphan_retries
    return 8 if tcb.timer.rto < p.rto_max else 0


def shrunk(tcb: Tcb) -> bool:
    """Does a retransmission now probe a window shrunk to zero, not counted against R2?"""
    synchronizing = tcb.state in (State.SYN_SENT, State.SYN_RECEIVED)
    return tcb.profile.shrunk_window_kept and tcb.snd_wnd == 0 and not synchronizing and not orphaned(tcb)


def retransmitting(tcb: Tcb, now: float) -> None:
    """A data retransmission is about to go: the first of a run stamps it; R2 counts it unless it probes a shrunk
    window (Linux tcp_retransmit_skb: "Save stamp of the first (attempted) retransmit")."""
    if tcb.retrans_stamp is None:
        tcb.retrans_stamp = now
    if not shrunk(tcb):
        tcb.retries += 1


def r2_expired(tcb: Tcb, now: float) -> bool:
    """Must a connection with data (or a FIN) unacknowledged be given up at this expiry of its timer?"""
    p = tcb.profile
    if shrunk(tcb):  # tcp_rtx_probe0_timed_out
        limit = 2 * p.rto_max
        stamp = now if tcb.retrans_stamp is None else tcb.retrans_stamp
        return now - tcb.last_heard > limit and now - stamp > limit
    limit = retry_limit(tcb)
    if not p.r2_as_time:
        return tcb.retries >= limit
    if tcb.retrans_stamp is None or tcb.retries == 0:
        return False
    return now - tcb.retrans_stamp >= model_timeout(limit, p.rto_min, p.rto_max) - EPS


def fin_time(tcb: Tcb) -> float | None:
    """How long the orphaned FIN-WAIT-2 lasts (Linux tcp_fin_time), None: no timer."""
    timeout = tcb.profile.fin_timeout
    return None if timeout is None or not tcb.profile.fin_wait_2_expires else max(timeout, 3.5 * tcb.timer.rto)


def entered(tcb: Tcb, before: State, now: float) -> None:
    """After a segment: an orphan that entered FIN-WAIT-2 starts its timer."""
    length = fin_time(tcb)
    if before is not State.FIN_WAIT_2 and tcb.state is State.FIN_WAIT_2 and orphaned(tcb) and length is not None:
        tcb.time_wait_deadline = now + length
