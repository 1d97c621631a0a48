"""Which cases a command plays when it is given none: ``cases/`` here, else the suite shipped with the tool.

The shipped suite is the project's top-level ``cases/`` folder. The wheel and the
sdist carry it as package data, ``conformance/data/cases`` (pyproject.toml maps the
package ``conformance.data.cases`` onto ``cases/``); a source checkout installed in
editable mode has no such copy, and uses ``cases/`` beside the package instead.

The RFC 9293 state x event matrix (:mod:`conformance.core.rfc9293.matrix`) is data like any case, but generated,
not read from files: a command takes it when asked, by ``--matrix`` or by the pseudo-folder ``matrix`` among
the paths (``conformance list matrix -k established``). It is not in the default selection: 880 dialogues add
minutes of a target's time to a run that is otherwise as long as its longest timer.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.model import Case

#: A source checkout: the folder that holds the ``conformance`` package.
_CHECKOUT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CaseSource:
    """Where a command's cases come from, and how the run's header says it."""

    paths: tuple[Path, ...]
    description: str
    #: The generated RFC 9293 matrix too.
    matrix: bool = False

    def load(self, model: str = "linux") -> list[Case]:
        """The cases of the files (checked by the loader), then the matrix's when asked, predicted by the model
        under `model` (:func:`matrix_model`)."""
        from ..core.loader import discover

        cases = discover([str(p) for p in self.paths]) if self.paths else []
        return cases + (matrix_cases(model) if self.matrix else [])


#: The pseudo-folder that names the matrix among a command's paths.
MATRIX = "matrix"


def matrix_model(profile: str | None, target: str | None) -> str:
    """Which of the model's profiles predicts the matrix for a run: ``linux`` when the run's profile is linux
    (given, or the default of a Linux namespace or docker target), ``rfc`` for any other.

    The model knows two endpoints, RFC 9293's and Linux's departures from it (:mod:`conformance.core.rfc9293.profile`);
    a run under another stack's profile (freebsd, pytcp, ...) is predicted by the RFC, and that stack's departures
    show as failures: the matrix has no knowledge of them to excuse them.
    """
    if profile is None:
        kind = target or "embedded"
        profile = "linux" if kind == "embedded" or kind.startswith(("netns:", "docker:")) else "rfc"
    return "linux" if profile == "linux" else "rfc"


def matrix_cases(model: str = "linux") -> list[Case]:
    """The RFC 9293 matrix, predicted by the model under `model` (linux or rfc), each case checked like a file's."""
    from ..core.rfc9293 import LINUX, RFC
    from ..core.rfc9293.matrix import checked_matrix

    return checked_matrix(LINUX if model == "linux" else RFC)


def find_matrix_case(case_id: str, model: str = "linux") -> Case | None:
    """The matrix case of id `case_id` (``matrix/established/rst/seq-inside``), None if there is none."""
    if not case_id.startswith(MATRIX + "/"):
        return None
    return next((c for c in matrix_cases(model) if c.id == case_id), None)


def shipped_cases() -> Path | None:
    """The suite that comes with the tool: the package data, else a source checkout's ``cases/``; None if neither."""
    packaged = Path(str(resources.files("conformance").joinpath("data", "cases")))
    for folder in (packaged, _CHECKOUT / "cases"):
        if folder.is_dir() and any(folder.rglob("*.yaml")):
            return folder
    return None


def case_source(paths: list[str] | None, matrix: bool = False) -> CaseSource | None:
    """The paths given; else ``cases/`` in the current folder; else the shipped suite (None: there is none).

    The pseudo-folder ``matrix`` among `paths` (when no file or folder of that name is here), or `matrix`, adds
    the generated matrix; ``matrix`` alone is the matrix alone.
    """
    named = bool(paths) and MATRIX in (paths or []) and not Path(MATRIX).exists()
    if named or matrix:
        rest = [p for p in paths or [] if not (named and p == MATRIX)]
        base = case_source(rest) if rest or not named else CaseSource((), "")
        if base is None:
            return None
        words = "the generated RFC 9293 matrix"
        text = f"{base.description} and {words}" if base.description else words
        return CaseSource(base.paths, text, matrix=True)
    if paths:
        return CaseSource(tuple(Path(p) for p in paths), f"the paths given ({' '.join(paths)})")
    here = Path("cases")
    if here.is_dir():
        return CaseSource((here,), f"cases/ in the current folder ({here.resolve()})")
    shipped = shipped_cases()
    if shipped is None:
        return None
    return CaseSource((shipped,), f"the suite shipped with the tool ({shipped})")
