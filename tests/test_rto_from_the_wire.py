"""``after: rto`` counts the RTT samples the target could take on the wire, our late ACK's included
(conformance.core.rto): a prober that acknowledges late must not turn a conforming target's probe into a warning,
and a probe clearly outside every plausible RTO still warns (SHLD-29). On a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.engine import Verdict
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.params import resolve
from conformance.core.profiles import load_profile
from conformance.core.rto import RttSample, first_sample_rto, rto_bounds, rtt_samples, smoothed_rto
from conformance.core.schedules import named_time
from conformance.core.segment import Segment
from conformance.core.verdict import TraceEntry

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, answer_app_requests, write_case
from .test_sender_window_cases import _cites

CASE = ROOT / "cases" / "sender" / "zero-window-first-probe.yaml"
CAPTURE = 0.0005  # FakeWire's capture delay: our segments' wire times
#: Linux's timer granularity (a jiffy at HZ=250) and the case's tolerance floor: the tolerance of a ~200 ms RTO.
TOLERANCE = 0.05 + 0.004


def _play_with_late_ack(ack_delay: float, probe_after_ack: float) -> tuple[Verdict, float]:
    """The case against a target whose two data segments our ACK answers `ack_delay` late (a loaded prober), and
    whose probe comes `probe_after_ack` after that ACK. Returns the verdict and the data RTT sample on the wire."""
    w = FakeWire(load_case(CASE), profile=load_profile("linux"), capture_delay=CAPTURE)
    answered: set[int] = set()
    t = 100.0
    w.advance(t)
    answer_app_requests(w, answered, t + 0.001)  # listen
    w.reply(t + 0.002, "SA", seq=PEER_ISN, ack=ISN + 1)
    for i in range(3):  # accept, send
        answer_app_requests(w, answered, t + 0.004 + i * 0.001)
    t += 0.01
    w.target(t, "A", seq=PEER_ISN + 1, payload=b"x" * 1000)
    w.target(t + 0.0001, "PA", seq=PEER_ISN + 1001, payload=b"x" * 1000)
    (ack,) = w.advance(t + ack_delay)  # the engine was busy: our window-closing ACK goes out late
    assert ack.window == 0 and ack.ack == PEER_ISN + 2001
    acked = t + ack_delay + CAPTURE
    probe = acked + probe_after_ack
    w.reply(probe, "A", seq=PEER_ISN + 2000)  # Linux's probe: SEG.SEQ = SND.UNA-1, no data
    w.reply(probe + 0.002, "PA", seq=PEER_ISN + 2001, payload=b"x" * 1000)
    w.run_until(probe + 3)
    return w.verdict(), acked - t


def _findings(v: Verdict) -> str:
    return " ".join(f.failure.render() for f in v.findings)


def test_a_probe_one_rto_after_a_late_ack_from_the_data_sample_passes() -> None:
    """A target that takes its RTO from the data sample our 80 ms late ACK gave (R + max(rto_min, 2R)) probes
    280 ms after that ACK: beyond the handshake-only estimate and its tolerance, inside the range from the samples."""
    v, r_data = _play_with_late_ack(0.08, 0.0)
    handshake_only = named_time("rto", resolve({}, load_profile("linux")), CAPTURE)[0]
    at = first_sample_rto(r_data, 0.2)
    assert at > handshake_only + TOLERANCE  # the old estimate would have warned here
    v, _ = _play_with_late_ack(0.08, at)
    assert v.status is Status.PASSED, _findings(v)


def test_linuxs_smoothed_rto_after_a_late_ack_passes() -> None:
    """Linux's estimator (tcp_rtt_estimator, RFC 6298 §2.3 with rto_min under RTTVAR): about 210 ms."""
    v, r_data = _play_with_late_ack(0.08, 0.0)
    v, _ = _play_with_late_ack(0.08, smoothed_rto([CAPTURE, r_data], 0.2))
    assert v.status is Status.PASSED, _findings(v)


@pytest.mark.parametrize(("probe", "word"), [(0.1, "early"), (0.6, "late")])
def test_a_probe_outside_every_plausible_rto_still_warns(probe: float, word: str) -> None:
    """Before the smallest RTO (the handshake's, ~200 ms) less its tolerance, or well after the largest (~280 ms)
    plus its tolerance: SHLD-29, and the failure says which samples and formulas gave the bounds."""
    v, _ = _play_with_late_ack(0.08, probe)
    assert v.status is Status.WARNING and _cites(v, "SHLD-29"), _findings(v)
    text = _findings(v)
    assert f"{word}: expected after 200.5 ms to 280.5 ms" in text, text
    assert "its SYN-ACK to our ACK 500 µs" in text and "its 1000 octets at +1 to our ACK 80.5 ms" in text
    assert "with the first sample R = 500 µs (RFC 6298 §2.2)" in text
    assert "with the largest sample R = 80.5 ms" in text and "rto_min 200.0 ms (from profile linux" in text


def test_a_missing_probe_names_the_tolerance_of_the_end_that_bounds_the_deadline() -> None:
    """Our ACK 1 s late: the range runs to ~3 s, whose tolerance (15% + a jiffy, ~454 ms) sets the deadline; the
    message must give it, not the low end's 54 ms."""
    w = FakeWire(load_case(CASE), profile=load_profile("linux"), capture_delay=CAPTURE)
    answered: set[int] = set()
    t = 100.0
    w.advance(t)
    answer_app_requests(w, answered, t + 0.001)
    w.reply(t + 0.002, "SA", seq=PEER_ISN, ack=ISN + 1)
    for i in range(3):
        answer_app_requests(w, answered, t + 0.004 + i * 0.001)
    t += 0.01
    w.target(t, "A", seq=PEER_ISN + 1, payload=b"x" * 1000)
    w.target(t + 0.0001, "PA", seq=PEER_ISN + 1001, payload=b"x" * 1000)
    w.advance(t + 1.0)
    w.run_until(t + 10)
    v = w.verdict()
    text = " ".join(f.failure.message for f in v.findings) + (v.failure.message if v.failure else "")
    assert (
        "no segment from the target: expected after rto = 200.5 ms to 3.002 s (tolerance 54.0 ms at 200.5 ms and "
        "454.2 ms at 3.002 s, max(50.0 ms, 15%) + timer granularity 4.0 ms) of the previous event, nothing came in "
        "3.507 s"
    ) in text, text


# --- the samples and the estimator -----------------------------------------------------------------------------


def _entry(time: float, outgoing: bool, flags: str, seq: int, ack: int = 0, size: int = 0) -> TraceEntry:
    seg = Segment("a", "b", 1, 2, seq, ack, flags, 65535, b"x" * size, time=time)
    return TraceEntry(time, outgoing, "main", seg)


def test_one_sample_per_ack_from_the_oldest_segment_it_acknowledges() -> None:
    trace = [
        _entry(0.0, True, "S", 100),
        _entry(0.001, False, "SA", 500, 101),
        _entry(0.003, True, "A", 101, 501),  # handshake: 2 ms
        _entry(0.010, False, "A", 501, 101, 1000),
        _entry(0.011, False, "PA", 1501, 101, 1000),
        _entry(0.050, True, "A", 101, 2501),  # both: one sample, from the oldest, 40 ms
        _entry(0.060, False, "A", 2500, 101),  # a zero-window probe: no sequence space, not timed
        _entry(0.070, True, "A", 101, 2501),
    ]
    samples = rtt_samples(trace, "main")
    assert [round(s.seconds, 6) for s in samples] == [0.002, 0.04]
    assert [s.what for s in samples] == ["its SYN-ACK", "its 1000 octets at +1"]


def test_no_sample_from_an_ack_of_retransmitted_data() -> None:
    """Karn's algorithm (RFC 6298 §3): the ACK cannot tell which transmission it answers."""
    trace = [
        _entry(0.0, False, "SA", 500, 101),
        _entry(0.5, False, "SA", 500, 101),  # the SYN-ACK again
        _entry(0.501, True, "A", 101, 501),
        _entry(0.6, False, "A", 501, 101, 100),
        _entry(0.62, True, "A", 101, 601),
    ]
    assert [round(s.seconds, 6) for s in rtt_samples(trace, "main")] == [0.02]


def test_the_bounds_are_the_smallest_and_largest_plausible_rto() -> None:
    assert smoothed_rto([0.0005, 0.0805], 0.2) == pytest.approx(0.0105 + 0.2)  # 4 RTTVAR = 80.25 ms < rto_min
    assert smoothed_rto([0.1, 0.001], 0.2) == pytest.approx(0.087625 + 4 * 0.06225)  # RFC 6298 §2.3 by hand
    samples = [RttSample("its SYN-ACK", 0.0, 0.1), RttSample("its 1 octets at +1", 1.0, 1.001)]
    bounds = rto_bounds(samples, 0.2, "profile linux")
    assert bounds.low == pytest.approx(0.001 + 0.2)  # a stack that timed only the 1 ms sample
    assert bounds.high == pytest.approx(0.087625 + 4 * 0.06225)  # the smoothed value exceeds R_max + 2 R_max
    assert "over all 2 samples in order (RFC 6298 §2.2-2.3)" in bounds.how


def test_the_top_is_the_largest_sample_alone_about_3_times_a_late_ack() -> None:
    """Our ACK 0.5 s late: Linux smooths it with the handshake's sample (about 0.56 s), but a stack that follows
    RFC 6298 and does not time its SYN-ACK takes 0.5 s as its first sample (§2.2: 3R = 1.5 s); the range must
    hold both (README, Limitations)."""
    samples = [RttSample("its SYN-ACK", 0.0, 0.0005), RttSample("its 1000 octets at +1", 1.0, 1.5005)]
    bounds = rto_bounds(samples, 0.2, "profile linux")
    assert smoothed_rto([0.0005, 0.5005], 0.2) == pytest.approx(0.063 + 4 * 0.1251875)  # §2.3 by hand
    assert bounds.high == pytest.approx(3 * 0.5005) and "with the largest sample R = 500.5 ms" in bounds.how


def test_with_no_sample_the_rto_is_the_initial_one_up_to_rfc_6298s_3_s() -> None:
    """RFC 6298 §2.1 (1 s before any measurement) to §5.7 (3 s after a handshake that gave no sample; Linux
    tcp_init_metrics TCP_TIMEOUT_FALLBACK), never rto_min: that would take R = 0 for a sample nobody measured."""
    none = rto_bounds([], 0.2, "profile linux", 1.0, "profile linux: TCP_TIMEOUT_INIT")
    assert (none.low, none.high) == (1.0, 3.0)
    assert none.how.startswith(
        "rto from rto_initial 1.000 s (profile linux: TCP_TIMEOUT_INIT) to 3.000 s (RFC 6298 §5.7"
    )
    assert none.how.endswith("no RTT sample on the wire (RFC 6298 §2.1: the initial RTO until one)")
    slow = rto_bounds([], 0.2, "profile windows", 3.0, "profile windows: InitialRto")
    assert (slow.low, slow.high) == (3.0, 3.0) and slow.how.startswith("rto = rto_initial 3.000 s")


#: No ACK of ours before the repeat: no RTT sample on the wire, so ``after: rto`` is the initial RTO's range.
NO_SAMPLE = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1, len: 0}
  - expect: {flags: SA, ack: isn+1, len: 0, after: rto}
"""


@pytest.mark.parametrize(("repeat", "status"), [(1.001, "passed"), (3.0, "passed"), (0.3, "failed"), (4.0, "failed")])
def test_with_no_sample_on_the_wire_the_expect_takes_the_runs_rto_initial(
    tmp_path: Path, repeat: float, status: str
) -> None:
    """Linux retransmits its SYN-ACK after TCP_TIMEOUT_INIT (1 s); with no sample the range is the profile's
    rto_initial to RFC 6298 §5.7's 3 s, not rto_min (200 ms)."""
    w = FakeWire(load_case(write_case(tmp_path, NO_SAMPLE)), profile=load_profile("linux"))
    w.advance(100.0)
    w.reply(100.001, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.reply(100.001 + repeat, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(105.0)
    v = w.verdict()
    text = v.failure.render() if v.failure else ""
    assert v.status == status, text  # no refs: the case's checks are MUSTs
    if status == "failed":
        assert "expected after 1.000 s to 3.000 s" in text and "TCP_TIMEOUT_INIT = 1 s" in text, text
        assert "rto from rto_initial 1.000 s" in text and "to 3.000 s (RFC 6298 §5.7" in text, text
