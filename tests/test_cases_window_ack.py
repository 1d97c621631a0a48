"""The receive-window, ACK-generation and duplicate-SYN cases: they pass on the model where it can play them, and
they catch the deviation they name (a model profile, or a target scripted on the fake wire)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.engine import AppRequest
from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import AssertStep
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import LINUX
from conformance.core.rfc9293.reference import play, unsupported
from conformance.core.segment import SEQ_MOD, Segment
from tests.helpers import ISN, PEER_ISN, FakeWire, line_of, write_case

T0 = 100.0

ROOT = Path(__file__).resolve().parent.parent
DUP_SYN = ROOT / "cases" / "handshake" / "dup-syn-in-syn-received.yaml"


def test_dup_syn_case_passes_on_the_linux_model() -> None:
    case = load_case(DUP_SYN)
    assert unsupported(case) is None
    assert play(case, LINUX).verdict.status is Status.PASSED


def test_dup_syn_case_notes_a_bare_ack_in_syn_received() -> None:
    """A stack that answers the duplicate SYN with <SEQ=SND.NXT><CTL=ACK> (the RFC's literal text) is noted, not
    failed: the finding cites EP-11, a MAY (information in a run, never a failure: profiles.outcome), since the form,
    not the acknowledgment (EP-7's should), is what differs."""
    case = load_case(DUP_SYN)
    verdict = play(case, replace(LINUX, dup_syn_resends_synack=False)).verdict
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    [finding] = verdict.findings
    text = finding.failure.render()
    assert finding.outcome == "info"
    assert "flags: expected SA, observed A" in text
    assert "EP-11" in text


# ---------------------------------------------------------------- assert nondecreasing (a window's right edge)

EDGE_STEPS = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq, a0: ack, w0: win}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - send: {flags: PA, len: 100}
  - expect: {flags: A, ack: isn+101}
    bind: {a1: ack, w1: win}
  - assert: {nondecreasing: [a0+w0, a1+w1]}
"""


def play_edges(tmp_path: Path, synack_win: int, ack_win: int, isn: int = ISN) -> FakeWire:
    w = FakeWire(load_case(write_case(tmp_path, EDGE_STEPS)), isn=isn)
    w.advance(T0)
    for time, flags, ack, win in ((T0 + 0.001, "SA", isn + 1, synack_win), (T0 + 0.01, "A", isn + 101, ack_win)):
        seq = PEER_ISN if flags == "SA" else PEER_ISN + 1
        w.dialogue.receive(w.segment(time, flags, seq=seq, ack=ack, window=win))
        w.advance(time)
    w.run_until(T0 + 2)
    return w


def test_a_right_edge_that_moves_left_fails_the_assert(tmp_path: Path) -> None:
    w = play_edges(tmp_path, synack_win=1000, ack_win=800)  # edge isn+1001, then isn+901
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None
    assert v.failure.kind == "assertion"
    assert "a1+w1 = 1901 is 100 left of a0+w0 = 2001" in v.failure.message


@pytest.mark.parametrize("ack_win", [900, 1000])
def test_a_right_edge_that_stays_or_moves_right_passes(tmp_path: Path, ack_win: int) -> None:
    v = play_edges(tmp_path, synack_win=1000, ack_win=ack_win).verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_the_edges_are_compared_in_sequence_space(tmp_path: Path) -> None:
    """Across the wrap of 2^32 a larger edge is a smaller number: still to the right."""
    w = play_edges(tmp_path, synack_win=1000, ack_win=1000, isn=SEQ_MOD - 1050)
    assert w.verdict().status == "passed"


def test_an_unbound_name_in_nondecreasing_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_case(tmp_path, EDGE_STEPS.replace("a1+w1]", "a1+w9]"))
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    assert "name 'w9' is not bound before this step" in str(err.value)
    assert f":{line_of(path, '- assert')}:" in str(err.value)


def test_the_window_cases_compare_every_edge_they_bind() -> None:
    case = load_case(ROOT / "cases" / "window" / "no-shrink.yaml")
    step = case.steps[-1]
    assert isinstance(step, AssertStep) and step.check == "nondecreasing"
    assert [str(e) for e in step.exprs] == [f"a{i}+w{i}" for i in range(6)]


# ---------------------------------------------------------------- zero-window RST (MUST-66), on a scripted receiver

ZERO_RST = ROOT / "cases" / "window" / "zero-window-rst.yaml"


class SmallBufferReceiver:
    """A target whose application never reads, scripted on the fake wire: it accepts data up to `buffer` octets
    past its ISN+1 (no window scale), acknowledges each segment at once with the window left, and answers the
    agent's listen and state queries. `honours_rst_at_zero_window` False: a RST while the window is zero is
    dropped (the MUST-66 deviation)."""

    def __init__(self, w: FakeWire, buffer: int = 1800, honours_rst_at_zero_window: bool = True) -> None:
        self.w = w
        self.buffer = buffer
        self.honours = honours_rst_at_zero_window
        self.rcv_nxt: int | None = None
        self.edge = 0  # RCV.NXT + RCV.WND once the SYN came: it never moves (the application never reads)
        self.state = "LISTEN"
        self.seen = 0
        self.answered: set[int] = set()

    def window(self) -> int:
        assert self.rcv_nxt is not None
        return max(0, self.edge - self.rcv_nxt)

    def _arrive(self, seg: Segment, now: float) -> None:
        if "S" in seg.flags:
            self.rcv_nxt = (seg.seq + 1) % SEQ_MOD
            self.edge = self.rcv_nxt + self.buffer
            self.state = "SYN-RECEIVED"
            self._send(now, "SA", PEER_ISN)
            return
        assert self.rcv_nxt is not None
        if "R" in seg.flags:
            if seg.seq == self.rcv_nxt and (self.window() > 0 or self.honours):
                self.state = "CLOSED"
            return
        if self.state == "SYN-RECEIVED":
            self.state = "ESTABLISHED"
        if not seg.payload:
            return
        end = min(seg.seq + len(seg.payload), self.edge)
        if seg.seq <= self.rcv_nxt < end:  # acceptable and new: take what fits
            self.rcv_nxt = end
        self._send(now, "A", PEER_ISN + 1)

    def _send(self, now: float, flags: str, seq: int) -> None:
        assert self.rcv_nxt is not None
        self.w.dialogue.receive(self.w.segment(now, flags, seq=seq, ack=self.rcv_nxt, window=self.window()))

    def _answer(self, req: AppRequest, now: float) -> None:
        fields: dict[str, object] = {"sock": 1} if req.cmd == "listen" else {"state": self.state}
        self.w.dialogue.app_answer(req.id, {"ok": True, **fields}, now)

    def play(self, until: float) -> None:
        """Run the dialogue on the fake clock, answering each segment and request 1 ms after it."""
        now = T0
        self.w.advance(now)
        while not self.w.dialogue.done and now < until:
            for seg in self.w.sent[self.seen :]:
                self._arrive(seg, now + 0.001)
            self.seen = len(self.w.sent)
            for req in self.w.requests:
                if req.id not in self.answered:
                    self.answered.add(req.id)
                    self._answer(req, now + 0.001)
            deadline = self.w.dialogue.next_deadline()
            now = min(now + 0.002, deadline + 0.001) if deadline is not None else now + 0.002
            self.w.advance(now)


def test_zero_window_rst_case_passes_on_a_receiver_that_processes_the_rst() -> None:
    w = FakeWire(load_case(ZERO_RST))
    SmallBufferReceiver(w).play(T0 + 10)
    v = w.verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_zero_window_rst_case_fails_a_receiver_that_ignores_the_rst_at_zero_window() -> None:
    """The deviation the case names: the RST at RCV.NXT is dropped because the window is zero (MUST-66)."""
    w = FakeWire(load_case(ZERO_RST))
    SmallBufferReceiver(w, honours_rst_at_zero_window=False).play(T0 + 10)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None
    text = v.failure.render()
    assert "expected state CLOSED, observed ESTABLISHED" in text
    assert "MUST-66" in text


# ---------------------------------------------------------------- a series of ACKs: until: {ack: ...}, segments:

TRAIN = ROOT / "cases" / "ack" / "train.yaml"
AGGREGATE = ROOT / "cases" / "ack" / "aggregate-queued.yaml"
SERIES_STEPS = """\
  - send: {flags: S, seq: isn}
  - expect: {flags: SA, ack: isn+1}
    bind: {peer_isn: seq}
  - send: {flags: A, seq: isn+1, ack: peer_isn+1}
  - send: {flags: A, len: 100}
  - send: {flags: A, len: 100}
  - send: {flags: A, len: 100}
  - send: {flags: A, len: 100}
  - expect: {flags: A, len: 0, within: 500ms}
    until: {ack: isn+401}
    segments: {at_least: 2, at_most: 3}
"""


def play_acks(w: FakeWire, acks: list[tuple[float, int]], until: float = T0 + 3) -> FakeWire:
    """Handshake, then the target acknowledges with `acks` (time after the train, ack relative to our ISN)."""
    w.advance(T0)
    w.reply(T0 + 0.001, "SA")
    assert w.sent[-1].payload, "the train went out with the final ACK of the handshake"
    for delay, ack in acks:
        w.target(T0 + 0.002 + delay, "A", seq=PEER_ISN + 1, ack=ISN + ack)
        w.advance(T0 + 0.002 + delay)
    w.run_until(until)
    return w


@pytest.mark.parametrize("acks", [[(0.001, 201), (0.002, 401)], [(0.001, 101), (0.002, 301), (0.04, 401)]])
def test_a_series_within_its_bounds_passes(tmp_path: Path, acks: list[tuple[float, int]]) -> None:
    v = play_acks(FakeWire(load_case(write_case(tmp_path, SERIES_STEPS))), acks).verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert v.steps[-1].description.endswith(f": {len(acks)} segments")


@pytest.mark.parametrize(
    ("acks", "problem"),
    [
        ([(0.001, 101), (0.002, 201), (0.003, 301), (0.004, 401)], "held 4 segments, expected at most 3"),
        ([(0.04, 401)], "held 1 segments, expected at least 2"),
    ],
)
def test_a_series_out_of_its_bounds_fails(tmp_path: Path, acks: list[tuple[float, int]], problem: str) -> None:
    v = play_acks(FakeWire(load_case(write_case(tmp_path, SERIES_STEPS))), acks).verdict()
    assert v.status == "failed" and v.failure is not None
    assert v.failure.kind == "assertion" and problem in v.failure.message


def test_a_series_that_never_acknowledges_the_end_is_missing(tmp_path: Path) -> None:
    v = play_acks(FakeWire(load_case(write_case(tmp_path, SERIES_STEPS))), [(0.001, 201)]).verdict()
    assert v.status == "failed" and v.failure is not None and v.failure.kind == "missing"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ("    until: {ack: isn+401}\n", "segments: counts a series"),
        ("at_least: 2, at_most: 3", "at_least 5 is more than at_most 3"),
    ],
)
def test_bad_series_bounds_are_refused_with_their_line(tmp_path: Path, edit: str, problem: str) -> None:
    steps = SERIES_STEPS.replace(edit, "" if edit.startswith(" ") else "at_least: 5, at_most: 3")
    path = write_case(tmp_path, steps)
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    assert problem in str(err.value) and f":{line_of(path, 'segments:')}:" in str(err.value)


def train_on(acks: list[tuple[float, int]]) -> FakeWire:
    """The shipped train case against a target that acknowledges with `acks` (and the last 100 octets at once)."""
    w = play_acks(FakeWire(load_case(TRAIN)), acks, until=T0 + 0.003 + max(d for d, _ in acks))
    w.target(w.now + 0.01, "A", seq=PEER_ISN + 1, ack=ISN + 36701)
    w.run_until(w.now + 1)
    return w


def test_the_train_passes_linux_quick_acks_then_every_second_segment() -> None:
    """What Linux 6.18 does (observations E5): 16 ACKs, one per segment, then one per 2 (23 ACKs)."""
    ends = [1220 * i + 1 for i in range(1, 17)] + [1220 * i + 1 for i in range(18, 30, 2)] + [36601]
    v = train_on([(0.001 * i, a) for i, a in enumerate(ends, 1)]).verdict()
    assert v.status == "passed", v.failure and v.failure.render()


@pytest.mark.parametrize(
    ("acks", "cited"),
    [
        ([(0.001 * i, 1220 * i + 1) for i in range(1, 31)], "SHLD-18"),  # no delayed ACK: one per segment
        ([(0.001 * i, 1220 * 4 * i + 1) for i in range(1, 8)] + [(0.01, 36601)], "SHLD-19"),  # one per 4
        ([(0.001 * i, 2440 * i + 1) for i in range(1, 15)] + [(0.6, 36601)], "MUST-40"),  # the last one late
    ],
)
def test_the_train_catches_each_deviation_with_its_document(acks: list[tuple[float, int]], cited: str) -> None:
    v = train_on(acks).verdict()
    assert v.status == "failed" and v.failure is not None
    assert cited in v.failure.render()


def test_the_linux_model_passes_the_train_and_fails_it_without_delayed_ack() -> None:
    case = load_case(TRAIN)
    assert unsupported(case) is None
    assert play(case, LINUX).verdict.status is Status.PASSED  # 16 quick ACKs, then one per 2 segments
    verdict = play(case, replace(LINUX, ack_delay=None)).verdict  # every segment acknowledged: SHLD-18
    assert verdict.status is Status.FAILED and verdict.failure is not None
    assert "held 30 segments, expected at most 29" in verdict.failure.render()


# ---------------------------------------------------------------- aggregated ACK of queued segments (MUST-58)


def aggregate_on(after_fill: list[int]) -> FakeWire:
    """The shipped aggregate case: each queued segment gets ACK ISN+1, the gap's filling `after_fill` ACKs."""
    w = FakeWire(load_case(AGGREGATE))
    w.advance(T0)
    w.reply(T0 + 0.001, "SA")
    t = T0 + 0.001
    for _ in range(3):
        t += 0.002
        w.reply(t, "A", seq=PEER_ISN + 1, ack=ISN + 1)
    for ack in after_fill:
        t += 0.002
        w.reply(t, "A", seq=PEER_ISN + 1, ack=ISN + ack)
    w.run_until(t + 1)
    return w


def test_aggregate_case_passes_one_ack_for_the_four_segments() -> None:
    v = aggregate_on([401]).verdict()
    assert v.status == "passed", v.failure and v.failure.render()
    assert unsupported(load_case(AGGREGATE)) is None
    assert play(load_case(AGGREGATE), LINUX).verdict.status is Status.PASSED


@pytest.mark.parametrize(("after_fill", "cited"), [([101, 201, 301, 401], "MUST-59"), ([401, 401], "MUST-58")])
def test_aggregate_case_fails_acks_one_by_one_or_repeated(after_fill: list[int], cited: str) -> None:
    v = aggregate_on(after_fill).verdict()
    assert v.status == "failed" and v.failure is not None
    assert cited in v.failure.render()
