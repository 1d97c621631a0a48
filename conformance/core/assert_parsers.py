"""Validated ``assert:`` steps -> :class:`~conformance.core.model.AssertStep`: ISNs that are not predictable
(``unpredictable``), a right window edge that never moves left (``nondecreasing``), a value outside a range of
whole numbers (``outside``: a window that is not silly)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from .errors import CaseFormatError
from .model import AssertStep, Step
from .values import Expr

Path_ = tuple[str | int, ...]


class Builder(Protocol):
    """What the assert parsers need of :class:`conformance.core.step_parsers.StepBuilder`."""

    bound: set[str]

    def error(self, path: Path_, problem: str, valid: Iterable[str] = ()) -> CaseFormatError: ...
    def expr(self, value: Any, path: Path_) -> Expr: ...


class Raw(Protocol):
    """What the assert parsers need of :class:`conformance.core.step_parsers.RawStep`."""

    @property
    def body(self) -> Any: ...
    @property
    def body_path(self) -> Path_: ...
    @property
    def line(self) -> int: ...
    @property
    def ref(self) -> str | None: ...


def parse_assert(b: Builder, s: Raw) -> Step:
    """``assert: {unpredictable | nondecreasing | outside: ...}``: one check over bound values."""
    if len(s.body) > 1:
        raise b.error(
            s.body_path + (sorted(s.body)[1],), "an assert makes one check: unpredictable, nondecreasing or outside"
        )
    if "nondecreasing" in s.body:
        return _assert_nondecreasing(b, s)
    if "outside" in s.body:
        return _assert_outside(b, s)
    names = tuple(s.body.get("unpredictable", ()))
    for i, name in enumerate(names):
        if name not in b.bound:
            raise b.error(
                s.body_path + ("unpredictable", i), f"name {name!r} is not bound before this step", sorted(b.bound)
            )
    return AssertStep(line=s.line, conn="main", ref=s.ref, check="unpredictable", names=names)


def _assert_nondecreasing(b: Builder, s: Raw) -> Step:
    """``assert: {nondecreasing: [a1+w1, a2+w2, ...]}``: sequence expressions over bound names."""
    exprs = []
    for i, text in enumerate(s.body["nondecreasing"]):
        exprs.append(b.expr(text, s.body_path + ("nondecreasing", i)))
    names = tuple(dict.fromkeys(n for e in exprs for n in e.names))
    return AssertStep(line=s.line, conn="main", ref=s.ref, check="nondecreasing", names=names, exprs=tuple(exprs))


def _assert_outside(b: Builder, s: Raw) -> Step:
    """``assert: {outside: [w5, 1, 199]}``: a value over bound names must not lie in the closed range [1, 199]."""
    path = s.body_path + ("outside",)
    text, low, high = s.body["outside"]
    if not (isinstance(low, int) and isinstance(high, int)) or low > high:
        raise b.error(
            path + (1,), f"outside: [value, low, high] takes whole numbers with low <= high, not {low}, {high}"
        )
    expr = b.expr(text, path + (0,))
    return AssertStep(
        line=s.line, conn="main", ref=s.ref, check="outside", names=expr.names, exprs=(expr,), span=(low, high)
    )
