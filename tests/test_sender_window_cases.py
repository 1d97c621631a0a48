"""Offline tests of the sender window cases (cases/sender/window-*.yaml, sws-avoidance.yaml) against scripted
targets on a fake clock: each names the deviation it must catch, beside a control that behaves as Linux does."""

from __future__ import annotations

from collections.abc import Sequence

from conformance.core.engine import Verdict
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.profiles import load_profile

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, answer_app_requests

SENDER = ROOT / "cases" / "sender"

#: What the scripted target sends: (seconds after the app's write, flags, seq relative to its ISN, octets).
Script = Sequence[tuple[float, str, int, int]]


def _play(name: str, script: Script) -> Verdict:
    """Play `name` against a target that completes the handshake, then sends `script` after the app's write."""
    w = FakeWire(load_case(SENDER / name), profile=load_profile("linux"))
    answered: set[int] = set()
    t = 100.0
    w.advance(t)
    answer_app_requests(w, answered, t + 0.001)  # listen
    w.reply(t + 0.002, "SA", seq=PEER_ISN, ack=ISN + 1)
    for i in range(4):  # accept, send (and a state request, when one comes)
        answer_app_requests(w, answered, t + 0.004 + i * 0.001)
    t += 0.01
    for at, flags, rel, size in script:
        w.reply(t + at, flags, seq=PEER_ISN + rel, payload=b"x" * size)
        answer_app_requests(w, answered, t + at + 0.0005)
    w.run_until(t + 10)
    answer_app_requests(w, answered, t + 10)
    w.run_until(t + 12)
    return w.verdict()


def _cites(v: Verdict, rid: str) -> bool:
    """A failure or a warning of the verdict answers to `rid`."""
    failures = [v.failure] if v.failure is not None else []
    failures += [f.failure for f in v.findings]
    return any(f.reference is not None and f.reference.id == rid for f in failures)


# --- window-shrink: MUST-34, SHLD-15, SHLD-16 ---------------------------------------------------------------

FILL = [(0.0, "A", 1, 1000), (0.0001, "PA", 1001, 1000)]


def test_window_shrink_passes_a_sender_that_retransmits_inside_the_window() -> None:
    """Linux: 500 octets from SND.UNA at the RTO, then the rest once the window opens."""
    v = _play("window-shrink.yaml", [*FILL, (0.2, "A", 1001, 500), (0.3, "A", 2001, 1000)])
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_window_shrink_allows_the_whole_old_segment_again() -> None:
    """MAY-7: resending the old segment beyond the shrunk edge is the sender's option, not a deviation."""
    v = _play("window-shrink.yaml", [*FILL, (0.2, "A", 1001, 1000), (0.3, "A", 2001, 1000)])
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_window_shrink_catches_new_data_beyond_the_shrunk_edge() -> None:
    """SHLD-15: new data at peer_isn+2001 right after the shrink."""
    v = _play("window-shrink.yaml", [*FILL, (0.01, "A", 2001, 1000), (0.2, "A", 1001, 500)])
    assert _cites(v, "SHLD-15")


def test_window_shrink_catches_a_sender_that_never_retransmits() -> None:
    """SHLD-16: nothing from SND.UNA within 3.5 s."""
    assert _cites(_play("window-shrink.yaml", FILL), "SHLD-16")


# --- window-unsigned (MUST-1) and window-32-bit (REC-1) ------------------------------------------------------


def test_window_unsigned_catches_a_sender_that_takes_32768_as_negative() -> None:
    """MUST-1: a sender that sees no usable window and sends a one-octet probe after an RTO."""
    v = _play("window-unsigned.yaml", [(0.2, "PA", 1, 1)])
    assert v.status is Status.FAILED and _cites(v, "MUST-1")
    assert _play("window-unsigned.yaml", [(0.0, "PA", 1, 1000)]).status is Status.PASSED


def test_window_32_bit_catches_a_sender_that_keeps_the_scaled_window_in_16_bits() -> None:
    """REC-1: 131072 truncated to 16 bits is 0: nothing comes within 1 s."""
    assert _cites(_play("window-32-bit.yaml", []), "REC-1")


# --- sws-avoidance: MUST-38 ----------------------------------------------------------------------------------


def test_sws_avoidance_passes_a_sender_that_waits_for_the_window() -> None:
    v = _play("sws-avoidance.yaml", [*FILL, (0.3, "A", 2001, 1000)])
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


def test_sws_avoidance_catches_a_tiny_segment_at_once() -> None:
    """MUST-38: 100 octets 2 ms after the window opened by 100, with 2000 queued."""
    v = _play("sws-avoidance.yaml", [*FILL, (0.002, "A", 2001, 100), (0.3, "A", 2101, 1000)])
    assert v.status is Status.FAILED and _cites(v, "MUST-38")


def test_sws_avoidance_warns_an_override_shorter_than_the_rfc_range() -> None:
    """An override timeout of 50 ms: SWS avoidance is there (MUST-38 holds), but the RFC's range is 0.1 - 1.0 s
    (a SHOULD): a warning, never a MUST failure."""
    v = _play("sws-avoidance.yaml", [*FILL, (0.05, "A", 2001, 100), (0.3, "A", 2101, 1000)])
    assert v.status is Status.WARNING and _cites(v, "sws-override"), v.failure.render() if v.failure else v.findings
