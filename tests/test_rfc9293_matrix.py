"""The generated state x event matrix: named by coordinates, citing its paragraph, passing against the model."""

from __future__ import annotations

from conformance.core.outcomes import Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX, RFC
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


def test_under_rfc_the_matrix_follows_the_rfc_and_the_linux_departures_fail_with_their_paragraph() -> None:
    cases = {c.id: c for c in matrix_cases(RFC)}
    assert [i for i, c in cases.items() if play(c, RFC).verdict.status is Status.FAILED] == []
    departures = {
        "matrix/fin-wait-2/rst/seq-inside": "§3.10.7.4 second",  # Linux: the timewait sock dies, no challenge ACK
        "matrix/time-wait/syn/seq-beyond": "§3.10.7.4",  # Linux: reopened (MAY-2); RFC 5961 §4: a challenge ACK
        "matrix/syn-received/syn/seq-inside": "§3.10.7.4 fourth",  # Linux: a RST (tcp_check_req)
    }
    for case_id, section in departures.items():
        verdict = play(cases[case_id], LINUX).verdict
        assert verdict.status is Status.FAILED, case_id
        assert verdict.failure is not None and section in verdict.failure.render(), verdict.failure
