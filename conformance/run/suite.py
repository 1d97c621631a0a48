"""Which cases a command plays when it is given none: ``cases/`` here, else the suite shipped with the tool.

The shipped suite is the project's top-level ``cases/`` folder. The wheel and the
sdist carry it as package data, ``conformance/data/cases`` (pyproject.toml maps the
package ``conformance.data.cases`` onto ``cases/``); a source checkout installed in
editable mode has no such copy, and uses ``cases/`` beside the package instead.

The RFC 9293 state x event matrix (:mod:`conformance.core.rfc9293.matrix`) is data like any case, but generated,
not read from files: a command takes it when asked, by ``--matrix`` or by the pseudo-folder ``matrix`` among
the paths (``conformance list matrix -k established``). It is not in the default selection: 880 dialogues add
minutes of a target's time to a run that is otherwise as long as its longest timer.

**Long cases.** A case tagged ``long`` (:data:`LONG`) watches a timer of minutes (MUST-23: a SYN retransmitted
for 3 minutes), longer than the rest of the suite together, which plays in parallel and lasts about as long as
its longest protocol timer (the 70 s SYN-ACK schedule). A folder walk, the default suite's included, leaves the
long cases out; they play when asked for: ``--long`` adds those of the folders walked (``conformance run --long
-k long``: the long cases alone), and a long case's own file named among the paths plays it. ``conformance list``
shows them, marked; a run's header says how many it left out.
"""

from __future__ import annotations

import dataclasses
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
    #: The long cases of the folders walked too (a long case's file named plays it anyway).
    long: bool = False

    def load(self, model: str = "linux") -> list[Case]:
        """The cases that play: those of the files (checked by the loader) but the long ones not asked for, then
        the matrix's when asked, predicted by the model under `model` (:func:`matrix_model`)."""
        return self.take(model).cases

    def take(self, model: str = "linux") -> Taken:
        """The cases that play, and the long cases left out (:data:`LONG`)."""
        from ..core.loader import discover

        found = discover([str(p) for p in self.paths]) if self.paths else []
        named = {p.resolve() for p in self.paths if p.is_file()}
        plays: list[Case] = []
        left_out: list[Case] = []
        for case in found:
            asked = self.long or not is_long(case) or Path(case.path).resolve() in named
            (plays if asked else left_out).append(case)
        return Taken(plays + (matrix_cases(model) if self.matrix else []), left_out)


#: The tag of a case too long for the default suite: it plays with ``--long``, or when its file is named.
LONG = "long"
#: How to play the long cases, as a listing or a message says it.
LONG_HOW = "plays with --long, or when its file is named"


def is_long(case: Case) -> bool:
    """Whether `case` is tagged :data:`LONG`."""
    return LONG in case.tags


@dataclass(frozen=True)
class Taken:
    """The cases a command plays, and the long cases it left out."""

    cases: list[Case]
    long_left_out: list[Case]

    def note(self) -> str:
        """What a run's header or a "no case matches" message adds: how many long cases were left out, and how
        to play them; empty when none was."""
        ids = [c.id for c in self.long_left_out]
        if not ids:
            return ""
        shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        return f"{len(ids)} long case(s) left out ({shown}): --long plays them"


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


def case_source(paths: list[str] | None, matrix: bool = False, long: bool = False) -> CaseSource | None:
    """The paths given; else ``cases/`` in the current folder; else the shipped suite (None: there is none).

    The pseudo-folder ``matrix`` among `paths` (when no file or folder of that name is here), or `matrix`, adds
    the generated matrix; ``matrix`` alone is the matrix alone. `long` keeps the long cases of the folders
    walked (:data:`LONG`).
    """
    source = _case_source(paths, matrix)
    return dataclasses.replace(source, long=True) if source is not None and long else source


def _case_source(paths: list[str] | None, matrix: bool) -> CaseSource | None:
    named = bool(paths) and MATRIX in (paths or []) and not Path(MATRIX).exists()
    if named or matrix:
        rest = [p for p in paths or [] if not (named and p == MATRIX)]
        base = _case_source(rest, False) if rest or not named else CaseSource((), "")
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
