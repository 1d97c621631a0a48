"""The last W-class cases (issue 14): EP-10, MUST-69, MUST-45, played offline against the model or the deviant
responder, conforming and deviant, each failure citing its requirement."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX, RFC
from conformance.core.rfc9293.reference import play, unsupported
from conformance.wire import codec

from .deviant.responder import Knobs
from .helpers import ROOT, line_of, write_case
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


EOL_PADDING = ROOT / "cases/options/eol-padding.yaml"


def test_eol_padding_is_not_checked_without_an_eol() -> None:
    """The model and Linux end their options without EOL: the case says it could not check MUST-69."""
    case = load_case(EOL_PADDING)
    for verdict in (play(case, LINUX).verdict, play_responder(case, Knobs())):
        assert verdict.status is Status.SKIPPED, verdict.failure and verdict.failure.render()
        assert "MUST-69" in verdict.skip_reason and "no EOL option" in verdict.skip_reason


def test_eol_padding_passes_zeros_after_the_eol() -> None:
    verdict = play_responder(load_case(EOL_PADDING), Knobs(eol_padding=b"\0\0\0"))
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    padding = [d for r in verdict.steps for d in r.diffs if d.field == "padding"]
    assert len(padding) == 3 and all(d.ok and "00 00 00" in d.observed for d in padding)


def test_eol_padding_fails_a_non_zero_octet_after_the_eol_citing_must_69() -> None:
    verdict = play_responder(load_case(EOL_PADDING), Knobs(eol_padding=b"\0\x07\0"))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert "MUST-69" in text and "00 07 00" in text, text


def _frame_with_options(opts: bytes, family: int) -> bytes:
    """A segment with the option octets `opts` (a multiple of 4), built by Scapy."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    network = IP(src="198.18.0.1", dst="198.18.7.2") if family == 4 else IPv6(src="2001:2::1", dst="2001:2::2")
    tcp = TCP(sport=7000, dport=40000, flags="SA", dataofs=5 + len(opts) // 4, options=[])
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / network / tcp / Raw(opts + b"data"))


@pytest.mark.parametrize("family", [4, 6])
def test_both_decoders_keep_the_octets_after_an_eol(family: int) -> None:
    rng = random.Random(69 + family)
    for _ in range(300):
        before = rng.choice([b"", b"\x02\x04\x05\xb4", b"\x01\x01", b"\x04\x02", b"\x03\x03\x07"])
        eol = rng.random() < 0.8
        after = rng.randbytes(rng.randrange(0, 8)) if rng.random() < 0.5 else b"\0" * rng.randrange(0, 8)
        opts = before + (b"\0" + after if eol else after.replace(b"\0", b"\1"))
        opts += (b"\0" if eol else b"\1") * (-len(opts) % 4)  # NOPs where no EOL may come
        frame = _frame_with_options(opts, family)
        fast, scapy = codec.decode(frame, 1.0), codec.scapy_decode(frame, 1.0)
        assert fast is not None and scapy is not None
        want = opts[len(before) + 1 :] if eol else None
        assert fast.after_eol == scapy.after_eol == want, opts.hex()
        assert fast == scapy and fast.payload == b"data", opts.hex()


def test_padding_is_for_expect_only(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, seq: isn, padding: zero}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'send:')}" in text and "steps[0].send.padding" in text, text
