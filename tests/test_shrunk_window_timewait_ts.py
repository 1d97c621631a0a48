"""Offline tests, on a fake clock against scripted targets, of two cases: a window shrunk to zero under data that
is never acknowledged must not time the connection out (cases/sender/shrunk-window-no-timeout.yaml, SHLD-17), and a
SYN in TIME-WAIT with a lower sequence number but a newer timestamp opens a new connection
(cases/close/time-wait-timestamp-reopen.yaml, SHLD-4). Each deviation beside a control that behaves as Linux."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conformance.core.engine import Verdict
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.profiles import load_profile
from conformance.core.segment import Segment, seq_add

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, answer_app_requests
from .test_sender_window_cases import _cites

SHRUNK = ROOT / "cases" / "sender" / "shrunk-window-no-timeout.yaml"
SHORT_R2 = ROOT / "cases" / "sender" / "shrunk-window-no-timeout-short-r2.yaml"
REOPEN = ROOT / "cases" / "close" / "time-wait-timestamp-reopen.yaml"


#: What the scripted target sends: (time, segment).
Script = list[tuple[float, Segment]]


def _drive(w: FakeWire, script: Script, state: str) -> Verdict:
    """Deliver `script`, and answer the agent's commands as a well-behaved application would (a state request with
    `state`), at each segment's time and every 5 ms for 100 ms after it, then at each deadline until the end."""
    answered: set[int] = set()

    def answer(now: float) -> None:
        w.advance(now)
        for request in w.requests:
            if request.cmd == "state" and request.id not in answered:
                answered.add(request.id)
                w.dialogue.app_answer(request.id, {"ok": True, "state": state, "linux": state}, now)
        answer_app_requests(w, answered, now)

    pending = sorted(script, key=lambda item: item[0])
    for now in sorted({round(at + 0.005 * k, 6) for at, _ in script for k in range(21)}):
        while pending and pending[0][0] <= now:
            w.dialogue.receive(pending.pop(0)[1])
        answer(now)
    while not w.dialogue.done and (deadline := w.dialogue.next_deadline()) is not None:
        answer(deadline + 0.001)
    return w.verdict()


# --- shrunk-window-no-timeout: SHLD-17 -----------------------------------------------------------------------


def _shrunk(
    retransmissions: int, state: str = "ESTABLISHED", rst_at: float | None = None, case: Path = SHRUNK
) -> Verdict:
    """The target retransmits its 5 octets at 0.2 s doubling (Linux), `retransmissions` times, or resets `rst_at`
    into the zero window; the agent reads `state`; the data we send at the end is acknowledged."""
    w = FakeWire(load_case(case), profile=load_profile("linux"))
    t = 100.0
    script: Script = [
        (t, w.segment(t + 0.01, "SA", ack=ISN + 1)),
        (t + 0.1, w.segment(t + 0.1, "PA", seq=PEER_ISN + 1, payload=b"hello")),
    ]
    at = t + 0.1
    for k in range(retransmissions):
        at += 0.2 * 2**k
        if rst_at is not None and at > t + rst_at:
            at = t + rst_at
            script.append((at, w.segment(at, "R", seq=PEER_ISN + 6)))
            break
        script.append((at, w.segment(at, "PA", seq=PEER_ISN + 1, payload=b"hello")))
    if state == "ESTABLISHED" and rst_at is None:
        script.append((at + 0.2, w.segment(at + 0.2, "A", seq=PEER_ISN + 6, ack=ISN + 3)))  # the ACK of our data
    return _drive(w, script, state)


def test_shrunk_window_passes_a_sender_that_keeps_the_connection() -> None:
    v = _shrunk(10)
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_shrunk_window_catches_a_sender_that_resets_at_r2() -> None:
    """SHLD-17: a RST 100 s into the zero window (R2 at its least, SHLD-11), as for unanswered retransmissions."""
    v = _shrunk(10, rst_at=100.0)
    assert v.status is Status.WARNING and _cites(v, "SHLD-17"), v.failure or v.findings


def test_shrunk_window_catches_a_silent_timeout() -> None:
    """SHLD-17: the connection timed out without a RST (Linux's way): the state check shows it, white box."""
    v = _shrunk(9, state="CLOSED")
    assert v.status is Status.WARNING and _cites(v, "SHLD-17"), v.failure or v.findings


def test_shrunk_window_fails_a_sender_that_never_probes() -> None:
    """MUST-35: nothing after the window shrank to zero: the shrunk window is never probed."""
    v = _shrunk(0, state="CLOSED", case=SHORT_R2)
    assert v.status is Status.FAILED and _cites(v, "MUST-35"), v.failure or v.findings


def test_short_r2_passes_a_sender_that_outlives_its_r2() -> None:
    """Linux with tcp_retries2=3: six retransmissions in 12.6 s, the connection kept."""
    v = _shrunk(6, case=SHORT_R2)
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_short_r2_catches_a_sender_that_counts_them_against_r2() -> None:
    """SHLD-17: four retransmissions (3 s, Linux's R2 for tcp_retries2=3), then nothing and the socket gone: what
    Linux does when the window is open (seen on the embedded target)."""
    v = _shrunk(4, state="CLOSED", case=SHORT_R2)
    assert v.status is Status.WARNING and _cites(v, "SHLD-17"), v.failure or v.findings


# --- time-wait-timestamp-reopen: SHLD-4 ----------------------------------------------------------------------


def _reopen(answer_new_syn: str) -> Verdict:
    """The target closes, reaches TIME-WAIT, and answers the late SYN with `answer_new_syn` (SA: a new incarnation
    with a timestamp; A: the old connection's ACK, as a stack that ignores timestamps in TIME-WAIT)."""
    w = FakeWire(load_case(REOPEN), profile=load_profile("linux"))
    ts = (("timestamp", (7, 1000)),)
    t = 100.0
    new_syn = seq_add(ISN, -1_000_000)
    if answer_new_syn == "SA":
        last = replace(w.segment(t + 0.3, "SA", seq=seq_add(PEER_ISN, 65539), ack=new_syn + 1), options=ts)
    else:
        last = w.segment(t + 0.3, "A", seq=PEER_ISN + 2, ack=ISN + 2)
    script: Script = [
        (t, replace(w.segment(t + 0.01, "SA", ack=ISN + 1), options=ts)),
        (t + 0.1, w.segment(t + 0.1, "FA", seq=PEER_ISN + 1)),  # the active close
        (t + 0.2, w.segment(t + 0.2, "A", seq=PEER_ISN + 2, ack=ISN + 2)),  # the ACK of our FIN
        (t + 0.3, last),
    ]
    return _drive(w, script, "TIME-WAIT")


def test_timestamp_reopen_passes_a_target_that_honours_the_newer_timestamp() -> None:
    v = _reopen("SA")
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_timestamp_reopen_catches_a_target_that_keeps_time_wait() -> None:
    """SHLD-4: the old connection's ACK instead of a SYN-ACK (the sequence number test of MAY-2 alone)."""
    v = _reopen("A")
    assert v.status is Status.WARNING and _cites(v, "SHLD-4"), v.failure or v.findings
