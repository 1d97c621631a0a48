"""Small value languages of the case format: sequence expressions and durations.

* A sequence expression is an integer, a name, or a name plus or minus an integer:
  ``0``, ``isn``, ``isn+1``, ``peer_isn + 6``, ``rcv_nxt-1``. Names are our ISN
  (``isn``), the connection's ``snd_nxt``/``rcv_nxt``, or values bound by an
  earlier ``expect`` step. Arithmetic is modulo 2**32.
* A duration is a number of seconds (``1.5``) or a number with a unit
  (``500ms``, ``2 s``, ``1.5s``, ``2min``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .segment import SEQ_MOD

BUILTIN_NAMES = ("isn", "snd_nxt", "rcv_nxt")

_EXPR = re.compile(r"^\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?:(?P<sign>[+-])\s*(?P<off>\d+))?|(?P<lit>\d+))\s*$")
_DURATION = re.compile(r"^\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|min)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "min": 60.0}


@dataclass(frozen=True)
class Expr:
    """``name + offset`` (or a literal when name is None), modulo 2**32."""

    name: str | None
    offset: int

    def evaluate(self, names: dict[str, int]) -> int:
        base = 0 if self.name is None else names[self.name]
        return (base + self.offset) % SEQ_MOD

    def __str__(self) -> str:
        if self.name is None:
            return str(self.offset)
        if self.offset == 0:
            return self.name
        return f"{self.name}{'+' if self.offset > 0 else '-'}{abs(self.offset)}"


def parse_expr(text: object) -> Expr:
    """Parse a sequence expression; raises ValueError with a helpful message."""
    if isinstance(text, bool):
        raise ValueError("expected a number or an expression such as isn+1, not a boolean")
    if isinstance(text, int):
        if not 0 <= text < SEQ_MOD:
            raise ValueError(f"{text} is outside 0..2**32-1")
        return Expr(None, text)
    if not isinstance(text, str):
        raise ValueError(f"expected a number or an expression such as isn+1, got {text!r}")
    m = _EXPR.match(text)
    if not m:
        raise ValueError(f"{text!r} is not NUMBER, NAME or NAME+NUMBER / NAME-NUMBER (e.g. isn+1)")
    if m.group("lit") is not None:
        return parse_expr(int(m.group("lit")))
    off = int(m.group("off") or 0)
    return Expr(m.group("name"), -off if m.group("sign") == "-" else off)


def parse_duration(text: object) -> float:
    """Seconds from ``1.5``, ``"500ms"``, ``"2 s"`` or ``"1min"``."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 1s or 500ms, not a boolean")
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ValueError("a duration must be a finite number of seconds, not NaN or infinity")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    if isinstance(text, str):
        m = _DURATION.match(text)
        if m:
            return float(m.group("num")) * _UNITS[m.group("unit")]
    raise ValueError(f"{text!r} is not a duration (e.g. 1s, 500ms, 2.5 s, 1min)")


def format_duration(seconds: float) -> str:
    if abs(seconds) < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if abs(seconds) < 1.0:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"
