"""The transmission control block of RFC 9293 §3.3.1, the states of §3.3.2, and what the model emits.

A :class:`Tcb` holds the send and receive sequence variables by their RFC names (``snd_una`` for SND.UNA ...),
the retransmission queue, the RFC 6298 estimator and the connection's timers as absolute times. It has no
behaviour beyond bookkeeping: what happens when a segment arrives is in :mod:`.arrive`, user calls and timeouts
in :mod:`.host`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from ..segment import SEQ_MOD, Segment, canonical_flags, seq_add, seq_diff
from . import receiver
from .ip import IpState
from .profile import ModelProfile
from .rules import RULES, Rule
from .urgent import pointer


class State(Enum):
    """RFC 9293 §3.3.2, by the names the RFC (and the case files) use."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


#: §3.5.2: the states after the handshake ("synchronized"), where RFC 5961's checks apply.
SYNCHRONIZED = frozenset(State) - {State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED}
#: States that have sent a FIN of their own.
OUR_FIN_SENT = frozenset({State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSING, State.LAST_ACK, State.TIME_WAIT})


@dataclass(frozen=True)
class Emitted:
    """A segment the model sends, and the rule that made it send it."""

    segment: Segment
    rule: Rule


@dataclass(frozen=True)
class Decision:
    """One decision of the model, sent or not (a drop is a decision too), for tests and explanations."""

    time: float
    rule: Rule
    state: State  # the connection's state after the decision
    sent: Segment | None = None


@dataclass
class Sent:
    """A segment on the retransmission queue."""

    seq: int
    flags: str
    payload: bytes = b""
    first_sent: float = 0.0
    retransmitted: bool = False

    @property
    def end(self) -> int:
        return seq_add(self.seq, len(self.payload) + ("S" in self.flags) + ("F" in self.flags))


@dataclass
class Rto:
    """RFC 6298's estimator: SRTT, RTTVAR and RTO (§2), with the floor and ceiling of the profile."""

    profile: ModelProfile
    rto: float = 0.0
    srtt: float | None = None
    rttvar: float = 0.0

    def __post_init__(self) -> None:
        self.rto = self.profile.rto_initial  # §2.1

    def sample(self, r: float) -> None:
        p = self.profile
        if self.srtt is None:  # §2.2
            self.srtt, self.rttvar = r, r / 2
        else:  # §2.3, alpha 1/8, beta 1/4
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = min(max(self.srtt + max(p.granularity, 4 * self.rttvar), p.rto_min), p.rto_max)  # §2.4, §2.5

    def back_off(self) -> None:
        self.rto = min(self.rto * self.profile.backoff, self.profile.rto_max)  # §5.5


@dataclass
class Tcb:
    """One connection: its addressing, state, sequence variables (§3.3.1), queues and timers."""

    local: tuple[str, int]
    remote: tuple[str, int]
    state: State
    profile: ModelProfile
    passive: bool  # came from LISTEN (MUST-11)
    iss: int = 0
    irs: int = 0
    snd_una: int = 0
    snd_nxt: int = 0
    snd_wnd: int = 0
    snd_wl1: int = 0
    snd_wl2: int = 0
    max_snd_wnd: int = 0
    rcv_nxt: int = 0
    rcv_wnd: int = 0
    send_mss: int = 536
    queue: list[Sent] = field(default_factory=list)  # sent, not yet acknowledged (the retransmission queue)
    pending: bytes = b""  # SEND data not segmentized yet
    close_pending: bool = False  # CLOSE queued behind pending data
    #: The application's close() (not a shutdown): the socket is an orphan (Linux SOCK_DEAD, :mod:`.timeouts`) and
    #: its receive side is shut (Linux RCV_SHUTDOWN, as by shutdown(SHUT_RD)): new data is reset (:mod:`.arrive`).
    orphan: bool = False
    rcv_shutdown: bool = False
    received: bytes = b""  # in order, not read by the application
    out_of_order: dict[int, tuple[bytes, bool]] = field(default_factory=dict)  # seq -> (text, FIN)
    retries: int = 0
    retrans_stamp: float | None = None  # the first retransmission of the run (Linux retrans_stamp, :mod:`.timeouts`)
    rto: Rto | None = None
    rtx_deadline: float | None = None
    user_deadline: float | None = None
    time_wait_deadline: float | None = None
    #: The persist timer (:mod:`.sender`, §3.8.6.1): when it expires, its backoff, probes unanswered in a row.
    persist_deadline: float | None = None
    persist_backoff: int = 0
    probes_out: int = 0
    #: Socket options set by the application (:mod:`.keepalive`), the keep-alive timer, when an ACK was last
    #: taken, unanswered keep-alive probes; the user timeout of this connection (§3.10.8; None: none).
    sockopts: dict[str, int] = field(default_factory=dict)
    keep_deadline: float | None = None
    last_heard: float = 0.0
    keep_probes: int = 0
    user_timeout: float | None = None
    #: RCV.BUFF set by SO_RCVBUF (§3.8.6.2.2; None: the profile's window).
    rcv_buf: int | None = None
    #: The IP header fields of the connection's datagrams (:mod:`.ip`): TTL, TOS, identification, return route.
    ip: IpState = field(default_factory=IpState)
    #: The urgent mechanism (§3.8.5, :mod:`.urgent`): SND.UP and RCV.UP, the sequence numbers after the urgent data
    #: sent and received (None: none); the last urgent octet once it arrived, whether the application read it apart
    #: (MSG_OOB), and SO_OOBINLINE.
    snd_up: int | None = None
    rcv_up: int | None = None
    urgent_octet: bytes | None = None
    urgent_read: bool = False
    oob_inline: bool = False
    first_syn: float = 0.0  # when the first SYN went out (SYN-SENT's give-up budget)
    last_invalid_reply: float | None = None
    #: Set when the TCB is deleted (CLOSED): the reason, for the application ("reset", "refused", "timeout").
    closed_by: str | None = None
    fin_received: bool = False
    #: The peer's FIN waits in the receive queue for the application (Linux queues it as an skb, close() purges the
    #: queue: net/ipv4/tcp.c tcp_close); with unread text, what makes the queue non-empty.
    fin_unread: bool = False
    #: The time of the event being processed (the timestamp clock of RFC 7323 §5.4 reads it).
    clock: float = 0.0
    #: Options agreed in the handshake (:mod:`.options`): window scale shifts (RFC 7323 §2.3), timestamps and
    #: the last TSval to echo (§3.2, §4.3), ECN (RFC 3168 §6.1.1).
    snd_shift: int = 0
    rcv_shift: int = 0
    ts_ok: bool = False
    ts_recent: int = 0
    ecn_ok: bool = False
    #: Delayed ACK (:mod:`.delack`): octets taken but not acknowledged, the timer, the quick-ack credit, the
    #: receiver's MSS estimate, when the last text came. Nagle (:mod:`.sender`): TCP_NODELAY, and the end of the
    #: last small segment sent (Linux snd_sml).
    unacked_octets: int = 0
    delack_deadline: float | None = None
    quick: int = 0
    rcv_mss: int = 536
    last_text: float | None = None
    nodelay: bool = False
    snd_sml: int = 0
    app: str = "listen"  # which application holds it: listen (never accepts), banner, echo, http, agent
    app_buffer: bytes = b""  # what the application has read and keeps (the http service's request)
    app_done: bool = False  # the application has made its last call (answered, closed)

    def __post_init__(self) -> None:
        if self.rto is None:
            self.rto = Rto(self.profile)
        self.user_timeout = self.profile.user_timeout

    @property
    def timer(self) -> Rto:
        assert self.rto is not None
        return self.rto

    def deadline(self) -> float | None:
        timers = (
            self.rtx_deadline,
            self.user_deadline,
            self.time_wait_deadline,
            self.persist_deadline,
            self.keep_deadline,
            self.delack_deadline,
        )
        times = [t for t in timers if t is not None]
        return min(times) if times else None

    def segment(self, flags: str, seq: int, ack: int, payload: bytes = b"", **extra: object) -> Segment:
        """A segment of this connection: from local to remote, with our receive window when ACK is set."""
        window = self.rcv_wnd >> self.rcv_shift if "A" in flags and "R" not in flags else 0  # RFC 7323 §2.3
        options: list[tuple[str, object]] = []
        p = self.profile
        urgptr = pointer(self, flags, seq, len(payload))  # §3.8.5: URG while SND.UP is ahead (:mod:`.urgent`)
        if ("S" in flags or not p.mss_option_on_syn_only) and p.mss_option_in_syn:  # SHLD-5, MUST-65
            options.append(("mss", p.mss))
        # In Linux's order, each aligned to 32 bits by NOPs, no EOL (net/ipv4/tcp_output.c tcp_options_write: MSS,
        # NOP NOP timestamps, NOP window scale; the model offers no SACK-permitted, which would take the NOPs' place)
        if self.ts_ok and "R" not in flags:  # RFC 7323 §3.2: TSopt on every non-RST segment, TSecr = TS.Recent
            options += [("nop", None), ("nop", None), ("timestamp", (self.ts_val(), self.ts_recent))]
        if "S" in flags:
            window = self.rcv_wnd  # never scaled in a SYN (RFC 7323 §2.2)
            if "A" in flags and self.rcv_shift:
                options += [("nop", None), ("wscale", self.rcv_shift)]
            if "A" in flags and self.ecn_ok:
                flags = canonical_flags(flags + "E")  # an ECN-setup SYN-ACK: ECE, not CWR (RFC 3168 §6.1.1)
        return Segment(
            src=self.local[0],
            dst=self.remote[0],
            sport=self.local[1],
            dport=self.remote[1],
            seq=seq,
            ack=ack if "A" in flags else 0,
            flags=flags if urgptr is None else flags + "U",
            window=min(window, 65535),
            urgptr=urgptr or 0,
            payload=payload,
            options=tuple(options),
        )

    def ts_val(self) -> int:
        """TSval: a 1 ms clock (RFC 7323 §5.4; Linux TCP_TS_HZ 1000) from a per-connection offset (Linux
        ts_offset, RFC 7323 §5.4 and §7.1: here the ISS)."""
        return (int(self.clock * 1000) + self.iss) % SEQ_MOD

    def ack_now(self, rule: str) -> Emitted:
        """<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>, the reply of many paragraphs of §3.10.7.4."""
        return Emitted(self.segment("A", self.snd_nxt, self.rcv_nxt), RULES[rule])

    def window_left(self, advancing: int = 0) -> int:
        """RCV.WND: the offered window less what the application has not read (the right edge stays put); with a
        receive buffer, RCV.BUFF - RCV.USER (§3.8.6.2.2: the buffer less the data the user has not read), the edge
        advanced only as the receiver's SWS avoidance allows (:mod:`.receiver`, MUST-39); `advancing`: the octets
        RCV.NXT is about to advance by."""
        buffer = self.profile.rcv_wnd if self.rcv_buf is None else self.rcv_buf
        if not self.profile.receiver_sws:
            return max(buffer - len(self.received), 0)
        return receiver.offered(buffer, len(self.received), self.rcv_wnd, advancing, self.send_mss)

    def acked_by(self, ack: int) -> bool:
        """SND.UNA < ack =< SND.NXT."""
        return seq_diff(ack, self.snd_una) > 0 and seq_diff(ack, self.snd_nxt) <= 0
