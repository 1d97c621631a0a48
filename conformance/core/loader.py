"""Load case files: YAML -> schema check -> :class:`~conformance.core.model.Case`.

Every error names the file, the line, the field and what would be valid, so a
network engineer can fix a case without reading Python. The schema itself is a
data file (``case.schema.json``) with a description for every field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import CaseFormatError
from .model import (
    ANY_CONN,
    AppResultStep,
    AppStep,
    AssertStep,
    Case,
    ExpectStep,
    OptionSpec,
    Reference,
    SegmentPattern,
    SendStep,
    SilenceStep,
    StateStep,
    Step,
    WithholdStep,
)
from .params import DOCUMENTED
from .schedules import SCHEDULES
from .segment import canonical_flags
from .timing import DEFAULT_TOLERANCE, Tolerance, Window
from .values import BUILTIN_NAMES, parse_duration, parse_expr

Path_ = tuple[str | int, ...]
STEP_KINDS = ("send", "expect", "silence", "withhold", "assert", "app", "app_result", "state")
#: Keys allowed beside each step kind.
STEP_KEYS = {
    "send": {"conn", "ref"},
    "expect": {"conn", "ref", "label", "bind"},
    "silence": {"conn", "ref"},
    "withhold": {"conn", "ref", "retransmits", "schedule", "count", "then_silence"},
    "assert": {"ref"},
    "app": {"conn", "ref", "label", "wait"},
    "app_result": {"conn", "ref"},
    "state": {"conn", "ref", "lasts"},
}
DEFAULT_WITHIN = 1.0


def load_schema() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("data", "case.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _field(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


class _Lines:
    """Line numbers (1-based) of every YAML node, by its path in the document."""

    def __init__(self) -> None:
        self.by_path: dict[Path_, int] = {}

    def line(self, path: Path_) -> int | None:
        p = tuple(path)
        while p not in self.by_path and p:
            p = p[:-1]
        return self.by_path.get(p)


def _to_python(node: yaml.Node, path: Path_, lines: _Lines, file: str) -> Any:
    lines.by_path[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise CaseFormatError(file, key_node.start_mark.line + 1, _field(path + (key,)), "duplicate key")
            out[key] = _to_python(value_node, path + (key,), lines, file)
            lines.by_path[path + (key,)] = key_node.start_mark.line + 1  # errors point at the key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), lines, file) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _schema_error(file: str, lines: _Lines, err: jsonschema.ValidationError, schema: dict[str, Any]) -> CaseFormatError:
    path: Path_ = tuple(err.absolute_path)
    valid: list[str] = []
    problem = err.message
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if extra:
            path = path + (extra[0],)
            problem = f"unknown field {extra[0]!r}"
        valid = sorted(err.schema.get("properties", {}))
    elif err.validator == "oneOf" and isinstance(err.instance, dict):
        kinds = [k for k in STEP_KINDS if k in err.instance]
        problem = (
            f"a step has exactly one of {', '.join(STEP_KINDS)}; this one has {', '.join(kinds) if kinds else 'none'}"
        )
        valid = list(STEP_KINDS)
    elif err.validator == "enum":
        valid = [str(v) for v in err.validator_value]
        problem = f"{err.instance!r} is not one of the valid values"
    elif err.validator == "pattern" and path and path[-1] == "flags":
        problem = f"{err.instance!r} has a letter that is not a TCP flag"
        valid = list("FSRPAUEC") + (["X? (expect: flag X may be set)"] if "expect" in path else [])
    elif err.validator == "required":
        problem = err.message.replace("is a required property", "is missing (required)")
    return CaseFormatError(file, lines.line(path), _field(path), problem, valid)


def _options(spec: dict[str, Any] | None) -> tuple[OptionSpec, ...]:
    if not spec:
        return ()
    out: list[OptionSpec] = []
    for kind, value in spec.items():
        if kind == "nop":
            out.extend(OptionSpec("nop") for _ in range(1 if value is None else value))
        else:
            out.append(OptionSpec(kind, tuple(value) if isinstance(value, list) else value))
    return tuple(out)


class _Builder:
    """Turns validated data into a Case, checking what the schema cannot."""

    def __init__(self, file: str, lines: _Lines) -> None:
        self.file = file
        self.lines = lines
        self.bound: set[str] = set(BUILTIN_NAMES)
        self.labels: set[str] = set()
        self.app_labels: set[str] = set()
        self.seen_withhold = False
        self.ref_ids: set[str] = set()

    def error(self, path: Path_, problem: str, valid: Iterable[str] = ()) -> CaseFormatError:
        return CaseFormatError(self.file, self.lines.line(path), _field(path), problem, list(valid))

    def expr(self, value: Any, path: Path_) -> Any:
        try:
            e = parse_expr(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None
        if e.name is not None and e.name not in self.bound:
            raise self.error(path, f"name {e.name!r} is not bound before this step", sorted(self.bound))
        return e

    def duration(self, value: Any, path: Path_) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.error(path, str(exc)) from None

    def flags(self, text: str, path: Path_, allow_optional: bool) -> tuple[str, str]:
        required, optional = "", ""
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "?":
                raise self.error(path, "'?' must follow a flag letter")
            if i + 1 < len(text) and text[i + 1] == "?":
                if not allow_optional:
                    raise self.error(path, "optional flags (X?) are only allowed in expect")
                optional += ch
                i += 2
            else:
                required += ch
                i += 1
        if set(required) & set(optional):
            raise self.error(path, "a flag cannot be both required and optional")
        return canonical_flags(required), canonical_flags(optional)

    def data(self, seg: dict[str, Any], path: Path_) -> bytes | None:
        if "data" in seg and "len" in seg and seg["len"] != len(seg["data"].encode()):
            raise self.error(
                path + ("len",), f"len {seg['len']} disagrees with data ({len(seg['data'].encode())} octets)"
            )
        if "data" in seg:
            return bytes(seg["data"].encode())
        return None

    def step(self, raw: dict[str, Any], path: Path_) -> Step:
        kind = next(k for k in STEP_KINDS if k in raw)
        for key in raw:
            if key != kind and key not in STEP_KEYS[kind]:
                raise self.error(path + (key,), f"{key!r} does not go with {kind!r}", sorted(STEP_KEYS[kind] | {kind}))
        line = self.lines.line(path) or 0
        conn = raw.get("conn", "main")
        ref = raw.get("ref")
        if ref is not None and ref not in self.ref_ids:
            raise self.error(path + ("ref",), f"no ref with id {ref!r}", sorted(self.ref_ids))
        body = raw[kind]
        kp = path + (kind,)
        if kind == "send":
            for k in ("within", "after"):
                if k in body:
                    raise self.error(kp + (k,), "timing goes with expect, not send (a send happens at once)")
            flags, _ = self.flags(body.get("flags", ""), kp + ("flags",), allow_optional=False)
            data = self.data(body, kp)
            if data is None:
                data = b"x" * body.get("len", 0)
            return SendStep(
                line=line,
                conn=conn,
                ref=ref,
                flags=flags,
                seq=self.expr(body["seq"], kp + ("seq",)) if "seq" in body else None,
                ack=self.expr(body["ack"], kp + ("ack",)) if "ack" in body else None,
                window=body.get("win", 65535),
                data=data,
                options=_options(body.get("options")),
            )
        if kind == "expect":
            if "within" in body and "after" in body:
                raise self.error(kp + ("after",), "give either within or after, not both")
            if "after" in body:
                window = Window("after", self.duration(body["after"], kp + ("after",)))
            else:
                window = Window("within", self.duration(body.get("within", DEFAULT_WITHIN), kp + ("within",)))
            flags_req, flags_opt = (None, "")
            if "flags" in body:
                flags_req, flags_opt = self.flags(body["flags"], kp + ("flags",), allow_optional=True)
            data = self.data(body, kp)
            pattern = SegmentPattern(
                flags=flags_req,
                flags_optional=flags_opt,
                seq=self.expr(body["seq"], kp + ("seq",)) if "seq" in body else None,
                ack=self.expr(body["ack"], kp + ("ack",)) if "ack" in body else None,
                window=body.get("win"),
                length=body.get("len", len(data) if data is not None else None),
                data=data,
                options=_options(body.get("options")) if "options" in body else None,
            )
            label = raw.get("label")
            if label is not None:
                if label in self.labels:
                    raise self.error(path + ("label",), f"label {label!r} is used twice")
                self.labels.add(label)
            bind = tuple((name, fld) for name, fld in raw.get("bind", {}).items())
            for name, _ in bind:
                if name in BUILTIN_NAMES:
                    raise self.error(path + ("bind", name), f"{name!r} is a built-in name and cannot be bound")
                self.bound.add(name)
            return ExpectStep(line=line, conn=conn, ref=ref, pattern=pattern, window_=window, label=label, bind=bind)
        if kind == "silence":
            # Without conn: the whole case must be silent; with it, that connection.
            return SilenceStep(line=line, conn=raw.get("conn", ANY_CONN), ref=ref, seconds=self.duration(body, kp))
        if kind == "withhold":
            if "retransmits" not in raw:
                raise self.error(path, "withhold needs retransmits: LABEL (the segment the target must repeat)")
            if raw["retransmits"] not in self.labels:
                raise self.error(
                    path + ("retransmits",),
                    f"no earlier expect step has label {raw['retransmits']!r}",
                    sorted(self.labels),
                )
            schedule = raw.get("schedule", "synack")
            if schedule not in SCHEDULES:
                raise self.error(path + ("schedule",), f"unknown schedule {schedule!r}", sorted(SCHEDULES))
            count = raw.get("count")
            self.seen_withhold = True
            return WithholdStep(
                line=line,
                conn=conn,
                ref=ref,
                what=body,
                retransmits=raw["retransmits"],
                schedule=schedule,
                count=count,
                then_silence=raw.get("then_silence", count is None),
            )
        if kind == "app":
            label = raw.get("label")
            if label is not None:
                if label in self.app_labels:
                    raise self.error(path + ("label",), f"label {label!r} is used twice")
                self.app_labels.add(label)
            args = tuple((k, v) for k, v in body.items() if k not in ("do", "at"))
            return AppStep(
                line=line,
                conn=conn,
                ref=ref,
                do=body["do"],
                args=args,
                label=label,
                wait=raw.get("wait", body["do"] != "connect"),
                at=self.duration(body["at"], kp + ("at",)) if "at" in body else None,
            )
        if kind == "app_result":
            if body["of"] not in self.app_labels:
                raise self.error(kp + ("of",), f"no earlier app step has label {body['of']!r}", sorted(self.app_labels))
            if "within" in body and "after" in body:
                raise self.error(kp + ("after",), "give either within or after, not both")
            give_up = body.get("after") == "give_up"
            if give_up and not self.seen_withhold:
                raise self.error(kp + ("after",), "after: give_up needs a withhold step before it")
            result_window: Window | None = None
            if "within" in body:
                result_window = Window("within", self.duration(body["within"], kp + ("within",)))
            elif "after" in body and not give_up:
                result_window = Window("after", self.duration(body["after"], kp + ("after",)))
            return AppResultStep(
                line=line,
                conn=conn,
                ref=ref,
                of=body["of"],
                ok=body.get("ok"),
                error=body.get("error"),
                window=result_window,
                give_up=give_up,
            )
        if kind == "state":
            lasts = raw.get("lasts")
            if isinstance(lasts, str) and lasts in DOCUMENTED:
                pass
            elif lasts is not None:
                try:
                    lasts = parse_duration(lasts)
                except ValueError:
                    raise self.error(
                        path + ("lasts",),
                        f"{lasts!r} is neither a duration nor a documented parameter",
                        sorted(DOCUMENTED),
                    ) from None
            return StateStep(line=line, conn=conn, ref=ref, state=body, lasts=lasts)
        names = tuple(body.get("unpredictable", ()))
        for i, name in enumerate(names):
            if name not in self.bound:
                raise self.error(
                    kp + ("unpredictable", i), f"name {name!r} is not bound before this step", sorted(self.bound)
                )
        return AssertStep(line=line, conn="main", ref=ref, check="unpredictable", names=names)


def load_case(path: str | Path, root: str | Path | None = None) -> Case:
    """Load and check one case file; raises :class:`CaseFormatError`."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CaseFormatError(file, None, "file", f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CaseFormatError(file, None, "file", "not UTF-8 text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseFormatError(file, mark.line + 1 if mark else None, "YAML", str(problem)) from None
    if node is None:
        raise CaseFormatError(file, None, "file", "empty case file")
    lines = _Lines()
    try:
        data = _to_python(node, (), lines, file)
    except yaml.YAMLError as exc:
        raise CaseFormatError(file, None, "YAML", str(exc)) from None
    if not isinstance(data, dict):
        raise CaseFormatError(file, 1, "(top level)", "a case file is a mapping (id:, title:, refs:, steps:)")
    schema = load_schema()
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(data),
        key=lambda e: (lines.line(tuple(e.absolute_path)) or 0, -len(e.absolute_path)),
    )
    if errors:
        raise _schema_error(file, lines, _best(errors), schema)
    return _build(data, file, lines, root)


def _best(errors: list[jsonschema.ValidationError]) -> jsonschema.ValidationError:
    """The first error by line; within a oneOf, the most specific one."""
    first = errors[0]
    if first.validator == "oneOf" and isinstance(first.instance, dict):
        kinds = [k for k in STEP_KINDS if k in first.instance]
        if len(kinds) == 1:
            # Exactly one kind: the interesting error is inside that branch.
            for sub in sorted(first.context or [], key=lambda e: -len(e.absolute_path)):
                if sub.validator != "required":
                    return sub
    return first


def _build(data: dict[str, Any], file: str, lines: _Lines, root: str | Path | None) -> Case:
    b = _Builder(file, lines)
    refs = tuple(
        Reference(id=r["id"], doc=r["doc"], level=r["level"], says=r.get("says", ""), stack=_stack(r, file, lines, i))
        for i, r in enumerate(data["refs"])
    )
    b.ref_ids = {r.id for r in refs}
    steps = tuple(b.step(s, ("steps", i)) for i, s in enumerate(data["steps"]))
    tol_raw = data.get("tolerance", {})
    tolerance = Tolerance(
        absolute=b.duration(tol_raw["absolute"], ("tolerance", "absolute"))
        if "absolute" in tol_raw
        else DEFAULT_TOLERANCE.absolute,
        percent=float(tol_raw.get("percent", DEFAULT_TOLERANCE.percent)),
    )
    group = data.get("group") or _group_of(Path(file), root)
    return Case(
        id=data["id"],
        title=data["title"],
        group=group,
        path=file,
        refs=refs,
        service=data.get("service", "listen"),
        steps=steps,
        tolerance=tolerance,
        sysctls=dict(data.get("target", {}).get("sysctl", {})),
        description=data.get("description", ""),
        tags=tuple(data.get("tags", ())),
        expect_failure=data.get("expect_failure"),
    )


STACKS = ("linux", "freebsd", "lwip", "windows")


def _stack(ref: dict[str, Any], file: str, lines: _Lines, index: int) -> str | None:
    """The stack of a default-level ref: given, or the doc's first word when it names one."""
    if "stack" in ref:
        return str(ref["stack"])
    if ref["level"] != "default":
        return None
    first = ref["doc"].split()[0].lower() if ref["doc"].split() else ""
    if first in STACKS:
        return first
    raise CaseFormatError(
        file,
        lines.line(("refs", index, "level")),
        f"refs[{index}].stack",
        "a 'default' level names the stack that documents the value",
        STACKS,
    )


def _group_of(path: Path, root: str | Path | None) -> str:
    parent = path.resolve().parent
    if root is not None:
        try:
            rel = parent.relative_to(Path(root).resolve())
            if rel.parts:
                return ".".join(rel.parts)
        except ValueError:
            pass
    return parent.name


def discover(paths: Iterable[str | Path]) -> list[Case]:
    """Load every *.yaml case under the given files or folders, sorted by path.

    Raises the first CaseFormatError; ids must be unique across the selection.
    """
    cases: list[Case] = []
    seen: dict[str, str] = {}
    loaded: set[Path] = set()
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(list(p.rglob("*.yaml")) + list(p.rglob("*.yml")))
            root: Path | None = p
        elif p.exists():
            files, root = [p], None
        else:
            raise CaseFormatError(str(p), None, "path", "no such file or folder")
        for f in files:
            if f.resolve() in loaded:  # named twice (a folder and a file in it)
                continue
            loaded.add(f.resolve())
            case = load_case(f, root)
            if case.id in seen:
                raise CaseFormatError(str(f), _id_line(f), "id", f"id {case.id!r} is also used by {seen[case.id]}")
            seen[case.id] = str(f)
            cases.append(case)
    return cases


def _id_line(path: Path) -> int | None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("id:"):
            return number
    return None
