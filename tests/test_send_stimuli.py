"""TCP-level stimuli of a ``send``: raw option bytes, a bad checksum, the urgent pointer; and the cases that use
them (MUST-3, MUST-6, MUST-7, EP-6) played offline against the deviant responder, conforming and deviant.

The responder (:mod:`tests.deviant.responder`) takes frames: each segment of the dialogue goes through the
codec's bytes, so what is played is what the wire carries (the spoiled checksum, the illegal option length).
"""

from __future__ import annotations

import heapq
from pathlib import Path

import pytest

from conformance.core.engine import Addressing, Dialogue, Verdict
from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import Case, SendStep
from conformance.core.outcomes import Status
from conformance.core.params import resolve
from conformance.core.rfc9293 import DEVIATIONS, LINUX
from conformance.core.rfc9293.reference import play, unsupported
from conformance.wire.codec import checksum_ok, decode, encode

from .deviant.responder import Knobs, Responder
from .helpers import ROOT, FakeWire, line_of, write_case

PROBER, PROBER_MAC, ADDR, PORT = "198.18.12.1", "02:cf:c6:12:0c:01", "198.18.12.2", 7000
CASES = {
    "checksum-bad-syn": ROOT / "cases/checksum/bad-syn.yaml",
    "checksum-bad-data": ROOT / "cases/checksum/bad-data.yaml",
    "options-unknown": ROOT / "cases/options/unknown.yaml",
    "options-bad-length": ROOT / "cases/options/bad-length.yaml",
    "closed-null": ROOT / "cases/closed/null.yaml",
}


# ==================================================================== the language


def test_send_takes_raw_options_a_bad_checksum_and_the_urgent_pointer(tmp_path: Path) -> None:
    steps = (
        "  - send: {flags: SU, seq: isn, urgptr: 3, checksum: bad, data: abc,"
        ' options: {mss: 1460, raw: "fd 04 ab cd", nop: 1}}\n'
    )
    (send,) = load_case(write_case(tmp_path, steps)).steps
    assert isinstance(send, SendStep)
    assert [(o.kind, o.value) for o in send.options] == [("mss", 1460), ("raw", b"\xfd\x04\xab\xcd"), ("nop", None)]
    assert send.bad_checksum and send.urgptr == 3
    w = FakeWire(load_case(write_case(tmp_path, steps)))
    (seg,) = w.advance(10.0)
    assert seg.checksum_ok is False and seg.urgptr == 3 and seg.flags == "SU"
    assert seg.options == (("mss", 1460), ("raw", b"\xfd\x04\xab\xcd"), ("nop", None))
    frame = encode(seg, PROBER_MAC, "02:00:00:00:00:02")
    assert checksum_ok(frame) is False and frame[34 + 18 : 34 + 20] == b"\x00\x03"
    assert frame[34 + 20 : 34 + 32] == bytes.fromhex("020405b4 fd04abcd 01000000")


def test_a_send_without_them_is_as_before(tmp_path: Path) -> None:
    w = FakeWire(load_case(write_case(tmp_path, "  - send: {flags: S, seq: isn}\n")))
    (seg,) = w.advance(10.0)
    assert seg.checksum_ok is None and seg.urgptr == 0


@pytest.mark.parametrize(
    ("segment", "field", "problem"),
    [
        ('{flags: S, options: {raw: "fd 0"}}', "steps[0].send.options.raw", "does not match"),
        ('{flags: S, options: {raw: "' + "00" * 41 + '"}}', "steps[0].send.options.raw", "does not match"),
        ('{flags: S, options: {timestamp: [1, 2], raw: "' + "00" * 31 + '"}}', "steps[0].send.options", "41 octets"),
        ("{flags: S, checksum: wrong}", "steps[0].send.checksum", "wrong"),
        ("{flags: S, urgptr: 65536}", "steps[0].send.urgptr", "65536"),
    ],
)
def test_bad_stimuli_are_rejected_with_file_line_field(tmp_path: Path, segment: str, field: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - send: {segment}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'send:')}" in text and field in text and problem in text, text


@pytest.mark.parametrize(
    ("segment", "field", "problem"),
    [
        ("{flags: SA, checksum: bad}", "steps[0].expect.checksum", "checksum is for send"),
        ("{flags: SA, urgptr: 1}", "steps[0].expect.urgptr", "read only with URG"),
        ('{flags: SA, options: {raw: "fd 04 ab cd"}}', "steps[0].expect.options.raw", "raw is for send"),
    ],
)
def test_send_only_fields_in_an_expect_are_rejected(tmp_path: Path, segment: str, field: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - expect: {segment}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    assert field in str(err.value) and problem in str(err.value), str(err.value)


# ==================================================================== the cases, offline


def play_responder(case: Case, knobs: Knobs, secondary: str | None = None) -> Verdict:
    """`case` against a responder with `knobs` (and a second address), frame by frame on a fake clock (0.2 ms
    one way)."""
    apps = {PORT: case.service} if case.service in ("listen", "banner") else {}
    responder = Responder(knobs, apps, ADDR, secondary=secondary)
    names = case.connections()
    ports = {name: 40000 + i for i, name in enumerate(names)}
    isns = {name: 1000 + 100_000 * i for i, name in enumerate(names)}
    dialogue = Dialogue(case, resolve({}), Addressing(PROBER, ADDR, PORT, secondary=secondary), ports, isns)
    wire: list[tuple[float, int, bool, bytes]] = []
    now, count = 0.0, 0

    def send_ours(now: float) -> None:
        nonlocal count
        for seg in dialogue.advance(now):
            assert not isinstance(seg, tuple)
            frame = encode(seg, PROBER_MAC, responder.mac)  # type: ignore[arg-type]
            own = decode(frame, now + 0.0001)
            assert own is not None
            dialogue.receive(own)
            count += 1
            heapq.heappush(wire, (now + 0.0002, count, True, frame))

    send_ours(now)
    for _ in range(10_000):
        if dialogue.done and not wire:
            break
        times = [t for t in (wire[0][0] if wire else None, responder.wake()) if t is not None]
        deadline = dialogue.next_deadline()
        if deadline is not None:
            times.append(deadline + 0.001)
        now = max(now, min(times))
        if wire and wire[0][0] <= now:
            _, _, to_target, frame = heapq.heappop(wire)
            if to_target:
                for reply in responder.receive(frame, now):
                    count += 1
                    heapq.heappush(wire, (now + 0.0002, count, False, reply))
                continue
            seg = decode(frame, now)
            if seg is not None:
                dialogue.receive(seg)
        for reply in responder.due(now):
            count += 1
            heapq.heappush(wire, (now + 0.0002, count, False, reply))
        send_ours(now)
    return dialogue.verdict()


#: Case -> the responder knob it must catch, and the document its failure cites.
CAUGHT = {
    "checksum-bad-syn": ("accept_bad_checksum", "MUST-3"),
    "checksum-bad-data": ("accept_bad_checksum", "MUST-3"),
    "options-unknown": ("rst_unknown_options", "MUST-6"),
    "options-bad-length": ("hang_on_bad_option_length", "MUST-7"),
}


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_the_case_passes_a_conforming_responder_and_the_model(case_id: str) -> None:
    case = load_case(CASES[case_id])
    verdict = play_responder(case, Knobs())
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    assert unsupported(case) is None
    model = play(case, LINUX).verdict
    assert model.status is Status.PASSED, model.failure and model.failure.render()


@pytest.mark.parametrize("case_id", sorted(CAUGHT))
def test_the_case_fails_the_deviant_responder_citing_its_requirement(case_id: str) -> None:
    knob, requirement = CAUGHT[case_id]
    verdict = play_responder(load_case(CASES[case_id]), Knobs(**{knob: True}))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    assert requirement in verdict.failure.render(), verdict.failure.render()


def test_closed_null_fails_a_model_without_a_rst_for_a_closed_port() -> None:
    deviation = next(d for d in DEVIATIONS if d.name == "no-rst-closed")
    verdict = play(load_case(CASES["closed-null"]), deviation.apply(LINUX)).verdict
    assert verdict.status is Status.FAILED and verdict.failure is not None
    assert "EP-6" in verdict.failure.render(), verdict.failure.render()


def test_a_deviation_only_fails_the_case_that_checks_it() -> None:
    """The knobs are not so broad that they fail everything: the unknown-options knob leaves the checksum cases."""
    verdict = play_responder(load_case(CASES["checksum-bad-data"]), Knobs(rst_unknown_options=True))
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
