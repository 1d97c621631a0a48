"""Which cases a command plays when it is given none: ``cases/`` here, else the suite shipped with the tool.

The shipped suite is the project's top-level ``cases/`` folder. The wheel and the
sdist carry it as package data, ``conformance/data/cases`` (pyproject.toml maps the
package ``conformance.data.cases`` onto ``cases/``); a source checkout installed in
editable mode has no such copy, and uses ``cases/`` beside the package instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: A source checkout: the folder that holds the ``conformance`` package.
_CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CaseSource:
    """Where a command's cases come from, and how the run's header says it."""

    paths: tuple[Path, ...]
    description: str


def shipped_cases() -> Path | None:
    """The suite that comes with the tool: the package data, else a source checkout's ``cases/``; None if neither."""
    packaged = Path(str(resources.files("conformance").joinpath("data", "cases")))
    for folder in (packaged, _CHECKOUT / "cases"):
        if folder.is_dir() and any(folder.rglob("*.yaml")):
            return folder
    return None


def case_source(paths: list[str] | None) -> CaseSource | None:
    """The paths given; else ``cases/`` in the current folder; else the shipped suite (None: there is none)."""
    if paths:
        return CaseSource(tuple(Path(p) for p in paths), f"the paths given ({' '.join(paths)})")
    here = Path("cases")
    if here.is_dir():
        return CaseSource((here,), f"cases/ in the current folder ({here.resolve()})")
    shipped = shipped_cases()
    if shipped is None:
        return None
    return CaseSource((shipped,), f"the suite shipped with the tool ({shipped})")
