"""The last W-class cases (issue 14): EP-10, MUST-69, MUST-45, played offline against the model or the deviant
responder, conforming and deviant, each failure citing its requirement."""

from __future__ import annotations

from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX, RFC
from conformance.core.rfc9293.reference import play, unsupported

from .deviant.responder import Knobs
from .helpers import ROOT
from .test_send_stimuli import play_responder

BAD_ACK = ROOT / "cases/handshake/bad-ack-in-syn-received.yaml"


def test_bad_ack_in_syn_received_passes_the_model_under_each_profile() -> None:
    case = load_case(BAD_ACK)
    assert unsupported(case) is None
    for profile in (LINUX, RFC):
        verdict = play(case, profile).verdict
        assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    verdict = play_responder(case, Knobs())
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


def test_bad_ack_in_syn_received_fails_a_target_that_drops_the_ack_silently() -> None:
    verdict = play_responder(load_case(BAD_ACK), Knobs(silent_bad_ack_synrcvd=True))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "EP-10" in text and "§3.10.7.4" in text, text
