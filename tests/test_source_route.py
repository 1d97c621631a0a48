"""IP source routes (RFC 9293 §3.9.2.1, MUST-53 and SHLD-24): the case language's completed LSRR and route check,
the codec's IP option octets, the accept_source_route sysctl, and the two shipped cases, conforming and deviant
(the deviant responder's ``source_route`` knob), offline, then on the embedded Linux target.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.ipfields import received_route, route_diff, route_option, unplayable
from conformance.core.loader import load_case
from conformance.core.model import ExpectStep, SendStep
from conformance.core.outcomes import Outcome, Status
from conformance.core.profiles import outcome
from conformance.core.rfc9293.reference import unsupported
from conformance.core.segment import IpHeader, Segment
from conformance.inside import services
from conformance.wire import codec

from .deviant.responder import Knobs
from .helpers import ROOT, line_of, write_case
from .test_integration import conformance, junit_cases
from .test_send_stimuli import play_responder

RETURN_CASE = ROOT / "cases/ip/source-route-return.yaml"
LATER_CASE = ROOT / "cases/ip/source-route-later.yaml"
US, THEM = "198.18.5.1", "198.18.5.2"


# ==================================================================== the language


def test_a_send_writes_a_completed_route_ending_at_our_address(tmp_path: Path) -> None:
    step_text = "  - send: {flags: S, ip: {options: {lsrr: [198.18.0.77, prober], nop: 1}}}\n"
    case = load_case(write_case(tmp_path, step_text))
    (step,) = case.steps
    assert isinstance(step, SendStep) and step.ip is not None
    assert step.ip.route == ("198.18.0.77", "prober") and step.ip.header.options == b"\x01\x00\x00\x00"
    option = route_option(step.ip.route, US)
    assert option == bytes([131, 11, 12, 198, 18, 0, 77, 198, 18, 5, 1])  # pointer 12: past the end, completed
    assert received_route(option) == (131, 12, ("198.18.0.77", US))


def test_an_expect_checks_a_route(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - expect: {flags: SA, ip: {options: {lsrr: [198.18.1.9, prober]}}}\n"))
    (step,) = case.steps
    assert isinstance(step, ExpectStep) and step.pattern.route == ("198.18.1.9", "prober")
    assert step.pattern.ip == ()  # no header field besides


@pytest.mark.parametrize(
    ("step", "field", "problem"),
    [
        ("send: {flags: S, ip: {options: {lsrr: [10.0.0.1, prober]}}}", "lsrr[0]", "in the test range"),
        ("send: {flags: S, ip: {options: {lsrr: [198.20.0.1, prober]}}}", "lsrr[0]", "198.18.0.0/15"),
        ("send: {flags: S, ip: {options: {lsrr: [prober, 198.18.0.9]}}}", "lsrr[1]", "the last hop must be prober"),
        ("send: {flags: S, ip: {options: {lsrr: [prober]}}}", "lsrr", "minItems is 2"),
        ("send: {flags: S, ip: {options: {lsrr: [198.18.0.9, prober]}, dst: secondary}}", "lsrr", "no src/dst"),
        ("send: {flags: S, ip: {options: {lsrr: [a, b, c, d, e, f, g, h, i, prober]}}}", "lsrr", "maxItems is 9"),
        ("expect: {flags: SA, ip: {options: {nop: 1}}}", "ip.options", "one IP option: lsrr"),
    ],
)
def test_routes_outside_the_test_range_or_not_back_to_us_are_refused(
    tmp_path: Path, step: str, field: str, problem: str
) -> None:
    path = write_case(tmp_path, f"  - {step}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'ip:')}" in text and field in text and problem in text, text


def test_a_route_and_other_options_beyond_40_octets_are_refused(tmp_path: Path) -> None:
    hops = ", ".join(f"198.18.0.{i}" for i in range(1, 8))
    path = write_case(tmp_path, f"  - send: {{flags: S, ip: {{options: {{lsrr: [{hops}, prober], nop: 5}}}}}}\n")
    with pytest.raises(CaseFormatError, match="exceed 40 octets"):
        load_case(path)


def test_a_routed_case_is_ipv4_only_and_the_model_plays_both() -> None:
    for path in (RETURN_CASE, LATER_CASE):
        case = load_case(path)
        assert case.sysctls == {"accept_source_route": 1}
        assert unplayable(case.steps, 4, 24) is None and unplayable(case.steps, 6, None) is not None
        assert unsupported(case) is None  # SHLD-24, which Linux does not follow, warns: test_rfc9293_ip


# ==================================================================== the check


def _routed(options: bytes, to_prober: bool = True, dst: str = US) -> Segment:
    return Segment(THEM, dst, 7000, 40000, 1, 2, "SA", 100, extra={"ip_options": options, "to_prober": to_prober})


def test_the_route_check_wants_the_reversed_route_pointer_4_sent_to_us() -> None:
    route = ("198.18.0.77", "prober")
    good = route_option(route, US, pointer=4) + b"\x01"
    assert route_diff(route, _routed(good))[3] is True
    field, _, shown, ok = route_diff(route, _routed(route_option(route, US)))  # pointer past the end: not reversed
    assert field == "ip options" and not ok and "pointer 12" in shown
    assert not route_diff(route, _routed(route_option(("198.18.0.88", "prober"), US, pointer=4)))[3]
    assert not route_diff(route, _routed(good, to_prober=False, dst="198.18.0.77"))[3]
    strict = bytes([137]) + good[1:]
    assert "SSRR" in route_diff(route, _routed(strict))[2] and not route_diff(route, _routed(strict))[3]
    assert route_diff(route, _routed(b""))[2] == "no source route"


# ==================================================================== the codec


@pytest.mark.parametrize("options", [b"", bytes([1, 68, 8, 5, 0, 0, 0, 0, 0])[:8]])
def test_both_decoders_keep_the_option_octets_and_the_checksum_covers_the_destination(options: bytes) -> None:
    ip = IpHeader(options=route_option(("198.18.0.77", "prober"), US) + b"\x01" + options)
    seg = Segment(US, THEM, 40000, 7000, 1, 0, "S", 100, options=(("mss", 1460),), ip=ip)
    frame = codec.encode(seg, "02:00:00:00:00:01", "02:00:00:00:00:02")
    assert frame == bytes(codec.to_frame(seg, "02:00:00:00:00:01", "02:00:00:00:00:02"))
    assert codec.checksum_ok(frame) is True
    fast, scapy = codec.decode(frame, 1.0), codec.scapy_decode(frame, 1.0)
    assert fast is not None and fast == scapy and fast.extra["ip_options"] == ip.options
    bare = Segment(US, THEM, 40000, 7000, 1, 0, "S", 100)
    plain = codec.decode(codec.encode(bare, "02:00:00:00:00:01", "02:00:00:00:00:02"), 1.0)
    assert plain is not None and "ip_options" not in plain.extra


# ==================================================================== the sysctl


def test_accept_source_route_is_written_to_every_conf_dir_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for scope in ("all", "default", "lo", "cf1t0"):
        (tmp_path / scope).mkdir()
    monkeypatch.setattr(services, "CONF_DIR", str(tmp_path))
    services.write_sysctl("accept_source_route", "1")
    assert {p.parent.name: p.read_text() for p in tmp_path.glob("*/accept_source_route")} == dict.fromkeys(
        ("all", "default", "lo", "cf1t0"), "1"
    )
    with pytest.raises(OSError, match="is not one of 0, 1"):
        services.write_sysctl("accept_source_route", "2")
    with pytest.raises(OSError, match="not a sysctl name"):
        services.write_sysctl("conf/all/accept_source_route", "1")


# ==================================================================== the shipped cases against the responder


def test_must53_passes_a_responder_that_reverses_the_route() -> None:
    for path in (RETURN_CASE, LATER_CASE):
        verdict = play_responder(load_case(path), Knobs())
        assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


@pytest.mark.parametrize(("mode", "seen"), [("ignore", "no source route"), ("drop", "nothing")])
def test_must53_fails_a_responder_that_ignores_or_drops_the_route(mode: str, seen: str) -> None:
    verdict = play_responder(load_case(RETURN_CASE), Knobs(source_route=mode))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "MUST-53" in text and seen in text, text


def test_shld24_warns_of_a_responder_that_keeps_the_first_route() -> None:
    assert play_responder(load_case(RETURN_CASE), Knobs(source_route="first")).status is Status.PASSED
    verdict = play_responder(load_case(LATER_CASE), Knobs(source_route="first"))
    assert verdict.status is Status.FAILED and verdict.failure is not None and verdict.failure.reference is not None
    assert outcome(verdict.failure.reference, None) is Outcome.WARN  # a SHOULD: a warning, as a run reports it
    text = verdict.failure.render()
    assert "SHLD-24" in text and "198.18.0.77" in text and "198.18.0.88, prober" in text, text


# ==================================================================== on the embedded target


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces")
def test_linux_with_accept_source_route_reverses_the_route_and_keeps_the_first(tmp_path: Path) -> None:
    proc = conformance("run", str(RETURN_CASE), str(LATER_CASE), "--reports", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    played = junit_cases(tmp_path / "junit.xml")
    outcomes = {n: [c.tag for c in tc if c.tag in ("failure", "error", "skipped")] for n, tc in played.items()}
    assert {n for n, tags in outcomes.items() if not tags} >= {"ip-source-route-return", "ip-source-route-later"}
    assert "WARN  ip-source-route-later" in proc.stdout and "SHLD-24" in proc.stdout, proc.stdout
    assert "PASS  ip-source-route-return" in proc.stdout, proc.stdout
