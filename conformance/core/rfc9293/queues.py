"""A listener's queues: the SYN queue and the accept queue a listen backlog bounds, and SYN cookies (Linux).

RFC 9293 keeps no queue of its own: a passive OPEN takes one connection (§3.10.1), and "SYN flooding" is left to
RFC 4987, which describes the SYN queue a listener keeps for its half-open connections and the SYN cookie: "the
SYN-ACK's sequence number encodes the state, so no state is kept for the half-open connection" (§3.6). The sockets
API's listen(fd, backlog) bounds "the number of outstanding connections in the socket's listen queue" (POSIX).
A :class:`Listener` holds the backlog (None: no bound, the model's services) and what the application accepted.

Linux 6.18, with the knobs of :class:`~.profile.ModelProfile`:

- a SYN to a listener (``tcp_conn_request``, net/ipv4/tcp_input.c): when ``tcp_syncookies`` is 2, or the SYN queue
  is full (``inet_csk_reqsk_queue_is_full``: more requests than the backlog), it is answered with a SYN cookie
  when tcp_syncookies is 1 or 2 (``tcp_syn_flood_action``), else dropped; then, when the accept queue is full
  (``sk_acceptq_is_full``: more connections than the backlog), it is dropped. A cookie's SYN-ACK is the usual one
  with the cookie as ISS, and no request is kept (``reqsk_free`` after sending it);
- the final ACK of a request (``tcp_check_req``, net/ipv4/tcp_minisocks.c) whose child finds the accept queue full
  (``tcp_v4_syn_recv_sock``, ``listen_overflow``): ``tcp_abort_on_overflow`` 0 drops the ACK and keeps the request,
  whose SYN-ACK is retransmitted on its timer; 1 answers <SEQ=SEG.ACK><CTL=RST> and drops the request
  (``embryonic_reset``);
- an ACK for a listener with no request (``cookie_v4_check``, net/ipv4/syncookies.c): with tcp_syncookies on and a
  cookie sent in the last ``TCP_SYNCOOKIE_VALID`` (2 min, ``tcp_synq_no_recent_overflow``), when SEG.ACK-1 is a
  cookie for the 4-tuple and SEG.SEQ-1 (:func:`cookie`), the connection is made from it (``tcp_get_cookie_sock``),
  ESTABLISHED, with the MSS the cookie encodes; when the accept queue is full it is dropped.

The cookie's options (:func:`stamped`, :func:`cookie_syn`): only the MSS fits in the ISS, so the other options the
SYN-ACK offers travel in its TSval. ``tcp_conn_request`` clears the SYN's options when it has no (usable) timestamp
(``if (want_cookie && !tmp_opt.saw_tstamp) tcp_clear_options``, and ``ecn_ok = 0``): that cookie SYN-ACK offers no
window scale and no ECN, and the connection has none. With a timestamp, ``cookie_init_timestamp`` (syncookies.c)
puts them in the TSval's low ``TSBITS`` (6): the peer's window shift (``TS_OPT_WSCALE_MASK``, 0xf: none), SACK
(bit 4; the model offers none) and ECN (bit 5), the clock rounded down so that the TSval is not ahead of it; the
ACK's TSecr brings them back (``cookie_v4_check``: TSecr less the connection's TS offset, ``cookie_timestamp_decode``,
``cookie_ecn_ok``), and the connection uses them, with timestamps (TS.Recent the ACK's TSval).

The cookie follows ``secure_tcp_syn_cookie`` (net/core/secure_seq.c, syncookies.c): a hash of the 4-tuple plus the
peer's ISN, a minute counter in the top 8 bits, and the MSS table index under a second hash in the low 24; it is
valid for ``MAX_SYNCOOKIE_AGE`` (2) counter values. The hash is the model's own (SHA-256 with the ISN secret).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ..segment import SEQ_MOD, Segment, canonical_flags, seq_add
from .arrive import Out, listen, reset_for
from .minisocks import in_window
from .profile import ModelProfile
from .rules import RULES
from .tcb import Emitted, State, Tcb

#: syncookies.c: COOKIEBITS (the low bits that hold the data), the counter's period and the cookie's life.
COOKIEBITS = 24
COOKIEMASK = (1 << COOKIEBITS) - 1
COOKIE_PERIOD = 60.0  # tcp_cookie_time: jiffies / (HZ * 60)
MAX_SYNCOOKIE_AGE = 2
SYNCOOKIE_VALID = MAX_SYNCOOKIE_AGE * COOKIE_PERIOD  # TCP_SYNCOOKIE_VALID
#: syncookies.c msstab: the MSS values a cookie can encode.
MSSTAB = (536, 1300, 1440, 1460)
#: syncookies.c: the TSval's low bits that carry the options, and the option bits.
TSBITS = 6
TS_OPT_WSCALE_MASK = 0xF
TS_OPT_SACK = 1 << 4
TS_OPT_ECN = 1 << 5


@dataclass
class Listener:
    """One listening port's queues: the listen backlog (None: unbounded) and what accept() took."""

    backlog: int | None = None
    taken: set[int] = field(default_factory=set)  # id() of the connections the application accepted
    last_overflow: float | None = None  # when a cookie was last sent (tcp_synq_overflow)


def full(listener: Listener, count: int, profile: ModelProfile) -> bool:
    """Is a queue holding `count` full? Linux: beyond the backlog (``>``); the RFC profile: at it (POSIX)."""
    if listener.backlog is None or not profile.honour_backlog:
        return False
    return count >= listener.backlog + profile.backlog_extra


def requests(tcbs: Iterable[Tcb], port: int) -> int:
    """The SYN queue: half-open connections of a passive OPEN on `port`."""
    return sum(1 for t in tcbs if t.local[1] == port and t.passive and t.state is State.SYN_RECEIVED)


def accept_queue(listener: Listener, tcbs: Iterable[Tcb], port: int) -> int:
    """The accept queue: connections on `port` past the handshake that the application has not accepted."""
    gone = (State.SYN_RECEIVED, State.CLOSED)
    return sum(
        1 for t in tcbs if t.local[1] == port and t.passive and t.state not in gone and id(t) not in listener.taken
    )


def syncookies(profile: ModelProfile) -> int:
    """tcp_syncookies, or the deviation's value in its place."""
    return profile.syncookies if profile.syncookies_override is None else profile.syncookies_override


def syn(
    listener: Listener,
    seg: Segment,
    now: float,
    p: ModelProfile,
    tcbs: list[Tcb],
    new_tcb: Callable[[int], Tcb],
    out: Out,
) -> tuple[bool, int | None]:
    """A SYN for a listener, before a request is made (tcp_conn_request): (dealt with here, the ISS the request
    must take). Dealt with: dropped, or answered by a SYN cookie with no request kept; else the listener makes
    a request as usual (under the deviation that keeps state for a cookie, with the cookie as its ISS)."""
    if "S" not in seg.flags or set(seg.flags) & set("ARF"):
        return False, None
    mode = syncookies(p)
    want_cookie = mode == 2 or full(listener, requests(tcbs, seg.dport), p)
    if want_cookie and not mode:
        out.note("linux/syn-queue-full")
        return True, None
    if full(listener, accept_queue(listener, tcbs, seg.dport), p):
        out.note("linux/accept-queue-full")
        return True, None
    if not want_cookie:
        return False, None
    iss = cookie(p, seg, now)
    listener.last_overflow = now  # tcp_synq_overflow
    if not p.cookie_stateless:
        return False, iss
    scratch = Out()
    request = listen(_usable(seg, p), p, lambda: new_tcb(iss), scratch)  # the usual SYN-ACK; freed (reqsk_free)
    assert request is not None
    out.send(Emitted(stamped(request, seg, scratch.sent[0].segment), RULES["linux/syncookie"]))
    return True, None


def _usable(syn_seg: Segment, profile: ModelProfile) -> Segment:
    """The SYN as tcp_conn_request takes it for a cookie: without a timestamp it can use (tcp_parse_options reads
    one only under tcp_timestamps), every option but the MSS cleared and no ECN."""
    if profile.timestamps and _stamp(syn_seg) is not None:
        return syn_seg
    mss = syn_seg.option("mss")
    kept = (("mss", mss),) if isinstance(mss, int) else ()
    return replace(syn_seg, flags=canonical_flags(syn_seg.flags.replace("E", "").replace("C", "")), options=kept)


def stamped(request: Tcb, syn_seg: Segment, synack: Segment) -> Segment:
    """The cookie SYN-ACK with its options in the TSval (cookie_init_timestamp, plus the TS offset: the model's is
    the ISS, :meth:`~.tcb.Tcb.ts_val`); unchanged without timestamps."""
    stamp = _stamp(synack)
    if stamp is None:
        return synack
    shift = syn_seg.option("wscale")
    scaled = isinstance(shift, int) and request.profile.window_scale is not None  # ireq->wscale_ok
    bits = request.snd_shift if scaled else TS_OPT_WSCALE_MASK
    bits |= TS_OPT_ECN if request.ecn_ok else 0
    now = (stamp[0] - request.iss) % SEQ_MOD
    value = (now >> TSBITS << TSBITS) | bits
    value -= (1 << TSBITS) if value > now else 0
    tsval = (value + request.iss) % SEQ_MOD
    options = tuple((k, (tsval, stamp[1]) if k == "timestamp" else v) for k, v in synack.options)
    return replace(synack, options=options)


def _stamp(seg: Segment) -> tuple[int, int] | None:
    stamp = seg.option("timestamp")
    return (int(stamp[0]), int(stamp[1])) if isinstance(stamp, tuple | list) and len(stamp) == 2 else None


def overflow(listener: Listener | None, tcb: Tcb, seg: Segment, tcbs: list[Tcb], out: Out) -> bool:
    """The final ACK of a request finds the accept queue full (tcp_check_req, listen_overflow). True when it was
    dealt with: dropped (the request kept), or answered with a RST (tcp_abort_on_overflow, the request dropped)."""
    p = tcb.profile
    if listener is None or not tcb.passive or tcb.state is not State.SYN_RECEIVED:
        return False
    if "A" not in seg.flags or set(seg.flags) & set("RS") or seg.ack != seq_add(tcb.iss, 1):
        return False
    if not in_window(seg.seq, seq_add(seg.seq, seg.seg_len), tcb.rcv_nxt, tcb.rcv_wnd):
        return False
    if not full(listener, accept_queue(listener, tcbs, tcb.local[1]), p):
        return False
    if not tcb.queue:  # made from a cookie (its SYN-ACK is not queued): no request to keep (tcp_get_cookie_sock)
        out.note("linux/listen-overflow")
        tcb.state, tcb.closed_by = State.CLOSED, "closed"
    elif p.abort_on_overflow:
        out.send(reset_for(seg, "linux/listen-overflow-rst", p))
        tcb.state, tcb.closed_by = State.CLOSED, "reset"
    else:
        out.note("linux/listen-overflow")
    return True


def _hash(profile: ModelProfile, seg: Segment, count: int, which: int) -> int:
    text = f"{seg.src} {seg.dst} {seg.sport} {seg.dport} {count} {which}".encode()
    return int.from_bytes(hashlib.sha256(profile.isn_secret + text).digest()[:4], "big")


def cookie(profile: ModelProfile, syn_seg: Segment, now: float) -> int:
    """The ISS of a SYN cookie for `syn_seg` (secure_tcp_syn_cookie), encoding its MSS's table index."""
    mss = syn_seg.option("mss")
    peer = mss if isinstance(mss, int) else profile.default_send_mss
    data = max((i for i, m in enumerate(MSSTAB) if m <= peer), default=0)
    count = int(now // COOKIE_PERIOD)
    low = (_hash(profile, syn_seg, count, 1) + data) & COOKIEMASK
    return (_hash(profile, syn_seg, 0, 0) + syn_seg.seq + (count << COOKIEBITS) + low) % SEQ_MOD


def cookie_mss(listener: Listener, profile: ModelProfile, seg: Segment, now: float) -> int | None:
    """The MSS a valid cookie in this ACK encodes (cookie_v4_check, check_tcp_syn_cookie); None: not a cookie."""
    if not syncookies(profile) or "A" not in seg.flags or set(seg.flags) & set("RS"):
        return None
    if _stamp(seg) is not None and not profile.timestamps:  # cookie_timestamp_decode: no tcp_timestamps, no cookie
        return None
    if listener.last_overflow is None or now - listener.last_overflow > SYNCOOKIE_VALID:
        return None
    sseq = seq_add(seg.seq, -1)
    diff = (seq_add(seg.ack, -1) - _hash(profile, seg, 0, 0) - sseq) % SEQ_MOD
    count = int(now // COOKIE_PERIOD)
    made = diff >> COOKIEBITS
    if (count - made) % 256 >= MAX_SYNCOOKIE_AGE:
        return None
    data = (diff - _hash(profile, seg, made, 1)) & COOKIEMASK
    return MSSTAB[data] if data < len(MSSTAB) else None


def cookie_syn(ack: Segment, mss: int) -> Segment:
    """The SYN a valid cookie stands for (the request cookie_v4_check rebuilds): SEG.SEQ-1, the MSS it encodes and,
    when the ACK has a timestamp, the options its TSecr carries (cookie_timestamp_decode, cookie_ecn_ok), the
    ACK's TSval for TS.Recent; without one, no other option (tcp_clear_options)."""
    options: list[tuple[str, object]] = [("mss", mss)]
    flags = "S"
    stamp = _stamp(ack)
    if stamp is not None:
        bits = (stamp[1] - seq_add(ack.ack, -1)) % SEQ_MOD & ((1 << TSBITS) - 1)  # less the TS offset, the ISS
        options.append(("timestamp", (stamp[0], 0)))
        if bits & TS_OPT_WSCALE_MASK != TS_OPT_WSCALE_MASK:
            options.append(("wscale", bits & TS_OPT_WSCALE_MASK))
        flags = canonical_flags("SEC") if bits & TS_OPT_ECN else "S"
    return replace(ack, flags=flags, seq=seq_add(ack.seq, -1), ack=0, payload=b"", options=tuple(options))
