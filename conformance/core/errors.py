"""The three kinds of error the tool reports, each with its own message.

* :class:`CaseFormatError`: a case file is broken (file, line, field, what is valid).
* :class:`HarnessError`: the tool or its environment failed (privileges, missing
  programs, an unreachable target). Never a verdict about the target.
* A target that deviates is not an exception at all: it is a failed verdict
  (see :mod:`conformance.core.engine`).
"""

from __future__ import annotations

from collections.abc import Sequence


class ConformanceError(Exception):
    """Base class of the errors the CLI turns into a message and exit code 2."""


class CaseFormatError(ConformanceError):
    """A case file that cannot be loaded: says where and how to fix it."""

    def __init__(
        self,
        path: str,
        line: int | None,
        field: str,
        problem: str,
        valid: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.problem = problem
        self.valid = list(valid)
        where = f"{path}:{line}" if line is not None else path
        text = f"{where}: {field}: {problem}"
        if self.valid:
            text += f" (valid: {', '.join(self.valid)})"
        super().__init__(text)


class HarnessError(ConformanceError):
    """The harness or its environment failed; `hint` tells the user what to do."""

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem}\n  what to do: {hint}" if hint else problem)
