"""Text ladders: the packet exchange of one case as a sequence diagram.

Pure functions (no I/O): every reporter (terminal, JUnit system-out, files)
renders a :class:`~conformance.core.results.CaseResult` through this module.

A ladder has one line per :class:`~conformance.core.engine.TraceEntry`::

          time  us                                          target
      0.000 ms  │─ S seq=0 ─────────────────────────────────────>│  line 17
      1.900 ms  │<────────────────────────────── SA seq=0 ack=2 ─│  line 18: not as expected ✗

Our segments go left to right, the target's right to left. Sequence numbers
are relative: ours to our ISN, the target's to the sequence number of the first
SYN (or SYN-ACK) it sent on the connection; acknowledgments to the other side's
ISN. A value whose base is unknown is shown absolute (the header says which).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.engine import Failure, TraceEntry
from ..core.matching import FieldDiff
from ..core.model import Reference
from ..core.results import CaseResult
from ..core.segment import IcmpError, Segment, seq_diff

OK_MARK = "✓"
FAIL_MARK = "✗"
_TIME_W = 10  # "999.999 ms", "1234.567 s"
_MIN_ARROW = 24  # inner width of an arrow, lifelines excluded
_MAX_NOTE = 34  # notes longer than this push the line past `width`


# --------------------------------------------------------------------- values
def format_offset(seconds: float) -> str:
    """Time since the first packet: ``12.345 ms`` below one second, else ``1.234 s``."""
    if abs(seconds) < 1.0:
        return f"{seconds * 1000:.3f} ms"
    return f"{seconds:.3f} s"


def flags_text(flags: str) -> str:
    return flags or "<none>"


@dataclass(frozen=True)
class _Bases:
    """Relative-numbering bases of one connection: None = unknown."""

    ours: int | None
    theirs: int | None  # set once the target's first SYN has been seen


def _our_isn(result: CaseResult, conn: str, trace: Sequence[TraceEntry]) -> int | None:
    if conn in result.isns:
        return result.isns[conn] % (1 << 32)
    for e in trace:  # the runner did not say: our first SYN carries it
        if e.outgoing and e.conn == conn and "S" in e.segment.flags:
            return e.segment.seq
    return None


def _target_isn(conn: str, trace: Sequence[TraceEntry]) -> tuple[int | None, int]:
    """The target's ISN on `conn` and the trace index from which it is known."""
    for i, e in enumerate(trace):
        if not e.outgoing and e.conn == conn and "S" in e.segment.flags:
            return e.segment.seq, i
    return None, len(trace)


def _rel(value: int, base: int | None) -> str:
    return str(value) if base is None else str(seq_diff(value, base))


def segment_label(seg: Segment, outgoing: bool, bases: _Bases) -> str:
    """``SA seq=0 ack=1 len=5`` with seq/ack relative to `bases`; ``ICMP port unreachable (our S seq=0)`` for an
    ICMP error about one of our segments."""
    error = seg.extra.get("icmp")
    if isinstance(error, IcmpError):
        q = error.quoted
        return f"{error.label} (our {flags_text(q.flags) if q.flags else 'segment'} seq={_rel(q.seq, bases.ours)})"
    own, other = (bases.ours, bases.theirs) if outgoing else (bases.theirs, bases.ours)
    parts = [flags_text(seg.flags), f"seq={_rel(seg.seq, own)}"]
    if "A" in seg.flags or seg.ack:
        parts.append(f"ack={_rel(seg.ack, other)}")
    if seg.payload:
        parts.append(f"len={len(seg.payload)}")
    return " ".join(parts)


# --------------------------------------------------------------------- ladder
@dataclass(frozen=True)
class LadderRow:
    """One row of a ladder, for every drawing of it (text here, SVG in the HTML report)."""

    offset: float  # seconds since the first packet of the case
    conn: str
    outgoing: bool | None  # None: a row without a segment (e.g. a missing reply)
    label: str  # flags, relative seq/ack, len
    note: str  # the engine's note with the ✓/✗ mark
    ok: bool | None = None  # False: the failing segment (or the missing reply); True: matched a step
    provisional: bool = False  # a segment we sent whose capture never came back

    @property
    def time(self) -> str:
        return format_offset(self.offset)


def _note(entry: TraceEntry) -> str:
    note = entry.note
    if entry.provisional:
        note = f"{note} [no capture]".strip()
    if entry.ok is True:
        note = f"{note} {OK_MARK}".strip()
    elif entry.ok is False:
        note = f"{note} {FAIL_MARK}".strip()
    return note


def arrow(outgoing: bool | None, label: str, inner: int) -> str:
    """A text arrow of `inner` characters: ours to the right, the target's to the left, None dotted."""
    if outgoing is None:  # a dotted row across the diagram
        text = f" {label} "
        pad = max(inner - len(text), 2)
        return "·" * (pad // 2) + text + "·" * (pad - pad // 2)
    dashes = max(inner - len(label) - 4, 2)
    if outgoing:
        return f"─ {label} " + "─" * dashes + ">"
    return "<" + "─" * dashes + f" {label} ─"


def ladder_rows(result: CaseResult) -> list[LadderRow]:
    """The rows of the case's ladder: its trace with relative numbering, and a missing reply if any."""
    verdict = result.verdict
    if verdict is None or not verdict.trace:
        return []
    trace = verdict.trace
    origin = min(e.time for e in trace)
    conns = list(dict.fromkeys([*result.case.connections(), *(e.conn for e in trace)]))
    ours = {c: _our_isn(result, c, trace) for c in conns}
    theirs = {c: _target_isn(c, trace) for c in conns}
    rows: list[LadderRow] = []
    for i, e in enumerate(trace):
        their_isn, known_from = theirs[e.conn]
        bases = _Bases(ours[e.conn], their_isn if i >= known_from else None)
        rows.append(
            LadderRow(
                e.time - origin,
                e.conn,
                e.outgoing,
                segment_label(e.segment, e.outgoing, bases),
                _note(e),
                e.ok,
                e.provisional,
            )
        )
    rows.extend(_step_rows(result, origin))
    rows.sort(key=lambda r: r.offset)
    failure = verdict.failure
    if failure is not None and failure.kind == "missing" and not any(e.ok is False for e in trace):
        # Nothing came: show where the reply should have been, before the cleanup.
        at = verdict.end
        index = next((k for k, e in enumerate(trace) if e.time >= at and e.note.startswith("cleanup")), len(trace))
        conn = _step_conn(result, failure.line) or (trace[-1].conn if trace else "")
        rows.insert(
            index,
            LadderRow(at - origin, conn, None, "no segment from the target", f"line {failure.line} {FAIL_MARK}", False),
        )
    return rows


#: Steps that happen off the wire and get a row of their own: the application's, state checks, asserts.
_OFF_WIRE = ("app ", "app_result", "state ", "assert ")


def _step_rows(result: CaseResult, origin: float) -> list[LadderRow]:
    """Rows for the steps that are not segments, with how a state was decided."""
    verdict = result.verdict
    assert verdict is not None
    rows = []
    for rec in verdict.steps:
        if rec.time is None or not rec.description.startswith(_OFF_WIRE) or "(black box:" in rec.description:
            continue
        mark = {"passed": OK_MARK, "failed": FAIL_MARK}.get(rec.status, "")
        how = (
            " white box (sock_diag)"
            if "white box" in rec.timing
            or "white box" in (verdict.failure.message if verdict.failure and rec.status == "failed" else "")
            else ""
        )
        label = rec.description if len(rec.description) <= 48 else rec.description[:47] + "…"
        rows.append(
            LadderRow(
                rec.time - origin,
                _step_conn(result, rec.line) or "",
                None,
                label,
                f"line {rec.line} {mark}{how}".strip(),
                {"passed": True, "failed": False}.get(rec.status),
            )
        )
    return rows


def _step_conn(result: CaseResult, line: int) -> str | None:
    for s in result.case.steps:
        if s.line == line:
            return s.conn
    return None


def _header(result: CaseResult) -> list[str]:
    case = result.case
    status = result.status.upper()
    if case.expect_failure:
        status += f", self-test (raw verdict {result.raw_status or 'unknown'})"
    return [f"{case.id}: {case.title} [{status}]", *numbering_lines(result)]


def numbering_lines(result: CaseResult) -> list[str]:
    """Who talks to whom and the ISNs the ladder's relative numbers count from ([] without packets)."""
    case = result.case
    verdict = result.verdict
    trace = verdict.trace if verdict is not None else []
    if not trace:
        return []
    first = trace[0].segment
    us, them = (first.src, first.dst) if trace[0].outgoing else (first.dst, first.src)
    target_port = first.dport if trace[0].outgoing else first.sport
    lines = [f"us {us}  ─>  target {them}:{target_port}"]
    for conn in dict.fromkeys([*case.connections(), *(e.conn for e in trace)]):
        our_isn = _our_isn(result, conn, trace)
        their_isn, known_from = _target_isn(conn, trace)
        port = result.ports.get(conn) or next((e.segment.sport for e in trace if e.outgoing and e.conn == conn), None)
        ours = f"our ISN {our_isn}" if our_isn is not None else "our ISN unknown (our seq absolute)"
        if their_isn is not None:
            syn = trace[known_from].segment
            theirs = f"target ISN {their_isn} (from its {'SYN-ACK' if 'A' in syn.flags else 'SYN'}"
            if any(not e.outgoing and e.conn == conn for e in trace[:known_from]):
                theirs += "; its seq absolute before it"
            theirs += ")"
        else:
            theirs = "target ISN unknown (its seq and our ack absolute)"
        lines.append(f"  {conn}: port {port if port is not None else '?'}, {ours}, {theirs}")
    lines.append("  seq/ack below are relative to these ISNs")
    return lines


def render_ladder(result: CaseResult, width: int = 100, with_failure: bool = True) -> str:
    """The case's packet exchange as a text ladder, then (`with_failure`) the failure, if any."""
    out = _header(result)
    rows = ladder_rows(result)
    if not rows:
        out.append("(no packets exchanged)")
    else:
        multi = len(set(result.case.connections()) | {r.conn for r in rows}) > 1
        conn_w = max(len(r.conn) for r in rows) + 2 if multi else 0
        note_w = min(max(len(r.note) for r in rows), _MAX_NOTE)
        fixed = _TIME_W + 2 + conn_w + 2 + 2 + note_w  # time, gap, conn, lifelines, gap, note
        inner = max(width - fixed, _MIN_ARROW, max(len(r.label) + 6 for r in rows))
        left, right = "us", "target"
        out.append("")
        out.append(f"{'time':>{_TIME_W}}  {'':{conn_w}}{left}{right:>{inner + 2 - len(left)}}")
        for r in rows:
            conn = f"{r.conn:{conn_w - 2}}  " if multi else ""
            line = f"{r.time:>{_TIME_W}}  {conn}│{arrow(r.outgoing, r.label, inner)}│"
            if r.note:
                line += f"  {r.note}"
            out.append(line)
    block = render_failure(result, width) if with_failure else ""
    if block:
        out.append("")
        out.append(block)
    return "\n".join(out)


# -------------------------------------------------------------------- failure
_GLUE = "\x00"  # holds a number and its unit together while wrapping
_UNIT = re.compile(r"(\d) (ms|s|µs|min)\b")


def _wrap(text: str, width: int) -> list[str]:
    """Wrap each line of `text` to `width`, continuation lines indented; never splits "1.5 s"."""
    out: list[str] = []
    for line in _UNIT.sub(rf"\1{_GLUE}\2", text).splitlines() or [""]:
        indent = " " * (len(line) - len(line.lstrip()))
        out.extend(
            textwrap.wrap(
                line,
                width=width,
                subsequent_indent=indent + "    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [""]
        )
    return [line.replace(_GLUE, " ") for line in out]


def diff_table(diffs: Iterable[FieldDiff], width: int = 100) -> list[str]:
    """Every checked field, expected vs observed; mismatches marked ✗."""
    diffs = list(diffs)
    if not diffs:
        return []
    fw = max(len("field"), *(len(d.field) for d in diffs))
    ew = max(len("expected"), *(len(d.expected) for d in diffs))
    lines = [f"  {'field':{fw}}  {'expected':{ew}}  observed"]
    for d in diffs:
        mark = "  " if d.ok else f"{FAIL_MARK} "
        row = f"{mark}{d.field:{fw}}  {d.expected:{ew}}  {d.observed}"
        if len(row) <= width:
            lines.append(row.rstrip())
        else:  # too wide for a table row (e.g. payloads): stack it
            lines.append(f"{mark}{d.field}")
            lines.extend(_wrap(f"      expected: {d.expected}", width))
            lines.extend(_wrap(f"      observed: {d.observed}", width))
    return lines


def _self_test_lines(result: CaseResult) -> list[str]:
    case = result.case
    if not case.expect_failure:
        return []
    return [
        f"self-test: this case must fail with a message containing {case.expect_failure!r}; "
        f"raw verdict: {result.raw_status or 'unknown'}"
    ]


def render_failure(result: CaseResult, width: int = 100) -> str:
    """The failure (or harness error) of `result` as a message block; "" when it passed plainly."""
    failure = result.verdict.failure if result.verdict is not None else None
    lines: list[str] = []
    if result.status == "error":
        lines.append("ERROR (harness, not a verdict about the target):")
        lines.extend("  " + line for line in _wrap(result.message or "unknown error", width - 2))
        return "\n".join(lines)
    if result.status == "skipped":
        lines.append("SKIPPED (not played on this target, no verdict):")
        lines.extend("  " + line for line in _wrap(result.message or "no reason given", width - 2))
        return "\n".join(lines)
    findings = result.verdict.findings if result.verdict is not None else []
    if result.passed and failure is None and not findings:
        return ""
    for f in findings:  # deviations that the profile does not count as failures
        word = (
            "WARNING (a SHOULD; not a failure):" if f.outcome == "warn" else "NOTE (not required under this profile):"
        )
        lines.append(word)
        lines.extend(_wrap(f.failure.render(), width))
    if failure is None and not result.case.expect_failure and result.status in ("passed", "warning"):
        return "\n".join(lines)
    for line in _self_test_lines(result):
        lines.extend(_wrap(line, width))
    if result.case.expect_failure and result.message and (failure is None or result.message != failure.render()):
        lines.extend(_wrap(result.message, width))
    if failure is not None:
        title = "expected failure (self-test):" if result.passed else "FAILED:"
        lines.append(title)
        lines.extend(_wrap(failure.render(), width))
        table = diff_table(failure.diffs, width)
        if table:
            lines.append("")
            lines.append("expected vs observed:")
            lines.extend(table)
    elif not lines:
        lines.append("FAILED:")
        lines.extend(_wrap(result.message or "no details", width))
    return "\n".join(lines)


# -------------------------------------------------------------------- summary
def failure_reference(result: CaseResult) -> Reference | None:
    """The reference a failure cites: the failing step's, else the case's first."""
    failure = result.verdict.failure if result.verdict is not None else None
    if failure is not None and failure.reference is not None:
        return failure.reference
    return result.case.reference(None)


def _failure_line(failure: Failure) -> str:
    text = f"line {failure.line}: {failure.step}: "
    bad = [d for d in failure.diffs if not d.ok]
    if bad:
        text += "; ".join(f"{d.field}: expected {d.expected}, observed {d.observed}" for d in bad)
    else:
        text += failure.message.strip().splitlines()[0] if failure.message.strip() else failure.kind
    return text


def summarize_failure(result: CaseResult) -> str:
    """One line: what went wrong and which document requires the behaviour ("" for a plain pass)."""
    failure = result.verdict.failure if result.verdict is not None else None
    if result.passed and not result.case.expect_failure:
        return ""
    if result.status == "error":
        first = (result.message or "harness error").strip().splitlines()
        return f"harness error: {first[0] if first else 'unknown'}"
    if result.status == "skipped":
        first = (result.message or "no reason given").strip().splitlines()
        return first[0] if first else "no reason given"
    findings = result.verdict.findings if result.verdict is not None else []
    if failure is None and findings and result.status == "warning":
        warned = findings[0].failure
        cited = warned.reference
        return f"warning: {_failure_line(warned)}" + (f" — {cited.cite()}" if cited is not None else "")
    if failure is not None:
        text = _failure_line(failure)
        if result.case.expect_failure and result.message:
            text = f"{result.message.strip().splitlines()[0]} ({text})"
    else:
        first = (result.message or "failed").strip().splitlines()
        text = first[0] if first else "failed"
    ref = failure_reference(result)
    if ref is not None:
        text += f" — required by {ref.cite()}"
    return text
