"""Stack profiles: which documented values a run expects, and how binding each is.

A profile is a YAML data file (``conformance/data/profiles/*.yaml``; copy one and pass
its path to ``--profile`` for your own stack) naming a stack, whether the
target's sysctls override its values, and the values with their level and
source. :func:`outcome` turns a failed check into an outcome under a profile:

* MUST / MUST NOT violated: the case fails;
* SHOULD / SHOULD NOT violated: a warning (a failure with ``--strict``);
* MAY: a detected feature, never a failure;
* a stack's documented default: a failure only under the profile of that stack,
  a note under any other.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import CaseFormatError
from .loader import parse_yaml, read_case_file
from .model import LEVELS, Reference
from .outcomes import Level, Outcome
from .params import DOCUMENTED, Profile, ProfileValue

__all__ = ["FAIL", "INFO", "WARN", "Profile", "ProfileValue", "builtin_names", "load_profile", "outcome"]

FAIL, WARN, INFO = Outcome.FAIL, Outcome.WARN, Outcome.INFO


def outcome(ref: Reference | None, profile: Profile | None, strict: bool = False) -> Outcome:
    """fail, warn or info for a check that did not hold; see the module docstring."""
    if ref is None or ref.level in (Level.MUST, Level.MUST_NOT):
        return FAIL
    if ref.level in (Level.SHOULD, Level.SHOULD_NOT):
        return FAIL if strict else WARN
    if ref.level == Level.MAY:
        return INFO
    # a stack's documented default
    stack = profile.stack if profile is not None else "linux"
    return FAIL if stack is not None and ref.stack == stack else INFO


def builtin_names() -> list[str]:
    folder = resources.files("conformance").joinpath("data", "profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name, or a profile file by path."""
    if name_or_path in builtin_names():
        path = str(resources.files("conformance").joinpath("data", "profiles", f"{name_or_path}.yaml"))
    elif Path(name_or_path).is_file():
        path = name_or_path
    else:
        raise CaseFormatError(name_or_path, None, "profile", "no such profile", builtin_names())
    data: Any = parse_yaml(read_case_file(path), path)  # a regular file of bounded size, read as a case file
    if not isinstance(data, dict) or "name" not in data:
        raise CaseFormatError(path, 1, "(top level)", "a profile has name:, title:, stack:, read_sysctls:, values:")
    unknown = set(data) - {"name", "title", "stack", "read_sysctls", "values"}
    if unknown:
        raise CaseFormatError(
            path, None, sorted(unknown)[0], "unknown field", ["name", "title", "stack", "read_sysctls", "values"]
        )
    values: dict[str, ProfileValue] = {}
    if not isinstance(data.get("values") or {}, dict):
        raise CaseFormatError(path, None, "values", "a mapping of documented parameters to {value, level, source}")
    for key, spec in (data.get("values") or {}).items():
        if key not in DOCUMENTED:
            raise CaseFormatError(path, None, f"values.{key}", "not a documented parameter", sorted(DOCUMENTED))
        if not isinstance(spec, dict) or "value" not in spec or "source" not in spec:
            raise CaseFormatError(path, None, f"values.{key}", "needs value:, level: and source:")
        if extra := sorted(set(spec) - {"value", "level", "source"}):  # a misspelt level: must not go unnoticed
            raise CaseFormatError(path, None, f"values.{key}.{extra[0]}", "unknown field", ["value", "level", "source"])
        level = spec.get("level", "default")
        if level not in LEVELS:
            raise CaseFormatError(path, None, f"values.{key}.level", f"{level!r} is not a level", LEVELS)
        values[key] = ProfileValue(_value(path, key, spec["value"]), Level(level), _text(path, spec, "source", key))
    if not isinstance(data.get("read_sysctls", False), bool):
        raise CaseFormatError(path, None, "read_sysctls", f"{_short(data['read_sysctls'])} is not true or false")
    return Profile(
        name=_text(path, data, "name"),
        title=_text(path, data, "title") if "title" in data else _text(path, data, "name"),
        stack=_text(path, data, "stack") if data.get("stack") is not None else None,
        read_sysctls=data.get("read_sysctls", False),
        values=values,
        path=path,
    )


#: The longest text a profile's name, title, stack or source may be.
MAX_TEXT = 2000


def _text(path: str, data: dict[str, Any], name: str, key: str = "") -> str:
    """`data[name]`: a non-empty text of at most MAX_TEXT characters (`key`: the value it is the source of)."""
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_TEXT:
        field = f"values.{key}.{name}" if key else name
        raise CaseFormatError(path, None, field, f"{_short(value)} is not a text of 1 to {MAX_TEXT} characters")
    return value


def _short(value: object) -> str:
    return repr(value)[:40] if isinstance(value, str | int | float | bool) or value is None else type(value).__name__


#: The largest value a profile may give (a day, in seconds; far above any count or timer a stack documents).
MAX_VALUE = 86400.0


def _value(path: str, key: str, raw: object) -> float:
    """A profile value: a finite number from 0 to :data:`MAX_VALUE`, a whole one for a count."""
    field = f"values.{key}.value"
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CaseFormatError(path, None, field, f"{_short(raw)} is not a number")
    if isinstance(raw, int) and not 0 <= raw <= MAX_VALUE:  # before float(): a huge int cannot be one
        raise CaseFormatError(path, None, field, f"{_short(raw)} is out of range: a number from 0 to {MAX_VALUE:g}")
    value = float(raw)
    if not math.isfinite(value) or not 0 <= value <= MAX_VALUE:
        bound = f"a finite number from 0 to {MAX_VALUE:g}"
        raise CaseFormatError(path, None, field, f"{_short(raw)} is out of range: {bound}")
    if DOCUMENTED[key].unit in ("count", "bool", "mode") and not value.is_integer():
        raise CaseFormatError(path, None, field, f"{_short(raw)}: a {DOCUMENTED[key].unit} is a whole number")
    return value
