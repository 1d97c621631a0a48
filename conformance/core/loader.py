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
from .model import Case, Reference
from .outcomes import Level
from .step_parsers import STEP_KINDS, Lines, Path_, StepBuilder, field_name
from .timing import DEFAULT_TOLERANCE, Tolerance


def load_schema() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("data", "case.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _to_python(node: yaml.Node, path: Path_, lines: Lines, file: str) -> Any:
    lines.by_path[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in out:
                raise CaseFormatError(file, key_node.start_mark.line + 1, field_name(path + (key,)), "duplicate key")
            out[key] = _to_python(value_node, path + (key,), lines, file)
            lines.by_path[path + (key,)] = key_node.start_mark.line + 1  # errors point at the key
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, path + (i,), lines, file) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def _schema_error(file: str, lines: Lines, err: jsonschema.ValidationError, schema: dict[str, Any]) -> CaseFormatError:
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
    return CaseFormatError(file, lines.line(path), field_name(path), problem, valid)


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
    lines = Lines()
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


def _build(data: dict[str, Any], file: str, lines: Lines, root: str | Path | None) -> Case:
    b = StepBuilder(file, lines)
    refs = tuple(
        Reference(
            id=r["id"], doc=r["doc"], level=Level(r["level"]), says=r.get("says", ""), stack=_stack(r, file, lines, i)
        )
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


def _stack(ref: dict[str, Any], file: str, lines: Lines, index: int) -> str | None:
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
