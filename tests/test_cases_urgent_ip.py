"""The urgent data cases (MUST-30, MUST-31, MUST-32, MUST-33, MUST-62) and the TTL and DiffServ cases (MUST-49,
MUST-48, SHLD-21, SHLD-22), played offline against a scripted target with an application, conforming and deviant;
and the ``urgptr`` check of an expect.

The scripted target (:class:`AppTarget`) answers our segments and the agent's commands as Linux does (the BSD
reading of the urgent mark: the last urgent octet is read apart unless SO_OOBINLINE, a read stops at the mark);
each knob of :class:`Knobs` removes one behaviour, and the case that checks it must fail citing its requirement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from conformance.core.engine import AppRequest, Verdict
from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.model import Case, ExpectStep
from conformance.core.outcomes import Status
from conformance.core.rfc9293.reference import unsupported
from conformance.core.segment import Segment

from .helpers import ISN, PEER_ISN, ROOT, FakeWire, line_of, write_case

APP = ROOT / "cases" / "app"
CASES = [
    "urgent-send-pointer",
    "urgent-send-long",
    "urgent-receive-notify",
    "urgent-receive-mark",
    "urgent-receive-long",
    "ttl-set",
    "diffserv-set",
    "diffserv-change",
]


@dataclass(frozen=True)
class Knobs:
    """Deviations of the scripted target, each the absence of one documented behaviour."""

    urg_last_octet: bool = False  # the RFC 793 reading: the pointer designates the last urgent octet (not MUST-62)
    urg_first_only: bool = False  # only the first segment of long urgent data carries URG (not MUST-31)
    urg_clamped: bool = False  # takes a pointer past the segment's own data as its last octet (not MUST-31)
    no_urgent: bool = False  # no urgent mechanism: URG never sent, ignored on receipt (not MUST-30)
    no_renotify: bool = False  # tells the application of the first urgent pointer only (not MUST-32)
    no_mark: bool = False  # reads run past the mark, sockatmark always false (not MUST-33)
    ignore_ttl: bool = False  # IP_TTL accepted, not used (not MUST-49)
    ignore_tos: bool = False  # IP_TOS accepted, not used (not MUST-48)
    tos_once: bool = False  # the first IP_TOS holds for the connection's life (not SHLD-21)


@dataclass
class AppTarget:
    """A listener with an application on a fake clock: the handshake, data, urgent data, IP_TTL and IP_TOS."""

    knobs: Knobs
    mss: int = 1460
    snd_nxt: int = PEER_ISN + 1
    stream: bytearray = field(default_factory=bytearray)  # what we sent it, in order
    read: int = 0  # octets of the stream the application has consumed
    mark: int | None = None  # index of the urgent octet (the last one of the urgent data)
    pending: bool = False  # urgent data the application was told of and has not read
    inline: bool = False  # SO_OOBINLINE: the urgent octet stays in the stream
    notices: int = 0
    ip: dict[str, object] = field(default_factory=lambda: {"ttl": 64, "tos": 0})
    tos_set: bool = False

    def segment(self, w: FakeWire, seg: Segment, time: float) -> list[Segment]:
        if "S" in seg.flags:
            mss = seg.option("mss")
            self.mss = mss if isinstance(mss, int) else self.mss
            return [self._out(w, time, "SA", seq=PEER_ISN)]
        if not seg.payload:
            return []
        start = seg.seq - (ISN + 1)
        self.stream[start : start + len(seg.payload)] = seg.payload
        if "U" in seg.flags and seg.urgptr and not self.knobs.no_urgent:
            new = start + seg.urgptr - 1
            if self.knobs.urg_clamped:
                new = min(new, start + len(seg.payload) - 1)
            if self.mark is None or new > self.mark:
                self.mark = new
                self.pending = not (self.knobs.no_renotify and self.notices > 0)
                self.notices += 1
        return [self._out(w, time, "A")]

    def _out(self, w: FakeWire, time: float, flags: str, seq: int | None = None, data: bytes = b"") -> Segment:
        ack = ISN + 1 + len(self.stream)
        seg = w.segment(time, flags, seq=self.snd_nxt if seq is None else seq, ack=ack, payload=data)
        return replace(seg, extra=dict(self.ip))

    def _at_mark(self) -> bool:
        return not self.knobs.no_mark and self.mark is not None and self.read == self.mark

    def request(self, w: FakeWire, req: AppRequest, time: float) -> tuple[dict[str, object], list[Segment]]:
        args, k = req.args, self.knobs
        if req.cmd in ("listen", "accept"):
            return {"sock": 1 if req.cmd == "listen" else 2}, []
        if req.cmd == "setsockopt":
            options = dict(args["options"])  # type: ignore[call-overload]
            if "IP_TTL" in options and not k.ignore_ttl:
                self.ip["ttl"] = options["IP_TTL"]
            if "IP_TOS" in options and not k.ignore_tos and not (k.tos_once and self.tos_set):
                self.ip["tos"], self.tos_set = options["IP_TOS"], True
            self.inline = bool(options.get("SO_OOBINLINE", self.inline))
            return {}, []
        if req.cmd == "send":
            return self._send(w, str(args["data"]).encode(), bool(args.get("urgent")), time)
        if req.cmd == "poll":
            return {"readable": self.read < len(self.stream), "urgent": self.pending, "at_mark": self._at_mark()}, []
        if req.cmd == "sockatmark":
            return {"at_mark": self._at_mark()}, []
        assert req.cmd == "recv", req.cmd
        return self._recv(bool(args.get("urgent")), int(args.get("max", 65536))), []  # type: ignore[call-overload]

    def _send(self, w: FakeWire, data: bytes, urgent: bool, time: float) -> tuple[dict[str, object], list[Segment]]:
        k, out, end = self.knobs, [], self.snd_nxt + len(data)
        for at in range(0, len(data), self.mss):
            chunk = data[at : at + self.mss]
            marked = urgent and not k.no_urgent and not (k.urg_first_only and at > 0)
            flags = "A" + ("P" if at + self.mss >= len(data) else "") + ("U" if marked else "")
            seg = self._out(w, time, flags, data=chunk)
            if marked:
                seg = replace(seg, urgptr=end - self.snd_nxt - (1 if k.urg_last_octet else 0))
            out.append(seg)
            self.snd_nxt += len(chunk)
        return {"sent": len(data)}, out

    def _recv(self, urgent: bool, limit: int) -> dict[str, object]:
        if urgent:
            if not self.pending or self.mark is None:
                return {"ok": False, "error": "EINVAL"}
            self.pending = False
            return {"data": chr(self.stream[self.mark]), "at_mark": self._at_mark()}
        if self.mark is not None and self.read == self.mark and not self.inline:
            self.read += 1  # the urgent octet is read apart (not SO_OOBINLINE)
        end = min(len(self.stream), self.read + limit)
        if self.mark is not None and self.read < self.mark and not self.knobs.no_mark:
            end = min(end, self.mark)  # a read stops at the mark
        data, self.read = self.stream[self.read : end], end
        if self.inline and self.mark is not None and self.read > self.mark:
            self.pending = False  # read past the urgent octet: no urgent data pending (Linux urg_data = 0)
        return {"data": data.decode(), "eof": False, "at_mark": self._at_mark()}


def play(case: Case, knobs: Knobs) -> Verdict:
    """`case` against an :class:`AppTarget` with `knobs`: the target answers 1 ms after each of our events."""
    w, target = FakeWire(case), AppTarget(knobs)
    now, answered = 100.0, 0
    for _ in range(200):
        ours = w.advance(now)
        replies = [r for seg in ours for r in target.segment(w, seg, now + 0.001)]
        for req in w.requests[answered:]:
            answer, segments = target.request(w, req, now + 0.001)
            w.dialogue.app_answer(req.id, {"ok": True, **answer}, now + 0.0005)
            replies += segments
        busy = bool(ours or replies or w.requests[answered:])
        answered = len(w.requests)
        for seg in replies:
            w.dialogue.receive(seg)
        if w.dialogue.done:
            break
        deadline = w.dialogue.next_deadline()
        if busy or deadline is None:
            now += 0.002
        else:
            now = max(now + 0.002, deadline + 0.001)
    return w.verdict()


@pytest.mark.parametrize("name", CASES)
def test_the_case_passes_a_conforming_target_and_the_model_plays_it(name: str) -> None:
    case = load_case(APP / f"{name}.yaml")
    verdict = play(case, Knobs())
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    reason = unsupported(case)  # rfc9293.urgent and rfc9293.ip; test_rfc9293_reference checks they pass
    assert reason is None, reason


#: Case, the deviation it must catch, and the requirement its failure cites.
CAUGHT = [
    ("urgent-send-pointer", "urg_last_octet", "MUST-62"),
    ("urgent-send-pointer", "no_urgent", "MUST-30"),
    ("urgent-send-long", "urg_first_only", "MUST-31"),
    ("urgent-send-long", "urg_last_octet", "MUST-62"),
    ("urgent-receive-notify", "no_urgent", "MUST-32"),
    ("urgent-receive-notify", "no_renotify", "MUST-32"),
    ("urgent-receive-mark", "no_mark", "MUST-33"),
    ("urgent-receive-mark", "no_urgent", "MUST-33"),
    ("urgent-receive-long", "urg_clamped", "MUST-31"),
    ("ttl-set", "ignore_ttl", "MUST-49"),
    ("diffserv-set", "ignore_tos", "MUST-48"),
    ("diffserv-change", "ignore_tos", "MUST-48"),
    ("diffserv-change", "tos_once", "SHLD-21"),
]


@pytest.mark.parametrize(("name", "knob", "requirement"), CAUGHT)
def test_the_case_fails_the_deviation_citing_its_requirement(name: str, knob: str, requirement: str) -> None:
    verdict = play(load_case(APP / f"{name}.yaml"), Knobs(**{knob: True}))
    assert verdict.status is Status.FAILED and verdict.failure is not None
    text = verdict.failure.render()
    assert f"{requirement})" in text, text


def test_a_deviation_fails_only_the_cases_of_its_behaviour() -> None:
    """The TTL and DiffServ knobs leave the urgent cases alone, and the reverse."""
    for name in ("urgent-send-pointer", "urgent-receive-mark"):
        verdict = play(load_case(APP / f"{name}.yaml"), Knobs(ignore_ttl=True, ignore_tos=True))
        assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()
    verdict = play(load_case(APP / "ttl-set.yaml"), Knobs(urg_last_octet=True, no_mark=True))
    assert verdict.status is Status.PASSED, verdict.failure and verdict.failure.render()


# ==================================================================== the urgptr check of an expect

HANDSHAKE = "  - send: {flags: S, seq: isn}\n  - expect: {flags: SA, ack: isn+1}\n    bind: {peer_isn: seq}\n"
URGENT = HANDSHAKE + "  - expect: {flags: AU, seq: peer_isn+1, urgptr: 3}\n"


def _urgent_reply(tmp_path: Path, flags: str, urgptr: int) -> Verdict:
    w = FakeWire(load_case(write_case(tmp_path, URGENT)))
    w.advance(0.0)
    w.reply(0.001, "SA")
    seg = replace(w.segment(0.002, flags, seq=PEER_ISN + 1, payload=b"abc"), urgptr=urgptr)
    w.dialogue.receive(seg)
    w.advance(0.002)
    return w.verdict()


def test_an_expect_checks_the_urgent_pointer(tmp_path: Path) -> None:
    (_, _, expect) = load_case(write_case(tmp_path, URGENT)).steps
    assert isinstance(expect, ExpectStep) and expect.pattern.urgptr == 3
    assert _urgent_reply(tmp_path, "AU", 3).status is Status.PASSED
    failure = _urgent_reply(tmp_path, "AU", 2).failure
    assert failure is not None and "urgptr: expected 3 (seq+3), observed 2 (seq+2)" in failure.render()


def test_a_pointer_without_urg_does_not_pass(tmp_path: Path) -> None:
    failure = _urgent_reply(tmp_path, "A", 3).failure
    assert failure is not None and "observed 3, without URG" in failure.render(), failure and failure.render()


@pytest.mark.parametrize(
    ("segment", "problem"),
    [
        ("{flags: A, urgptr: 3}", "read only with URG"),
        ("{flags: AU, urgptr: 65536}", "65536"),
        ("{flags: AU, urgptr: -1}", "-1"),
    ],
)
def test_a_bad_urgptr_in_an_expect_names_file_line_and_field(tmp_path: Path, segment: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - expect: {segment}\n")
    with pytest.raises(CaseFormatError) as err:
        load_case(path)
    text = str(err.value)
    assert f"{path}:{line_of(path, 'expect:')}" in text and "steps[0].expect.urgptr" in text and problem in text, text
