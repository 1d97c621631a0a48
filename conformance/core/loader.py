"""Load case files: YAML -> schema check -> :class:`~conformance.core.model.Case`.

Every error names the file, the line, the field and what would be valid, so a
network engineer can fix a case without reading Python. The schema itself is a
data file (``case.schema.json``) with a description for every field.

Case files come from other people, and the tool runs as root: only a regular
file of at most :data:`MAX_FILE_BYTES` is read (not a FIFO, a device or a
symbolic link), YAML nesting and aliases are bounded (no "billion laughs", no
recursive anchors), every key is plain text, every number finite, and the
schema bounds every value. Whatever is wrong is a :class:`CaseFormatError`,
never a traceback or a hang.
"""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import stat
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .checks import undocumented
from .errors import CaseFormatError
from .model import Case, Reference
from .outcomes import Level
from .step_parsers import STEP_KINDS, Lines, Path_, StepBuilder, field_name
from .timing import DEFAULT_TOLERANCE, Tolerance
from .values import short

#: The largest case file read (the shipped ones are a few kB).
MAX_FILE_BYTES = 1_000_000
#: The deepest YAML nesting (a case needs five or six levels).
MAX_DEPTH = 40
#: How many aliases (``*name``) a file may use, and how many values the document may hold once they are
#: expanded: a "billion laughs" file is a few hundred bytes with nine levels of ten aliases each.
MAX_ALIASES = 100
MAX_VALUES = 100_000


def load_schema() -> dict[str, Any]:
    text = resources.files("conformance").joinpath("data", "case.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


def _is_integer(checker: object, instance: object) -> bool:
    """JSON Schema's "integer" takes 1.0; a case file's integers are written as integers."""
    return isinstance(instance, int) and not isinstance(instance, bool)


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


@functools.cache
def _validator() -> Any:
    return _Validator(load_schema())


def read_case_file(file: str, limit: int = MAX_FILE_BYTES) -> str:
    """The text of a case file (or of another file the tool reads: a profile, a baseline, a results.json): a
    regular file (not a FIFO, a device, a folder or a symbolic link) of at most `limit` octets, in UTF-8;
    CaseFormatError otherwise. Opening never blocks."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CaseFormatError(file, None, "file", "a symbolic link: name the case file it points to") from None
        raise CaseFormatError(file, None, "file", f"cannot read: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CaseFormatError(file, None, "file", "not a regular file (a FIFO, a device or a folder?)")
        data = b""
        while len(data) <= limit:
            chunk = os.read(fd, limit + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise CaseFormatError(file, None, "file", f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise CaseFormatError(file, None, "file", f"larger than {limit} octets: not a file the tool reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise CaseFormatError(file, None, "file", "not UTF-8 text") from None


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing nodes only, with nesting and aliases counted."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark else None
        if isinstance(event, yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise CaseFormatError(self.file, line, "YAML", f"more than {MAX_ALIASES} aliases (*name)")
        if self.depth >= MAX_DEPTH:
            raise CaseFormatError(self.file, line, "YAML", f"nested more than {MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_MAP, _SEQ = "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"


class _Converter:
    """Composed YAML nodes -> Python values, recording the line of each path; aliases are expanded at most
    :data:`MAX_VALUES` values in all, and an alias inside the node it names is an error."""

    def __init__(self, loader: _BoundedLoader, lines: Lines) -> None:
        self.loader, self.file, self.lines = loader, loader.file, lines
        self.values = 0
        self.open: set[int] = set()  # the nodes being converted: an alias to one of them is a cycle

    def error(self, node: yaml.Node, path: Path_, problem: str) -> CaseFormatError:
        return CaseFormatError(self.file, node.start_mark.line + 1, field_name(path), problem)

    def convert(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.by_path[path] = node.start_mark.line + 1
        self.values += 1
        if self.values > MAX_VALUES:
            raise self.error(node, ("YAML",), f"more than {MAX_VALUES} values once aliases are expanded")
        if id(node) in self.open:
            raise self.error(node, path, "an alias (*name) inside the value it names: the value would never end")
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if node.tag not in (_MAP, _SEQ):
            raise self.error(node, path, f"the tag {short(node.tag, 100)} is not allowed in a case file")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            return [self.convert(v, path + (i,)) for i, v in enumerate(node.value)]
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error(key_node, path, "a key is a plain word, not a list or a mapping")
            key = key_node.value
            if key in out:
                raise CaseFormatError(
                    self.file, key_node.start_mark.line + 1, field_name(path + (key,)), "duplicate key"
                )
            out[key] = self.convert(value_node, path + (key,))
            self.lines.by_path[path + (key,)] = key_node.start_mark.line + 1  # errors point at the key
        return out

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self.error(node, path, str(getattr(exc, "problem", None) or exc)) from None
        except (ValueError, OverflowError):  # e.g. a date that does not exist, an integer of 5000 digits
            raise self.error(node, path, f"{short(node.value)} is not a value a case file can hold") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, path, f"{node.value!r}: a number must be finite, not NaN or infinity")
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate, written as an escape ("\\ud800")
                raise self.error(node, path, "text that is not valid Unicode (a lone surrogate escape?)") from None
        return value


def _parse(text: str, file: str) -> tuple[Any, Lines]:
    """The YAML document of `text` as Python values, with the line of each path."""
    try:  # the reader checks the characters as it is made: a NUL or another control character fails here
        loader = _BoundedLoader(text, file)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at column {mark.column + 1}" if mark else ""
        line = mark.line + 1 if mark else None
        raise CaseFormatError(file, line, "YAML", f"a character YAML does not allow{where}: {exc}") from None
    try:
        node = loader.get_single_node()
        lines = Lines()
        if node is None:  # nothing but comments: the caller says whether that is a valid file
            return None, lines
        return _Converter(loader, lines).convert(node, ()), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CaseFormatError(file, mark.line + 1 if mark else None, "YAML", str(problem)) from None
    finally:
        loader.dispose()


def parse_yaml(text: str, file: str) -> Any:
    """The YAML document of another file the tool reads (a profile, a baseline), read as a case file is: bounded
    nesting, aliases and values, no tags, keys as text, CaseFormatError naming `file` and the line; None when it
    holds nothing (only comments)."""
    return _parse(text, file)[0]


def _schema_error(file: str, lines: Lines, err: jsonschema.ValidationError) -> CaseFormatError:
    path: Path_ = tuple(err.absolute_path)
    valid: list[str] = []
    problem = err.message
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        if extra:
            path = path + (extra[0],)
            problem = f"unknown field {short(extra[0])}"
            if path[-2:-1] == ("sysctl",):
                problem = f"{short(extra[0])} is not a sysctl the tool knows (net.ipv4. is implied)"
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
    elif err.validator in ("minimum", "maximum"):
        low, high = err.schema.get("minimum"), err.schema.get("maximum")
        problem = f"{short(err.instance)} is out of range"
        valid = [f"{low}-{high}" if low is not None and high is not None else f"{err.validator} {err.validator_value}"]
    elif err.validator in ("maxLength", "maxItems", "minItems"):
        problem = f"{err.validator} is {err.validator_value}"
    elif err.validator == "type":
        problem = f"{short(err.instance)} is not of type {' or '.join(map(str, _listed(err.validator_value)))}"
    if len(problem) > 300:
        problem = problem[:297] + "..."
    return CaseFormatError(file, lines.line(path), field_name(path), problem, valid)


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def load_case(path: str | Path, root: str | Path | None = None) -> Case:
    """Load and check one case file; raises :class:`CaseFormatError`."""
    return _load(path, root)[0]


def _load(path: str | Path, root: str | Path | None) -> tuple[Case, Lines]:
    file = str(path)
    data, lines = _parse(read_case_file(file), file)
    if data is None:
        raise CaseFormatError(file, None, "file", "empty case file")
    if not isinstance(data, dict):
        raise CaseFormatError(file, 1, "(top level)", "a case file is a mapping (id:, title:, refs:, steps:)")
    errors = sorted(
        _validator().iter_errors(data),
        key=lambda e: (lines.line(tuple(e.absolute_path)) or 0, -len(e.absolute_path)),
    )
    if errors:
        raise _schema_error(file, lines, _best(errors))
    return _build(data, file, lines, root), lines


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
    case = Case(
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
    _every_check_documented(case, file, lines)
    return case


def _every_check_documented(case: Case, file: str, lines: Lines) -> None:
    """Each check a step makes answers to a document (core.checks); a check with none is an error, not silently
    given the case's first ref."""
    for i, step in enumerate(case.steps):
        missing = undocumented(case, step)
        if missing:
            names = ", ".join(str(c) for c in missing)
            raise CaseFormatError(
                file,
                lines.line(("steps", i)),
                f"steps[{i}].ref",
                f"no document for the {names} check(s) of this step: the case has several refs and none is named; "
                f"write ref: ID, or ref: {{{missing[0]}: ID}}",
                [r.id for r in case.refs],
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
            case, lines = _load(f, root)
            if case.id in seen:
                raise CaseFormatError(
                    str(f), lines.line(("id",)), "id", f"id {case.id!r} is also used by {seen[case.id]}"
                )
            seen[case.id] = str(f)
            cases.append(case)
    return cases
