"""Field-by-field comparison of an observed segment with an expected pattern.

Every checked field yields a :class:`FieldDiff`, matching or not, so a failure
can show the whole picture (tavern: collect every mismatch of a step, not just
the first). Sequence numbers are shown both as the expression and its value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .ipfields import FIELD_MAX, observed, route_diff, source_diff
from .model import Bound, OptionSpec, Reference, SegmentPattern
from .segment import Segment, seq_diff
from .values import Expr


@dataclass(frozen=True)
class FieldDiff:
    field: str
    expected: str
    observed: str
    ok: bool
    #: The document this check answers to (set by the step that made it; see core.checks).
    reference: Reference | None = None


def _rel(value: int, expr: Expr, names: dict[str, int]) -> str:
    """Render `value` relative to the name `expr` uses: 1002 -> 'isn+2 (1002)'."""
    if expr.name is None:
        return str(value)
    return f"{expr.with_offset(seq_diff(value, expr.base(names)))} ({value})"


def _flags_text(flags: str, optional: str = "") -> str:
    text = flags or "<none>"
    if optional:
        text += " (" + ",".join(f"{f}?" for f in optional) + ")"
    return text


def compare(
    pattern: SegmentPattern,
    seg: Segment,
    names: dict[str, int],
    labelled: dict[str, Segment],
    values: Mapping[str, float] | None = None,
) -> list[FieldDiff]:
    """All checked fields of `seg` against `pattern`; names resolve expressions, `values` (the run's documented
    values, core.params) the bounds of options. A check that cannot be made is left out: see :func:`not_checked`."""
    out: list[FieldDiff] = []
    if pattern.same_as is not None:
        orig = labelled[pattern.same_as]
        out.append(FieldDiff("flags", orig.flags, seg.flags, seg.flags == orig.flags))
        out.append(FieldDiff("seq", f"{orig.seq} (as {pattern.same_as})", str(seg.seq), seg.seq == orig.seq))
        out.append(FieldDiff("ack", f"{orig.ack} (as {pattern.same_as})", str(seg.ack), seg.ack == orig.ack))
        out.append(FieldDiff("len", str(len(orig.payload)), str(len(seg.payload)), seg.payload == orig.payload))
    if pattern.flags is not None:
        have = set(seg.flags) - set(pattern.flags_optional)
        ok = have == set(pattern.flags)
        out.append(FieldDiff("flags", _flags_text(pattern.flags, pattern.flags_optional), _flags_text(seg.flags), ok))
    for name, expr, value in (("seq", pattern.seq, seg.seq), ("ack", pattern.ack, seg.ack)):
        if expr is None:
            continue
        want = expr.evaluate(names)
        out.append(FieldDiff(name, f"{expr} ({want})", _rel(value, expr, names), value == want))
    if pattern.window is not None:
        out.append(FieldDiff("win", str(pattern.window), str(seg.window), seg.window == pattern.window))
    if pattern.length is not None:
        out.append(FieldDiff("len", str(pattern.length), str(len(seg.payload)), len(seg.payload) == pattern.length))
    if pattern.max_length is not None:
        n, bound = len(seg.payload), pattern.max_length[1 if ":" in seg.src else 0]
        out.append(FieldDiff("max_len", f"at most {bound}", str(n), n <= bound))
    if pattern.data is not None:
        out.append(FieldDiff("data", repr(pattern.data), repr(seg.payload[:64]), seg.payload == pattern.data))
    for spec in pattern.options or ():
        if spec.kind != "nop":
            out.extend(option_diffs(spec, seg, values or {}))
    for name, expr in pattern.ip or ():
        out.append(ip_diff(name, expr, seg, names))
    if pattern.src is not None:
        out.append(FieldDiff(*source_diff(pattern.src, seg)))
    if pattern.route is not None:
        out.append(FieldDiff(*route_diff(pattern.route, seg)))
    if pattern.urgptr is not None:
        out.append(urgptr_diff(pattern.urgptr, seg))
    if pattern.padding and seg.after_eol is not None:
        zero = not any(seg.after_eol)
        shown = f"{len(seg.after_eol)} octets after EOL: {seg.after_eol.hex(' ') or '(none)'}"
        out.append(FieldDiff("padding", "zeros after EOL (RFC 9293 MUST-69)", shown, zero))
    if seg.checksum_ok is False:
        out.append(FieldDiff("checksum", "valid (RFC 9293 MUST-2)", "invalid", False))
    return out


def option_diffs(spec: OptionSpec, seg: Segment, values: Mapping[str, float]) -> list[FieldDiff]:
    """One expected option of `seg`: absent, present, of a value, or within a bound (:func:`bound_diff`)."""
    got = [v for k, v in seg.options if k == spec.kind]
    field = f"option {spec.kind}"
    if isinstance(spec.value, Bound):
        return bound_diff(spec.kind, spec.value, seg, got, values)
    if spec.absent:
        return [FieldDiff(field, "absent", repr(got[0]) if got else "absent", not got)]
    if not got:
        return [FieldDiff(field, "present" if spec.value is None else repr(spec.value), "absent", False)]
    if spec.value is not None:
        return [FieldDiff(field, repr(spec.value), repr(got[0]), got[0] == spec.value)]
    return [FieldDiff(field, "present", repr(got[0]), True)]


def bound_limit(bound: Bound, seg: Segment, values: Mapping[str, float]) -> int | None:
    """The bound that applies to `seg` (by its address family), or None when a value it names is not known."""
    expr = bound.of(":" in seg.src)
    if any(name not in values for name in expr.names):
        return None
    return int(sum(values[name] for name in expr.names)) + expr.offset


def bound_diff(
    kind: str, bound: Bound, seg: Segment, got: list[object], values: Mapping[str, float]
) -> list[FieldDiff]:
    """``{max: ...}``: the option's value at most the bound; nothing when the option or the bound's value is
    missing (the check is not made, and :func:`not_checked` says why)."""
    limit = bound_limit(bound, seg, values)
    if not got or limit is None:
        return []
    expr = bound.of(":" in seg.src)
    shown = f"at most {expr} ({limit})" if expr.name is not None else f"at most {limit}"
    return [FieldDiff(f"option {kind}", shown, repr(got[0]), isinstance(got[0], int) and got[0] <= limit)]


def not_checked(pattern: SegmentPattern, seg: Segment, values: Mapping[str, float] | None = None) -> list[str]:
    """Why checks of `pattern` could not be made on `seg`: the step is then reported not checked (skipped), never
    passed. A padding check on a segment without EOL (MUST-69); a bound on an option the segment does not carry,
    or whose documented value the run does not know."""
    out = ["padding not checked: the segment has no EOL option"] if pattern.padding and seg.after_eol is None else []
    for spec in pattern.options or ():
        if isinstance(spec.value, Bound):
            if not any(k == spec.kind for k, _ in seg.options):
                out.append(f"option {spec.kind} not checked: the segment has no {spec.kind} option")
            elif bound_limit(spec.value, seg, values or {}) is None:
                names = ", ".join(spec.value.of(":" in seg.src).names)
                out.append(f"option {spec.kind} not checked: {names} is not known for this target")
    return out


def ip_diff(name: str, expr: Expr, seg: Segment, names: dict[str, int]) -> FieldDiff:
    """An IP header field of `seg` against its expected value (core.ipfields), e.g. ``ip ttl``."""
    want = expr.evaluate(names) % (FIELD_MAX[name] + 1)
    got = observed(seg.extra, name)
    shown = f"{expr} ({want})" if expr.name is not None else str(want)
    return FieldDiff(f"ip {name}", shown, "not captured" if got is None else str(got), got == want)


def urgptr_diff(want: int, seg: Segment) -> FieldDiff:
    """The urgent pointer of `seg`: the offset, and the octet it points to (SEG.SEQ + SEG.UP)."""
    got = f"{seg.urgptr} (seq+{seg.urgptr})" if "U" in seg.flags else f"{seg.urgptr}, without URG"
    return FieldDiff("urgptr", f"{want} (seq+{want})", got, "U" in seg.flags and seg.urgptr == want)


def matches(diffs: Sequence[FieldDiff]) -> bool:
    return all(d.ok for d in diffs)
