"""One host of the model: its listeners, its connections, the user calls and the timeouts (RFC 9293 §3.10).

Theory of operation
-------------------
A :class:`Host` is sans-IO, like the dialogue engine: it is given segments with :meth:`Host.receive` and the
time with :meth:`Host.advance`, says with :meth:`Host.deadline` when it next needs the time, and returns the
segments it sends (each an :class:`~.tcb.Emitted` naming its rule). Every decision, a drop included, is kept in
:attr:`Host.decisions`. A segment for a connection it has goes to :mod:`.arrive` by the connection's state; one
for a port with a listener opens a connection (§3.10.7.2); any other meets CLOSED (§3.10.7.1).

The applications are those of :mod:`.apps` (``listen``, ``banner``, ``echo``, ``http``), told of every segment
that reached their connection; ``agent`` does what it is told (:mod:`.agent`).
"""

from __future__ import annotations

import hashlib

from ..segment import RAW_OPTION, SEQ_MOD, Segment, seq_add
from . import apps, arrive, delack, keepalive, minisocks, options, queues, sender, timeouts
from .ip import IpLayer, icmp, icmp_error, reason
from .profile import ModelProfile
from .rules import RULES
from .tcb import Decision, Emitted, Sent, State, Tcb
from .urgent import mark_send

Key = tuple[int, str, int]  # local port, remote address, remote port


#: TCP option kinds the model knows (EOL, NOP, MSS, window scale, SACK-permitted, SACK, timestamps).
KNOWN_OPTIONS = frozenset({0, 1, 2, 3, 4, 5, 8})


def _unknown_option(seg: Segment) -> bool:
    """Do the segment's raw option octets hold a kind the model does not know?"""
    raw = seg.option(RAW_OPTION)
    i, octets = 0, raw if isinstance(raw, bytes) else b""
    while i < len(octets) and octets[i] != 0:
        if octets[i] not in KNOWN_OPTIONS:
            return True
        i += 1 if octets[i] == 1 else max(octets[i + 1] if i + 1 < len(octets) else 0, 2)
    return False


class Host:
    """The model of one TCP endpoint's host: see the module docstring."""

    def __init__(
        self, address: str, profile: ModelProfile, prefix: int | None = None, secondary: str | None = None
    ) -> None:
        self.address = address
        self.profile = profile
        #: The IP layer under it (:mod:`.ip`): the host's addresses and prefix, the header of what it sends.
        self.ip = IpLayer(profile, address, prefix, secondary)
        self.listeners: dict[int, str] = {}  # port -> application
        self.rcv_bufs: dict[int, int | None] = {}  # port -> the receive buffer its connections get
        self.listen_queues: dict[int, queues.Listener] = {}  # port -> its backlog and what was accepted
        self.tcbs: dict[Key, Tcb] = {}
        self.decisions: list[Decision] = []
        #: Connections deleted, newest last, with why (for the application's answers).
        self.gone: list[Tcb] = []

    # ---------------------------------------------------------------- user calls (§3.10.1-5)
    def listen(self, port: int, app: str = "listen", rcv_buf: int | None = None, backlog: int | None = None) -> None:
        """Passive OPEN (§3.10.1): the port enters LISTEN; `rcv_buf`: its connections' RCV.BUFF (SO_RCVBUF);
        `backlog`: listen()'s, bounding its queues (:mod:`.queues`; None: unbounded)."""
        self.listeners[port] = app
        self.rcv_bufs[port] = rcv_buf
        self.listen_queues[port] = queues.Listener(backlog)

    def unlisten(self, port: int) -> None:
        """CLOSE of a listener (§3.10.4 LISTEN): delete it."""
        self.listeners.pop(port, None)

    def connect(self, local_port: int, remote: tuple[str, int], now: float, app: str = "agent") -> list[Emitted]:
        """Active OPEN (§3.10.1): <SEQ=ISS><CTL=SYN>, SYN-SENT."""
        tcb = self._new_tcb(local_port, remote, State.SYN_SENT, passive=False, now=now, app=app, iss=None)
        tcb.snd_una, tcb.snd_nxt = tcb.iss, seq_add(tcb.iss, 1)
        tcb.first_syn = now
        self.tcbs[(local_port, remote[0], remote[1])] = tcb
        return self._transmit(tcb, Sent(tcb.iss, "S"), now, "open/active")

    def send(self, tcb: Tcb, data: bytes, now: float, urgent: bool = False) -> list[Emitted]:
        """SEND (§3.10.2): queue the data, and segmentize it when the state allows; with the urgent flag, SND.UP
        after it (:mod:`.urgent`)."""
        tcb.pending += data
        if urgent:
            mark_send(tcb)
        return self._output(tcb, now)

    def close(self, tcb: Tcb, now: float) -> list[Emitted]:
        """close(): CLOSE (§3.10.4, :meth:`shutdown`) and the application lets the socket go, an orphan
        (:func:`.timeouts.orphan`) whose receive queue is purged (Linux tcp_close). The services close so."""
        timeouts.orphan(tcb, now)
        tcb.fin_unread = False
        return self.shutdown(tcb, now)

    def shutdown(self, tcb: Tcb, now: float) -> list[Emitted]:
        """CLOSE (§3.10.4) by shutdown(SHUT_WR): a FIN after the pending data (SYN-SENT: delete the TCB); the
        connection still receives ("I have no more to send", §3.6)."""
        if tcb.state is State.SYN_SENT:
            self._forget(tcb, "closed", now, "close/fin")
            return []
        tcb.close_pending = True
        return self._output(tcb, now)

    def abort(self, tcb: Tcb, now: float) -> list[Emitted]:
        """ABORT (§3.10.5): <SEQ=SND.NXT><CTL=RST> from the states that have a peer, then CLOSED."""
        out: list[Emitted] = []
        if tcb.state in (State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT):
            out.append(Emitted(tcb.segment("R", tcb.snd_nxt, 0), RULES["abort/rst"]))
        self._forget(tcb, "aborted", now, "abort/rst", out[0].segment if out else None)
        return out

    def status(self, local_port: int, remote: tuple[str, int]) -> State:
        """STATUS (§3.10.6): the state of a connection (CLOSED when there is none)."""
        tcb = self.tcbs.get((local_port, remote[0], remote[1]))
        return tcb.state if tcb is not None else State.CLOSED

    # ---------------------------------------------------------------- events
    def receive(self, seg: Segment, now: float) -> list[Emitted]:
        """SEGMENT ARRIVES (§3.10.7): what the host sends in reply."""
        if icmp_error(seg) is not None:  # an ICMP error IP passes up (§3.9.2.2)
            return self._icmp(seg, now)
        out = arrive.Out()
        if self._dropped_on_input(seg, now, out):
            return []
        remote = (seg.src, seg.sport)
        tcb = self.tcbs.get((seg.dport, *remote))
        if tcb is None and seg.dport in self.listeners:
            tcb = self._from_cookie(seg, now, out)
            if tcb is None:
                return self._listen(seg, now, out)
        if tcb is None:
            arrive.closed(seg, self.profile, out)
            self._record(now, out, State.CLOSED)
            return out.sent
        before = tcb.state
        tcb.clock = now
        if minisocks.is_timewait(tcb):
            if minisocks.timewait(tcb, seg, now, out):
                if seg.dport in self.listeners:  # TCP_TW_SYN: the listener takes the SYN (MAY-2)
                    iss = minisocks.reopen_iss(tcb)
                    self._forget(tcb, "closed", now, None)
                    sent = self._listen(seg, now, out, iss)
                    self.decisions.append(Decision(now, RULES["linux/tw-syn"], self.status(seg.dport, remote), None))
                    return sent
                out.send(tcb.ack_now("linux/tw-ack"))  # no listener: tcp_v4_rcv falls through to TCP_TW_ACK
        elif options.reopens(tcb, seg) and seg.dport in self.listeners:  # RFC 6191 §2, SHLD-4
            self._forget(tcb, "closed", now, None)
            sent = self._listen(seg, now, out)
            self.decisions.append(Decision(now, RULES["time-wait/rfc6191"], self.status(seg.dport, remote), None))
            return sent
        elif minisocks.request_bad_ack(tcb, seg, out):
            pass
        elif queues.overflow(self.listen_queues.get(seg.dport), tcb, seg, list(self.tcbs.values()), out):
            pass
        elif tcb.state is State.SYN_SENT:
            arrive.syn_sent(tcb, seg, now, out)
        else:
            arrive.other(tcb, seg, now, out)
        self._record(now, out, tcb.state)
        timeouts.entered(tcb, before, now)
        sent = list(out.sent)
        if any(rule.key.startswith("ack/") for rule, _ in out.log):
            keepalive.heard(tcb, now)  # the fifth check took its ACK: "received" for §3.8.4
        if tcb.pending and "A" in seg.flags and tcb.state is not State.CLOSED:
            sender.acknowledged(tcb, now)  # §3.8.6.1: the window may have opened
            sent += self._output(tcb, now)
        sent += self._application(tcb, before, now)
        if any("A" in e.segment.flags and e.segment.dport == tcb.remote[1] for e in sent):
            delack.acked(tcb)  # our ACK went out with a reply (tcp_event_ack_sent)
        if tcb.state is State.CLOSED:
            self._forget(tcb, tcb.closed_by or "closed", now, None)
        return sent

    def _dropped_on_input(self, seg: Segment, now: float, out: arrive.Out) -> bool:
        """Before any state: a wrong checksum (§3.1, MUST-3) drops the segment; so does an option of unknown kind
        under the deviation that does not ignore one (MUST-6)."""
        dropped = self.ip.arrive(seg, self.tcbs.get((seg.dport, seg.src, seg.sport)))  # IP, before TCP (:mod:`.ip`)
        if dropped is not None:
            out.log.append((dropped, None))
        elif seg.checksum_ok is False and self.profile.check_checksum:
            out.note("checksum/bad")
        elif not self.profile.ignore_unknown_options and _unknown_option(seg):
            out.note("deviation")
        else:
            return False
        self._record(now, out, self.status(seg.dport, (seg.src, seg.sport)))
        return True

    def _listen(self, seg: Segment, now: float, out: arrive.Out, iss: int | None = None) -> list[Emitted]:
        """A segment for a listener (§3.10.7.2); `iss`: the ISS a reopened connection must use."""
        app = self.listeners[seg.dport]
        remote = (seg.src, seg.sport)

        def request(chosen: int | None) -> Tcb:  # at the address the SYN came to, with its route (:mod:`.ip`)
            tcb = self._new_tcb(seg.dport, remote, State.SYN_RECEIVED, True, now, app, chosen)
            return self.ip.passive_open(tcb, seg)

        queue = self.listen_queues.setdefault(seg.dport, queues.Listener())
        handled, cookie = queues.syn(queue, seg, now, self.profile, list(self.tcbs.values()), request, out)
        chosen = iss if cookie is None else cookie
        tcb = None if handled else arrive.listen(seg, self.profile, lambda: request(chosen), out)
        if tcb is not None:
            self.tcbs[(seg.dport, seg.src, seg.sport)] = tcb
            self._arm(tcb, now)
            tcb.queue[0].first_sent = now
        self._record(now, out, tcb.state if tcb else State.LISTEN)
        return out.sent

    def _from_cookie(self, seg: Segment, now: float, out: arrive.Out) -> Tcb | None:
        """An ACK to a listener that carries a valid SYN cookie (:mod:`.queues`): the request it stands for, in
        SYN-RECEIVED with its SYN-ACK acknowledged (nothing queued, no RTT sample: the cookie keeps no send time);
        the ACK then takes it on. None: no cookie."""
        queue = self.listen_queues.get(seg.dport)
        mss = None if queue is None else queues.cookie_mss(queue, self.profile, seg, now)
        if mss is None:
            return None
        app, remote, iss = self.listeners[seg.dport], (seg.src, seg.sport), seq_add(seg.ack, -1)
        tcb = arrive.listen(
            queues.cookie_syn(seg, mss),
            self.profile,
            lambda: self._new_tcb(seg.dport, remote, State.SYN_RECEIVED, True, now, app, iss),
            arrive.Out(),
        )
        assert tcb is not None
        tcb.queue = []
        self.tcbs[(seg.dport, *remote)] = tcb
        out.note("linux/cookie-ack")
        return tcb

    def _icmp(self, seg: Segment, now: float) -> list[Emitted]:
        """An ICMP error passed up by IP (§3.9.2.2, MUST-54), acted on by the connection of the segment it quotes
        (:func:`.ip.icmp`): aborted, or kept. Nothing is sent."""
        error = icmp_error(seg)
        assert error is not None
        q = error.quoted
        tcb = self.tcbs.get((q.sport, q.dst, q.dport))
        rule, abort = icmp(self.profile, error, tcb)
        if tcb is not None and abort:
            self._forget(tcb, reason(error), now, None)
        self.decisions.append(Decision(now, rule, self.status(q.sport, (q.dst, q.dport)), None))
        return []

    def advance(self, now: float) -> list[Emitted]:
        """Run the timers due at `now` (§3.10.8)."""
        out: list[Emitted] = []
        for tcb in list(self.tcbs.values()):
            tcb.clock = now
            if tcb.time_wait_deadline is not None and now >= tcb.time_wait_deadline:
                fin_wait_2 = tcb.state is State.FIN_WAIT_2  # the orphan's timer (:mod:`.timeouts`)
                self._forget(tcb, "closed", now, "timeout/fin-wait-2" if fin_wait_2 else "timeout/time-wait")
            elif tcb.user_deadline is not None and now >= tcb.user_deadline:
                self._forget(tcb, "timeout", now, "timeout/user")
            elif tcb.rtx_deadline is not None and now >= tcb.rtx_deadline:
                out += self._retransmission_timeout(tcb, now)
            elif tcb.persist_deadline is not None and now >= tcb.persist_deadline:
                out += self._persist_timeout(tcb, now)
            elif tcb.keep_deadline is not None and now >= tcb.keep_deadline:
                out += self._keepalive_timeout(tcb, now)
            elif delack.due(tcb, now):
                delack.acked(tcb)
                emitted = tcb.ack_now("delack/timeout")
                self.decisions.append(Decision(now, emitted.rule, tcb.state, emitted.segment))
                out.append(emitted)
        return out

    def deadline(self) -> float | None:
        """When :meth:`advance` must next be called if nothing arrives."""
        times = [t for t in (tcb.deadline() for tcb in self.tcbs.values()) if t is not None]
        return min(times) if times else None

    def rules(self) -> list[str]:
        """The keys of every rule applied so far, in order (for tests)."""
        return [d.rule.key for d in self.decisions]

    # ---------------------------------------------------------------- internals
    def _new_tcb(
        self, port: int, remote: tuple[str, int], state: State, passive: bool, now: float, app: str, iss: int | None
    ) -> Tcb:
        tcb = Tcb((self.address, port), remote, state, self.profile, passive, app=app)
        tcb.rcv_buf = self.rcv_bufs.get(port) if passive else None
        tcb.clock = now
        tcb.iss = self._iss(port, remote, now) if iss is None else iss
        tcb.rcv_wnd = tcb.window_left()
        return tcb

    def _iss(self, port: int, remote: tuple[str, int], now: float) -> int:
        """RFC 6528 / RFC 9293 §3.4.1: ISN = M + F(4-tuple, secret), M a clock of `isn_tick`."""
        p = self.profile
        if p.constant_isn is not None:
            return p.constant_isn % SEQ_MOD
        text = f"{self.address} {port} {remote[0]} {remote[1]}".encode()
        f = int.from_bytes(hashlib.sha256(p.isn_secret + text).digest()[:4], "big")
        return (int(now / p.isn_tick) + f) % SEQ_MOD

    def _arm(self, tcb: Tcb, now: float) -> None:
        if tcb.rtx_deadline is None:
            tcb.rtx_deadline = now + tcb.timer.rto
        if tcb.user_deadline is None and tcb.user_timeout is not None:
            tcb.user_deadline = now + tcb.user_timeout

    def _transmit(self, tcb: Tcb, sent: Sent, now: float, rule: str) -> list[Emitted]:
        """Send a new segment that takes sequence space, put it on the retransmission queue, arm the timer."""
        sent.first_sent = tcb.clock = now
        if "A" in sent.flags:
            delack.acked(tcb)
        tcb.queue.append(sent)
        self._arm(tcb, now)
        ack = 0 if sent.flags == "S" else tcb.rcv_nxt
        emitted = Emitted(tcb.segment(sent.flags, sent.seq, ack, sent.payload), RULES[rule])
        self.decisions.append(Decision(now, emitted.rule, tcb.state, emitted.segment))
        return [emitted]

    def _output(self, tcb: Tcb, now: float) -> list[Emitted]:
        """Segmentize pending data within the send window, then the FIN of a pending CLOSE."""
        out: list[Emitted] = []
        if tcb.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
            return out
        while tcb.pending:
            size = sender.chunk(tcb)  # §3.8.6.2.1
            if size <= 0:
                break
            chunk, tcb.pending = tcb.pending[:size], tcb.pending[size:]
            flags = "PA" if not tcb.pending and self.profile.push_last else "A"
            out += self._transmit(tcb, Sent(tcb.snd_nxt, flags, chunk), now, "send/data")
            tcb.snd_nxt = seq_add(tcb.snd_nxt, size)
        sender.settle(tcb, now)
        if tcb.close_pending and not tcb.pending:
            tcb.close_pending = False
            tcb.state = State.FIN_WAIT_1 if tcb.state is State.ESTABLISHED else State.LAST_ACK
            out += self._transmit(tcb, Sent(tcb.snd_nxt, "FA"), now, "close/fin")
            tcb.snd_nxt = seq_add(tcb.snd_nxt, 1)
        return out

    def _application(self, tcb: Tcb, before: State, now: float) -> list[Emitted]:
        """What the connection's application (:mod:`.apps`) does after a segment changed the connection."""
        out: list[Emitted] = []
        app = apps.APPS.get(tcb.app)
        for call in app(tcb, before) if app is not None else []:
            out += self.send(tcb, call.data, now) if isinstance(call, apps.Write) else self.close(tcb, now)
        if not out and tcb.state is not before:
            out += self._output(tcb, now)
        return out

    def _retransmission_timeout(self, tcb: Tcb, now: float) -> list[Emitted]:
        """RETRANSMISSION TIMEOUT (§3.10.8; RFC 6298 §5.4-5.6), or giving up (R2, §3.8.3)."""
        p = self.profile
        if self._give_up(tcb, now):
            self._forget(tcb, "timeout", now, "timeout/give-up")
            return []
        timeouts.retransmitting(tcb, now)
        linear = tcb.state is State.SYN_SENT and tcb.retries <= p.syn_linear
        if not linear:
            tcb.timer.back_off()
        tcb.rtx_deadline = now + tcb.timer.rto
        if not p.retransmit or not tcb.queue:
            return []
        front = tcb.queue[0]
        front.retransmitted = True
        ack = 0 if front.flags == "S" else tcb.rcv_nxt
        emitted = Emitted(tcb.segment(front.flags, front.seq, ack, front.payload), RULES["timeout/retransmit"])
        self.decisions.append(Decision(now, emitted.rule, tcb.state, emitted.segment))
        return [emitted]

    def _persist_timeout(self, tcb: Tcb, now: float) -> list[Emitted]:
        """The persist timer (:mod:`.sender`): the SWS override, or a zero-window probe, or giving up (R2)."""
        size = sender.expire(tcb, now)
        if size is None:
            self._forget(tcb, "timeout", now, "timeout/give-up")
            return []
        if size > 0:
            chunk, tcb.pending = tcb.pending[:size], tcb.pending[size:]
            flags = "PA" if not tcb.pending and self.profile.push_last else "A"
            out = self._transmit(tcb, Sent(tcb.snd_nxt, flags, chunk), now, "persist/override")
            tcb.snd_nxt = seq_add(tcb.snd_nxt, size)
            return out
        emitted = Emitted(tcb.segment("A", sender.probe_seq(tcb), tcb.rcv_nxt), RULES["persist/probe"])
        self.decisions.append(Decision(now, emitted.rule, tcb.state, emitted.segment))
        return [emitted]

    def _keepalive_timeout(self, tcb: Tcb, now: float) -> list[Emitted]:
        """The keep-alive timer (:mod:`.keepalive`, §3.8.4): a probe, or the connection reset as dead."""
        what = keepalive.expire(tcb, now)
        if what == "probe":
            emitted = Emitted(tcb.segment("A", sender.probe_seq(tcb), tcb.rcv_nxt), RULES["keepalive/probe"])
        elif what == "reset":
            emitted = Emitted(tcb.segment("RA", tcb.snd_nxt, tcb.rcv_nxt), RULES["keepalive/reset"])
            self._forget(tcb, "timeout", now, None)
        else:
            return []
        self.decisions.append(Decision(now, emitted.rule, tcb.state, emitted.segment))
        return [emitted]

    def _give_up(self, tcb: Tcb, now: float) -> bool:
        p = self.profile
        if tcb.state is State.SYN_RECEIVED:
            return tcb.retries >= p.synack_retries
        if tcb.state is State.SYN_SENT and p.syn_linear:  # Linux: a time budget of tcp_syn_retries backoffs
            return now - tcb.first_syn >= p.rto_initial * ((1 << (p.syn_retries + 1)) - 1) - 1e-9
        if tcb.state is State.SYN_SENT:
            return tcb.retries >= p.syn_retries
        return timeouts.r2_expired(tcb, now)

    def _forget(self, tcb: Tcb, reason: str, now: float, rule: str | None, sent: Segment | None = None) -> None:
        arrive.close(tcb, reason)
        self.tcbs.pop((tcb.local[1], tcb.remote[0], tcb.remote[1]), None)
        self.gone.append(tcb)
        if rule is not None:
            self.decisions.append(Decision(now, RULES[rule], State.CLOSED, sent))

    def _record(self, now: float, out: arrive.Out, state: State) -> None:
        for rule, sent in out.log:
            self.decisions.append(Decision(now, rule, state, sent))
