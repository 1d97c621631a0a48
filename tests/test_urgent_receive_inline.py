"""The urgent receive cases (cases/app/urgent-receive-*.yaml) judge only what RFC 9293 §3.8.5 says: the urgent
data is a mark in the stream, not one octet out of band. Played against the RFC 9293 model, they pass a stack that
keeps the urgent data in line with the mark at RCV.UP (the RFC profile) as well as a BSD socket that takes the
last urgent octet as the mark (the LINUX profile, SO_OOBINLINE set by the case, as RFC 6093 §6 asks); and the
urgent deviations of the model fail them under either reading, citing the requirement they break."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX, RFC, ModelProfile
from conformance.core.rfc9293.deviations import DEVIATIONS
from conformance.core.rfc9293.reference import play

from .helpers import ROOT

NAMES = ("mark", "notify", "long")
PROFILES = {"RFC": RFC, "LINUX": LINUX}


def _case(name: str) -> Case:
    return load_case(ROOT / "cases" / "app" / f"urgent-receive-{name}.yaml")


def _deviant(name: str, base: ModelProfile) -> ModelProfile:
    return next(d for d in DEVIATIONS if d.name == name).apply(base)


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("name", NAMES)
def test_the_case_passes_the_in_line_and_the_bsd_reading(name: str, profile: str) -> None:
    verdict = play(_case(name), PROFILES[profile]).verdict
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


#: The one-octet out-of-band reading the cases used to hold every stack to: a read stops before the last urgent
#: octet, which is read apart (MSG_OOB). Nothing in RFC 9293 asks for it.
ONE_OCTET = """\
id: app-urgent-one-octet
title: the BSD reading of urgent data
refs:
  - {id: MUST-33, doc: RFC 9293 §3.8.5, level: MUST, says: "..."}
service: agent
steps:
  - app: {do: listen}
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - app: {do: accept}
  - send: {flags: PAU, seq: isn+1, ack: peer_isn+1, data: "abcdef", urgptr: 6}
  - expect: {flags: A, seq: peer_isn+1, ack: isn+7, within: 500ms}
  - app: {do: recv, timeout: 1, answer: {data: "abcde", at_mark: true}}
  - app: {do: recv, urgent: true, answer: {data: "f"}}
"""


def test_the_one_octet_reading_would_fail_the_in_line_stack(tmp_path: Path) -> None:
    """What the cases no longer assume: the in-line stack (RFC) fails the one-octet reading, Linux passes it."""
    path = tmp_path / "one-octet.yaml"
    path.write_text(ONE_OCTET, encoding="utf-8")
    case = load_case(path)
    assert play(case, LINUX).verdict.status is Status.PASSED
    failure = play(case, RFC).verdict.failure
    assert failure is not None and "observed 'abcdef'" in failure.render(), failure and failure.render()


#: Deviation -> the cases it fails under both readings, and the requirement the failure of the first one cites.
CAUGHT = {
    "urgent-ignored": ({"mark", "notify", "long"}, "mark", "MUST-33"),
    "urgent-not-notified": ({"mark", "notify", "long"}, "notify", "MUST-32"),
    "urgent-mark-unknown": ({"mark"}, "mark", "MUST-33"),
    "urgent-ends-with-segment": ({"long"}, "long", "MUST-31"),
    "urgent-pointer-last-octet": ({"mark", "long"}, "long", "MUST-31"),
}


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("deviation", sorted(CAUGHT))
def test_a_deviation_fails_the_cases_under_either_reading(deviation: str, profile: str) -> None:
    expected, cited_case, requirement = CAUGHT[deviation]
    deviant = _deviant(deviation, PROFILES[profile])
    verdicts = {name: play(_case(name), deviant).verdict for name in NAMES}
    failed = {name for name, v in verdicts.items() if v.status is Status.FAILED}
    assert expected <= failed, {n: v.status for n, v in verdicts.items()}
    failure = verdicts[cited_case].failure
    assert failure is not None
    assert re.search(rf"\b{requirement}\)", failure.render()), failure.render()
