"""Time model of a dialogue: windows and tolerance (the packetdrill idea).

Every timed expectation is counted from the previous event on the wire (a segment
we sent or one we received). ``within X`` means "no later than X"; ``after X``
means "at X, neither early nor late". The tolerance of an expected gap ``X`` is
``max(absolute, percent/100 * X)``: an absolute floor for short gaps (scheduling
and capture noise) and a percentage for long ones (kernel timers are batched:
Linux's timer wheel fires a timer up to 1/8 of its length late).
"""

from __future__ import annotations

from dataclasses import dataclass

from .values import format_duration


@dataclass(frozen=True)
class Tolerance:
    absolute: float = 0.05
    percent: float = 15.0
    #: Added to every tolerance: the target's timer granularity (a timer on a coarse tick fires up to one tick
    #: off), from the run's profile. 0 for the case's own tolerance.
    granularity: float = 0.0

    def of(self, gap: float) -> float:
        return max(self.absolute, self.percent / 100.0 * gap) + self.granularity

    def widened(self, granularity: float) -> Tolerance:
        """This tolerance plus a timer granularity (see :attr:`granularity`)."""
        return Tolerance(self.absolute, self.percent, self.granularity + granularity)

    def __str__(self) -> str:
        text = f"max({format_duration(self.absolute)}, {self.percent:g}%)"
        return text + (f" + timer granularity {format_duration(self.granularity)}" if self.granularity else "")


#: The default tolerance and why: see the module docstring and the README.
DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Window:
    """When a segment is expected, relative to the previous event.

    ``value`` names a run value the gap comes from instead of a fixed duration (``after: rto``: the target's data RTO,
    from the run's profile and the RTT samples on the wire, see :mod:`conformance.core.rto`); ``seconds`` is 0
    until the judge resolves it when its step starts. ``latest``: an ``after`` window that is a range, expected
    between ``seconds`` and ``latest`` (each end with its tolerance), when the run cannot tell one value (``after:
    rto``: the RTOs a target could have from the RTT samples on the wire, see :mod:`conformance.core.rto`).
    """

    kind: str  # "within" | "after"
    seconds: float
    value: str | None = None
    latest: float | None = None

    def deadline(self, tol: Tolerance) -> float:
        """Latest acceptable gap."""
        end = self.seconds if self.latest is None else self.latest
        return end + tol.of(end)

    def tolerance_text(self, tol: Tolerance) -> str:
        """The tolerance as a message gives it: of the end that bounds the deadline, and of each end of a range."""
        if self.latest is None:
            return f"tolerance {format_duration(tol.of(self.seconds))}, {tol}"
        return (
            f"tolerance {format_duration(tol.of(self.seconds))} at {format_duration(self.seconds)} and "
            f"{format_duration(tol.of(self.latest))} at {format_duration(self.latest)}, {tol}"
        )

    def earliest(self, tol: Tolerance) -> float:
        if self.kind == "within":
            return float("-inf")
        return self.seconds - tol.of(self.seconds)

    def check(self, gap: float, tol: Tolerance) -> str | None:
        """None when `gap` fits, else the reason it does not."""
        t = tol.of(self.seconds)
        if self.kind == "within":
            if gap <= self.seconds + t:
                return None
            return (
                f"late: expected within {format_duration(self.seconds)} "
                f"(tolerance {format_duration(t)}), observed after {format_duration(gap)}"
            )
        if self.latest is not None:
            return self._check_range(gap, tol)
        if abs(gap - self.seconds) <= t:
            return None
        early_late = "early" if gap < self.seconds else "late"
        return (
            f"{early_late}: expected after {format_duration(self.seconds)} ± {format_duration(t)} "
            f"({tol}), observed after {format_duration(gap)} "
            f"(off by {format_duration(gap - self.seconds)})"
        )

    def _check_range(self, gap: float, tol: Tolerance) -> str | None:
        assert self.latest is not None
        first, last = self.earliest(tol), self.deadline(tol)
        if first <= gap <= last:
            return None
        early_late, off = ("early", gap - first) if gap < first else ("late", gap - last)
        return (
            f"{early_late}: expected after {format_duration(self.seconds)} to {format_duration(self.latest)}, "
            f"i.e. {format_duration(first)} to {format_duration(last)} with the tolerance ({tol}) of each end, "
            f"observed after {format_duration(gap)} (off by {format_duration(off)})"
        )

    def __str__(self) -> str:
        if self.latest is not None:
            name = f"{self.value} = " if self.value else ""
            return f"{self.kind} {name}{format_duration(self.seconds)} to {format_duration(self.latest)}"
        if self.value is None:
            return f"{self.kind} {format_duration(self.seconds)}"
        if not self.seconds:  # not resolved yet: the case as written
            return f"{self.kind} {self.value}"
        return f"{self.kind} {self.value} = {format_duration(self.seconds)}"
