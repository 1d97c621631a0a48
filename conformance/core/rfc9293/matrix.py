"""The generated state x event matrix: one case per (state, segment kind, sequence position, ack position).

Each case reaches a state as the passive opener (SYN-RECEIVED, ESTABLISHED, CLOSE-WAIT from the wire alone; the
states of a close by the target's application, FIN-WAIT-1, FIN-WAIT-2, CLOSING, TIME-WAIT and LAST-ACK, through the
agent), sends one stimulus, and expects what the model predicts: the reply (flags, seq and ack relative to the two
ISNs) or silence, then the state the model is in (white box with the agent, black box where
:data:`~conformance.core.judges.state.BLACK_BOX` has a probe). Its id is its coordinates
(``matrix/established/rst/seq-inside``) and its reference is the §3.10.7.x paragraph the model applied.

The matrix is generated at load time, not written as files: it is a function of the model and the profile, so a
change to either changes every case consistently, and 880 files would say nothing the generator does not.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..model import AppStep, Case, ExpectStep, Reference, SegmentPattern, SendStep, SilenceStep, StateStep, Step
from ..outcomes import Level, Outcome
from ..segment import seq_diff
from ..timing import DEFAULT_TOLERANCE, Window
from ..values import Expr
from .profile import LINUX, ModelProfile
from .reference import ISN, play
from .rules import Rule

#: Segment kinds of the stimulus: name -> flags (data kinds carry :data:`DATA`).
KINDS = {
    "syn": "S",
    "syn-ack": "SA",
    "ack": "A",
    "rst": "R",
    "rst-ack": "RA",
    "fin": "F",
    "fin-ack": "FA",
    "data": "PA",
    "data-fin": "FPA",
    "no-flags": "",
}
DATA = b"0123456789"
#: The target's receive window the positions are counted in (the model's RCV.WND).
WINDOW = 65535
#: Sequence positions, as offsets from the target's RCV.NXT (our snd_nxt).
SEQ_POSITIONS = {
    "seq-left": -1000,
    "seq-rcv-nxt": 0,
    "seq-inside": 100,
    "seq-right-edge": WINDOW - 1,
    "seq-beyond": WINDOW + 10000,
}
#: Acknowledgment positions, as offsets from the target's SND.NXT (our rcv_nxt).
ACK_POSITIONS = {"ack-old": -200000, "ack-ok": 0, "ack-ahead": 1000}
#: How long "no reply" is checked, and the pause before the stimulus (so that the prefix's last segment is
#: dealt with first): together shorter than any retransmission timer of the prefix (Linux: 200 ms).
QUIET = 0.1
PAUSE = 0.03


def _send(flags: str, seq: Expr, ack: Expr | None, data: bytes = b"") -> SendStep:
    return SendStep(0, "main", None, flags, seq, ack, 65535, data, ())


def _expect(flags: str, seq: Expr | None = None, ack: Expr | None = None, bind: bool = False) -> ExpectStep:
    pattern = SegmentPattern(flags=flags, seq=seq, ack=ack)
    return ExpectStep(0, "main", None, pattern, Window("within", 1.0), bind=(("peer_isn", "seq"),) if bind else ())


def _app(do: str) -> AppStep:
    return AppStep(0, "main", None, do, (), None, True)


def _e(name: str, offset: int = 0) -> Expr:
    return Expr(name, offset)


_HANDSHAKE: tuple[Step, ...] = (
    _send("S", _e("isn"), None),
    _expect("SA", ack=_e("isn", 1), bind=True),
    _send("A", _e("isn", 1), _e("peer_isn", 1)),
)
_FIN_WAIT_1: tuple[Step, ...] = (_app("listen"), *_HANDSHAKE, _app("accept"), _app("close"))
_THEIR_FIN = _expect("FA", _e("peer_isn", 1), _e("isn", 1))

#: State -> (service, the steps that reach it).
PREFIXES: dict[str, tuple[str, tuple[Step, ...]]] = {
    "SYN-RECEIVED": ("listen", _HANDSHAKE[:2]),
    "ESTABLISHED": ("listen", _HANDSHAKE),
    "CLOSE-WAIT": (
        "listen",
        (*_HANDSHAKE, _send("FA", _e("isn", 1), _e("peer_isn", 1)), _expect("A", ack=_e("isn", 2))),
    ),
    "LAST-ACK": (
        "agent",
        (
            _app("listen"),
            *_HANDSHAKE,
            _app("accept"),
            _send("FA", _e("isn", 1), _e("peer_isn", 1)),
            _expect("A", ack=_e("isn", 2)),
            _app("close"),
            _expect("FA", _e("peer_isn", 1), _e("isn", 2)),
        ),
    ),
    "FIN-WAIT-1": ("agent", (*_FIN_WAIT_1, _THEIR_FIN)),
    "FIN-WAIT-2": ("agent", (*_FIN_WAIT_1, _THEIR_FIN, _send("A", _e("isn", 1), _e("peer_isn", 2)))),
    "CLOSING": (
        "agent",
        (*_FIN_WAIT_1, _THEIR_FIN, _send("FA", _e("isn", 1), _e("peer_isn", 1)), _expect("A", ack=_e("isn", 2))),
    ),
    "TIME-WAIT": (
        "agent",
        (
            *_FIN_WAIT_1,
            _THEIR_FIN,
            _send("A", _e("isn", 1), _e("peer_isn", 2)),
            _send("FA", _e("isn", 1), _e("peer_isn", 2)),
            _expect("A", ack=_e("isn", 2)),
        ),
    ),
}


@dataclass(frozen=True)
class Coordinates:
    state: str
    kind: str
    seq: str
    ack: str | None

    @property
    def id(self) -> str:
        parts = [self.state.lower(), self.kind, self.seq] + ([self.ack] if self.ack else [])
        return "matrix/" + "/".join(parts)


def coordinates() -> list[Coordinates]:
    """Every combination, in a stable order."""
    out: list[Coordinates] = []
    for state in PREFIXES:
        for kind, flags in KINDS.items():
            acks: list[str | None] = list(ACK_POSITIONS) if "A" in flags else [None]
            out += [Coordinates(state, kind, seq, ack) for seq in SEQ_POSITIONS for ack in acks]
    return out


def _stimulus(c: Coordinates) -> SendStep:
    flags = KINDS[c.kind]
    ack = _e("rcv_nxt", ACK_POSITIONS[c.ack]) if c.ack else Expr(None, 0)
    data = DATA if "P" in flags else b""
    return _send(flags, _e("snd_nxt", SEQ_POSITIONS[c.seq]), ack, data)


def _reference(rules: list[Rule]) -> Reference:
    rule = rules[-1] if rules else None
    if rule is None:
        return Reference("RFC9293-3.10.7", "RFC 9293 §3.10.7", Level.MUST, "SEGMENT ARRIVES")
    linux = "Linux" in rule.text or "Linux" in rule.section
    doc = rule.section if rule.section.startswith("RFC") else f"RFC 9293 {rule.section}"
    return Reference(
        rule.ep or rule.key,
        doc,
        Level.DEFAULT if linux else Level.MUST,
        rule.text,
        stack="linux" if linux else None,
    )


def _case(c: Coordinates, service: str, steps: tuple[Step, ...], ref: Reference, title: str) -> Case:
    numbered = tuple(_numbered(s, i + 1, ref.id) for i, s in enumerate(steps))
    return Case(
        id=c.id,
        title=title,
        group="matrix." + c.state.lower(),
        path=f"<generated {c.id}>",
        refs=(ref,),
        service=service,
        steps=numbered,
        tolerance=DEFAULT_TOLERANCE,
        tags=("matrix",),
    )


def _numbered(step: Step, line: int, ref: str) -> Step:
    return replace(step, line=line, ref=ref)


def _relative(value: int, base: int, name: str) -> Expr:
    return Expr(name, seq_diff(value, base))


def predict(c: Coordinates, profile: ModelProfile = LINUX) -> Case:
    """The case of coordinates `c`, its expectations predicted by the model under `profile`."""
    service, prefix = PREFIXES[c.state]
    stimulus = _stimulus(c)
    prefix = (*prefix, SilenceStep(0, "main", None, PAUSE))
    probe = _case(c, service, (*prefix, stimulus, SilenceStep(0, "main", None, QUIET)), _reference([]), "")
    played = play(probe, profile, policy=lambda ref: Outcome.INFO)
    sent_at = max(e.time for e in played.verdict.trace if e.outgoing and "cleanup" not in e.note)
    replies = [e.segment for e in played.verdict.trace if not e.outgoing and sent_at < e.time <= sent_at + 0.01]
    after = [d for d in played.host.decisions if d.time > sent_at]
    decisions = [d for d in after if d.time == after[0].time]  # those of the stimulus, not of the cleanup
    rules = [d.rule for d in decisions]
    state = decisions[-1].state.value if decisions else c.state
    peer_isn = played.dialogue.names.get("peer_isn", 0)
    expectation: list[Step] = []
    if replies:
        r = replies[0]
        seq = Expr(None, r.seq) if r.seq == 0 and "R" in r.flags else _relative(r.seq, peer_isn, "peer_isn")
        ack = _relative(r.ack, ISN, "isn") if "A" in r.flags else None
        expectation.append(_expect(r.flags, seq, ack))
    else:
        expectation.append(SilenceStep(0, "main", None, QUIET))
    if service == "agent" or state in ("CLOSED", "TIME-WAIT", "SYN-RECEIVED"):
        expectation.append(StateStep(0, "main", None, state))
    reply = f"{replies[0].flags or '<none>'}" if replies else "nothing"
    title = f"{c.state}, {c.kind} at {c.seq}{', ' + c.ack if c.ack else ''}: {reply}, then {state}"
    return _case(c, service, (*prefix, stimulus, *expectation), _reference(rules), title)


def matrix_cases(profile: ModelProfile = LINUX) -> list[Case]:
    """Every case of the matrix, predicted under `profile`."""
    return [predict(c, profile) for c in coordinates()]
