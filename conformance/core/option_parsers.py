"""The TCP options of a case's segments: what a ``send`` writes (known kinds, ``nop: N``, ``raw:`` octets) and
what an ``expect`` requires (a value, presence, ``absent``, a bound ``{max: ...}``), checked as the schema cannot:
they fit in a TCP header, ``absent`` and bounds only where they mean something, a bound's name a documented value.
Every error names the file, the line and the field, through the builder (:mod:`conformance.core.step_parsers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any, Protocol

from .errors import CaseFormatError
from .model import Bound, OptionSpec
from .params import DOCUMENTED
from .segment import RAW_OPTION
from .values import Expr, parse_expr

#: Where a node is in the case document: keys and list indexes, from the top.
Path_ = tuple[str | int, ...]


class Builder(Protocol):
    """What these parsers need of :class:`~conformance.core.step_parsers.StepBuilder`: its errors."""

    def error(self, path: Path_, problem: str, valid: Iterable[str] = ()) -> CaseFormatError: ...


#: Octets each TCP option takes on the wire (RFC 9293 §3.2, RFC 7323, RFC 2018), and the room a header has.
OPTION_OCTETS = {"mss": 4, "wscale": 3, "sackok": 2, "timestamp": 10, "nop": 1, "eol": 1}
MAX_OPTION_OCTETS = 40
#: The largest value of a 16-bit option field (the MSS), and of a bound's number.
OPTION_VALUE_MAX = 65535
#: An expected option's value that requires the option to be absent (``options: {wscale: absent}``).
ABSENT = "absent"


def option_octets(spec: dict[str, Any]) -> int:
    """How many octets the options of `spec` take (a nop: N counts N; raw: its bytes)."""
    return sum(
        len(raw_bytes(value))
        if kind == RAW_OPTION
        else OPTION_OCTETS[kind] * (1 if kind != "nop" or value is None else int(value))
        for kind, value in spec.items()
        if value != ABSENT
    )


def raw_bytes(text: str) -> bytes:
    """The octets of a ``raw:`` option written in hex, spaces allowed between octets (``"fd 04 ab cd"``)."""
    return bytes.fromhex(text)


def options(spec: dict[str, Any] | None) -> tuple[OptionSpec, ...]:
    if not spec:
        return ()
    out: list[OptionSpec] = []
    for kind, value in spec.items():
        if kind == "nop":
            out.extend(OptionSpec("nop") for _ in range(1 if value is None else value))
        elif value == ABSENT:
            out.append(OptionSpec(kind, absent=True))
        elif kind == RAW_OPTION:
            out.append(OptionSpec(kind, raw_bytes(value)))
        else:
            out.append(OptionSpec(kind, tuple(value) if isinstance(value, list) else value))
    return tuple(out)


def parse_options(b: Builder, seg: dict[str, Any], path: Path_, expected: bool = False) -> tuple[OptionSpec, ...]:
    """The segment's options, which must fit in a TCP header; ``absent`` only in an expected segment."""
    spec = seg.get("options") or {}
    if RAW_OPTION in spec:
        raw_option(b, spec[RAW_OPTION], path + ("options", RAW_OPTION), expected)
    for kind, value in spec.items():
        if value == ABSENT and not expected:
            raise b.error(
                path + ("options", kind),
                "absent is for expect (the option must not come); a segment we send carries only the options written",
            )
    if option_octets(spec) > MAX_OPTION_OCTETS:
        raise b.error(
            path + ("options",),
            f"the options take {option_octets(spec)} octets; a TCP header has room for {MAX_OPTION_OCTETS}",
            [f"{k}: {n}" for k, n in OPTION_OCTETS.items()],
        )
    bounds = {k: option_bound(b, v, path + ("options", k), expected) for k, v in spec.items() if isinstance(v, dict)}
    return tuple(dataclasses.replace(o, value=bounds[o.kind]) if o.kind in bounds else o for o in options(spec))


def option_bound(b: Builder, value: dict[str, Any], path: Path_, expected: bool) -> Bound:
    """``{max: B}`` or ``{max: {ipv4: B, ipv6: B}}`` of an expected option (the schema checked its shape)."""
    if not expected:
        raise b.error(path, "a bound ({max: ...}) is for expect; a segment we send carries a value")
    limit = value["max"]
    if isinstance(limit, dict):
        return Bound(
            bound_expr(b, limit["ipv4"], path + ("max", "ipv4")),
            bound_expr(b, limit["ipv6"], path + ("max", "ipv6")),
        )
    one = bound_expr(b, limit, path + ("max",))
    return Bound(one, one)


def bound_expr(b: Builder, value: Any, path: Path_) -> Expr:
    """A bound: a number, or a documented value's name plus or minus a number (``mms_r_ipv4-20``)."""
    try:
        e = parse_expr(value)
    except ValueError as exc:
        raise b.error(path, str(exc)) from None
    if e.name2 is not None or abs(e.offset) > OPTION_VALUE_MAX:
        raise b.error(path, f"a bound is N or NAME+N / NAME-N (one name, N at most {OPTION_VALUE_MAX})")
    if e.name is not None and e.name not in DOCUMENTED:
        raise b.error(path, f"{e.name!r} is not a documented value (see conformance profiles)", sorted(DOCUMENTED))
    return e


def raw_option(b: Builder, text: Any, path: Path_, expected: bool) -> None:
    """A ``raw:`` option: send only, hex octets."""
    if expected:
        raise b.error(path, "raw is for send (option bytes written as they are); an expect names options by kind")
    try:
        octets = raw_bytes(text)
    except (TypeError, ValueError):
        raise b.error(path, f'{text!r} is not hex octets (e.g. raw: "fd 04 ab cd")') from None
    if not octets:
        raise b.error(path, "raw needs at least one octet")
