"""The first zero-window probe, one RTO after our ACK closed the window (SHLD-29): expected times that name a run
value (``after: rto``), resolved from the run's profile and the handshake RTT, judged on a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import ExpectStep
from conformance.core.outcomes import Status
from conformance.core.params import resolve
from conformance.core.profiles import load_profile
from conformance.core.schedules import expected_duration, named_time
from conformance.core.timing import Window

from .helpers import write_case
from .test_sender_window_cases import FILL, _cites, _play

CASE = "zero-window-first-probe.yaml"
#: The rest of the write, once the window opens.
REST = (0.002, "A", 2001, 1000)


def _probe_at(seconds: float) -> list[tuple[float, str, int, int]]:
    """Linux's probe (an ACK with SEG.SEQ = SND.UNA-1, no data) `seconds` after our window-closing ACK."""
    return [*FILL, (seconds, "A", 2000, 0), (seconds + REST[0], *REST[1:])]  # type: ignore[list-item]


def test_a_probe_one_rto_after_our_ack_passes() -> None:
    """Linux: 200 ms (TCP_RTO_MIN) plus the handshake RTT, on a jiffy."""
    v = _play(CASE, _probe_at(0.205))
    assert v.status is Status.PASSED, v.failure.render() if v.failure else v.findings


@pytest.mark.parametrize("at", [0.01, 0.12, 1.2])
def test_a_probe_far_from_one_rto_is_a_shld_29_warning(at: float) -> None:
    """At once, well before 200 ms less the tolerance (54 ms), or long after: SHLD-29, a SHOULD."""
    v = _play(CASE, _probe_at(at))
    assert v.status is Status.WARNING and _cites(v, "SHLD-29"), v.findings
    message = " ".join(f.failure.render() for f in v.findings)
    assert ("early" if at < 0.2 else "late") in message and "R + max(rto_min, 2R) with the first sample" in message


def test_no_probe_is_a_must_36_failure() -> None:
    v = _play(CASE, FILL)
    assert v.status is Status.FAILED and _cites(v, "MUST-36")


def test_rto_is_taken_from_the_profile_and_the_handshake_rtt() -> None:
    linux, rfc = resolve({}, load_profile("linux")), resolve({}, load_profile("rfc"))
    assert named_time("rto", linux, 0.01)[0] == pytest.approx(0.21)  # R + max(200 ms, 2R)
    assert named_time("rto", linux, 0.15)[0] == pytest.approx(0.45)  # R + 2R
    seconds, how = named_time("rto", rfc, 0.001)
    assert seconds == pytest.approx(1.001) and "profile rfc" in how and "RFC 6298 §2.4" in how
    assert named_time("rto", resolve({"tcp_rto_min_us": 5000}, load_profile("linux")), 0.0)[0] == 0.005
    assert named_time("time_wait", rfc, None)[0] == 240


def test_a_named_time_loads_unresolved_and_counts_in_the_expected_duration(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - send: {flags: S, seq: isn}\n  - expect: {flags: SA, after: rto}\n"))
    step = case.steps[1]
    assert isinstance(step, ExpectStep) and step.window_ == Window("after", 0.0, value="rto")
    assert str(step.window_) == "after rto"
    assert str(Window("after", 0.2, value="rto")) == "after rto = 200.0 ms"
    assert expected_duration(case, resolve({}, load_profile("rfc"))) == pytest.approx(1.0)


def test_an_unknown_name_is_rejected_with_the_names_it_may_give(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError) as err:
        load_case(write_case(tmp_path, "  - send: {flags: S, seq: isn}\n  - expect: {flags: SA, within: rtt}\n"))
    text = str(err.value)
    assert "steps[1].expect.within" in text and "nor the name of a run value" in text
    assert "rto" in text and "rto_initial" in text
