"""Baselines of known deviations: ``conformance run --baseline FILE`` and ``conformance baseline``.

A stack with known deviations fails every run on the same ones, so a new deviation cannot be told apart. A
baseline lists the known ones, a YAML list of entries::

    - case: closed-ack.ipv6          # the case's id, as the reports give it (.ipv6 for the IPv6 copy)
      check: "expect R seq=305419896 len=0 within 1.000 s"   # the failing step, as the report gives it,
                                     # or its line and kind: "line 11 mismatch"
      why: "PyTCP answers a segment to a closed port with RST,ACK seq=0, whatever the segment's ACK"
      until: 2025-12-31              # optional: from the day after, the deviation counts as new again

What a run makes of a case against it (:meth:`Baseline.judge`):

* a failure that an entry names is a **known deviation**: the case is reported as skipped, with the reason
  ``known deviation (baseline FILE: WHY): THE FAILURE`` (a skip in JUnit, never a pass), and does not fail the run;
* a failure no entry names is new: the case fails, as without a baseline;
* an entry whose case passed is **fixed**: said after the summary ("fixed: remove it from the baseline"); it fails
  the run under ``--strict``; an entry whose case was not played, or failed elsewhere, is said too and fails nothing.

An entry past its ``until`` date names nothing: its deviation fails again, and the summary says the entry expired.

``conformance baseline --from reports/results.json -o FILE`` writes a baseline of a run's deviations (known ones
included, so a baseline can be written again from a run that used one), each with ``why: TODO`` to fill in.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..core.errors import CaseFormatError, HarnessError
from ..core.loader import read_case_file
from ..core.results import CaseResult
from .coverage import MAX_RESULTS_BYTES

#: How a known deviation's message starts (the reports show it as a skip with this reason).
KNOWN = "known deviation"
#: The fields of an entry.
FIELDS = ("case", "check", "why", "until")


@dataclass(frozen=True)
class Entry:
    """One known deviation."""

    case: str
    check: str
    why: str
    until: dt.date | None = None

    def names(self, case: str, step: str, line: int, kind: str) -> bool:
        """Whether this entry names the failure of `case` at `step` (line `line`, kind `kind`)."""
        return self.case == case and self.check.strip() in (step.strip(), f"line {line} {kind}")

    def expired(self, today: dt.date) -> bool:
        return self.until is not None and today > self.until


@dataclass
class Judged:
    """What a run made of its baseline: each entry's fate, for the lines after the summary and the exit code."""

    known: list[Entry] = field(default_factory=list)  # deviations that happened and were known
    fixed: list[Entry] = field(default_factory=list)  # the case passed: the entry is stale
    unseen: list[tuple[Entry, str]] = field(default_factory=list)  # not played, or failed elsewhere: why
    expired: list[Entry] = field(default_factory=list)


@dataclass
class Baseline:
    """The entries of a baseline file; :meth:`judge` marks a run's results against them."""

    path: str
    entries: list[Entry]
    today: dt.date = field(default_factory=dt.date.today)
    judged: Judged = field(default_factory=Judged)

    @classmethod
    def load(cls, path: str, today: dt.date | None = None) -> Baseline:
        """Read and check a baseline file; HarnessError saying what is wrong and how to fix it."""
        try:  # a regular file of bounded size, as case files are: not /dev/zero, not a FIFO
            data = yaml.safe_load(read_case_file(path))
        except CaseFormatError as exc:
            raise HarnessError(f"--baseline {path}: {exc.problem}") from None
        except yaml.YAMLError as exc:
            raise HarnessError(f"--baseline {path}: not YAML ({exc})") from None
        if data is None:
            data = []
        if not isinstance(data, list):
            raise HarnessError(f"--baseline {path}: expected a list of entries", _FORM)
        entries = [_entry(item, path, n) for n, item in enumerate(data, 1)]
        baseline = cls(path, entries)
        if today is not None:
            baseline.today = today
        return baseline

    def judge(self, result: CaseResult) -> CaseResult:
        """Mark `result` a known deviation when an entry names its failure (in place; returned for chaining)."""
        failure = result.verdict.failure if result.verdict is not None else None
        if result.status != "failed" or failure is None:
            return result
        for entry in self.entries:
            if entry.names(result.case.id, failure.step, failure.line, str(failure.kind)):
                if entry.expired(self.today):
                    continue
                result.status = "skipped"
                result.message = f"{KNOWN} (baseline {self.path}: {entry.why}): {result.message}"
                break
        return result

    def settle(self, results: Iterable[CaseResult]) -> Judged:
        """Each entry's fate in the run whose (judged) `results` these are."""
        by_id = {r.case.id: r for r in results}
        judged = self.judged = Judged()
        for entry in self.entries:
            result = by_id.get(entry.case)
            if entry.expired(self.today):
                judged.expired.append(entry)
            elif result is None:
                judged.unseen.append((entry, "its case was not played in this run"))
            elif result.status == "skipped" and result.message.startswith(KNOWN) and _is_this(entry, result):
                judged.known.append(entry)
            elif result.status == "skipped" and result.message.startswith(KNOWN):
                judged.unseen.append((entry, "its case deviated at another known check"))
            elif result.status in ("passed", "warning"):
                judged.fixed.append(entry)
            elif result.status == "failed":
                judged.unseen.append((entry, "its case failed at another check first"))
            else:
                judged.unseen.append((entry, f"its case was {result.status}"))
        return judged

    def lines(self) -> list[str]:
        """What to print after the run's summary."""
        j = self.judged
        out = [f"baseline {self.path}: {len(j.known)} known deviation(s) seen, {len(j.fixed)} fixed"]
        out += [f"  fixed: remove it from the baseline: {e.case}: {e.check}" for e in j.fixed]
        out += [f"  expired on {e.until}: {e.case}: {e.check} (its deviation counts as new again)" for e in j.expired]
        out += [f"  not seen ({why}): {e.case}: {e.check}" for e, why in j.unseen]
        return out


def _is_this(entry: Entry, result: CaseResult) -> bool:
    failure = result.verdict.failure if result.verdict is not None else None
    return failure is not None and entry.names(result.case.id, failure.step, failure.line, str(failure.kind))


_FORM = (
    "each entry: {case: ID, check: 'the failing step as the report gives it, or line N KIND', why: TEXT, "
    "until: YYYY-MM-DD (optional)}"
)


def _entry(item: Any, path: str, n: int) -> Entry:
    where = f"--baseline {path}: entry {n}"
    if not isinstance(item, dict):
        raise HarnessError(f"{where}: expected a mapping", _FORM)
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise HarnessError(f"{where}: unknown field {unknown[0]!r}", _FORM)
    for name in ("case", "check", "why"):
        if not isinstance(item.get(name), str) or not item[name].strip():
            raise HarnessError(f"{where}: {name!r} must be a non-empty text", _FORM)
    until = item.get("until")
    if until is not None and not isinstance(until, dt.date):
        try:
            until = dt.date.fromisoformat(str(until))
        except ValueError:
            raise HarnessError(f"{where}: until {until!r} is not a date", "write it as YYYY-MM-DD") from None
    return Entry(item["case"], item["check"], item["why"], until)


def from_results(path: str) -> list[dict[str, Any]]:
    """The entries of a baseline for the deviations in a ``results.json`` (new and known ones), in report order."""
    try:  # a regular file of bounded size, read like a case file (not /dev/zero, not a FIFO)
        doc = json.loads(read_case_file(path, MAX_RESULTS_BYTES))
    except CaseFormatError as exc:
        raise HarnessError(f"--from {path}: cannot read it ({exc.problem})") from None
    except ValueError as exc:
        raise HarnessError(f"--from {path}: not JSON ({exc})", "give a run's results.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise HarnessError(f"--from {path}: not a results.json (no 'cases')", "give a run's reports/results.json")
    out: list[dict[str, Any]] = []
    for case in doc["cases"]:
        failure = case.get("failure")
        deviated = case.get("status") == "failed" or str(case.get("message", "")).startswith(KNOWN)
        if failure and deviated:
            why = _known_why(str(case.get("message", ""))) or "TODO: why this deviation is known"
            out.append({"case": case["id"], "check": _check(case, failure), "why": why})
    return out


def _check(case: dict[str, Any], failure: dict[str, Any]) -> str:
    """The failing step's description, or ``line N KIND`` when its line holds several steps (a withhold's
    retransmissions: which one is late may change from run to run)."""
    same_line = [s for s in case.get("steps", []) if s.get("line") == failure["line"]]
    return str(failure["step"]) if len(same_line) <= 1 else f"line {failure['line']} {failure['kind']}"


def _known_why(message: str) -> str | None:
    """The why of a known deviation's message (``known deviation (baseline F: WHY): ...``)."""
    if not message.startswith(KNOWN + " (baseline "):
        return None
    head = message.split("): ", 1)[0]
    return head.split(": ", 1)[1] if ": " in head else None


def dump(entries: list[dict[str, Any]]) -> str:
    """A baseline file's text."""
    header = "# Known deviations (conformance run --baseline FILE). Fields: case, check, why, until (optional).\n"
    return header + (yaml.safe_dump(entries, sort_keys=False, allow_unicode=True, width=1000) if entries else "[]\n")
