"""Progress and summary on the terminal, with rich.

One line per finished case; a failed or broken case gets its ladder and failure
block below it. Cases finish concurrently, so every print happens under a lock
and a case's lines are never interleaved with another's. On a non-terminal
stdout rich prints plain text (no colours, no control codes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from ..core.model import Case
from ..core.results import CaseResult
from ..core.values import format_duration
from ..core.verdict import not_checked
from .ladder import render_ladder, summarize_failure

_LABELS = {
    "passed": ("PASS", "bold green"),
    "warning": ("WARN", "bold yellow"),
    "failed": ("FAIL", "bold red"),
    "error": ("ERROR", "bold magenta"),
    "skipped": ("SKIP", "dim"),
}
#: Ladder width when stdout is not a terminal (CI logs have no width).
DEFAULT_WIDTH = 100
_INDENT = "    "  # ladders are indented below their case's line


def _label(status: str) -> tuple[str, str]:
    return _LABELS.get(status, (status.upper(), "bold yellow"))


class TerminalReporter:
    """Prints results as they arrive and a summary at the end; thread-safe."""

    def __init__(self, console: Console | None = None, file: IO[str] | None = None, verbose: bool = False) -> None:
        self.console = console or Console(file=file, highlight=False)
        self.verbose = verbose
        self._lock = threading.Lock()
        self._running: dict[str, tuple[float, float | None]] = {}  # id -> (start, expected duration)
        self._live: Live | None = None

    @property
    def width(self) -> int:
        """Ladder width: the terminal's, or :data:`DEFAULT_WIDTH` when not a terminal."""
        return self.console.width if self.console.is_terminal else DEFAULT_WIDTH

    def _print(self, *items: Text | str) -> None:
        for item in items:
            text = item if isinstance(item, Text) else Text(item)
            self.console.print(text, soft_wrap=True, highlight=False)

    @contextmanager
    def live(self) -> Iterator[None]:
        """On a terminal, a status line of the running cases below the results."""
        if not self.console.is_terminal:
            yield
            return
        live = Live(console=self.console, get_renderable=self._status, refresh_per_second=4, transient=True)
        with live:
            self._live = live
            try:
                yield
            finally:
                self._live = None

    def _status(self) -> Text:
        now = time.time()
        with self._lock:
            running = sorted(self._running.items(), key=lambda kv: -((kv[1][1] or 0) - (now - kv[1][0])))
        if not running:
            return Text("")
        longest_id, (start, expected) = running[0]
        text = Text.assemble(("running ", "dim"), (str(len(running)), "bold"), (" case(s)", "dim"))
        if expected:
            left = max(0.0, expected - (now - start))
            text.append(f"; longest timer: {longest_id}, about {left:.0f} s left", "dim")
        names = ", ".join(cid for cid, _ in running[:6]) + (" ..." if len(running) > 6 else "")
        text.append(f"\n  {names}", "dim")
        return text

    def case_started(self, case: Case, expected: float | None = None) -> None:
        with self._lock:
            self._running[case.id] = (time.time(), expected)
            if self.verbose:
                self._print(Text.assemble(("RUN   ", "dim"), case.id, (f"  {case.title}", "dim")))

    def case_finished(self, result: CaseResult) -> None:
        case = result.case
        word, style = _label(result.status)
        line = Text.assemble(
            (f"{word:<5} ", style),
            (case.id, "bold"),
            f"  {case.title}  ",
            (f"({format_duration(result.duration)})", "dim"),
        )
        if case.expect_failure:
            line.append("  [self-test]", "dim")
        with self._lock:
            self._running.pop(case.id, None)
            self._print(line)
            if not result.passed:
                # The ladder's first line repeats the case line just printed.
                ladder = render_ladder(result, self.width - len(_INDENT)).splitlines()[1:]
                self._print(Text("\n".join(_INDENT + ln if ln else "" for ln in ladder)), "")

    def summary(self, results: Sequence[CaseResult], elapsed: float) -> None:
        counts = Counter(r.status for r in results)
        order = ["passed", "failed", "error", *sorted(set(counts) - {"passed", "failed", "error"})]
        parts = []
        for status in order:
            n = counts.get(status, 0)
            if n or status in ("passed", "failed"):
                word = {"error": "errors" if n != 1 else "error"}.get(status, status)
                parts.append((f"{n} {word}", _label(status)[1] if n and status != "passed" else ""))
        head = Text("Summary: ", "bold")
        for i, (text, style) in enumerate(parts):
            if i:
                head.append(", ")
            head.append(text, style)
        head.append(f"  ({len(results)} cases in {format_duration(elapsed)})")
        self_tests = sum(1 for r in results if r.case.expect_failure)
        if self_tests:
            head.append(f"; {self_tests} self-test{'s' if self_tests != 1 else ''}", "dim")
        unchecked = sum(len(not_checked(r.verdict.steps)) for r in results if r.verdict is not None)
        if unchecked:
            head.append(f"; {unchecked} check{'s' if unchecked != 1 else ''} not made (not checked)", "yellow")
        with self._lock:
            self._print("", head)
            for r in results:
                if r.passed:
                    continue
                word, style = _label(r.status)
                self._print(Text.assemble((f"  {word:<5} ", style), (r.case.id, "bold"), f": {summarize_failure(r)}"))
