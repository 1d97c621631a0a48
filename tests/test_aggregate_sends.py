"""cases/app/aggregate-sends.yaml (MAY-16) against scripted targets on a fake clock: a stack that holds the three
writes and sends them as one passes; one that sends each at once is reported (info), never failed: a MAY."""

from __future__ import annotations

from conformance.core.engine import Verdict
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.reference import play, unsupported

from .helpers import ISN, PEER_ISN, ROOT, agent_handshake

CASE = ROOT / "cases" / "app" / "aggregate-sends.yaml"


def _play(later: list[bytes]) -> Verdict:
    """ "a" at once; then, after the three writes, `later` one segment each: at once (a stack without Nagle) when
    the list has three, else after our ACK of "a"."""
    t = 100.0
    w, answer_app = agent_handshake(CASE, t, 3)  # accept, getsockopt, send "a"
    w.reply(t + 0.007, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=b"a")
    for i in range(3):  # the three writes
        answer_app(t + 0.008 + i * 0.001)
    seq = PEER_ISN + 2
    at = t + 0.012 if len(later) == 3 else t + 0.2  # at once, or after our ACK of "a" (100 ms of silence)
    for data in later:
        w.reply(at, "PA", seq=seq, ack=ISN + 1, payload=data)
        seq, at = seq + len(data), at + 0.0002
    w.run_until(at + 2)
    return w.verdict()


def test_held_and_sent_as_one_passes() -> None:
    v = _play([b"bcd"])
    assert v.status is Status.PASSED and not v.findings, v.failure.render() if v.failure else v.findings


def test_sent_at_once_is_information_not_a_failure() -> None:
    v = _play([b"b", b"c", b"d"])
    assert v.status is not Status.FAILED, v.failure.render() if v.failure else ""
    assert v.findings and all(f.failure.reference is not None for f in v.findings)
    assert {f.failure.reference.id for f in v.findings if f.failure.reference} == {"MAY-16"}


def test_the_linux_model_plays_it_and_its_nagle_algorithm_aggregates() -> None:
    case = load_case(CASE)
    assert unsupported(case) is None
    verdict = play(case, LINUX).verdict
    assert verdict.status is Status.PASSED and not verdict.findings
    sent = [e.segment.payload for e in verdict.trace if not e.outgoing and e.segment.payload]
    assert sent == [b"a", b"bcd"]
