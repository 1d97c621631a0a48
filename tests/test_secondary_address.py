"""The target's second address (``secondary``): sending to it, checking where the target's segments come from,
and the two cases that use it (RFC 9293 §3.9.1.1: MUST-44, MUST-45), conforming and deviant, offline.
"""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.core.engine import Addressing, Dialogue
from conformance.core.errors import CaseFormatError
from conformance.core.ipfields import unplayable
from conformance.core.loader import load_case
from conformance.core.model import Case, ExpectStep
from conformance.core.outcomes import Status
from conformance.core.params import resolve
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.reference import play, unsupported

from .deviant.responder import Knobs
from .helpers import OUR_IP, PEER_ISN, ROOT, TARGET_IP, TARGET_PORT, FakeWire, line_of, write_case
from .test_integration import conformance, junit_cases
from .test_send_stimuli import play_responder

SECONDARY = "198.18.0.3"
SECONDARY_CASE = ROOT / "cases/ip/secondary-address.yaml"
CONNECT_CASE = ROOT / "cases/ip/connect-source-address.yaml"
STEPS = """\
  - send: {flags: S, seq: isn, ip: {dst: secondary}}
  - expect: {flags: SA, ack: isn+1, ip: {src: secondary}}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
"""


def wire(case: Case, secondary: str | None = SECONDARY) -> FakeWire:
    """A fake wire whose dialogue knows the target's second address."""
    w = FakeWire(case)
    addressing = Addressing(OUR_IP, TARGET_IP, TARGET_PORT, secondary=secondary)
    w.dialogue = Dialogue(case, resolve({}), addressing, w.ports, w.isns)
    return w


# ==================================================================== the language


def test_an_expect_names_the_addresses_a_segment_may_come_from(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - expect: {flags: S, ip: {src: [primary, secondary], ttl: 64}}\n"))
    (step,) = case.steps
    assert isinstance(step, ExpectStep)
    assert step.pattern.src == ("primary", "secondary") and step.pattern.ip is not None


@pytest.mark.parametrize(
    ("step", "field", "problem"),
    [
        ("expect: {flags: SA, ip: {src: 198.18.0.3}}", "steps[0].expect.ip.src", "named, never written"),
        ("expect: {flags: SA, ip: {src: [primary, unspecified]}}", "steps[0].expect.ip.src", "'unspecified'"),
        ("expect: {flags: SA, ip: {src: []}}", "steps[0].expect.ip.src", "name one of"),
        ("send: {flags: S, ip: {dst: 198.18.0.3}}", "steps[0].send.ip.dst", "valid: broadcast, secondary"),
        ("send: {flags: S, ip: {src: secondary}}", "steps[0].send.ip.src", "valid: unspecified, broadcast"),
    ],
)
def test_addresses_written_as_addresses_are_rejected(tmp_path: Path, step: str, field: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - {step}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'ip:')}" in text and field in text and problem in text, text


def test_the_connection_goes_to_the_secondary_address_once_a_send_names_it(tmp_path: Path) -> None:
    w = wire(load_case(write_case(tmp_path, STEPS)))
    (syn,) = w.advance(0.0)
    assert syn.dst == SECONDARY and syn.src == OUR_IP
    synack = w.segment(0.01, "SA")
    w.dialogue.receive(type(synack)(**{**synack.__dict__, "src": SECONDARY}))
    ack, cleanup = w.advance(0.01)
    assert w.verdict().status is Status.PASSED, w.verdict().failure
    assert ack.flags == "A" and ack.dst == SECONDARY  # no ip: on this send: the connection's address
    assert cleanup.flags == "R" and cleanup.dst == SECONDARY


def test_a_reply_from_the_primary_address_fails_citing_the_document(tmp_path: Path) -> None:
    w = wire(load_case(write_case(tmp_path, STEPS + "    ref: EP-5\n")))
    w.advance(0.0)
    w.reply(0.01, "SA")  # from TARGET_IP: delivered to the flow (not dropped as not ours), and judged
    verdict = w.verdict()
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "ip src" in text and f"{TARGET_IP} (primary)" in text and "EP-5" in text, text


def test_a_case_naming_the_secondary_address_is_skipped_on_a_target_without_one(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, STEPS))
    why = unplayable(case.steps, 4, 24, None)
    assert why is not None and "second IPv4 address" in why
    assert unplayable(case.steps, 4, 24, SECONDARY) is None
    assert unplayable(case.steps, 6, None, "2001:2:0:0::3") is None  # dst: secondary alone: IPv6 too
    header = load_case(write_case(tmp_path, "  - send: {flags: S, ip: {dst: secondary, ttl: 9}}\n"))
    assert unplayable(header.steps, 6, None, "2001:2:0:0::3") is not None  # a header field: IPv4 only


# ==================================================================== MUST-45, the shipped case


def test_must45_passes_a_responder_that_answers_from_the_address_it_was_asked_at() -> None:
    verdict = play_responder(load_case(SECONDARY_CASE), Knobs(), secondary="198.18.12.3")
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


def test_must45_fails_a_responder_that_answers_from_its_primary_address() -> None:
    verdict = play_responder(load_case(SECONDARY_CASE), Knobs(answer_from_primary=True), secondary="198.18.12.3")
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "MUST-45" in text and "198.18.12.2 (primary)" in text and "ip src" in text, text


def test_must45_is_played_by_the_model_which_has_a_second_address() -> None:
    assert unsupported(load_case(SECONDARY_CASE)) is None  # rfc9293/ip.py; it passes: test_rfc9293_reference


# ==================================================================== MUST-44, the shipped case


def _target_connects_from(source: str) -> FakeWire:
    w = wire(load_case(CONNECT_CASE))
    w.advance(0.0)
    syn = w.segment(0.01, "S", ack=0)
    w.dialogue.receive(type(syn)(**{**syn.__dict__, "src": source, "sport": 50000}))
    return w


def test_must44_the_syn_from_either_address_is_answered_at_that_address() -> None:
    for source in (TARGET_IP, SECONDARY):
        w = _target_connects_from(source)
        (synack,) = w.advance(0.01)
        assert synack.flags == "SA" and synack.dst == source and synack.dport == 50000


def test_must44_a_syn_from_an_address_the_target_does_not_have_fails() -> None:
    w = _target_connects_from("0.0.0.0")
    assert w.advance(0.01) == []
    verdict = w.verdict()
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "MUST-44" in text and "0.0.0.0 (not an address of the target)" in text, text


def test_must44_passes_against_the_model() -> None:
    assert unsupported(load_case(CONNECT_CASE)) is None
    verdict = play(load_case(CONNECT_CASE), LINUX).verdict
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    assert PEER_ISN  # the helpers' scripted ISN is not used by the model


# ==================================================================== on the embedded target, and on a user's namespace


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create network namespaces")
def test_the_cases_pass_on_the_embedded_target_and_are_skipped_on_a_namespace_without_a_second_address(
    tmp_path: Path,
) -> None:
    cases = (str(SECONDARY_CASE), str(CONNECT_CASE))
    proc = conformance("run", *cases, "--reports", str(tmp_path / "embedded"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    played = junit_cases(tmp_path / "embedded" / "junit.xml")
    outcomes = {
        n: [child.tag for child in tc if child.tag in ("failure", "error", "skipped")] for n, tc in played.items()
    }
    assert len(played) == 4 and not any(outcomes.values()), outcomes  # passed, over both families
    name = f"cftest-second-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        proc = conformance("run", *cases, "--target", f"netns:{name}", "--reports", str(tmp_path / "ns"), timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        skipped = junit_cases(tmp_path / "ns" / "junit.xml")
        assert len(skipped) == 4 and {_outcome(tc) for tc in skipped.values()} == {"skipped"}, proc.stdout
        assert "second IPv6 address, which only the embedded target has" in proc.stdout, proc.stdout
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _outcome(testcase: ET.Element) -> str:
    """A JUnit test case's failure, error or skipped element's tag ("" when it passed)."""
    return next((child.tag for child in testcase if child.tag in ("failure", "error", "skipped")), "")
