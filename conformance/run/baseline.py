"""Baselines of known deviations: ``conformance run --baseline FILE`` and ``conformance baseline``.

A stack with known deviations fails every run on the same ones, so a new deviation cannot be told apart. A
baseline lists the known ones, a YAML list of entries::

    - case: closed-ack.ipv6          # the case's id, as the reports give it (.ipv6 for the IPv6 copy)
      check: "expect R seq=305419896 len=0 within 1.000 s"   # the failing step, as the report gives it,
                                     # or the step and the kind of failure: "withhold 1 timing"
      why: "PyTCP answers a segment to a closed port with RST,ACK seq=0, whatever the segment's ACK"
      until: 2025-12-31              # optional: from the day after, the deviation counts as new again

A step that records several checks (a withhold's retransmissions: which one is late may change from run to run)
is named by its kind and its ordinal among the case's steps of that kind, then the kind of failure:
``withhold 1 timing`` is a timing failure of the case's first ``withhold`` step. Unlike the step's line, that key
survives edits above the step (a comment, a longer description, a ref). Before a run plays anything,
:meth:`Baseline.check_keys` refuses a key that names no step of its case, and the retired ``line N KIND`` form,
saying what to write instead.

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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import yaml

from ..core.checks import STEP_TYPES
from ..core.errors import CaseFormatError, HarnessError
from ..core.loader import load_case, parse_yaml, read_case_file
from ..core.model import Case
from ..core.outcomes import FailureKind
from ..core.results import CaseResult
from .results_file import CASE_ID, MAX_ID_CHARS, MAX_STEP_CHARS, CaseRecord, FailureRecord, read_cases, short_path

#: How a known deviation's message starts (the reports show it as a skip with this reason).
KNOWN = "known deviation"
#: The fields of an entry.
FIELDS = ("case", "check", "why", "until")
#: A check that names a step by its kind and ordinal, then the kind of failure: ``withhold 1 timing``.
STEP_KEY = re.compile(rf"({'|'.join(STEP_TYPES)}) ([0-9]{{1,4}}) ([a-z]+)")
#: The retired form, which named the step by its line: ``line 38 timing``.
LINE_KEY = re.compile(r"line ([0-9]{1,7}) ([a-z]+)")
_KIND_OF = {cls: name for name, cls in STEP_TYPES.items()}


def step_key(case: Case, line: int) -> str | None:
    """The stable name of `case`'s step at `line`: its kind and its ordinal among the case's steps of that kind
    (``withhold 1``); None when no step, or more than one, begins on that line."""
    at = [s for s in case.steps if s.line == line]
    if len(at) != 1 or type(at[0]) not in _KIND_OF:
        return None
    same = [s for s in case.steps if type(s) is type(at[0])]
    return f"{_KIND_OF[type(at[0])]} {same.index(at[0]) + 1}"


@dataclass(frozen=True)
class Entry:
    """One known deviation."""

    case: str
    check: str
    why: str
    until: dt.date | None = None

    def names(self, case: Case, step: str, line: int, kind: str) -> bool:
        """Whether this entry names the failure of `case` at `step` (line `line`, kind `kind`)."""
        if self.case != case.id:
            return False
        check = self.check.strip()
        if check == step.strip():
            return True
        key = step_key(case, line) if STEP_KEY.fullmatch(check) else None
        return key is not None and check == f"{key} {kind}"

    def stale(self, case: Case) -> str | None:
        """What is wrong with this entry's step key for `case` (None: nothing, or it names the step by its text)."""
        check = self.check.strip()
        if by_line := LINE_KEY.fullmatch(check):
            key = step_key(case, int(by_line[1]))
            now = (
                f"write 'check: {key} {by_line[2]}' (the step that begins on line {by_line[1]} now)"
                if key
                else f"no single step begins on line {by_line[1]} now: name the step by its kind and ordinal"
            )
            return f"check {check!r} names a step by its line, which moves when the case file is edited; {now}"
        if not (by_step := STEP_KEY.fullmatch(check)):
            return None
        if by_step[3] not in set(FailureKind):
            return f"check {check!r}: {by_step[3]!r} is not a kind of failure (one of {', '.join(FailureKind)})"
        kind, n = by_step[1], int(by_step[2])
        steps = [s for s in case.steps if _KIND_OF.get(type(s)) == kind]
        if not 1 <= n <= len(steps):
            have = ", ".join(f"{kind} {i} (line {s.line})" for i, s in enumerate(steps, 1)) or "none"
            return f"check {check!r} names no step of the case: its {kind} steps are {have}"
        return None

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
        try:  # a regular file of bounded size, read as case files are: bounded nesting and aliases, no tags
            data = parse_yaml(read_case_file(path), path)
        except CaseFormatError as exc:
            if exc.field == "file":  # cannot read it, or it is empty
                raise HarnessError(f"--baseline {path}: {exc.problem}") from None
            line = f"line {exc.line}: " if exc.line is not None else ""
            raise HarnessError(f"--baseline {path}: not YAML the tool reads ({line}{exc.problem})", _FORM) from None
        if data is None:
            data = []
        if not isinstance(data, list):
            raise HarnessError(f"--baseline {path}: expected a list of entries", _FORM)
        entries = [_entry(item, path, n) for n, item in enumerate(data, 1)]
        baseline = cls(path, entries)
        if today is not None:
            baseline.today = today
        return baseline

    def check_keys(self, cases: Iterable[Case]) -> None:
        """Refuse, before anything is played, an entry whose check names a step its case does not have (or by its
        line): HarnessError saying which entry and what to write. Entries of cases not in `cases` are left to
        :meth:`settle`."""
        by_id = {c.id: c for c in cases}
        for n, entry in enumerate(self.entries, 1):
            case = by_id.get(entry.case) or by_id.get(entry.case.removesuffix(".ipv6"))
            problem = entry.stale(case) if case is not None else None
            if problem:
                raise HarnessError(f"--baseline {self.path}: entry {n} ({entry.case}): {problem}", _FORM)

    def judge(self, result: CaseResult) -> CaseResult:
        """Mark `result` a known deviation when an entry names its failure (in place; returned for chaining)."""
        failure = result.verdict.failure if result.verdict is not None else None
        if result.status != "failed" or failure is None:
            return result
        for entry in self.entries:
            if entry.names(result.case, failure.step, failure.line, str(failure.kind)):
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
    return failure is not None and entry.names(result.case, failure.step, failure.line, str(failure.kind))


_FORM = (
    "each entry: {case: ID, check: 'the failing step as the report gives it, or STEP N KIND (withhold 1 timing: "
    "a timing failure of the case's first withhold step)', why: TEXT, until: YYYY-MM-DD (optional)}"
)


def _entry(item: Any, path: str, n: int) -> Entry:
    where = f"--baseline {path}: entry {n}"
    if not isinstance(item, dict):
        raise HarnessError(f"{where}: expected a mapping", _FORM)
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise HarnessError(f"{where}: unknown field {unknown[0]!r}", _FORM)
    for name, most in _MOST.items():
        value = item.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > most:
            raise HarnessError(f"{where}: {name!r} must be a non-empty text of at most {most} characters", _FORM)
    if not CASE_ID.fullmatch(item["case"]):
        raise HarnessError(f"{where}: case {item['case']!r} is not a case id", "give it as the reports do: closed-ack")
    return Entry(item["case"], item["check"], item["why"], _until(item.get("until"), where))


#: The longest text of each field of an entry.
_MOST = {"case": MAX_ID_CHARS, "check": MAX_STEP_CHARS, "why": 2000}


def _until(until: Any, where: str) -> dt.date | None:
    """An entry's ``until``: a day (YAML reads 2025-12-31 as one; a time of day is refused), or None."""
    if until is None or (isinstance(until, dt.date) and not isinstance(until, dt.datetime)):
        return until
    try:
        return dt.date.fromisoformat(until) if isinstance(until, str) and len(until) <= 10 else _no_date(until, where)
    except ValueError:
        return _no_date(until, where)


def _no_date(until: Any, where: str) -> NoReturn:
    if isinstance(until, dt.datetime):
        shown = f"{until} (a day and a time)"
    else:
        shown = repr(until)[:40] if isinstance(until, str | int | float) else f"a {type(until).__name__}"
    raise HarnessError(f"{where}: until {shown} is not a date", "write it as YYYY-MM-DD") from None


def from_results(path: str) -> list[dict[str, Any]]:
    """The entries of a baseline for the deviations in a ``results.json`` (new and known ones), in report order.
    The file is untrusted: :func:`~.results_file.read_cases` checks every field used here."""
    out: list[dict[str, Any]] = []
    for case in read_cases(path, f"--from {short_path(path)}"):
        deviated = case.status == "failed" or case.message.startswith(KNOWN)
        if case.failure is not None and deviated:
            why = _known_why(case.message) or "TODO: why this deviation is known"
            out.append({"case": case.id, "check": _check(case, case.failure), "why": why})
    return out


def _check(case: CaseRecord, failure: FailureRecord) -> str:
    """The failing step's description, or ``STEP N KIND`` (:func:`step_key`, read from the case file) when the
    step recorded several checks (a withhold's retransmissions: which one is late may change from run to run)."""
    if case.step_lines.count(failure.line) <= 1:
        return failure.step
    where = f"case {case.id}, failing at line {failure.line}"
    if case.file is None:
        raise HarnessError(f"{where}: the results.json names no case file to name the step from", _NAME_IT)
    try:
        key = step_key(load_case(case.file), failure.line)
    except CaseFormatError as exc:
        raise HarnessError(
            f"{where}: cannot read its case file {case.file} to name the step ({exc.problem})", _NAME_IT
        ) from None
    if key is None:
        raise HarnessError(f"{where}: its case file {case.file} has no single step on that line now")
    return f"{key} {failure.kind}"


_NAME_IT = "write the baseline where the run's case files are, as they were for the run"


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
