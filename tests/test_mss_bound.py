"""A bound on an option in an expect (``options: {mss: {max: ...}}``) and the MUST-67 case that uses it: the MSS
a target advertises is at most MMS_R - 20 (RFC 9293 §3.7.1), MMS_R the largest message it can reassemble."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.matching import compare, not_checked
from conformance.core.model import Bound, ExpectStep
from conformance.core.outcomes import Status
from conformance.core.params import resolve
from conformance.core.rfc9293 import LINUX, RFC
from conformance.core.rfc9293.reference import play, unsupported
from conformance.core.segment import Segment

from .deviant.responder import Knobs
from .helpers import ROOT, FakeWire, line_of, write_case
from .test_send_stimuli import play_responder

MSS_CASE = ROOT / "cases/options/mss-within-mms-r.yaml"
PER_FAMILY = "{mss: {max: {ipv4: mms_r_ipv4-20, ipv6: mms_r_ipv6-20}}}"
VALUES = {name: param.value for name, param in resolve({}).items()}


def _synack(mss: int | None, src: str = "198.18.0.2") -> Segment:
    options = (("mss", mss),) if mss is not None else ()
    return Segment(src=src, dst="198.18.0.1", sport=7000, dport=40000, seq=1, ack=2, flags="SA", options=options)


def _pattern(tmp_path: Path, options: str = PER_FAMILY) -> ExpectStep:
    (step,) = load_case(write_case(tmp_path, f"  - expect: {{flags: SA, options: {options}}}\n")).steps
    assert isinstance(step, ExpectStep)
    return step


# ==================================================================== the language


def test_a_bound_is_read_per_family_or_for_both(tmp_path: Path) -> None:
    (spec,) = _pattern(tmp_path).pattern.options or ()
    assert isinstance(spec.value, Bound) and spec.kind == "mss"
    assert (str(spec.value.ipv4), str(spec.value.ipv6)) == ("mms_r_ipv4-20", "mms_r_ipv6-20")
    (spec,) = _pattern(tmp_path, "{mss: {max: 1460}}").pattern.options or ()
    assert spec.value == Bound(spec.value.ipv4, spec.value.ipv4) and str(spec.value) == "at most 1460"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mss", "src", "ok"),
    [(1460, "198.18.0.2", True), (65495, "198.18.0.2", True), (65496, "198.18.0.2", False),
     (65515, "2001:2::2", True), (65516, "2001:2::2", False)],
)  # fmt: skip
def test_the_bound_of_the_segments_family_is_checked(tmp_path: Path, mss: int, src: str, ok: bool) -> None:
    pattern = _pattern(tmp_path).pattern
    (diff,) = [d for d in compare(pattern, _synack(mss, src), {}, {}, VALUES) if d.field == "option mss"]
    assert diff.ok is ok and diff.observed == str(mss)
    assert diff.expected == ("at most mms_r_ipv4-20 (65495)" if ":" not in src else "at most mms_r_ipv6-20 (65515)")
    assert not not_checked(pattern, _synack(mss, src), VALUES)


def test_without_the_option_or_the_value_the_bound_is_not_checked(tmp_path: Path) -> None:
    pattern = _pattern(tmp_path).pattern
    assert not [d for d in compare(pattern, _synack(None), {}, {}, VALUES) if d.field == "option mss"]
    assert not_checked(pattern, _synack(None), VALUES) == ["option mss not checked: the segment has no mss option"]
    unknown = {k: v for k, v in VALUES.items() if k != "mms_r_ipv4"}
    assert not [d for d in compare(pattern, _synack(70000), {}, {}, unknown) if d.field == "option mss"]
    assert not_checked(pattern, _synack(70000), unknown) == [
        "option mss not checked: mms_r_ipv4 is not known for this target"
    ]


def test_a_synack_without_mss_leaves_the_case_skipped_not_passed(tmp_path: Path) -> None:
    w = FakeWire(load_case(MSS_CASE))
    w.advance(0.0)
    w.target(0.01, "SA")
    w.advance(0.01)
    w.run_until(3.0)
    verdict = w.verdict()
    assert verdict.status is Status.SKIPPED, verdict.failure and verdict.failure.render()
    assert "MUST-67" in verdict.skip_reason and "no mss option" in verdict.skip_reason, verdict.skip_reason


@pytest.mark.parametrize(
    ("options", "field", "problem"),
    [
        ("{mss: {max: nosuch-20}}", "steps[0].expect.options.mss.max", "'nosuch' is not a documented value"),
        ("{mss: {max: mms_r_ipv4+mms_r_ipv6}}", "steps[0].expect.options.mss.max", "one name"),
        ("{mss: {max: mms_r_ipv4-70000}}", "steps[0].expect.options.mss.max", "at most 65535"),
        ("{mss: {max: 65536}}", "steps[0].expect.options.mss", "65536"),
        ("{mss: {max: {ipv4: 1460}}}", "steps[0].expect.options.mss", "ipv6"),
        ("{mss: {min: 1460}}", "steps[0].expect.options.mss", "min"),
    ],
)
def test_bad_bounds_are_rejected_with_file_line_field(tmp_path: Path, options: str, field: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - expect: {{flags: SA, options: {options}}}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'expect:')}" in text and field in text and problem in text, text


def test_a_bound_is_for_expect_and_an_octet_count_is_no_time(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, seq: isn, options: {mss: {max: 1460}}}\n")
    with pytest.raises(CaseFormatError, match=r"steps\[0\]\.send\.options\.mss: a bound"):
        load_case(path)
    path = write_case(tmp_path, "  - state: CLOSED\n    lasts: mms_r_ipv4\n")
    with pytest.raises(CaseFormatError, match="neither a duration nor a documented time"):
        load_case(path)


# ==================================================================== the case, offline


def test_the_mss_case_passes_the_model_and_a_conforming_responder() -> None:
    case = load_case(MSS_CASE)
    assert unsupported(case) is None
    for verdict in (play(case, LINUX).verdict, play(case, RFC).verdict, play_responder(case, Knobs())):
        assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    # at the edge: MMS_R - 20 itself keeps the requirement (less than or equal)
    verdict = play_responder(case, Knobs(synack_mss=65495))
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


def test_the_mss_case_fails_an_mss_beyond_mms_r_citing_must_67() -> None:
    verdict = play_responder(load_case(MSS_CASE), Knobs(synack_mss=65496))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "MUST-67" in text and "65496" in text and "at most mms_r_ipv4-20 (65495)" in text, text


def test_the_bound_follows_the_run_s_value(tmp_path: Path) -> None:
    """A profile that documents a smaller MMS_R (a stack that reassembles less) tightens the bound."""
    pattern = _pattern(tmp_path).pattern
    small = dict(VALUES, mms_r_ipv4=1480.0)
    (diff,) = [d for d in compare(pattern, _synack(1461), {}, {}, small) if d.field == "option mss"]
    assert not diff.ok and diff.expected == "at most mms_r_ipv4-20 (1460)"
    assert replace(_synack(1460)).options == (("mss", 1460),)
