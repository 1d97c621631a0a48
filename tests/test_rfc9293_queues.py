"""The model's listen queues and SYN cookies (queues.py) and its give-up times (timeouts.py), on scripted segments."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conformance.core.rfc9293 import LINUX, RFC, Host, State
from conformance.core.rfc9293.agent import Agent
from conformance.core.rfc9293.profile import ModelProfile
from conformance.core.rfc9293.queues import MSSTAB, cookie
from conformance.core.rfc9293.reference import ADDRESSING
from conformance.core.rfc9293.timeouts import model_timeout
from conformance.core.segment import Segment
from conformance.core.steps import AppRequest

US, THEM, PORT = "198.18.0.1", "198.18.0.2", 7000


def seg(flags: str, seq: int, ack: int = 0, sport: int = 40000, window: int = 65535, **kw: object) -> Segment:
    return Segment(US, THEM, sport, PORT, seq=seq, ack=ack, flags=flags, window=window, **kw)  # type: ignore[arg-type]


def listening(profile: ModelProfile = LINUX, backlog: int | None = 2) -> Host:
    host = Host(THEM, profile)
    host.listen(PORT, "agent", backlog=backlog)
    return host


def syn(host: Host, sport: int, now: float = 0.0) -> list[Segment]:
    return [e.segment for e in host.receive(seg("S", 1000, sport=sport), now)]


def complete(host: Host, sport: int, now: float = 0.0) -> list[Segment]:
    """Our SYN and final ACK for a connection from `sport`; what the host sent to the ACK."""
    (synack,) = syn(host, sport, now)
    return [e.segment for e in host.receive(seg("A", 1001, synack.seq + 1, sport=sport), now + 0.01)]


# ---------------------------------------------------------------- the SYN queue and SYN cookies
def test_linux_counts_the_syn_queue_full_beyond_the_backlog_and_drops_without_cookies() -> None:
    host = listening(replace(LINUX, syncookies=0))
    assert [[s.flags for s in syn(host, p)] for p in (40001, 40002, 40003)] == [["SA"]] * 3
    assert syn(host, 40004) == []  # four requests would be more than backlog + 1
    assert host.rules()[-1] == "linux/syn-queue-full"
    assert host.status(PORT, (US, 40004)) is State.CLOSED


def test_the_rfc_profile_counts_the_queue_full_at_the_backlog() -> None:
    host = listening(RFC)
    assert [len(syn(host, p)) for p in (40001, 40002, 40003)] == [1, 1, 0]


def test_with_syncookies_an_overflowing_syn_gets_a_stateless_cookie_that_the_ack_redeems() -> None:
    host = listening()
    for p in (40001, 40002, 40003):
        syn(host, p)
    (synack,) = [e.segment for e in host.receive(seg("S", 5000, sport=40009, options=(("mss", 1400),)), 1.0)]
    assert synack.flags == "SA" and synack.ack == 5001
    assert synack.seq == cookie(LINUX, seg("S", 5000, sport=40009, options=(("mss", 1400),)), 1.0)
    assert host.status(PORT, (US, 40009)) is State.CLOSED  # no state kept (RFC 4987 §3.6)
    host.receive(seg("A", 5001, synack.seq + 1, sport=40009), 1.5)
    tcb = host.tcbs[(PORT, US, 40009)]
    assert tcb.state is State.ESTABLISHED and tcb.send_mss == 1300  # the table's largest MSS =< 1400
    assert tcb.timer.rto == LINUX.rto_initial and tcb.rtx_deadline is None  # no RTT sample from a cookie


def test_an_ack_that_is_not_a_cookie_meets_the_listener() -> None:
    host = listening()
    for p in (40001, 40002, 40003, 40009):
        syn(host, p)
    (rst,) = [e.segment for e in host.receive(seg("A", 1001, 12345, sport=40010), 1.0)]
    assert rst.flags == "R" and rst.seq == 12345
    assert host.rules()[-1] == "listen/ack"


def test_a_cookie_expires_after_two_counter_periods() -> None:
    host = listening(replace(LINUX, syncookies=2))
    (synack,) = syn(host, 40001, 10.0)
    host.receive(seg("A", 1001, synack.seq + 1, sport=40001), 130.0)  # the counter moved on twice
    assert host.status(PORT, (US, 40001)) is State.CLOSED


def test_syncookies_2_answers_every_syn_with_a_cookie() -> None:
    host = listening(replace(LINUX, syncookies=2))
    (synack,) = syn(host, 40001)
    assert host.rules() == ["linux/syncookie"] and not host.tcbs
    assert synack.seq == cookie(LINUX, seg("S", 1000, sport=40001), 0.0)


def test_a_cookie_encodes_the_mss_table_index() -> None:
    for mss, expected in ((536, 536), (1299, 536), (1300, 1300), (1460, 1460), (9000, 1460)):
        host = listening(replace(LINUX, syncookies=2))
        (synack,) = [e.segment for e in host.receive(seg("S", 1000, options=(("mss", mss),)), 0.0)]
        host.receive(seg("A", 1001, synack.seq + 1), 0.1)
        assert host.tcbs[(PORT, US, 40000)].send_mss == expected
    assert MSSTAB == (536, 1300, 1440, 1460)


def cookie_handshake(syn_seg: Segment, echo: bool = True) -> tuple[Segment, Host]:
    """A SYN answered with a cookie (tcp_syncookies 2), and our ACK, echoing the SYN-ACK's TSval when it has one
    and `echo`: the SYN-ACK and the host."""
    host = listening(replace(LINUX, syncookies=2))
    (synack,) = [e.segment for e in host.receive(syn_seg, 0.5)]
    stamp = synack.option("timestamp")
    options = (("timestamp", (7000, stamp[0])),) if isinstance(stamp, tuple) and echo else ()
    host.receive(seg("A", 1001, synack.seq + 1, options=options), 0.6)
    return synack, host


def test_a_cookie_keeps_window_scale_and_ecn_in_its_timestamp() -> None:
    """syncookies.c cookie_init_timestamp: the peer's shift and ECN in the TSval's low 6 bits, back in the TSecr."""
    offer = seg("SEC", 1000, options=(("mss", 1460), ("wscale", 8), ("timestamp", (5000, 0))))
    synack, host = cookie_handshake(offer)
    assert synack.option("wscale") == LINUX.window_scale and "E" in synack.flags
    tsval = synack.option("timestamp")
    assert isinstance(tsval, tuple) and (tsval[0] - synack.seq) % 2**32 & 63 == 8 | 32
    assert (tsval[0] - synack.seq) % 2**32 <= 500  # not ahead of the clock (ms from the offset)
    tcb = host.tcbs[(PORT, US, 40000)]
    assert tcb.state is State.ESTABLISHED
    assert (tcb.snd_shift, tcb.rcv_shift, tcb.ts_ok, tcb.ts_recent, tcb.ecn_ok) == (8, 7, True, 7000, True)
    assert tcb.segment("A", tcb.snd_nxt, tcb.rcv_nxt).window == LINUX.rcv_wnd >> 7


def test_a_cookie_without_ecn_or_window_scale_encodes_none() -> None:
    synack, host = cookie_handshake(seg("S", 1000, options=(("mss", 1460), ("timestamp", (5000, 0)))))
    tsval = synack.option("timestamp")
    assert isinstance(tsval, tuple) and (tsval[0] - synack.seq) % 2**32 & 63 == 0xF
    tcb = host.tcbs[(PORT, US, 40000)]
    assert (tcb.snd_shift, tcb.rcv_shift, tcb.ts_ok, tcb.ecn_ok) == (0, 0, True, False)


def test_a_cookie_syn_ack_to_a_syn_without_timestamps_offers_no_window_scale_or_ecn() -> None:
    """tcp_conn_request: want_cookie && !saw_tstamp clears the options (and ecn_ok): the connection has none."""
    synack, host = cookie_handshake(seg("SEC", 1000, options=(("mss", 1460), ("wscale", 8))))
    assert synack.option("wscale") is None and synack.option("timestamp") is None and "E" not in synack.flags
    tcb = host.tcbs[(PORT, US, 40000)]
    assert tcb.state is State.ESTABLISHED and tcb.send_mss == 1460
    assert (tcb.snd_shift, tcb.rcv_shift, tcb.ts_ok, tcb.ecn_ok) == (0, 0, False, False)


def test_an_ack_without_the_timestamp_loses_the_cookies_options() -> None:
    """cookie_timestamp_decode: no timestamp in the ACK, the options cleared."""
    offer = seg("S", 1000, options=(("mss", 1460), ("wscale", 8), ("timestamp", (5000, 0))))
    _, host = cookie_handshake(offer, echo=False)
    tcb = host.tcbs[(PORT, US, 40000)]
    assert (tcb.snd_shift, tcb.rcv_shift, tcb.ts_ok) == (0, 0, False)


# ---------------------------------------------------------------- the accept queue
def filled(host: Host) -> Segment:
    """Two connections complete, a victim's SYN is answered, a third completes: the accept queue holds
    backlog + 1 (full, for Linux); the victim's SYN-ACK."""
    assert [complete(host, p) for p in (40001, 40002)] == [[], []]
    (synack,) = syn(host, 40004)
    assert complete(host, 40003) == []
    return synack


def test_a_full_accept_queue_drops_the_final_ack_and_keeps_the_request() -> None:
    host = listening()
    synack = filled(host)
    assert syn(host, 40005, 0.5) == []  # a SYN finds the accept queue full
    assert host.rules()[-1] == "linux/accept-queue-full"
    assert host.receive(seg("A", 1001, synack.seq + 1, sport=40004), 0.5) == []
    assert host.status(PORT, (US, 40004)) is State.SYN_RECEIVED
    assert host.rules()[-1] == "linux/listen-overflow"
    (again,) = [e.segment for e in host.advance(1.0)]  # the request's SYN-ACK on its timer
    assert again.flags == "SA" and again.seq == synack.seq


def test_tcp_abort_on_overflow_resets_the_final_ack() -> None:
    host = listening(replace(LINUX, abort_on_overflow=1))
    synack = filled(host)
    (rst,) = [e.segment for e in host.receive(seg("A", 1001, synack.seq + 1, sport=40004), 0.1)]
    assert (rst.flags, rst.seq) == ("R", synack.seq + 1)
    assert host.status(PORT, (US, 40004)) is State.CLOSED


def test_accepted_connections_leave_the_accept_queue() -> None:
    host = listening()
    synack = filled(host)
    host.listen_queues[PORT].taken.add(id(host.tcbs[(PORT, US, 40001)]))  # the application's accept()
    host.receive(seg("A", 1001, synack.seq + 1, sport=40004), 0.1)
    assert host.status(PORT, (US, 40004)) is State.ESTABLISHED


def test_no_backlog_bounds_nothing() -> None:
    host = listening(backlog=None)
    for p in range(40001, 40021):
        complete(host, p)
    assert all(t.state is State.ESTABLISHED for t in host.tcbs.values()) and len(host.tcbs) == 20


# ---------------------------------------------------------------- R2, a shrunk window, FIN-WAIT-2
@pytest.mark.parametrize(("retries2", "seconds"), [(3, 3.0), (9, 204.6), (15, 924.6)])
def test_linux_r2_is_the_time_its_retries_take_from_rto_min(retries2: int, seconds: float) -> None:
    assert model_timeout(retries2, LINUX.rto_min, LINUX.rto_max) == pytest.approx(seconds)


def established(profile: ModelProfile) -> tuple[Host, int]:
    host = listening(profile, None)
    (synack,) = syn(host, 40000)
    host.receive(seg("A", 1001, synack.seq + 1), 0.0)
    return host, synack.seq + 1


def run(host: Host, until: float) -> list[tuple[float, str]]:
    """Advance the host's timers until `until`: each expiry's time and rule."""
    seen: list[tuple[float, str]] = []
    while (due := host.deadline()) is not None and due <= until:
        before = len(host.decisions)
        host.advance(due)
        seen += [(round(d.time, 3), d.rule.key) for d in host.decisions[before:]]
    return seen


def test_linux_gives_up_at_the_first_expiry_past_r2_seconds() -> None:
    host, una = established(replace(LINUX, data_retries=3))
    host.send(host.tcbs[(PORT, US, 40000)], b"hello", 0.0)
    seen = run(host, 60.0)
    # retransmissions at 0.2, 0.6, 1.4, 3.0 (2.8 s after the first); at 6.2 (6.0 s >= 3 s) it gives up
    assert seen == [(0.2, "timeout/retransmit"), (0.6, "timeout/retransmit"), (1.4, "timeout/retransmit")] + [
        (3.0, "timeout/retransmit"),
        (6.2, "timeout/give-up"),
    ]


def test_the_rfc_profile_counts_r2_in_retransmissions() -> None:
    host, una = established(replace(RFC, data_retries=2))
    host.send(host.tcbs[(PORT, US, 40000)], b"hello", 0.0)
    assert [rule for _, rule in run(host, 60.0)] == ["timeout/retransmit"] * 2 + ["timeout/give-up"]


def test_retransmissions_to_a_shrunk_window_are_not_counted_while_answered() -> None:
    host, una = established(replace(LINUX, data_retries=3))
    tcb = host.tcbs[(PORT, US, 40000)]
    host.send(tcb, b"hello", 0.0)
    host.receive(seg("A", 1001, una, window=0), 0.001)  # the window shrinks to zero under the data
    now = 0.001
    while now < 100.0:
        now = host.deadline() or 100.0
        host.advance(now)
        host.receive(seg("A", 1001, una, window=0), now)  # each probe answered
    assert tcb.state is State.ESTABLISHED and tcb.retries == 0


def test_a_shrunk_window_never_answered_times_out_after_twice_rto_max() -> None:
    host, una = established(replace(LINUX, data_retries=3))
    tcb = host.tcbs[(PORT, US, 40000)]
    host.send(tcb, b"hello", 0.0)
    host.receive(seg("A", 1001, una, window=0), 0.001)
    seen = run(host, 2000.0)
    assert seen[-1][1] == "timeout/give-up" and seen[-1][0] > 2 * LINUX.rto_max


def test_an_orphaned_fin_wait_2_times_out_silently_after_tcp_fin_timeout() -> None:
    host, una = established(replace(LINUX, fin_timeout=3.0))
    host.close(host.tcbs[(PORT, US, 40000)], 0.0)
    host.receive(seg("A", 1001, una + 1), 0.01)
    assert host.status(PORT, (US, 40000)) is State.FIN_WAIT_2
    assert run(host, 10.0) == [(3.01, "timeout/fin-wait-2")]


def test_the_fin_timeout_is_at_least_three_and_a_half_rto() -> None:
    host, una = established(replace(LINUX, fin_timeout=0.1, rto_min=1.0))
    tcb = host.tcbs[(PORT, US, 40000)]
    host.close(tcb, 0.0)
    host.receive(seg("A", 1001, una + 1), 0.0)
    assert tcb.time_wait_deadline == pytest.approx(3.5)


def test_the_rfc_profile_keeps_fin_wait_2() -> None:
    host, una = established(RFC)
    host.close(host.tcbs[(PORT, US, 40000)], 0.0)
    host.receive(seg("A", 1001, una + 1), 0.01)
    assert run(host, 10_000.0) == [] and host.status(PORT, (US, 40000)) is State.FIN_WAIT_2


# ---------------------------------------------------------------- an orphan (close()) against a shutdown
class _Answers:
    def __init__(self) -> None:
        self.answers: list[dict[str, object]] = []

    def app_answer(self, request: int, answer: dict[str, object], time: float) -> None:
        self.answers.append(answer)


def agent_connection(profile: ModelProfile) -> tuple[Host, Agent, _Answers, int, object]:
    """The agent listens and accepts a connection from 40000: the host, the agent, its answers, our next ACK
    (the target's ISS + 1) and the accepted socket."""
    host = Host(THEM, profile)
    agent, answers = Agent(host, ADDRESSING), _Answers()
    agent.request(AppRequest(1, "main", "listen", {"port": PORT}), answers, 0.0)
    (synack,) = syn(host, 40000)
    host.receive(seg("A", 1001, synack.seq + 1), 0.01)
    agent.request(AppRequest(2, "main", "accept", {"sock": 1}), answers, 0.02)
    return host, agent, answers, synack.seq + 1, answers.answers[-1]["sock"]


def test_after_a_shutdown_fin_wait_2_has_no_timer_and_still_takes_data() -> None:
    """Linux: only an orphan gets tcp_fin_timeout (SOCK_DEAD) or a RST for new data (RCV_SHUTDOWN)."""
    host, agent, answers, una, sock = agent_connection(replace(LINUX, fin_timeout=3.0))
    (fin,) = agent.request(AppRequest(3, "main", "shutdown", {"sock": sock, "how": "write"}), answers, 0.1)
    assert fin.flags == "FA"
    host.receive(seg("A", 1001, una + 1), 0.2)
    assert host.status(PORT, (US, 40000)) is State.FIN_WAIT_2
    assert run(host, 100.0) == []  # no FIN-WAIT-2 timer
    (ack,) = [e.segment for e in host.receive(seg("PA", 1001, una + 1, payload=b"late"), 100.0)]
    assert (ack.flags, ack.ack) == ("A", 1005)
    assert host.status(PORT, (US, 40000)) is State.FIN_WAIT_2
    agent.request(AppRequest(4, "main", "recv", {"sock": sock}), answers, 100.1)
    assert answers.answers[-1]["data"] == "late"


def test_a_close_after_a_shutdown_orphans_fin_wait_2_and_starts_its_timer() -> None:
    host, agent, answers, una, sock = agent_connection(replace(LINUX, fin_timeout=3.0))
    agent.request(AppRequest(3, "main", "shutdown", {"sock": sock}), answers, 0.1)
    host.receive(seg("A", 1001, una + 1), 0.2)
    assert agent.request(AppRequest(4, "main", "close", {"sock": sock}), answers, 1.0) == []
    assert run(host, 10.0) == [(4.0, "timeout/fin-wait-2")]


def test_new_data_after_close_is_reset_and_after_shutdown_both_too() -> None:
    for how in ("close", "both"):
        host, agent, answers, una, sock = agent_connection(LINUX)
        args = {"sock": sock} if how == "close" else {"sock": sock, "how": how}
        agent.request(AppRequest(3, "main", "close" if how == "close" else "shutdown", args), answers, 0.1)
        host.receive(seg("A", 1001, una + 1), 0.2)
        (rst,) = [e.segment for e in host.receive(seg("PA", 1001, una + 1, payload=b"late"), 0.3)]
        assert rst.flags == "R", how


def test_shutdown_read_sends_no_fin() -> None:
    host, agent, answers, una, sock = agent_connection(LINUX)
    assert agent.request(AppRequest(3, "main", "shutdown", {"sock": sock, "how": "read"}), answers, 0.1) == []
    assert host.status(PORT, (US, 40000)) is State.ESTABLISHED


# ---------------------------------------------------------------- an orphan's R2: tcp_orphan_retries
def unanswered_fin(profile: ModelProfile, close: bool) -> list[tuple[float, str]]:
    """Data and a FIN never acknowledged, after close() (an orphan) or a shutdown: each expiry and its rule."""
    host, una = established(profile)
    tcb = host.tcbs[(PORT, US, 40000)]
    host.send(tcb, b"hello", 0.0)
    (host.close if close else host.shutdown)(tcb, 0.0)
    return run(host, 2000.0)


def test_linux_gives_an_orphan_up_after_tcp_orphan_retries() -> None:
    """tcp_orphan_retries 0 means 8 while alive: the first expiry past tcp_model_timeout(8) = 102.2 s."""
    seen = unanswered_fin(LINUX, close=True)
    assert seen[-1][1] == "timeout/give-up"
    assert model_timeout(8, LINUX.rto_min, LINUX.rto_max) == pytest.approx(102.2)
    assert seen[-1][0] == pytest.approx(204.6)  # retransmissions at 0.2 ... 102.6 (102.4 s after the first)
    assert len(seen) == 10
    held = unanswered_fin(LINUX, close=False)  # a shutdown: R2 (tcp_retries2 15, 924.6 s)
    assert held[-1][1] == "timeout/give-up" and held[-1][0] > 924.6


def test_the_orphan_retries_sysctl_counts_and_the_rfc_profile_has_none() -> None:
    # tcp_model_timeout(2) = 1.4 s: retransmissions at 0.2, 0.6, 1.4, 3.0 (2.8 s after the first): given up
    assert unanswered_fin(replace(LINUX, orphan_retries=2), close=True)[-1] == (3.0, "timeout/give-up")
    assert [rule for _, rule in unanswered_fin(replace(RFC, data_retries=3), close=True)] == [
        "timeout/retransmit"
    ] * 3 + ["timeout/give-up"]


def test_an_orphan_whose_rto_reached_rto_max_is_given_up_at_once() -> None:
    """tcp_orphan_retries: not alive (icsk_rto = TCP_RTO_MAX) and the sysctl 0: no retries left, the first expiry
    past tcp_model_timeout(0) gives up; a shut-down socket keeps R2."""
    profile = replace(LINUX, rto_min=120.0)
    assert unanswered_fin(profile, close=True) == [(120.0, "timeout/retransmit"), (240.0, "timeout/give-up")]
    assert len(unanswered_fin(profile, close=False)) > 2
