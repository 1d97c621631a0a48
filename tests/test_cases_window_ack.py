"""The receive-window, ACK-generation and duplicate-SYN cases: they pass on the model where it can play them, and
they catch the deviation they name (a model profile, or a target scripted on the fake wire)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.reference import play, unsupported

ROOT = Path(__file__).resolve().parent.parent
DUP_SYN = ROOT / "cases" / "handshake" / "dup-syn-in-syn-received.yaml"


def test_dup_syn_case_passes_on_the_linux_model() -> None:
    case = load_case(DUP_SYN)
    assert unsupported(case) is None
    assert play(case, LINUX).verdict.status is Status.PASSED


def test_dup_syn_case_catches_a_bare_ack_in_syn_received() -> None:
    """A stack that answers the duplicate SYN with <SEQ=SND.NXT><CTL=ACK> (the RFC's literal text) is caught,
    and the failure cites EP-11: the form, not the acknowledgment (EP-7's should), is what differs."""
    case = load_case(DUP_SYN)
    verdict = play(case, replace(LINUX, dup_syn_resends_synack=False)).verdict
    assert verdict.status is Status.FAILED
    assert verdict.failure is not None
    text = verdict.failure.render()
    assert "flags: expected SA, observed A" in text
    assert "EP-11" in text
