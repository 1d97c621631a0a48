"""Offline tests of app steps, state assertions and app results (fake agent, fake clock)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conformance.core.engine import AppRequest
from conformance.core.loader import load_case

from .helpers import ISN, OUR_IP, PEER_ISN, SPORT, TARGET_IP, TARGET_PORT, FakeWire, write_case

T0 = 100.0
AGENT_CASE = "service: agent\n"
HANDSHAKE = (
    "  - app: {do: listen}\n"
    "  - send: {flags: S, seq: isn}\n"
    "  - expect: {flags: SA, ack: isn+1}\n"
    "    bind: {peer_isn: seq}\n"
    "  - send: {flags: A, seq: isn+1, ack: peer_isn+1}\n"
    "  - app: {do: accept}\n"
)


def answer(w: FakeWire, req: AppRequest, time: float, **fields: object) -> None:
    w.dialogue.app_answer(req.id, {"ok": True, **fields}, time)


def play_handshake(w: FakeWire) -> float:
    w.advance(T0)
    listen = w.requests[-1]
    assert listen.cmd == "listen" and listen.args["port"] == TARGET_PORT
    answer(w, listen, T0 + 0.001, sock=1)
    w.advance(T0 + 0.001)
    assert [s.flags for s in w.sent] == ["S"]
    w.reply(T0 + 0.002, "SA")
    accept = w.requests[-1]
    assert accept.cmd == "accept" and accept.args["sock"] == 1
    answer(w, accept, T0 + 0.003, sock=2)
    w.advance(T0 + 0.003)
    return T0 + 0.003


def test_state_query_names_the_four_tuple_and_passes(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE + "  - state: ESTABLISHED\n", extra=AGENT_CASE)))
    t = play_handshake(w)
    assert not w.requests[-1].cmd == "state"  # not before the state has settled
    w.advance(t + 0.05)
    query = w.requests[-1]
    assert query.cmd == "state"
    assert query.args == {"local": [TARGET_IP, TARGET_PORT], "remote": [OUR_IP, SPORT]}
    answer(w, query, t + 0.051, state="ESTABLISHED", linux="ESTABLISHED")
    w.advance(t + 0.051)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert "sock_diag" in v.steps[-1].timing


def test_wrong_state_fails_with_expected_observed_and_method(tmp_path: Path) -> None:
    path = write_case(tmp_path, HANDSHAKE + "  - state: FIN-WAIT-2\n", extra=AGENT_CASE)
    w = FakeWire(load_case(path))
    t = play_handshake(w)
    w.advance(t + 0.05)
    answer(w, w.requests[-1], t + 0.06, state="TIME-WAIT", linux="TIME_WAIT")
    w.advance(t + 0.06)
    f = w.verdict().failure
    assert f is not None and f.kind == "state"
    text = f.render()
    assert "expected state FIN-WAIT-2, observed TIME-WAIT" in text
    assert "white box: sock_diag" in text and "after the previous event" in text


def test_app_error_fails_the_case(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - app: {do: listen}\n", extra=AGENT_CASE)))
    w.advance(T0)
    w.dialogue.app_answer(w.requests[-1].id, {"ok": False, "error": "ENOBUFS", "detail": "no buffer"}, T0 + 0.01)
    w.advance(T0 + 0.01)
    f = w.verdict().failure
    assert f is not None and f.kind == "app" and "ENOBUFS" in f.render()


def test_a_listener_port_in_use_is_the_tools_doing_not_a_verdict(tmp_path: Path) -> None:
    """The listener's port is the tool's choice: another socket on the target holding it is a harness error (a
    benchmark run once failed a case so, when a target connect's ephemeral port was a later listener's port)."""
    w = FakeWire(load_case(write_case(tmp_path, "  - app: {do: listen}\n", extra=AGENT_CASE)))
    w.advance(T0)
    w.dialogue.app_answer(w.requests[-1].id, {"ok": False, "error": "EADDRINUSE", "detail": "in use"}, T0 + 0.01)
    w.advance(T0 + 0.01)
    v = w.verdict()
    assert v.failure is not None and v.failure.kind == "harness" and v.failure.kind.is_harness  # reported: error
    assert f"the port the tool gave the agent's listener, {TARGET_PORT}, is in use" in v.failure.render()


def test_silent_agent_is_a_harness_failure(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - app: {do: listen}\n", extra=AGENT_CASE)))
    w.advance(T0)
    deadline = w.deadline()
    w.advance(deadline + 0.01)
    f = w.verdict().failure
    assert f is not None and f.kind == "agent" and "did not answer" in f.message


def test_send_before_accept_cannot_run(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - app: {do: send, data: x}\n", extra=AGENT_CASE)))
    w.advance(T0)
    f = w.verdict().failure
    assert f is not None and "accept or connect first" in f.message


def test_state_lasts_checks_before_and_after_the_documented_time(tmp_path: Path) -> None:
    steps = HANDSHAKE + "  - state: TIME-WAIT\n    lasts: time_wait\n"
    w = FakeWire(load_case(write_case(tmp_path, steps, extra=AGENT_CASE)))
    t = play_handshake(w)
    ref = w.sent[-1].time + w.capture_delay  # our ACK, as captured
    w.advance(t + 0.05)
    answer(w, w.requests[-1], t + 0.05, state="TIME-WAIT")
    w.advance(t + 0.05)
    # documented 60 s, tolerance 15 %: still TIME-WAIT at 51 s, CLOSED at 69 s
    w.run_until(ref + 51.0 + 0.06)
    still = w.requests[-1]
    assert still.cmd == "state"
    answer(w, still, ref + 51.1, state="TIME-WAIT")
    w.run_until(ref + 69.0 + 0.06)
    gone = w.requests[-1]
    assert gone is not still and gone.cmd == "state"
    answer(w, gone, ref + 69.1, state="TIME-WAIT")  # it lasted too long
    w.advance(ref + 69.1)
    f = w.verdict().failure
    assert f is not None and "expected state CLOSED, observed TIME-WAIT" in f.message


def test_connect_learns_the_target_port_and_checks_the_result(tmp_path: Path) -> None:
    steps = (
        "  - app: {do: connect}\n    label: c\n    wait: false\n"
        "  - expect: {flags: S, within: 1s}\n    label: syn\n    bind: {peer_isn: seq}\n"
        "  - send: {flags: SA, seq: isn, ack: peer_isn+1}\n"
        "  - app_result: {of: c, ok: true, within: 1s}\n"
    )
    w = FakeWire(load_case(write_case(tmp_path, steps, extra=AGENT_CASE)))
    w.advance(T0)
    connect = w.requests[-1]
    assert connect.cmd == "connect" and connect.args == {"addr": OUR_IP, "port": SPORT}
    syn = w.segment(T0 + 0.001, "S", seq=PEER_ISN, ack=0)
    from dataclasses import replace

    w.dialogue.receive(replace(syn, sport=45678))  # the target's ephemeral port
    out = w.advance(T0 + 0.001)
    assert out[0].flags == "SA" and out[0].dport == 45678 and out[0].ack == PEER_ISN + 1 and out[0].seq == ISN
    answer(w, connect, T0 + 0.002, sock=7)
    w.advance(T0 + 0.002)
    assert w.verdict().status == "passed"


def test_app_result_error_mismatch_fails(tmp_path: Path) -> None:
    steps = (
        "  - app: {do: connect}\n    label: c\n    wait: false\n"
        "  - app_result: {of: c, error: ETIMEDOUT, within: 10s}\n"
    )
    w = FakeWire(load_case(write_case(tmp_path, steps, extra=AGENT_CASE)))
    w.advance(T0)
    w.dialogue.app_answer(w.requests[-1].id, {"ok": False, "error": "ECONNREFUSED"}, T0 + 1)
    w.advance(T0 + 1)
    f = w.verdict().failure
    assert f is not None and f.kind == "app"
    assert any(d.field == "result" and d.expected == "ETIMEDOUT" and d.observed == "ECONNREFUSED" for d in f.diffs)


def black_box(tmp_path: Path, steps: str) -> FakeWire:
    w = FakeWire(load_case(write_case(tmp_path, steps)))
    w.dialogue.white_box = False
    return w


def test_black_box_closed_is_a_rst_to_an_ack(tmp_path: Path) -> None:
    steps = (
        "  - send: {flags: S}\n  - expect: {flags: SA, ack: isn+1}\n"
        "  - send: {flags: R, seq: isn+1}\n  - state: CLOSED\n"
    )
    w = black_box(tmp_path, steps)
    w.advance(T0)
    w.reply(T0 + 0.001, "SA")
    probe = w.sent[-1]
    assert probe.flags == "A" and probe.ack == PEER_ISN + 1 and not w.requests
    w.reply(T0 + 0.002, "R", seq=PEER_ISN + 1, ack=0)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert "black box" in v.steps[-1].description


def test_black_box_time_wait_is_a_fin_acknowledged_again(tmp_path: Path) -> None:
    steps = (
        "  - send: {flags: S}\n  - expect: {flags: SA, ack: isn+1}\n"
        "  - send: {flags: FA, seq: isn+1, ack: rcv_nxt}\n  - state: TIME-WAIT\n"
    )
    w = black_box(tmp_path, steps)
    w.advance(T0)
    w.reply(T0 + 0.001, "SA")
    probe = w.sent[-1]
    assert probe.flags == "FA" and probe.seq == ISN + 1  # our FIN again
    w.reply(T0 + 0.002, "R", seq=PEER_ISN + 1, ack=0)  # not TIME-WAIT: it reset
    f = w.verdict().failure
    assert f is not None and "black box" in f.render() and "acknowledged again" in f.render()


def test_black_box_has_no_inference_for_close_wait(tmp_path: Path) -> None:
    w = black_box(tmp_path, "  - send: {flags: S}\n  - expect: {flags: SA}\n  - state: CLOSE-WAIT\n")
    w.advance(T0)
    w.reply(T0 + 0.001, "SA")
    v = w.verdict()
    assert v.status == "passed"
    assert v.steps[-1].status == "skipped" and "no black-box inference" in v.steps[-1].description


def play_answer(tmp_path: Path, step: str, **fields: object) -> tuple[FakeWire, dict[str, object]]:
    """The handshake, then `step` (an app step), answered with `fields`: the wire and the request's arguments."""
    w = FakeWire(load_case(write_case(tmp_path, HANDSHAKE + step, extra=AGENT_CASE)))
    t = play_handshake(w)
    req = w.requests[-1]
    answer(w, req, t + 0.01, **fields)
    w.advance(t + 0.01)
    return w, dict(req.args)


def test_an_answer_that_holds_what_the_step_asks_passes(tmp_path: Path) -> None:
    step = "  - app: {do: getsockopt, answer: {options.SO_KEEPALIVE: 0, options.TCP_KEEPIDLE: {min: 7200}}}\n"
    w, args = play_answer(tmp_path, step, options={"SO_KEEPALIVE": 0, "TCP_KEEPIDLE": 7200})
    assert "answer" not in args and args["sock"] == 2  # the judge's, not sent to the agent
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_an_answer_outside_its_bounds_fails_with_each_field(tmp_path: Path) -> None:
    step = "  - app: {do: getsockopt, answer: {options.SO_KEEPALIVE: 0, options.TCP_KEEPIDLE: {min: 7200}}}\n"
    w, _ = play_answer(tmp_path, step, options={"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 60})
    f = w.verdict().failure
    assert f is not None and f.kind == "app"
    text = f.render()
    assert "getsockopt answered otherwise" in text and "at least 7200" in text and "60" in text


def test_a_recv_that_is_not_eof_fails_an_eof_answer(tmp_path: Path) -> None:
    w, _ = play_answer(tmp_path, "  - app: {do: recv, answer: {eof: true}}\n", data="x", eof=False)
    f = w.verdict().failure
    assert f is not None and "eof" in f.render()
    w, _ = play_answer(tmp_path, "  - app: {do: recv, answer: {eof: true}}\n", data="", eof=True)
    assert w.verdict().status == "passed"


def test_connect_to_broadcast_and_from_the_listening_port(tmp_path: Path) -> None:
    steps = "  - app: {do: connect, to: broadcast, local_port: listen, local_addr: target}\n    wait: false\n"
    case = load_case(write_case(tmp_path, steps, extra=AGENT_CASE))
    w = FakeWire(case)
    w.dialogue.addr = replace(w.dialogue.addr, prefix=24)
    w.advance(T0)
    args = w.requests[-1].args
    assert args["addr"] == TARGET_IP.rsplit(".", 1)[0] + ".255"
    assert args["local_port"] == TARGET_PORT and args["local_addr"] == TARGET_IP and "to" not in args
    w = FakeWire(case)  # the run does not know the target's subnet: the step cannot run
    w.advance(T0)
    f = w.verdict().failure
    assert f is not None and "whose subnet the run knows" in f.message


SEND_THEN_EXPECT = HANDSHAKE + (
    '  - app: {do: send, data: "a"}\n  - expect: {flags: PA, seq: peer_isn+1, ack: isn+1, data: "a", within: 200ms}\n'
)


def _slow_agent_send(tmp_path: Path, answered_after: float, segment_after_answer: float) -> str:
    """The agent answers `send` `answered_after` s after the handshake (a slow prober); the target's segment
    comes `segment_after_answer` s after that answer."""
    w = FakeWire(load_case(write_case(tmp_path, SEND_THEN_EXPECT, extra=AGENT_CASE)))
    t = play_handshake(w)
    send = w.requests[-1]
    assert send.cmd == "send"
    answer(w, send, t + answered_after, sent=1)
    w.advance(t + answered_after)
    at = t + answered_after + segment_after_answer
    w.reply(at, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"a")
    w.advance(at + 1.0)
    v = w.verdict()
    return str(v.status) + (": " + v.failure.render() if v.failure else "")


def test_a_within_window_counts_from_the_app_answer_not_only_the_wire(tmp_path: Path) -> None:
    """The agent's round trips are the prober's time: 400 ms of them before the write, and the segment 20 ms after
    the answer, is in time (it failed as 'late' when the window counted from our handshake ACK alone)."""
    assert _slow_agent_send(tmp_path, 0.4, 0.02) == "passed"


def test_a_segment_late_after_the_app_answer_still_fails(tmp_path: Path) -> None:
    outcome = _slow_agent_send(tmp_path, 0.01, 0.5)  # 500 ms after the write's answer: late
    assert outcome.startswith("failed") and "late" in outcome, outcome
