"""``conformance explain CASE``: what a case does and checks, before running it.

Three parts, as text:

* the **dialogue** as a ladder of the case's steps (our sends left to right,
  the target's expected segments right to left, every other step as a dotted
  annotation), each with the line of the case file it comes from;
* the **references**, each with RFC 9293's own words where the reference is an
  RFC 9293 section (:mod:`conformance.core.rfctext`);
* the **schedules** the case's ``withhold`` steps would get from the documented
  parameter values (:func:`conformance.core.params.resolve`), with their derivation.

Pure functions of a case; :func:`find_case` reads the case files.
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import fields
from pathlib import Path

from ..core.checks import STEP_CHECKS, document
from ..core.engine import describe_pattern, describe_send
from ..core.errors import CaseFormatError, ConformanceError
from ..core.loader import load_case
from ..core.model import AssertStep, Case, ExpectStep, Reference, SendStep, SilenceStep, Step, WithholdStep
from ..core.params import Params, resolve
from ..core.profiles import Profile
from ..core.rfctext import FILE_NAME, RfcText, is_requirement_id, sections_cited
from ..core.schedules import SCHEDULES, expected_duration
from ..core.values import format_duration
from ..reporters.ladder import arrow
from .suite import shipped_cases

PROJECT_ROOT = Path(__file__).resolve().parents[2]
_MIN_ARROW = 40


# ---------------------------------------------------------------- finding
def default_cases_dir() -> Path:
    """``cases/`` here if there is one, else the suite shipped with the tool (:mod:`.suite`)."""
    here = Path("cases")
    return here if here.is_dir() else (shipped_cases() or PROJECT_ROOT / "cases")


def find_case(name: str, folder: Path | None = None) -> Case:
    """The case with id `name` under `folder` (default :func:`default_cases_dir`), or the case file `name`.

    Raises :class:`ConformanceError` naming close matches when there is no such case.
    """
    folder = folder if folder is not None else default_cases_dir()
    path = Path(name)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConformanceError(f"{name}: no such case file")
        root = folder if path.resolve().is_relative_to(folder.resolve()) else None
        return load_case(path, root)
    if not folder.is_dir():
        raise ConformanceError(f"no case folder {folder}: name a case file, or pass --cases DIR")
    ids: list[str] = []
    broken: list[CaseFormatError] = []
    for f in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]):
        try:
            case = load_case(f, folder)
        except CaseFormatError as exc:  # another case being broken does not stop this one from being found
            broken.append(exc)
            continue
        if case.id == name:
            return case
        ids.append(case.id)
    close = difflib.get_close_matches(name, ids, n=5, cutoff=0.5)
    close += [i for i in ids if name.lower() in i.lower() and i not in close][: 5 - len(close)]
    message = f"no case with id {name!r} under {folder}"
    message += f"; close matches: {', '.join(close)}" if close else f" ({len(ids)} cases there; see conformance list)"
    if broken:
        message += f"\n  {len(broken)} case file(s) there could not be loaded, e.g. {broken[0]}"
    raise ConformanceError(message)


# --------------------------------------------------------------- dialogue
def _pattern_label(step: ExpectStep) -> str:
    """Every check of an expected segment (fields, window, data, options) before its timing window: the engine's
    own description of the step, so a failure headline and `explain` say the same."""
    return describe_pattern(step.pattern, step.window_).removeprefix("expect ")


def _generic(step: Step) -> str:
    """Any other kind of step: its kind and its fields."""
    kind = type(step).__name__.removesuffix("Step").lower() or "step"
    parts = []
    for f in fields(step):
        if f.name in ("line", "conn", "ref"):
            continue
        value = getattr(step, f.name)
        if value in (None, "", (), False):
            continue
        if isinstance(value, tuple) and all(isinstance(v, tuple) and len(v) == 2 for v in value):
            value = ", ".join(f"{k}={v}" for k, v in value)
        parts.append(f"{f.name}={value}" if value is not True else f.name)
    return f"{kind} " + " ".join(parts)


def step_row(step: Step) -> tuple[bool | None, str, str]:
    """(direction, label, note) of a step: True ours, False the target's, None an annotation."""
    note: list[str] = []
    if isinstance(step, SendStep):
        label = describe_send(step).removeprefix("send ")
        if step.options:
            label += " " + ",".join(o.kind if o.value is None else f"{o.kind}={o.value}" for o in step.options)
        direction: bool | None = True
    elif isinstance(step, ExpectStep):
        label, direction = _pattern_label(step), False
        if step.label:
            note.append(f"label {step.label}")
        if step.bind:
            note.append("bind " + ", ".join(f"{name}={fld}" for name, fld in step.bind))
        if step.judge_repeats:
            note.append("repeats judged: a repeat no ACK of ours covered is compared, not passed over")
    elif isinstance(step, WithholdStep):
        count = f" (first {step.count})" if step.count else ""
        label = f"withhold {step.what}: the target retransmits {step.retransmits}{count} on schedule {step.schedule}"
        if step.then_silence:
            label += ", then gives up"
        direction = None
    elif isinstance(step, SilenceStep):
        label, direction = f"silence {format_duration(step.seconds)}: the target sends nothing", None
        if step.judge_repeats:
            label += " (repeats judged: not even a repeat no ACK of ours covered)"
    elif isinstance(step, AssertStep):
        label, direction = f"assert {step.check}: {', '.join(map(str, step.exprs or step.names))}", None
        if step.check == "outside":
            label += f" not in {step.span[0]}..{step.span[1]}"
    else:
        label, direction = _generic(step), None
    if step.ref:
        note.append(f"ref {step.ref}")
    if step.check_refs:
        note.append("refs " + ", ".join(f"{check}: {ref}" for check, ref in _grouped(step.check_refs)))
    return direction, label, "; ".join(note)


def _grouped(check_refs: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """Per-check refs for people: the checks that share a document on one line (``flags/seq/ack: EP-DATA``)."""
    by_ref: dict[str, list[str]] = {}
    for check, ref in check_refs:
        by_ref.setdefault(ref, []).append(check)
    return [("/".join(checks), ref) for ref, checks in by_ref.items()]


def render_dialogue(case: Case, width: int = 100) -> list[str]:
    rows = [(step.line, step.conn, *step_row(step)) for step in case.steps]
    multi = len(case.connections()) > 1
    conn_w = max(len(r[1]) for r in rows) + 2 if multi else 0
    inner = max(_MIN_ARROW, min(width - 8 - conn_w - 2, max(len(r[3]) + 6 for r in rows)))
    left, right = "us", "target"
    out = [f"{'line':>5}  {'':{conn_w}}{left}{right:>{inner + 2 - len(left)}}"]
    for line, conn, direction, label, note in rows:
        text = f"{line:>5}  {f'{conn:{conn_w - 2}}  ' if multi else ''}│{arrow(direction, label, inner)}│"
        out.append(text + (f"  {note}" if note else ""))
    return out


# ------------------------------------------------------------- references
def _cited_by(case: Case, ref: Reference) -> list[int]:
    """The lines of the steps with a check that answers to `ref` (core.checks)."""
    return [
        s.line
        for s in case.steps
        if s.ref == ref.id
        or any(r == ref.id for _, r in s.check_refs)
        or any(document(case, s, c) == ref for c in STEP_CHECKS.get(type(s), frozenset()))
    ]


def render_reference(case: Case, ref: Reference, rfc: RfcText | None, width: int = 100) -> list[str]:
    out = [f"  {ref.id}: {ref.doc} ({ref.level})"]
    if ref.says:
        out.extend(textwrap.wrap(f'says: "{ref.says}"', width - 4, initial_indent="    ", subsequent_indent="      "))
    lines = _cited_by(case, ref)
    if lines:
        out.append("    checked by line" + ("s " if len(lines) > 1 else " ") + ", ".join(map(str, lines)))
    for number in sections_cited(ref.doc):
        if rfc is None:
            out.append(f"    RFC 9293 §{number}: (RFC text not available here)")
            continue
        quote = rfc.quote(number, ref.id if is_requirement_id(ref.id) else "")
        if quote is None:
            out.append(f"    RFC 9293 §{number}: no such section in {FILE_NAME}")
            continue
        out.append(
            f'    RFC 9293 §{number} "{quote.title}", {quote.what} ({FILE_NAME} lines {quote.first_line}-'
            f"{quote.last_line}):"
        )
        out.extend(f"      | {line}".rstrip() for line in quote.lines)
    return out


# -------------------------------------------------------------- schedules
def _params_note(case: Case, profile: Profile | None = None) -> str:
    base = f"profile {profile.name}'s values" if profile is not None else "the documented defaults"
    text = (
        f"with {base} (conformance.core.params.resolve): nothing is read from a target here; "
        "a run reads the target's own sysctls"
    )
    if case.sysctls:
        sets = ", ".join(f"{k}={v}" for k, v in sorted(case.sysctls.items()))
        text += f", and this case sets {sets} on a target of its own, used below"
    return text


def render_schedules(case: Case, params: Params, width: int = 100, profile: Profile | None = None) -> list[str]:
    withholds = [s for s in case.steps if isinstance(s, WithholdStep)]
    if not withholds:
        return ["none: the case has no withhold step"]
    out = textwrap.wrap(_params_note(case, profile), width)
    for w in withholds:
        schedule = SCHEDULES[w.schedule](params, None)
        intervals = schedule.intervals[: w.count] if w.count else schedule.intervals
        out.append("")
        out.append(f"line {w.line}: withhold {w.what}, schedule {schedule.name}")
        out.extend(
            textwrap.wrap(
                f"derivation: {schedule.derivation}", width - 2, initial_indent="  ", subsequent_indent="    "
            )
        )
        if w.schedule == "data":
            out.append("  the handshake RTT R is measured on the wire in a run; taken as 0 here")
        for name in schedule.params_used:
            out.append(f"  {params[name]}")
        counted = f", the first {w.count} checked" if w.count else ""
        out.append(f"  intervals, each after the previous segment ({case.tolerance} tolerance){counted}:")
        at = 0.0
        for i, gap in enumerate(intervals, 1):
            at += gap
            out.append(
                f"    {i:>2}. after {format_duration(gap):>10} ± {format_duration(case.tolerance.of(gap)):>9}"
                f"   ({format_duration(at)} after the original)"
            )
        if w.then_silence:
            tol = case.tolerance.of(schedule.give_up)
            out.append(
                f"  then the target gives up {format_duration(schedule.give_up)} after the last: nothing expected "
                f"for {format_duration(schedule.give_up + tol)} (+ tolerance)"
            )
    out.append("")
    out.append(f"a conforming dialogue takes about {format_duration(expected_duration(case, params))} of timers")
    return out


# ------------------------------------------------------------------ whole
def _items(items: list[str], width: int, indent: str) -> list[str]:
    """`items` joined with "; ", wrapped between items only."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current}; {item}" if current else item
        if current and len(indent) + len(candidate) > width:
            lines.append(indent + current + ";")
            current = item
        else:
            current = candidate
    return [*lines, indent + current] if current else lines


def explain(case: Case, rfc: RfcText | None, width: int = 100, profile: Profile | None = None) -> str:
    """The explanation of `case` as text; `rfc` None when the RFC text is not available."""
    out = [f"{case.id}: {case.title}"]
    meta = [f"file {case.path}", f"group {case.group}", f"service {case.service}", f"tolerance {case.tolerance}"]
    if case.tags:
        meta.append("tags " + ", ".join(case.tags))
    if case.sysctls:
        meta.append("own target with " + ", ".join(f"{k}={v}" for k, v in sorted(case.sysctls.items())))
    if case.expect_failure:
        meta.append(f"self-test: must fail with {case.expect_failure!r}")
    out.extend(_items(meta, width, "  "))
    if case.description:
        out.append("")
        out.extend(
            textwrap.wrap(" ".join(case.description.split()), width, initial_indent="  ", subsequent_indent="  ")
        )
    out += [
        "",
        "Dialogue (our segments left to right, the target's right to left; times count from the previous event)",
        "",
    ]
    out.extend(render_dialogue(case, width))
    out += ["", "References", ""]
    for ref in case.refs:
        out.extend(render_reference(case, ref, rfc, width))
        out.append("")
    out += ["Schedules", ""]
    params = resolve(dict(case.sysctls), profile)
    out.extend("  " + line if line else "" for line in render_schedules(case, params, width - 2, profile))
    return "\n".join(out) + "\n"
