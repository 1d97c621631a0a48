"""Offline tests of what the sender cases (cases/sender/) rely on: the ``max_len`` bound, per address family,
and the ``persist`` schedule of zero-window probes. Each test names the deviation it must catch."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.engine import Verdict
from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.matching import compare, matches
from conformance.core.model import ExpectStep, SegmentPattern
from conformance.core.params import resolve
from conformance.core.profiles import load_profile
from conformance.core.schedules import SCHEDULES, data, persist
from conformance.core.segment import Segment

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, write_case

SENDER = ROOT / "cases" / "sender"


def _seg(src: str, payload: bytes) -> Segment:
    dst = "2001:2::1" if ":" in src else "198.18.0.1"
    return Segment(src=src, dst=dst, sport=7000, dport=40000, seq=1, ack=1, flags="A", window=65535, payload=payload)


@pytest.mark.parametrize(
    ("src", "size", "ok"),
    [("198.18.0.2", 536, True), ("198.18.0.2", 537, False), ("2001:2::2", 1220, True), ("2001:2::2", 1221, False)],
)
def test_max_len_bounds_the_payload_by_family(src: str, size: int, ok: bool) -> None:
    """MUST-15: 536 octets over IPv4, 1220 over IPv6; one octet more fails, with the bound in the message."""
    diffs = compare(SegmentPattern(max_length=(536, 1220)), _seg(src, b"x" * size), {}, {})
    assert matches(diffs) is ok
    assert [(d.field, d.expected) for d in diffs] == [("max_len", f"at most {536 if '.' in src else 1220}")]


def test_max_len_is_parsed_from_a_number_or_a_mapping(tmp_path: Path) -> None:
    steps = "  - expect: {flags: A, max_len: 200}\n  - expect: {flags: A, max_len: {ipv4: 536, ipv6: 1220}}\n"
    case = load_case(write_case(tmp_path, steps))
    bounds = [s.pattern.max_length for s in case.steps if isinstance(s, ExpectStep)]
    assert bounds == [(200, 200), (536, 1220)]


def test_max_len_in_a_send_is_rejected_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="max_len bounds what the target sends"):
        load_case(write_case(tmp_path, "  - send: {flags: A, max_len: 10}\n"))


def test_the_persist_schedule_doubles_from_two_rtos() -> None:
    """First probe one RTO into the zero window (SHLD-29), then doubling (SHLD-30): from the first probe on the
    gaps are 2, 4, 8 RTO. A stack probing at a constant interval misses the second gap by half."""
    params = resolve({}, load_profile("linux"))
    rto = data(params, 0.001).intervals[0]
    assert persist(params, 0.001).intervals[:3] == pytest.approx((2 * rto, 4 * rto, 8 * rto))
    assert "persist" in SCHEDULES


def _zero_window(probe_gaps: list[float]) -> FakeWire:
    """The zero-window case against a scripted target that probes after each of `probe_gaps` (no answers)."""
    w = FakeWire(load_case(SENDER / "zero-window-probe.yaml"), profile=load_profile("linux"))
    t = 100.0
    w.advance(t)
    w.dialogue.app_answer(w.requests[-1].id, {"ok": True, "sock": 1}, t + 0.001)
    w.advance(t + 0.001)
    w.reply(t + 0.002, "SA", seq=PEER_ISN, ack=ISN + 1)
    for sock, at in ((2, 0.004), (None, 0.005)):  # accept, then send
        w.dialogue.app_answer(w.requests[-1].id, {"ok": True, "sock": sock, "sent": 5}, t + at)
        w.advance(t + at)
    t += 0.2
    for gap in probe_gaps:
        t += gap
        w.reply(t, "A", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(t + 10)
    return w


def test_a_target_that_never_probes_fails_must_36() -> None:
    f = _zero_window([]).verdict().failure
    assert f is not None and "MUST-36" in f.render() and "no segment from the target" in f.render()


def _shld30(v: Verdict) -> bool:
    """A warning (finding) against SHLD-30 among the verdict's findings."""
    return any(f.failure.reference is not None and f.failure.reference.id == "SHLD-30" for f in v.findings)


def test_probes_at_a_constant_interval_are_not_an_exponential_backoff() -> None:
    """SHLD-30: probes every 200 ms are reported against it (the scripted target then stops probing, which
    fails MUST-37's answered probe: that failure is not the point here)."""
    assert _shld30(_zero_window([0.0, 0.2, 0.2]).verdict())


def test_probes_that_double_raise_nothing_against_shld_30() -> None:
    """The control: a first probe, then gaps of 2 and 4 RTO (Linux: about 400 and 800 ms)."""
    assert not _shld30(_zero_window([0.0, 0.41, 0.82]).verdict())
