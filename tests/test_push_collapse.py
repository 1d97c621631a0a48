"""cases/sender/push-collapse.yaml (SHLD-27) against scripted targets on a fake clock: three writes queued behind
our closed window come as one segment (passes), as three (warns, SHLD-27), or without PSH (fails, MUST-61)."""

from __future__ import annotations

from conformance.core.engine import Verdict
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.reference import play, unsupported

from .helpers import ISN, PEER_ISN, ROOT, agent_handshake

CASE = ROOT / "cases" / "sender" / "push-collapse.yaml"


def _play(segments: list[tuple[str, bytes]]) -> Verdict:
    """The target completes the handshake; once our window opens it sends `segments` (flags, data)."""
    t = 100.0
    w, _ = agent_handshake(CASE, t, 6)  # accept, then the three writes
    assert w.sent[-1].window == 65535, "the window update comes after the writes"
    seq, at = PEER_ISN + 1, t + 0.02
    for flags, data in segments:
        w.reply(at, flags, seq=seq, ack=ISN + 1, payload=data)
        seq, at = seq + len(data), at + 0.0002
    w.run_until(at + 2)
    return w.verdict()


def _cites(v: Verdict, rid: str) -> bool:
    failures = [v.failure] if v.failure is not None else []
    failures += [f.failure for f in v.findings]
    return any(f.reference is not None and f.reference.id == rid for f in failures)


def test_one_segment_with_psh_passes() -> None:
    v = _play([("PA", b"abcdef")])
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_three_segments_warn_shld_27() -> None:
    v = _play([("PA", b"ab"), ("PA", b"cd"), ("PA", b"ef")])
    assert v.status is Status.WARNING and _cites(v, "SHLD-27"), v.failure.render() if v.failure else v.findings


def test_no_psh_on_the_last_buffered_segment_fails_must_61() -> None:
    v = _play([("A", b"abcdef")])
    assert v.status is Status.FAILED and _cites(v, "MUST-61"), v.failure.render() if v.failure else v.findings


def test_the_model_plays_it_and_passes() -> None:
    """The model sends what the application queued once the window opens (RFC 9293 §3.8.6), as one segment."""
    case = load_case(CASE)
    assert unsupported(case) is None
    verdict = play(case, LINUX).verdict
    assert verdict.status is Status.PASSED, verdict.failure.render() if verdict.failure else ""
