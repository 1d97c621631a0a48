"""Reading a run's ``results.json`` back (``conformance baseline --from``, ``conformance coverage --results``).

The file is untrusted input: a person may edit it by hand or bring it from another machine. So it is read like a
case file (a regular file of bounded size, see :func:`conformance.core.loader.read_case_file`), and every field a
command uses is checked for its type and bounds before it is used: a bad one is a :class:`HarnessError` naming the
file, the case (``cases[3]``, its id when it has one) and the field, with what was expected; never a traceback.

Only the fields the readers use are required (``id`` and ``status`` of each case; ``message``, ``file``,
``failure`` and ``steps`` may be missing): ``conformance/data/results.schema.json`` describes the whole format, and
a ``format_version`` other than the one this tool writes is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import CaseFormatError, HarnessError
from ..core.loader import MAX_FILE_BYTES, read_case_file
from ..core.outcomes import FailureKind, Status
from ..reporters.results_json import FORMAT_VERSION

#: The largest results.json read (the matrix's 880 cases and the suite take a few MB).
MAX_RESULTS_BYTES = 64_000_000
#: A case id, as the case schema allows it (an IPv6 copy ends in ``.ipv6``) or the RFC 9293 matrix makes it
#: (``matrix/established/syn/seq-left``), of at most this many characters.
CASE_ID = re.compile(r"[a-z0-9][a-z0-9._/-]*")
MAX_ID_CHARS = 200
#: A line of a case file: a case file holds at most MAX_FILE_BYTES bytes, so at most that many lines.
MAX_LINE = MAX_FILE_BYTES
#: The longest step description, message and case file path read.
MAX_STEP_CHARS = 10_000
MAX_MESSAGE_CHARS = 1_000_000
MAX_PATH_CHARS = 4096
#: The statuses a case can end with (results.schema.json's enum).
CASE_STATUSES = tuple(s.value for s in Status if s is not Status.INFO)

_GIVE = "give the results.json a `conformance run` wrote (--reports DIR/results.json), or fix that field"


@dataclass(frozen=True)
class FailureRecord:
    """A case's failure, as results.json records it: what a baseline entry names."""

    kind: str
    line: int
    step: str


@dataclass(frozen=True)
class CaseRecord:
    """One case of a results.json, every field checked."""

    id: str
    status: str
    message: str = ""
    file: str | None = None
    failure: FailureRecord | None = None
    step_lines: tuple[int, ...] = ()


def short_path(path: str) -> str:
    """`path` as an error shows it: whole when short, else its start and end (a name may be thousands long)."""
    return path if len(path) <= 200 else f"{path[:100]}...{path[-40:]} ({len(path)} characters)"


def read_document(path: str, label: str) -> dict[str, Any]:
    """The whole results.json at `path`, its cases checked (see :func:`case_records`); `label` starts each error
    (``--from reports/results.json``)."""
    try:  # a regular file of bounded size, read like a case file (not /dev/zero, not a FIFO)
        doc = json.loads(read_case_file(path, MAX_RESULTS_BYTES))
    except CaseFormatError as exc:
        raise HarnessError(f"{label}: cannot read it ({exc.problem})", _GIVE) from None
    except ValueError as exc:
        raise HarnessError(f"{label}: not JSON ({exc})", _GIVE) from None
    except RecursionError:
        raise HarnessError(f"{label}: not a results.json (nested too deeply to read)", _GIVE) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), list):
        raise HarnessError(f"{label}: not a results.json (no list of 'cases' at the top)", _GIVE)
    version = doc.get("format_version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        raise HarnessError(
            f"{label}: format_version: expected {FORMAT_VERSION} (the format this tool reads), got {_shown(version)}",
            "write it again with this version of the tool (`conformance run`)",
        )
    case_records(doc, label)
    return doc


def read_cases(path: str, label: str) -> list[CaseRecord]:
    """The cases of the results.json at `path`, every field checked."""
    return case_records(read_document(path, label), label)


def case_records(doc: dict[str, Any], label: str) -> list[CaseRecord]:
    """The checked cases of a results.json document (HarnessError naming the first bad field)."""
    return [_case(item, f"{label}: cases[{n}]") for n, item in enumerate(doc["cases"])]


def _case(item: Any, where: str) -> CaseRecord:
    if not isinstance(item, dict):
        raise _bad(where, "", "an object (a case's record)", item)
    case_id = _text(item, "id", where, MAX_ID_CHARS, required=True)
    if not CASE_ID.fullmatch(case_id):
        raise _bad(where, "id", "a case id (lower case, digits, '.', '_', '-' or '/')", case_id)
    where = f"{where} (id {case_id})"
    status = _text(item, "status", where, 20, required=True)
    if status not in CASE_STATUSES:
        raise _bad(where, "status", f"one of {', '.join(CASE_STATUSES)}", status)
    file = item.get("file")
    if file is not None and (not isinstance(file, str) or not file or len(file) > MAX_PATH_CHARS or "\0" in file):
        raise _bad(where, "file", f"null or a path of at most {MAX_PATH_CHARS} characters", file)
    steps = item.get("steps", [])
    if not isinstance(steps, list):
        raise _bad(where, "steps", "a list of steps", steps)
    return CaseRecord(
        id=case_id,
        status=status,
        message=_text(item, "message", where, MAX_MESSAGE_CHARS),
        file=file,
        failure=_failure(item.get("failure"), where),
        step_lines=tuple(_step_line(step, where, f"steps[{n}]") for n, step in enumerate(steps)),
    )


def _failure(item: Any, where: str) -> FailureRecord | None:
    if item is None:
        return None
    if not isinstance(item, dict):
        raise _bad(where, "failure", "null or an object with kind, line and step", item)
    kind = _text(item, "kind", where, 20, required=True, field="failure.kind")
    if kind not in set(FailureKind):
        raise _bad(where, "failure.kind", f"one of {', '.join(FailureKind)}", kind)
    step = _text(item, "step", where, MAX_STEP_CHARS, required=True, field="failure.step")
    return FailureRecord(kind, _line(item, where, "failure.line"), step)


def _step_line(item: Any, where: str, field: str) -> int:
    if not isinstance(item, dict):
        raise _bad(where, field, "an object with the step's line", item)
    return _line(item, where, f"{field}.line")


def _line(item: dict[str, Any], where: str, field: str) -> int:
    value = item.get("line")
    if type(value) is not int or not 1 <= value <= MAX_LINE:
        raise _bad(where, field, f"a line number, a whole number from 1 to {MAX_LINE}", value, "line" in item)
    return value


def _text(item: dict[str, Any], name: str, where: str, most: int, required: bool = False, field: str = "") -> str:
    """`item[name]`: a text of at most `most` characters, non-empty if `required` (else "" when missing).
    `field` names it in errors (default: `name`)."""
    value = item.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value) or len(value) > most:
        expected = f"{'a non-empty' if required else 'a'} text of at most {most} characters"
        raise _bad(where, field or name, expected, value, name in item)
    return value


def _bad(where: str, field: str, expected: str, value: Any, present: bool = True) -> HarnessError:
    got = _shown(value) if present else "nothing (the field is missing)"
    return HarnessError(f"{where}{': ' + field if field else ''}: expected {expected}, got {got}", _GIVE)


def _shown(value: Any) -> str:
    """A short, safe picture of a value of the file: its JSON type, and the value itself when short."""
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):  # never the whole of it: it may be most of the file
        return "an object" if isinstance(value, dict) else "a list"
    kind = {str: "text", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), "a value")
    text = json.dumps(value[:61] if isinstance(value, str) else value, ensure_ascii=True)
    return f"{kind} {text}" if len(text) <= 60 else kind
