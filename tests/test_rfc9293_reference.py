"""The model as the reference target: the shipped cases pass against it, and its deviations fail them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.engine import Verdict
from conformance.core.loader import discover
from conformance.core.model import Case, Reference
from conformance.core.outcomes import Level, Outcome, Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX, RFC
from conformance.core.rfc9293.deviations import Deviation
from conformance.core.rfc9293.matrix import checked_matrix
from conformance.core.rfc9293.reference import play, policy_for, unsupported

ROOT = Path(__file__).resolve().parent.parent
CASES = discover([ROOT / "cases"])
PLAYABLE = [c for c in CASES if unsupported(c) is None]


def test_every_shipped_case_is_playable() -> None:
    assert len(PLAYABLE) == len(CASES), [(c.id, unsupported(c)) for c in CASES if unsupported(c)]


@pytest.mark.parametrize("case", PLAYABLE, ids=lambda c: c.id)
def test_shipped_case_passes_against_the_linux_model(case: Case) -> None:
    """Every check holds, or it is a SHOULD that the LINUX profile documents Linux does not follow: a warning,
    as in a run against Linux (SHLD-26, SHLD-24)."""
    verdict = play(case, LINUX).verdict
    assert verdict.status is not Status.FAILED, verdict.failure.render() if verdict.failure else ""
    departs = {requirement for requirement, _ in LINUX.should_departures}
    cited = [f.failure.reference.id if f.failure.reference else None for f in verdict.findings]
    assert all(c in departs for c in cited), [f.failure.render() for f in verdict.findings]


def test_the_linux_model_warns_where_linux_does() -> None:
    """The SHOULDs the default suite warns about on Linux 6.18 warn against the model too."""
    warned = {c.id for c in PLAYABLE if play(c, LINUX).verdict.status is Status.WARNING}
    assert {"icmp-hard-errors-established", "icmp-port-unreachable-syn-received", "ip-source-route-later"} <= warned


#: Deviation -> cases of the shipped suite that must catch it (at least these): each claims, in its refs, the
#: document the deviation breaks.
CAUGHT_BY = {
    "syn-to-broadcast-answered": {"ip-syn-to-broadcast"},
    "invalid-source-answered": {"ip-syn-from-invalid-source"},
    "open-broadcast-accepted": {"app-open-broadcast"},
    "ttl-ignored": {"app-ttl-set"},
    "tos-ignored": {"app-diffserv-set", "app-diffserv-change"},
    "tos-fixed": {"app-diffserv-change"},
    "route-not-reversed": {"ip-source-route-return"},
    "soft-error-aborts": {"icmp-soft-errors-established"},
    "source-quench-aborts": {"icmp-source-quench"},
    "reply-from-primary": {"ip-secondary-address"},
    "urgent-not-sent": {"app-urgent-send-pointer", "app-urgent-send-long"},
    "urgent-pointer-last-octet": {
        "app-urgent-send-pointer",
        "app-urgent-send-long",
        "app-urgent-receive-mark",
        "app-urgent-receive-notify",
        "app-urgent-receive-long",
    },
    "urgent-last-segment-only": {"app-urgent-send-long"},
    "urgent-ignored": {"app-urgent-receive-mark", "app-urgent-receive-notify", "app-urgent-receive-long"},
    "urgent-ends-with-segment": {"app-urgent-receive-long"},
    "urgent-not-notified": {"app-urgent-receive-notify", "app-urgent-receive-long", "app-urgent-receive-mark"},
    "urgent-mark-unknown": {"app-urgent-receive-mark"},
    "no-rst-closed": {"closed-ack", "closed-null", "closed-syn", "closed-synfin-data"},
    "ack-plus-one": {"data-ack-seq-plus-len", "final-ack-data"},
    "constant-isn": {"isn-unpredictable"},
    "no-retransmit": {"synack-retransmit", "data-retransmit-backoff"},
    "backoff-1.5": {"synack-retransmit", "data-retransmit-backoff"},
    "rto-initial-3s": {"synack-retransmit", "client-syn-retransmit"},
    "synack-retries-3": {"synack-retransmit"},
    "time-wait-1s": {"active-close"},
    "no-fin-ack": {"passive-close", "active-close"},
    "no-rst-listen": {"synack-retransmit"},
    "rst-ignored-synrcvd": {"rst-in-syn-received"},
    "rto-min-1s": {"data-retransmit-backoff"},
    "no-rst-closed-flagless": {"closed-null"},
    "checksum-unchecked": {"checksum-bad-data", "checksum-bad-syn"},
    "unknown-option-drops": {"options-unknown"},
    "no-rst-bad-ack-synrcvd": {"bad-ack-in-syn-received"},
    "dup-syn-unanswered": {"dup-syn-in-syn-received"},
    "no-rst-bad-ack-synsent": {"client-synack-wrong-ack"},
    "no-reassembly": {"data-out-of-order", "ack-aggregate-queued"},
    "mss-default-1460": {"sender-mss-default"},
    "peer-mss-ignored": {"sender-mss-option"},
    "mss-above-mms-r": {"options-mss-within-mms-r"},
    "no-psh": {"sender-push-small-send", "sender-mss-option"},
    "window-signed": {"sender-window-unsigned"},
    "unread-close-fin": {"app-close-unread-rst"},
    "no-mss-option": {"options-synack-mss"},
    "mss-on-every-segment": {"options-mss-only-on-syn"},
    "no-simultaneous-open": {"client-simultaneous-open"},
    "rst-with-data-ignored": {"data-rst-with-data"},
    "fin-wait-2-forever": {"fin-wait-2-timeout"},
    "shrunk-window-times-out": {"sender-shrunk-window-no-timeout-short-r2"},
    "backlog-ignored": {"accept-queue-full", "accept-queue-abort", "syncookies-off"},
    "overflow-rst": {"accept-queue-full"},
    "no-syncookies": {"syncookies"},
    "syncookies-always": {"syncookies-off"},
    "no-ecn": {"handshake-ecn-setup"},
    "window-16-bit": {"sender-window-32-bit"},
    "no-timestamp-reopen": {"time-wait-timestamp-reopen"},
    "no-nagle": {"app-nagle"},
    "no-delayed-ack": {"ack-train"},
    "no-half-close": {"half-close-receive"},
    "ack-delay-600ms": {"ack-train"},
    "no-receiver-sws": {"window-receiver-sws"},
}
#: Deviation -> (a case it fails, the requirement its failure must cite).
CITED = {
    "urgent-pointer-last-octet": ("app-urgent-send-pointer", "MUST-62"),
    "urgent-last-segment-only": ("app-urgent-send-long", "MUST-31"),
    "urgent-not-notified": ("app-urgent-receive-notify", "MUST-32"),
    "urgent-mark-unknown": ("app-urgent-receive-mark", "MUST-33"),
    "no-rst-closed": ("closed-syn", "RFC 9293 §3.10.7.1"),
    "no-rst-closed-flagless": ("closed-null", "EP-6"),
    "checksum-unchecked": ("checksum-bad-syn", "MUST-3"),
    "unknown-option-drops": ("options-unknown", "MUST-6"),
    "no-rst-bad-ack-synrcvd": ("bad-ack-in-syn-received", "EP-10"),
    "dup-syn-unanswered": ("dup-syn-in-syn-received", "EP-7"),
    "no-rst-bad-ack-synsent": ("client-synack-wrong-ack", "EP-17"),
    "no-reassembly": ("data-out-of-order", "MUST-59"),
    "mss-default-1460": ("sender-mss-default", "MUST-15"),
    "peer-mss-ignored": ("sender-mss-option", "MUST-16"),
    "mss-above-mms-r": ("options-mss-within-mms-r", "MUST-67"),
    "no-psh": ("sender-push-small-send", "MUST-61"),
    "window-signed": ("sender-window-unsigned", "MUST-1"),
    "unread-close-fin": ("app-close-unread-rst", "SHLD-3"),
    "no-mss-option": ("options-synack-mss", "SHLD-5"),
    "mss-on-every-segment": ("options-mss-only-on-syn", "MUST-65"),
    "no-simultaneous-open": ("client-simultaneous-open", "EP-18"),
    "rst-with-data-ignored": ("data-rst-with-data", "SHLD-2"),
    "fin-wait-2-forever": ("fin-wait-2-timeout", "tcp_fin_timeout"),
    "shrunk-window-times-out": ("sender-shrunk-window-no-timeout-short-r2", "SHLD-17"),
    "overflow-rst": ("accept-queue-full", "tcp_abort_on_overflow"),
    "no-syncookies": ("syncookies", "Linux ip-sysctl.rst tcp_syncookies"),
    "no-ecn": ("handshake-ecn-setup", "SHLD-8"),
    "window-16-bit": ("sender-window-32-bit", "REC-1"),
    "no-timestamp-reopen": ("time-wait-timestamp-reopen", "SHLD-4"),
    "no-nagle": ("app-nagle", "SHLD-7"),
    "no-delayed-ack": ("ack-train", "SHLD-18"),
    "no-half-close": ("half-close-receive", "POSIX.1-2017 shutdown()"),
    "ack-delay-600ms": ("ack-train", "MUST-40"),
    "no-receiver-sws": ("window-receiver-sws", "MUST-39"),
}
#: Deviation of a MAY -> the cases that must note it: each reports, as information (a run judges a MAY so, never as a
#: failure: conformance.core.profiles.outcome), a finding citing that MAY. No case may fail it.
NOTED_BY = {
    "ip-id-per-datagram": {"ip-synack-retransmit-ip-id": "MAY-4"},
    "cookie-keeps-state": {"syncookies": "RFC4987-3.6"},
}
#: Deviation -> dialogues of the matrix that must catch it (no shipped case checks these behaviours).
MATRIX_CAUGHT_BY = {
    "no-challenge-ack": {"matrix/established/rst/seq-inside", "matrix/established/syn/seq-rcv-nxt"},
    "rfc793-rst": {"matrix/established/rst/seq-inside", "matrix/close-wait/rst/seq-inside"},
}


def _deviation(name: str) -> Deviation:
    return next(d for d in DEVIATIONS if d.name == name)


def test_every_deviation_names_the_cases_that_catch_it() -> None:
    assert {d.name for d in DEVIATIONS} == set(CAUGHT_BY) | set(MATRIX_CAUGHT_BY) | set(NOTED_BY)
    assert not set(NOTED_BY) & (set(CAUGHT_BY) | set(MATRIX_CAUGHT_BY))


def _may_findings(verdict: Verdict) -> set[str]:
    refs = [f.failure.reference for f in verdict.findings if f.outcome is Outcome.INFO]
    return {r.id for r in refs if r is not None and r.level is Level.MAY}


@pytest.mark.parametrize("name", sorted(NOTED_BY))
def test_a_deviation_of_a_may_is_noted_not_failed(name: str) -> None:
    """Against the mutated model the case passes with a note citing the MAY; against the unmutated one, no note."""
    profile = _deviation(name).apply(LINUX)
    for case_id, may in NOTED_BY[name].items():
        case = next(c for c in PLAYABLE if c.id == case_id)
        assert may not in _may_findings(play(case, LINUX).verdict)
        verdict = play(case, profile).verdict
        assert verdict.status is Status.PASSED, verdict.failure.render() if verdict.failure else verdict.status
        assert may in _may_findings(verdict)


def _ref(level: Level, id: str = "X-1", stack: str | None = None) -> Reference:
    return Reference(id=id, doc="a document", level=level, stack=stack)


@pytest.mark.parametrize(
    ("ref", "linux", "rfc"),
    [
        (None, Outcome.FAIL, Outcome.FAIL),
        (_ref(Level.MUST), Outcome.FAIL, Outcome.FAIL),
        (_ref(Level.MUST_NOT), Outcome.FAIL, Outcome.FAIL),
        (_ref(Level.SHOULD), Outcome.FAIL, Outcome.FAIL),
        (_ref(Level.SHOULD_NOT), Outcome.FAIL, Outcome.FAIL),
        (_ref(Level.SHOULD, "SHLD-26"), Outcome.WARN, Outcome.FAIL),
        (_ref(Level.MAY), Outcome.INFO, Outcome.INFO),
        (_ref(Level.DEFAULT, stack="linux"), Outcome.FAIL, Outcome.INFO),
        (_ref(Level.DEFAULT, stack="freebsd"), Outcome.INFO, Outcome.INFO),
    ],
)
def test_the_reference_policy_judges_as_a_run(ref: Reference | None, linux: Outcome, rfc: Outcome) -> None:
    """As ``outcome`` with --strict against the profile's stack, but a SHOULD the profile documents the stack does not
    follow warns (SHLD-26 under LINUX); a MAY is information, never a failure."""
    assert (policy_for(LINUX)(ref), policy_for(RFC)(ref)) == (linux, rfc)


@pytest.mark.parametrize("name", sorted(CAUGHT_BY))
def test_a_deviation_fails_the_cases_that_check_it(name: str) -> None:
    profile = _deviation(name).apply(LINUX)
    failed = {c.id for c in PLAYABLE if c.id in CAUGHT_BY[name] and play(c, profile).verdict.status is Status.FAILED}
    assert failed == CAUGHT_BY[name]


@pytest.mark.parametrize("name", sorted(MATRIX_CAUGHT_BY))
def test_a_deviation_no_shipped_case_checks_fails_the_matrix(name: str) -> None:
    profile = _deviation(name).apply(LINUX)
    matrix = {c.id: c for c in checked_matrix(LINUX)}
    assert all(play(matrix[i], LINUX).verdict.status is Status.PASSED for i in MATRIX_CAUGHT_BY[name])
    failed = {i for i in MATRIX_CAUGHT_BY[name] if play(matrix[i], profile).verdict.status is Status.FAILED}
    assert failed == MATRIX_CAUGHT_BY[name]


@pytest.mark.parametrize("name", sorted(CITED))
def test_the_failure_names_the_document(name: str) -> None:
    case_id, document = CITED[name]
    case = next(c for c in PLAYABLE if c.id == case_id)
    verdict = play(case, _deviation(name).apply(LINUX)).verdict
    assert verdict.failure is not None and document in verdict.failure.render()
