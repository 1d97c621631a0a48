"""The model as the reference target: the shipped cases pass against it, and its deviations fail them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.loader import discover
from conformance.core.model import Case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX
from conformance.core.rfc9293.reference import play, unsupported

ROOT = Path(__file__).resolve().parent.parent
CASES = discover([ROOT / "cases"])
PLAYABLE = [c for c in CASES if unsupported(c) is None]


def test_most_shipped_cases_are_playable() -> None:
    assert len(PLAYABLE) >= 21, [(c.id, unsupported(c)) for c in CASES if unsupported(c)]


@pytest.mark.parametrize("case", PLAYABLE, ids=lambda c: c.id)
def test_shipped_case_passes_against_the_linux_model(case: Case) -> None:
    verdict = play(case, LINUX).verdict
    assert verdict.status is not Status.FAILED, verdict.failure.render() if verdict.failure else ""


#: Deviation -> cases of the shipped suite that must catch it (at least these).
CAUGHT_BY = {
    "no-rst-closed": {"closed-ack", "closed-syn", "closed-synfin-data"},
    "ack-plus-one": {"data-ack-seq-plus-len", "final-ack-data"},
    "constant-isn": {"isn-unpredictable"},
    "no-retransmit": {"synack-retransmit", "data-retransmit-backoff"},
    "backoff-1.5": {"synack-retransmit", "data-retransmit-backoff"},
    "time-wait-1s": {"active-close"},
    "no-fin-ack": {"passive-close", "active-close"},
    "rst-ignored-synrcvd": {"rst-in-syn-received"},
}


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_a_deviation_fails_the_cases_that_check_it(name: str) -> None:
    deviation = next(d for d in DEVIATIONS if d.name == name)
    profile = deviation.apply(LINUX)
    failed = {c.id for c in PLAYABLE if c.id in CAUGHT_BY[name] and play(c, profile).verdict.status is Status.FAILED}
    assert failed == CAUGHT_BY[name]


def test_the_failure_names_the_document() -> None:
    case = next(c for c in PLAYABLE if c.id == "closed-syn")
    verdict = play(case, next(d for d in DEVIATIONS if d.name == "no-rst-closed").apply(LINUX)).verdict
    assert verdict.failure is not None and "RFC 9293 §3.10.7.1" in verdict.failure.render()
