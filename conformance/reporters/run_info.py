"""What makes a run reproducible, recorded by every report: the tool's version, the seed, the command line.

The command line (:mod:`conformance.run.cli`) fills a :class:`RunInfo` and hands it
to :func:`~conformance.reporters.outputs.write_reports`; JUnit carries it as suite
properties, the HTML report in its header, ``results.json`` at its top level.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class RunInfo:
    version: str  # the tool's version (conformance.__version__)
    seed: int | None  # the seed actually used (drawn by the run when --seed was not given)
    argv: tuple[str, ...] = ()  # the command line, the program's name first
    cases_from: str = ""  # "the suite shipped with the tool (...)", "cases/ in the current folder (...)" ...
    started: float = 0.0  # wall-clock start, seconds since the epoch
    duration: float = 0.0  # wall time of the run, seconds (not the sum of the cases' times)

    @property
    def command_line(self) -> str:
        """The command line, quoted so that a shell gives the same arguments back."""
        return shlex.join(self.argv)

    def properties(self) -> list[tuple[str, str]]:
        """(name, value) pairs for a report's header or JUnit's suite properties."""
        props = [("conformance_version", self.version), ("seed", "" if self.seed is None else str(self.seed))]
        props.append(("command_line", self.command_line))
        if self.cases_from:
            props.append(("cases_from", self.cases_from))
        return props


def round_value(value: float) -> str:
    """A parameter's value for a report: an integer as one, a fraction to the microsecond (0.2, not 0.19999...)."""
    rounded = round(float(value), 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)
