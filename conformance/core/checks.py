"""What each check of a step answers to: the document a failure of that very check cites.

A step makes several checks (an ``expect``: its flags, seq, ack, window, length, data, options, its time, and
that something came at all). Each can answer to a different document: a wrong ack breaks an event processing rule
of RFC 9293 §3.10.7, a late ACK breaks MUST-40. The document of check ``c`` of a step is, in this order:

1. the step's ``ref: {c: ID}`` (a mapping names a document per check; ``within`` and ``after`` both name the
   timing check);
2. the step's ``ref: ID`` (a single document for every check of the step: the author said so), except for a
   bad checksum, which always answers to MUST-2;
3. the document the check is by nature (:data:`BUILTIN`: a bad checksum is MUST-2, the backoff of a retransmission
   series is MUST-19 with RFC 6298 §5.5, a give-up segment is judged by §3.10.7);
4. the case's only ref, when it has exactly one;
5. for the fields of a segment and its absence: the rule of the reply when its flags say which
   (:data:`REPLY_RULES`: a SYN-ACK is EP-5), else RFC 9293 §3.10.7, SEGMENT ARRIVES, whose rules give every
   reply (:data:`SEGMENT_ARRIVES`), at MUST;
6. otherwise none: the loader rejects the case and asks for ``ref: {c: ID}`` (:func:`undocumented`). A timing check
   of the default window (``within: 1s``, the tool's wait, not a documented bound) is judged as part of the reply's
   presence (5).

The values of a schedule (initial RTO, retry counts, TIME-WAIT length) are not here: they answer to the document
of the value in the run's profile (:meth:`conformance.core.params.Param.reference`).
"""

from __future__ import annotations

from enum import StrEnum

from .model import (
    AppResultStep,
    AppStep,
    AssertStep,
    Case,
    ExpectStep,
    Reference,
    SendStep,
    SilenceStep,
    StateStep,
    Step,
    WithholdStep,
)
from .outcomes import Level
from .timing import Window


class Check(StrEnum):
    """A check a step makes, by what it looks at."""

    FLAGS = "flags"
    SEQ = "seq"
    ACK = "ack"
    WIN = "win"
    LEN = "len"
    MAX_LEN = "max_len"  # an expect's bound on the payload length (e.g. the MSS)
    DATA = "data"
    OPTIONS = "options"
    IP = "ip"  # an IP header field of the segment (ttl, tos, id; core.ipfields)
    URGPTR = "urgptr"  # the urgent pointer of the segment (RFC 9293 §3.8.5, MUST-62)
    PADDING = "padding"  # the octets after an EOL option are zero (RFC 9293 §3.1, MUST-69)
    CHECKSUM = "checksum"
    TIMING = "timing"  # within / after
    MISSING = "missing"  # nothing came
    UNEXPECTED = "unexpected"  # something came where nothing should (silence)
    STATE = "state"
    LASTS = "lasts"
    RESULT = "result"  # an app_result's outcome
    VALUES = "values"  # an assert over bound values (both of the checks below)
    EQUAL = "equal"  # an assert: the values are all equal (for ISNs: no clock-driven component, MUST-8)
    INCREMENT = "increment"  # an assert: the values grow by one constant (for ISNs: predictable, SHLD-1)
    NONDECREASING = "nondecreasing"  # an assert: sequence values never move left (a window's right edge, SHLD-14)
    OUTSIDE = "outside"  # an assert: a value lies outside a range (a window opening that is not silly, MUST-39)
    AT_LEAST = "at_least"  # an expect series (until: {ack: ...}): it holds at least so many segments (SHLD-19)
    AT_MOST = "at_most"  # an expect series: it holds at most so many segments (fewer ACKs than data: SHLD-18)
    RETRANSMISSION = "retransmission"  # a withhold: the segment is not a retransmission of the label
    INITIAL = "initial"  # a withhold: the first gap
    BACKOFF = "backoff"  # a withhold: each later gap
    COUNT = "count"  # a withhold: how many
    GIVE_UP = "give_up"  # a withhold: what the target sends when it gives up


#: The words a case may use as keys of ``ref: {...}``, and the check each names.
KEYS: dict[str, Check] = {c.value: c for c in Check} | {"within": Check.TIMING, "after": Check.TIMING}

#: The checks each step kind makes (the keys its ``ref:`` mapping may use).
STEP_CHECKS: dict[type[Step], frozenset[Check]] = {
    ExpectStep: frozenset(
        {
            Check.FLAGS,
            Check.SEQ,
            Check.ACK,
            Check.WIN,
            Check.LEN,
            Check.MAX_LEN,
            Check.DATA,
            Check.OPTIONS,
            Check.IP,
            Check.URGPTR,
            Check.PADDING,
            Check.CHECKSUM,
            Check.TIMING,
            Check.MISSING,
            Check.AT_LEAST,
            Check.AT_MOST,
        }
    ),
    SilenceStep: frozenset({Check.UNEXPECTED}),
    WithholdStep: frozenset(
        {Check.RETRANSMISSION, Check.INITIAL, Check.BACKOFF, Check.COUNT, Check.GIVE_UP, Check.CHECKSUM}
    ),
    StateStep: frozenset(
        {Check.STATE, Check.LASTS, Check.FLAGS, Check.SEQ, Check.ACK, Check.MISSING, Check.UNEXPECTED}
    ),
    AppResultStep: frozenset({Check.RESULT, Check.TIMING, Check.MISSING}),
    AssertStep: frozenset({Check.VALUES, Check.EQUAL, Check.INCREMENT, Check.NONDECREASING, Check.OUTSIDE}),
}

#: The one check an assert of each kind other than ``unpredictable`` (equal and increment) makes.
ASSERT_CHECKS = {"nondecreasing": Check.NONDECREASING, "outside": Check.OUTSIDE}

#: The model class of each step kind, by the key a case file uses.
STEP_TYPES: dict[str, type[Step]] = {
    "send": SendStep,
    "expect": ExpectStep,
    "silence": SilenceStep,
    "withhold": WithholdStep,
    "assert": AssertStep,
    "app": AppStep,
    "app_result": AppResultStep,
    "state": StateStep,
}

#: RFC 9293 §3.10.7: the event processing rules that give the target's reply to each segment.
SEGMENT_ARRIVES = Reference(
    id="§3.10.7",
    doc="RFC 9293 §3.10.7",
    level=Level.MUST,
    says="SEGMENT ARRIVES: the event processing rules give the reply to every segment in every state",
)

#: The rule behind a reply the tool recognises by its flags alone, for a step that names no document: a SYN-ACK
#: answers a SYN in LISTEN (RFC 9293 §3.10.7.2; a SYN-ACK in SYN-SENT, simultaneous open, names EP-18 itself).
REPLY_RULES: dict[str, Reference] = {
    "SA": Reference(
        id="EP-5",
        doc="RFC 9293 §3.10.7.2",
        level=Level.MUST,
        says="LISTEN, SYN arrives: RCV.NXT = SEG.SEQ+1, send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>",
    ),
}

#: Checks whose document follows from what they are.
BUILTIN: dict[Check, Reference] = {
    Check.CHECKSUM: Reference(
        id="MUST-2",
        doc="RFC 9293 §3.1",
        level=Level.MUST,
        says="the sender MUST generate the checksum and the receiver MUST check it",
    ),
    Check.BACKOFF: Reference(
        id="MUST-19",
        doc="RFC 9293 §3.8.1, RFC 6298 §5.5",
        level=Level.MUST,
        says="a TCP endpoint MUST implement exponential backoff of RTO: on each expiry, RTO <- RTO * 2",
    ),
    Check.GIVE_UP: SEGMENT_ARRIVES,
    Check.PADDING: Reference(
        id="MUST-69",
        doc="RFC 9293 §3.1",
        level=Level.MUST,
        says="The content of the header beyond the End of Option List Option MUST be header padding of zeros "
        "(MUST-69).",
    ),
    Check.RETRANSMISSION: Reference(
        id="RFC6298-5.4",
        doc="RFC 6298 §5.4",
        level=Level.MUST,
        says="when the retransmission timer expires, retransmit the earliest segment not yet acknowledged",
    ),
}

#: Checks that a segment's fields (or its absence) make: they answer to §3.10.7 when nothing else is named.
SEGMENT_CHECKS = frozenset(
    {Check.FLAGS, Check.SEQ, Check.ACK, Check.WIN, Check.LEN, Check.MAX_LEN, Check.DATA, Check.OPTIONS, Check.MISSING}
    | {Check.IP, Check.URGPTR}
)


def check_of_field(field: str) -> Check:
    """The check a :class:`~conformance.core.matching.FieldDiff` field belongs to (``option mss`` -> options)."""
    if field.startswith("option"):
        return Check.OPTIONS
    if field.startswith("ip "):
        return Check.IP
    return KEYS.get(field, Check.FLAGS)


def is_default_window(step: Step) -> bool:
    """An ``expect`` whose window is the tool's default wait (within 1 s), not a documented bound."""
    return isinstance(step, ExpectStep) and step.window_ == Window("within", 1.0)


def document(case: Case, step: Step, check: Check) -> Reference | None:
    """The document check `check` of `step` answers to (see the module docstring); None: none is known."""
    named = dict(step.check_refs).get(check.value)
    if named is None and check in (Check.EQUAL, Check.INCREMENT, Check.NONDECREASING, Check.OUTSIDE):
        named = dict(step.check_refs).get(Check.VALUES.value)  # `values` names an assert's checks
    if named is not None:
        return case.reference(named)
    if check is Check.CHECKSUM:  # a bad checksum answers to MUST-2 whatever else the step checks
        return BUILTIN[check]
    if check is Check.PADDING:  # a check only where the expect asks for it (padding: zero), then MUST-69
        return BUILTIN[check] if isinstance(step, ExpectStep) and step.pattern.padding else None
    if step.ref is not None:
        return case.reference(step.ref)
    if check in BUILTIN:
        return BUILTIN[check]
    if len(case.refs) == 1:
        return case.refs[0]
    if check in SEGMENT_CHECKS or (check is Check.TIMING and is_default_window(step)):
        if isinstance(step, ExpectStep) and step.pattern.flags in REPLY_RULES:
            return REPLY_RULES[step.pattern.flags]
        return SEGMENT_ARRIVES
    return None


#: Checks whose document is, unless a step names one, the profile's document of the value they compare with.
FROM_PROFILE = frozenset({Check.INITIAL, Check.COUNT, Check.LASTS})


def undocumented(case: Case, step: Step) -> list[Check]:
    """The checks of `step` that answer to no document (the loader rejects such a step)."""
    checks = STEP_CHECKS.get(type(step), frozenset()) - FROM_PROFILE
    if isinstance(step, StateStep) and step.lasts is None:
        checks -= {Check.UNEXPECTED}
    if isinstance(step, ExpectStep) and is_default_window(step):
        checks -= {Check.TIMING}
    if isinstance(step, ExpectStep) and not step.pattern.padding:
        checks -= {Check.PADDING}
    if isinstance(step, ExpectStep):  # a series' bounds are checks only where the case gives them
        at_least, at_most = step.segments or (None, None)
        checks -= {Check.AT_LEAST} if at_least is None else set()
        checks -= {Check.AT_MOST} if at_most is None else set()
    if isinstance(step, AssertStep):
        checks -= {Check.VALUES}  # a name for both of its checks, not a check of its own
        checks &= {ASSERT_CHECKS[step.check]} if step.check in ASSERT_CHECKS else {Check.EQUAL, Check.INCREMENT}
    return sorted(c for c in checks if document(case, step, c) is None)


def strongest(references: list[Reference | None]) -> Reference | None:
    """Of the documents of several failed checks, the one a failure cites: the most binding (MUST first)."""
    known = [r for r in references if r is not None]
    order = list(Level)
    return min(known, key=lambda r: order.index(Level(r.level)), default=None)
