"""Small value languages of the case format: sequence expressions and durations.

* A sequence expression is an integer, a name, or a name plus or minus an integer,
  or the sum of two names, plus or minus an integer: ``0``, ``isn``, ``isn+1``,
  ``peer_isn + 6``, ``rcv_nxt-1``, ``rcv_nxt+peer_win``, ``rcv_nxt+peer_win-1``.
  Names are our ISN (``isn``), the connection's ``snd_nxt``/``rcv_nxt``, or values
  bound by an earlier ``expect`` step (a window: ``bind: {peer_win: win}``).
  Arithmetic is modulo 2**32.
* A duration is a number of seconds (``1.5``) or a number with a unit
  (``500ms``, ``2 s``, ``1.5s``, ``2min``), from 0 to :data:`MAX_DURATION`.

Case files come from other people and the tool runs as root: every value is
bounded, and anything else is a ValueError that says what is valid.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .segment import SEQ_MOD

BUILTIN_NAMES = ("isn", "snd_nxt", "rcv_nxt")

#: The longest duration a case may give (timers, tolerances, waits): an hour.
MAX_DURATION = 3600.0
# ASCII digits only (\d would take any script's), and few enough that int() is quick and in range.
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
_EXPR = re.compile(
    rf"^\s*(?:(?P<name>{_NAME})(?:\s*\+\s*(?P<name2>{_NAME}))?\s*(?:(?P<sign>[+-])\s*(?P<off>[0-9]{{1,20}}))?"
    r"|(?P<lit>[0-9]{1,20}))\s*$"
)
_DURATION = re.compile(r"^\s*(?P<num>[0-9]{1,20}(?:\.[0-9]{1,20})?)\s*(?P<unit>ms|s|min)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "min": 60.0}


@dataclass(frozen=True)
class Expr:
    """``name [+ name2] + offset`` (or a literal when name is None), modulo 2**32."""

    name: str | None
    offset: int
    #: A second name added to the first (``rcv_nxt+peer_win``), or None.
    name2: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The names the expression uses, in order (none for a literal)."""
        return tuple(n for n in (self.name, self.name2) if n is not None)

    def base(self, names: dict[str, int]) -> int:
        """The sum of the named values, modulo 2**32 (0 for a literal); a KeyError names an unbound one."""
        return sum(names[n] for n in self.names) % SEQ_MOD

    def evaluate(self, names: dict[str, int]) -> int:
        return (self.base(names) + self.offset) % SEQ_MOD

    def with_offset(self, offset: int) -> Expr:
        """The same names with another offset (a value shown relative to the expression's names)."""
        return Expr(self.name, offset, self.name2)

    def __str__(self) -> str:
        if self.name is None:
            return str(self.offset)
        text = "+".join(self.names)
        if self.offset == 0:
            return text
        return f"{text}{'+' if self.offset > 0 else '-'}{abs(self.offset)}"


def parse_expr(text: object) -> Expr:
    """Parse a sequence expression; raises ValueError with a helpful message."""
    if isinstance(text, bool):
        raise ValueError("expected a number or an expression such as isn+1, not a boolean")
    if isinstance(text, int):
        if not 0 <= text < SEQ_MOD:
            raise ValueError(f"{short(text)} is outside 0..2**32-1")
        return Expr(None, text)
    if not isinstance(text, str):
        raise ValueError(f"expected a number or an expression such as isn+1, got {short(text)}")
    m = _EXPR.match(text)
    if not m:
        raise ValueError(
            f"{short(text)} is not NUMBER, NAME, NAME+NUMBER / NAME-NUMBER or NAME+NAME[+NUMBER / -NUMBER] "
            "(e.g. isn+1, rcv_nxt+peer_win-1)"
        )
    if m.group("lit") is not None:
        return parse_expr(int(m.group("lit")))
    off = int(m.group("off") or 0)
    if off >= SEQ_MOD:
        raise ValueError(f"the offset {off} is outside 0..2**32-1")
    return Expr(m.group("name"), -off if m.group("sign") == "-" else off, m.group("name2"))


def parse_duration(text: object) -> float:
    """Seconds from ``1.5``, ``"500ms"``, ``"2 s"`` or ``"1min"``: 0 to :data:`MAX_DURATION`."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 1s or 500ms, not a boolean")
    seconds: int | float
    if isinstance(text, (int, float)):
        seconds = text
    elif isinstance(text, str) and (m := _DURATION.match(text)):
        seconds = float(m.group("num")) * _UNITS[m.group("unit")]
    else:
        raise ValueError(f"{short(text)} is not a duration (e.g. 1s, 500ms, 2.5 s, 1min)")
    if isinstance(seconds, float) and math.isnan(seconds):
        raise ValueError("a duration must be a finite number of seconds, not NaN or infinity")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:  # also infinity, and an int too large for a float
        raise ValueError(f"{short(text)} is longer than an hour (at most {MAX_DURATION:g} s, 60min)")
    return float(seconds)


def short(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to `limit` characters: an error message quotes what it refuses, not a megabyte of it."""
    text = (
        repr(value)
        if not isinstance(value, int) or value.bit_length() < 128
        else f"a {len(hex(value)) - 2}-hex-digit number"
    )
    return text if len(text) <= limit else text[: limit - 3] + "..."


def format_duration(seconds: float) -> str:
    if abs(seconds) < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if abs(seconds) < 1.0:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.3f} s"
