"""The options the model agrees on (rfc9293/options.py): RFC 6191's reopen from TIME-WAIT under both profiles."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.profile import RFC, ModelProfile
from conformance.core.rfc9293.reference import play

ROOT = Path(__file__).resolve().parent.parent
REOPEN = ROOT / "cases" / "close" / "time-wait-timestamp-reopen.yaml"


@pytest.mark.parametrize("profile", [LINUX, RFC], ids=lambda p: p.name)
def test_a_syn_with_a_newer_timestamp_reopens_from_time_wait(profile: ModelProfile) -> None:
    played = play(load_case(REOPEN), profile)
    assert played.verdict.status is Status.PASSED, played.verdict.failure and played.verdict.failure.render()
    assert any(r in ("time-wait/rfc6191", "linux/tw-syn") for r in played.host.rules())


@pytest.mark.parametrize("profile", [LINUX, RFC], ids=lambda p: p.name)
def test_a_syn_with_an_older_timestamp_does_not(profile: ModelProfile, tmp_path: Path) -> None:
    """TSval 900 is older than the last one seen (1002), and the sequence number is below RCV.NXT: no reopen."""
    text = REOPEN.read_text().replace("timestamp: [2000, 0]", "timestamp: [900, 0]")
    assert "[900, 0]" in text
    older = tmp_path / "older.yaml"
    older.write_text(text)
    played = play(load_case(older), profile)
    assert played.verdict.status is Status.FAILED
    assert "time-wait/rfc6191" not in played.host.rules() and "linux/tw-syn" not in played.host.rules()
