"""The generated state x event matrix: named by coordinates, citing its paragraph, passing against the model."""

from __future__ import annotations

from conformance.core.outcomes import Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX
from conformance.core.rfc9293.matrix import matrix_cases
from conformance.core.rfc9293.reference import play

CASES = matrix_cases(LINUX)


def test_the_matrix_has_at_least_600_distinct_dialogues() -> None:
    assert len(CASES) >= 600
    assert len({c.id for c in CASES}) == len(CASES)
    assert "matrix/established/rst/seq-inside" in {c.id for c in CASES}


def test_every_matrix_case_cites_a_paragraph() -> None:
    assert all(c.refs and ("§" in c.refs[0].doc) for c in CASES)


def test_every_matrix_case_passes_against_the_model() -> None:
    failed = [c.id for c in CASES if play(c, LINUX).verdict.status is Status.FAILED]
    assert failed == []


def test_the_matrix_catches_what_the_shipped_cases_miss() -> None:
    rst = next(c for c in CASES if c.id == "matrix/established/rst/seq-inside")
    assert rst.refs[0].id == "EP-12"
    for name in ("no-challenge-ack", "rfc793-rst"):
        profile = next(d for d in DEVIATIONS if d.name == name).apply(LINUX)
        assert play(rst, profile).verdict.status is Status.FAILED, name
