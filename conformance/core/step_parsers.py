"""Validated step data -> :class:`~conformance.core.model.Step`: one small parser per step kind.

The schema has already checked each field's type; what is checked here is what
a schema cannot say: a name bound before it is used, a label given once, a
``retransmits`` that names an earlier expect, a ref that exists. Every error
names the file, the line and the field (``file:line: steps[3].expect.seq``).

:data:`PARSERS` maps a step's key (``send``, ``expect``, ...) to its parser;
each takes the :class:`StepBuilder` (what earlier steps bound and labelled) and
the :class:`RawStep` it is to turn into a step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .assert_parsers import parse_assert
from .checks import KEYS, SEGMENT_CHECKS, STEP_CHECKS, STEP_TYPES
from .errors import CaseFormatError
from .ipfields import parse_icmp, parse_ip_expect, parse_ip_route, parse_ip_send, parse_ip_source
from .model import (
    ANY_CONN,
    AppResultStep,
    AppStep,
    ExpectStep,
    OptionSpec,
    SegmentPattern,
    SendStep,
    SilenceStep,
    StateStep,
    Step,
    WithholdStep,
)
from .option_parsers import parse_options
from .params import DOCUMENTED
from .schedules import SCHEDULES, timed_names
from .segment import canonical_flags
from .timing import Window
from .values import BUILTIN_NAMES, Expr, parse_duration, parse_expr

#: Where a node is in the case document: keys and list indexes, from the top.
Path_ = tuple[str | int, ...]
STEP_KINDS = ("send", "expect", "silence", "withhold", "assert", "app", "app_result", "state")
#: Keys allowed beside each step kind.
STEP_KEYS = {
    "send": {"conn", "ref"},
    "expect": {"conn", "ref", "label", "bind", "until", "segments", "repeats"},
    "silence": {"conn", "ref", "repeats"},
    "withhold": {"conn", "ref", "retransmits", "schedule", "count", "then_silence"},
    "assert": {"ref"},
    "app": {"conn", "ref", "label", "wait"},
    "app_result": {"conn", "ref"},
    "state": {"conn", "ref", "lasts"},
}
DEFAULT_WITHIN = 1.0
#: ``silence`` or ``expect`` with ``repeats:``: whether a repeat none of our ACKs covered is passed over (the default:
#: our ACK may have been late) or judged (the dialogue withholds its ACK on purpose, so the repeat is the target's).
REPEATS = ("forgiven", "judged")


def field_name(path: Path_) -> str:
    """`path` as a reader writes it: ``steps[3].expect.seq``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class Lines:
    """Line numbers (1-based) of every YAML node, by its path in the document."""

    def __init__(self) -> None:
        self.by_path: dict[Path_, int] = {}

    def line(self, path: Path_) -> int | None:
        p = tuple(path)
        while p not in self.by_path and p:
            p = p[:-1]
        return self.by_path.get(p)


#: The largest payload a segment can carry: an IPv4 datagram of 65535 octets, less the IPv4 header and a TCP
#: header with 40 octets of options.
MAX_PAYLOAD = 65535 - 20 - 60


@dataclass(frozen=True)
class RawStep:
    """One step as the schema let it through, with what every kind shares already read."""

    raw: dict[str, Any]  # the whole step: its kind's key and the keys beside it
    path: Path_  # of the step: ("steps", 3)
    kind: str
    line: int
    conn: str
    ref: str | None

    @property
    def body(self) -> Any:
        """The value under the kind's key."""
        return self.raw[self.kind]

    @property
    def body_path(self) -> Path_:
        return self.path + (self.kind,)


class StepBuilder:
    """Turns validated steps into :class:`Step` values, in order, checking what the schema cannot."""

    def __init__(self, file: str, lines: Lines) -> None:
        self.file = file
        self.lines = lines
        self.bound: set[str] = set(BUILTIN_NAMES)
        self.labels: set[str] = set()
        self.app_labels: set[str] = set()
        self.seen_withhold = False
        self.ref_ids: set[str] = set()

    def error(self, path: Path_, problem: str, valid: Iterable[str] = ()) -> CaseFormatError:
        return CaseFormatError(self.file, self.lines.line(path), field_name(path), problem, list(valid))

    def expr(self, value: Any, path: Path_) -> Expr:
        try:
            e = parse_expr(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None
        for name in e.names:
            if name not in self.bound:
                raise self.error(path, f"name {name!r} is not bound before this step", sorted(self.bound))
        return e

    def optional_expr(self, body: dict[str, Any], key: str, path: Path_) -> Expr | None:
        """``body[key]`` as an expression, or None when the step leaves it out."""
        return self.expr(body[key], path + (key,)) if key in body else None

    def duration(self, value: Any, path: Path_) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None

    def flags(self, text: str, path: Path_, allow_optional: bool) -> tuple[str, str]:
        required, optional = "", ""
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "?":
                raise self.error(path, "'?' must follow a flag letter")
            if i + 1 < len(text) and text[i + 1] == "?":
                if not allow_optional:
                    raise self.error(path, "optional flags (X?) are only allowed in expect")
                optional += ch
                i += 2
            else:
                required += ch
                i += 1
        if set(required) & set(optional):
            raise self.error(path, "a flag cannot be both required and optional")
        return canonical_flags(required), canonical_flags(optional)

    def options(self, seg: dict[str, Any], path: Path_, expected: bool = False) -> tuple[OptionSpec, ...]:
        """The segment's options (:func:`~conformance.core.option_parsers.parse_options`)."""
        return parse_options(self, seg, path, expected)

    def data(self, seg: dict[str, Any], path: Path_) -> bytes | None:
        if "data" in seg and len(seg["data"].encode()) > MAX_PAYLOAD:
            raise self.error(path + ("data",), f"more than {MAX_PAYLOAD} octets: no segment carries that much")
        if "data" in seg and "len" in seg and seg["len"] != len(seg["data"].encode()):
            raise self.error(
                path + ("len",), f"len {seg['len']} disagrees with data ({len(seg['data'].encode())} octets)"
            )
        if "data" in seg:
            return bytes(seg["data"].encode())
        return None

    def unique_label(self, s: RawStep, seen: set[str]) -> str | None:
        """The step's label, added to `seen`; an error if an earlier step has it."""
        label = s.raw.get("label")
        if label is not None:
            if label in seen:
                raise self.error(s.path + ("label",), f"label {label!r} is used twice")
            seen.add(label)
        return label

    def step(self, raw: dict[str, Any], path: Path_) -> Step:
        kind = next(k for k in STEP_KINDS if k in raw)
        for key in raw:
            if key != kind and key not in STEP_KEYS[kind]:
                raise self.error(path + (key,), f"{key!r} does not go with {kind!r}", sorted(STEP_KEYS[kind] | {kind}))
        ref = raw.get("ref")
        per_check: tuple[tuple[str, str], ...] = ()
        if isinstance(ref, dict):
            per_check = self.check_refs(kind, ref, path + ("ref",))
            ref = None
        elif ref is not None and ref not in self.ref_ids:
            raise self.error(path + ("ref",), f"no ref with id {ref!r}", sorted(self.ref_ids))
        s = RawStep(raw, path, kind, self.lines.line(path) or 0, raw.get("conn", "main"), ref)
        step = PARSERS[kind](self, s)
        return dataclasses.replace(step, check_refs=per_check) if per_check else step

    def check_refs(self, kind: str, refs: dict[str, Any], path: Path_) -> tuple[tuple[str, str], ...]:
        """A ``ref: {check: ID}`` mapping: each check one the step makes, each ID one of the case's refs."""
        makes = STEP_CHECKS.get(STEP_TYPES[kind], frozenset())
        allowed = {k for k, c in KEYS.items() if c in makes} | ({"fields"} if makes & SEGMENT_CHECKS else set())
        out: dict[str, str] = {}
        # `fields` first: a check named beside it overrides it
        for key, ref_id in sorted(refs.items(), key=lambda kv: kv[0] != "fields"):
            if key not in allowed:
                raise self.error(path + (key,), f"a {kind} step makes no {key!r} check", sorted(allowed))
            if ref_id not in self.ref_ids:
                raise self.error(path + (key,), f"no ref with id {ref_id!r}", sorted(self.ref_ids))
            for check in SEGMENT_CHECKS & makes if key == "fields" else {KEYS[key]}:
                out[check.value] = ref_id
        return tuple(sorted(out.items()))


def _send(b: StepBuilder, s: RawStep) -> Step:
    body, kp = s.body, s.body_path
    for k in ("within", "after"):
        if k in body:
            raise b.error(kp + (k,), "timing goes with expect, not send (a send happens at once)")
    if "max_len" in body and not isinstance(body.get("len"), str):
        raise b.error(kp + ("max_len",), "max_len bounds what the target sends (expect), or a send's bound len: w4")
    if "padding" in body:
        raise b.error(kp + ("padding",), "padding checks what the target sends (expect); a send pads with zeros")
    if "icmp" in body:  # an ICMP error about the target's segment, not a segment (core.ipfields)
        icmp = parse_icmp(b, body, kp)
        return SendStep(s.line, s.conn, s.ref, flags="", seq=None, ack=None, window=0, data=b"", options=(), icmp=icmp)
    flags, _ = b.flags(body.get("flags", ""), kp + ("flags",), allow_optional=False)
    length, max_length = _send_length(b, body, kp)
    data = b.data(body, kp)
    if data is None:
        data = b"x" * (0 if length is not None else body.get("len", 0))
    return SendStep(
        line=s.line,
        conn=s.conn,
        ref=s.ref,
        flags=flags,
        seq=b.optional_expr(body, "seq", kp),
        ack=b.optional_expr(body, "ack", kp),
        window=body.get("win", 65535),
        data=data,
        options=b.options(body, kp),
        bad_checksum=body.get("checksum", "good") == "bad",
        urgptr=body.get("urgptr", 0),
        ip=parse_ip_send(b, body["ip"], kp + ("ip",)) if "ip" in body else None,
        length=length,
        max_length=max_length,
    )


def _send_length(b: StepBuilder, body: dict[str, Any], kp: Path_) -> tuple[Expr | None, int]:
    """``len: w4`` with ``max_len: N``: a payload length from a bound name, and the most one segment carries."""
    text = body.get("len")
    if not isinstance(text, str):
        return None, 0
    try:
        parse_expr(text)
    except ValueError:
        raise b.error(
            kp + ("len",), f"{text!r} is not of type integer, nor an expression over bound names (len: w4)"
        ) from None
    if "data" in body:
        raise b.error(kp + ("len",), "a bound len sends 'x' octets: leave data out")
    if not isinstance(body.get("max_len"), int):
        raise b.error(
            kp + ("len",),
            f"len: {text} needs max_len: N, the most octets this segment may carry (at most {MAX_PAYLOAD})",
        )
    return b.expr(text, kp + ("len",)), body["max_len"]


#: Fields of a segment we send that an expected segment does not take, and why.
SEND_ONLY = {
    "checksum": "checksum is for send (checksum: bad); every segment the target sends is checked (MUST-2)",
    "icmp": "icmp is for send (an ICMP error we send); ICMP errors the target sends are judged without a step",
}


def _expect_window(b: StepBuilder, body: dict[str, Any], kp: Path_) -> Window:
    if "within" in body and "after" in body:
        raise b.error(kp + ("after",), "give either within or after, not both")
    kind = "after" if "after" in body else "within"
    value = body.get(kind, DEFAULT_WITHIN)
    names = timed_names({name: d.unit for name, d in DOCUMENTED.items()})
    if isinstance(value, str) and value in names:  # a run value (one RTO, a documented time), resolved when played
        return Window(kind, 0.0, value=value)
    try:
        return Window(kind, parse_duration(value))
    except ValueError as exc:
        if not isinstance(value, str):
            raise b.error(kp + (kind,), str(exc)) from None
        raise b.error(kp + (kind,), f"{exc}, nor the name of a run value", names) from None


def _pattern(b: StepBuilder, body: dict[str, Any], kp: Path_) -> SegmentPattern:
    for key, why in SEND_ONLY.items():
        if key in body:
            raise b.error(kp + (key,), why)
    flags_req, flags_opt = (None, "")
    if "flags" in body:
        flags_req, flags_opt = b.flags(body["flags"], kp + ("flags",), allow_optional=True)
    if isinstance(body.get("len"), str):
        raise b.error(kp + ("len",), "a bound len (a name) is for send; an expect binds len: bind: {name: len}")
    data = b.data(body, kp)
    return SegmentPattern(
        flags=flags_req,
        flags_optional=flags_opt,
        seq=b.optional_expr(body, "seq", kp),
        ack=b.optional_expr(body, "ack", kp),
        window=body.get("win"),
        length=body.get("len", len(data) if data is not None else None),
        max_length=_max_length(body.get("max_len")),
        data=data,
        options=b.options(body, kp, expected=True) if "options" in body else None,
        ip=parse_ip_expect(b, body["ip"], kp + ("ip",)) if "ip" in body else None,
        src=parse_ip_source(b, body["ip"], kp + ("ip",)) if "ip" in body else None,
        route=parse_ip_route(b, body["ip"], kp + ("ip",)) if "ip" in body else None,
        urgptr=_urgptr(b, body, flags_req, kp),
        padding="padding" in body,
    )


def _urgptr(b: StepBuilder, body: dict[str, Any], flags: str | None, kp: Path_) -> int | None:
    """``urgptr: N`` of an expect: the urgent pointer field, meaningful only with URG (RFC 9293 §3.8.5)."""
    if "urgptr" not in body:
        return None
    if "U" not in (flags or ""):
        raise b.error(kp + ("urgptr",), 'the urgent pointer is read only with URG: give U among the flags ("AUP?")')
    return int(body["urgptr"])


def _max_length(value: int | dict[str, int] | None) -> tuple[int, int] | None:
    """``max_len: N`` (both families) or ``max_len: {ipv4: N, ipv6: M}`` (the schema checked its shape)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value["ipv4"], value["ipv6"]
    return value, value


def _expect(b: StepBuilder, s: RawStep) -> Step:
    window = _expect_window(b, s.body, s.body_path)
    pattern = _pattern(b, s.body, s.body_path)
    label = b.unique_label(s, b.labels)
    bind = tuple((name, fld) for name, fld in s.raw.get("bind", {}).items())
    for name, _ in bind:
        if name in BUILTIN_NAMES:
            raise b.error(s.path + ("bind", name), f"{name!r} is a built-in name and cannot be bound")
        b.bound.add(name)
    until = s.raw.get("until")
    until_ack, segments = _series(b, s, until)
    if until_ack is not None:
        until = None
    if until == "FIN" and pattern.flags is not None and "F" not in pattern.flags + pattern.flags_optional:
        raise b.error(s.path + ("until",), 'until: FIN needs F among the flags ("AP?F?": data, then the FIN)')
    if until is not None and (pattern.length is not None or pattern.data is not None):
        raise b.error(s.path + ("until",), f"until: {until} takes segments of any length: leave len and data out")
    return ExpectStep(
        line=s.line,
        conn=s.conn,
        ref=s.ref,
        pattern=pattern,
        window_=window,
        label=label,
        bind=bind,
        until=until,
        until_ack=until_ack,
        segments=segments,
        judge_repeats=_judge_repeats(b, s),
    )


def _judge_repeats(b: StepBuilder, s: RawStep) -> bool:
    """``repeats: forgiven|judged`` of a silence or an expect: True for judged."""
    repeats = s.raw.get("repeats", "forgiven")
    if repeats not in REPEATS:
        raise b.error(s.path + ("repeats",), f"unknown repeats value {repeats!r}", REPEATS)
    return bool(repeats == "judged")


def _series(b: StepBuilder, s: RawStep, until: Any) -> tuple[Expr | None, tuple[int | None, int | None] | None]:
    """``until: {ack: EXPR}`` (the series ends with a segment that acknowledges EXPR) and ``segments:`` bounds
    on how many segments it holds (the schema checked their shapes: integers of 1 to 1000)."""
    until_ack = b.expr(until["ack"], s.path + ("until", "ack")) if isinstance(until, dict) else None
    raw = s.raw.get("segments")
    if raw is None:
        return until_ack, None
    if until is None:
        raise b.error(s.path + ("segments",), "segments: counts a series: give until: {ack: ...}, FIN or data too")
    at_least, at_most = raw.get("at_least"), raw.get("at_most")
    if at_least is not None and at_most is not None and at_least > at_most:
        raise b.error(s.path + ("segments",), f"at_least {at_least} is more than at_most {at_most}")
    return until_ack, (at_least, at_most)


def _silence(b: StepBuilder, s: RawStep) -> Step:
    # Without conn: the whole case must be silent; with it, that connection.
    conn = s.raw.get("conn", ANY_CONN)
    judge_repeats = _judge_repeats(b, s)
    seconds = b.duration(s.body, s.body_path)
    return SilenceStep(line=s.line, conn=conn, ref=s.ref, seconds=seconds, judge_repeats=judge_repeats)


def _withhold(b: StepBuilder, s: RawStep) -> Step:
    raw = s.raw
    if "retransmits" not in raw:
        raise b.error(s.path, "withhold needs retransmits: LABEL (the segment the target must repeat)")
    if raw["retransmits"] not in b.labels:
        raise b.error(
            s.path + ("retransmits",),
            f"no earlier expect step has label {raw['retransmits']!r}",
            sorted(b.labels),
        )
    schedule = raw.get("schedule", "synack")
    if schedule not in SCHEDULES:
        raise b.error(s.path + ("schedule",), f"unknown schedule {schedule!r}", sorted(SCHEDULES))
    count = raw.get("count")
    b.seen_withhold = True
    return WithholdStep(
        line=s.line,
        conn=s.conn,
        ref=s.ref,
        what=s.body,
        retransmits=raw["retransmits"],
        schedule=schedule,
        count=count,
        then_silence=raw.get("then_silence", count is None),
    )


def _app(b: StepBuilder, s: RawStep) -> Step:
    body = s.body
    label = b.unique_label(s, b.app_labels)
    return AppStep(
        line=s.line,
        conn=s.conn,
        ref=s.ref,
        do=body["do"],
        args=tuple((k, v) for k, v in body.items() if k not in ("do", "at")),
        label=label,
        wait=s.raw.get("wait", body["do"] != "connect"),
        at=b.duration(body["at"], s.body_path + ("at",)) if "at" in body else None,
    )


def _app_result(b: StepBuilder, s: RawStep) -> Step:
    body, kp = s.body, s.body_path
    if body["of"] not in b.app_labels:
        raise b.error(kp + ("of",), f"no earlier app step has label {body['of']!r}", sorted(b.app_labels))
    if "within" in body and "after" in body:
        raise b.error(kp + ("after",), "give either within or after, not both")
    give_up = body.get("after") == "give_up"
    if give_up and not b.seen_withhold:
        raise b.error(kp + ("after",), "after: give_up needs a withhold step before it")
    window: Window | None = None
    if "within" in body:
        window = Window("within", b.duration(body["within"], kp + ("within",)))
    elif "after" in body and not give_up:
        window = Window("after", b.duration(body["after"], kp + ("after",)))
    return AppResultStep(
        line=s.line,
        conn=s.conn,
        ref=s.ref,
        of=body["of"],
        ok=body.get("ok"),
        error=body.get("error"),
        window=window,
        give_up=give_up,
    )


def _state(b: StepBuilder, s: RawStep) -> Step:
    lasts = s.raw.get("lasts")
    if isinstance(lasts, str) and lasts in DOCUMENTED and DOCUMENTED[lasts].unit == "s":
        pass
    elif lasts is not None:
        try:
            lasts = parse_duration(lasts)
        except ValueError:
            raise b.error(
                s.path + ("lasts",),
                f"{lasts!r} is neither a duration nor a documented time",
                sorted(k for k, d in DOCUMENTED.items() if d.unit == "s"),
            ) from None
    return StateStep(line=s.line, conn=s.conn, ref=s.ref, state=s.body, lasts=lasts)


#: The parser of each step kind, by the step's key.
PARSERS: dict[str, Callable[[StepBuilder, RawStep], Step]] = {
    "send": _send,
    "expect": _expect,
    "silence": _silence,
    "withhold": _withhold,
    "assert": parse_assert,
    "app": _app,
    "app_result": _app_result,
    "state": _state,
}
