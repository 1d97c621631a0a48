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
from functools import cache

from ..checks import SEGMENT_ARRIVES, undocumented
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
#: Sequence positions, as offsets from the target's RCV.NXT (our snd_nxt), and whether the offset counts from the
#: right edge of the window instead: RCV.NXT plus the window the target advertised in its SYN-ACK, bound as
#: ``peer_win``. Our SYN offers no window scale option, so that window is the target's RCV.WND unscaled (RFC 7323
#: §1.3: without the option in both SYNs neither side scales), and no larger than 65535.
SEQ_POSITIONS: dict[str, tuple[int, bool]] = {
    "seq-left": (-1000, False),
    "seq-rcv-nxt": (0, False),
    "seq-inside": (100, False),
    "seq-right-edge": (-1, True),
    "seq-beyond": (10000, True),
}
#: Acknowledgment positions, as offsets from the target's SND.NXT (our rcv_nxt).
ACK_POSITIONS = {"ack-old": -200000, "ack-ok": 0, "ack-ahead": 1000}
#: How long "no reply" is checked, and the pause before the stimulus (so that the prefix's last segment is
#: dealt with first): together shorter than any retransmission timer of the prefix (Linux: 200 ms).
QUIET = 0.1
PAUSE = 0.03


def _send(flags: str, seq: Expr, ack: Expr | None, data: bytes = b"") -> SendStep:
    return SendStep(0, "main", None, flags, seq, ack, 65535, data, ())


#: What the SYN-ACK of the handshake binds: the target's ISN, and its window (the right edge of the positions).
_SYNACK_BINDS = (("peer_isn", "seq"), ("peer_win", "win"))


def _expect(flags: str, seq: Expr | None = None, ack: Expr | None = None, bind: bool = False) -> ExpectStep:
    pattern = SegmentPattern(flags=flags, seq=seq, ack=ack)
    return ExpectStep(0, "main", None, pattern, Window("within", 1.0), bind=_SYNACK_BINDS if bind else ())


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

#: State -> (service, the steps that reach it). Every state is reached with the agent: its listener never accepts
#: (nor reads, nor closes) unless told, as the model's; the ``listen`` service reads and closes at the peer's FIN,
#: so a FIN of ours would race its application's close (an ACK, or a FIN-ACK, by the scheduler's whim).
PREFIXES: dict[str, tuple[str, tuple[Step, ...]]] = {
    "SYN-RECEIVED": ("agent", (_app("listen"), *_HANDSHAKE[:2])),
    "ESTABLISHED": ("agent", (_app("listen"), *_HANDSHAKE)),
    "CLOSE-WAIT": (
        "agent",
        (_app("listen"), *_HANDSHAKE, _send("FA", _e("isn", 1), _e("peer_isn", 1)), _expect("A", ack=_e("isn", 2))),
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
    offset, from_edge = SEQ_POSITIONS[c.seq]
    return _send(flags, Expr("snd_nxt", offset, "peer_win" if from_edge else None), ack, data)


def _reference(rule: Rule | None) -> Reference:
    """The document of a rule the model applied: its EP-* id where the catalog has one, its paragraph of RFC 9293
    (or of RFC 5961 / a Linux departure, at the level of a stack's default)."""
    if rule is None:
        return SEGMENT_ARRIVES
    linux = "Linux" in rule.text or "Linux" in rule.section
    doc = rule.section if rule.section.startswith("RFC") else f"RFC 9293 {rule.section}"
    return Reference(
        rule.ep or rule.key,
        doc,
        Level.DEFAULT if linux else Level.MUST,
        rule.text,
        stack="linux" if linux else None,
    )


def _case(c: Coordinates, service: str, steps: tuple[Step, ...], refs: tuple[Reference, ...], title: str) -> Case:
    """The case; a step's ``line`` is its number, and each step keeps the ref it was given."""
    return Case(
        id=c.id,
        title=title,
        group="matrix." + c.state.lower(),
        path=f"<generated {c.id}>",
        refs=refs,
        service=service,
        steps=tuple(replace(s, line=i + 1) for i, s in enumerate(steps)),
        tolerance=DEFAULT_TOLERANCE,
        tags=("matrix",),
    )


def _relative(value: int, base: int, name: str) -> Expr:
    return Expr(name, seq_diff(value, base))


def _reply_ack(ack: int, c: Coordinates, names: dict[str, int]) -> Expr:
    """The reply's ACK relative to our ISN; when the stimulus was placed from the right edge of the target's
    window and the reply acknowledges it (SEG.SEQ+SEG.LEN of a RST, a reopening SYN-ACK), relative to that edge
    too (``isn+peer_win+k``): the model's window is not the target's."""
    offset, from_edge = SEQ_POSITIONS[c.seq]
    win = names.get("peer_win", 0)
    stimulus_seq = (ISN + 1 + win + offset) % (1 << 32)
    if from_edge and 0 <= seq_diff(ack, stimulus_seq) <= len(DATA) + 2:
        return Expr("isn", seq_diff(ack, ISN) - win, "peer_win")
    return _relative(ack, ISN, "isn")


def _cited(steps: tuple[Step, ...], rules: list[Rule], last: Rule | None) -> tuple[Step, ...]:
    """The prefix's steps, each expectation citing the rule that made the model send its segment (in order), the
    pause after them (a silence) the rule of the prefix's last decision, `last`."""
    out: list[Step] = []
    sent = iter(rules)
    for step in steps:
        if isinstance(step, ExpectStep):
            step = replace(step, ref=_reference(next(sent, last)).id)
        elif isinstance(step, SilenceStep):
            step = replace(step, ref=_reference(last).id)
        out.append(step)
    return tuple(out)


def predict(c: Coordinates, profile: ModelProfile = LINUX) -> Case:
    """The case of coordinates `c`, its expectations predicted by the model under `profile`; each check cites the
    rule the model applied (the prefix's replies their own rules, the stimulus's reply and state its rule)."""
    service, prefix = PREFIXES[c.state]
    stimulus = _stimulus(c)
    prefix = (*prefix, SilenceStep(0, "main", None, PAUSE))
    probe = _case(c, service, (*prefix, stimulus, SilenceStep(0, "main", None, QUIET)), (SEGMENT_ARRIVES,), "")
    played = play(probe, profile, policy=lambda ref: Outcome.INFO)
    sent_at = max(e.time for e in played.verdict.trace if e.outgoing and "cleanup" not in e.note)
    replies = [e.segment for e in played.verdict.trace if not e.outgoing and sent_at < e.time <= sent_at + 0.01]
    before = [d for d in played.host.decisions if d.time <= sent_at]
    after = [d for d in played.host.decisions if d.time > sent_at]
    decisions = [d for d in after if d.time == after[0].time]  # those of the stimulus, not of the cleanup
    rule = decisions[-1].rule if decisions else None
    ref = _reference(rule)
    state = decisions[-1].state.value if decisions else c.state
    peer_isn = played.dialogue.names.get("peer_isn", 0)
    expectation: list[Step] = []
    if replies:
        r = replies[0]
        seq = Expr(None, r.seq) if r.seq == 0 and "R" in r.flags else _relative(r.seq, peer_isn, "peer_isn")
        ack = _reply_ack(r.ack, c, played.dialogue.names) if "A" in r.flags else None
        expectation.append(_expect(r.flags, seq, ack))
    else:
        expectation.append(SilenceStep(0, "main", None, QUIET))
    if service == "agent" or state in ("CLOSED", "TIME-WAIT", "SYN-RECEIVED"):
        expectation.append(StateStep(0, "main", None, state))
    cited = _cited(prefix, [d.rule for d in before if d.sent is not None], before[-1].rule if before else None)
    steps = (*cited, stimulus, *(replace(s, ref=ref.id) for s in expectation))
    refs = {ref.id: ref}
    for r_ in [_reference(d.rule) for d in before]:
        refs.setdefault(r_.id, r_)
    reply = f"{replies[0].flags or '<none>'}" if replies else "nothing"
    title = f"{c.state}, {c.kind} at {c.seq}{', ' + c.ack if c.ack else ''}: {reply}, then {state}"
    return _case(c, service, steps, tuple(refs.values()), title)


def matrix_cases(profile: ModelProfile = LINUX) -> list[Case]:
    """Every case of the matrix, predicted under `profile`."""
    return [predict(c, profile) for c in coordinates()]


@cache
def checked_matrix(profile: ModelProfile = LINUX) -> list[Case]:
    """:func:`matrix_cases`, each case checked as the loader checks a file's (every check answers to a document,
    every ref a step names is one of the case's): a generator bug is an error here, not a case judged without a
    document."""
    cases = matrix_cases(profile)
    for case in cases:
        for step in case.steps:
            missing = undocumented(case, step)
            if missing or (step.ref is not None and case.reference(step.ref) is None):
                raise ValueError(f"{case.id}: step {step.line} ({type(step).__name__}): no document for {missing}")
    return cases
