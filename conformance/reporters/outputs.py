"""A run's reports: where they go, checking those paths before the run, writing them all after it.

Layout (``REPORTS`` is ``--reports``; ``--junit`` and ``--html`` may name other files)::

    REPORTS/junit.xml  REPORTS/index.html  REPORTS/results.json  REPORTS/ladders/<case id>.txt
    REPORTS/pcap/<case id>.pcap

Every file goes through :func:`~conformance.reporters.files.write_file`: whole or
not at all, never through a symbolic link.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import HarnessError
from ..core.results import CaseResult
from .files import check_folder, check_replaceable, check_subfolder, write_file
from .html import write_html
from .junit import write_junit
from .ladder import render_ladder
from .pcap import write_pcap
from .results_json import write_results_json
from .run_info import RunInfo


@dataclass(frozen=True)
class ReportPaths:
    """Where the reports of one run go."""

    folder: Path
    junit: Path
    html: Path

    @classmethod
    def of(cls, reports: str | Path, junit: str | None = None, html: str | None = None) -> ReportPaths:
        """The paths the options name: `junit` and `html` default to files in the `reports` folder."""
        folder = Path(reports)
        return cls(
            folder,
            Path(junit) if junit else folder / "junit.xml",
            Path(html) if html else folder / "index.html",
        )

    @property
    def ladders(self) -> Path:
        return self.folder / "ladders"

    @property
    def pcap(self) -> Path:
        return self.folder / "pcap"

    @property
    def results(self) -> Path:
        """``results.json``: the run's results for programs (see :mod:`.results_json`)."""
        return self.folder / "results.json"


def check_output_paths(reports_dir: Path, junit: Path, html: Path) -> None:
    """Before the run: every report can be written where it should (the folders are created).

    Raises :class:`HarnessError` saying what to do: ``--reports`` naming a file, a
    device, a symbolic link or a place that cannot be written; ``--junit`` or
    ``--html`` naming a folder or a device; ladders/ or pcap/ being a link.
    """
    _check("--reports", check_folder, reports_dir)
    for sub in (reports_dir / "ladders", reports_dir / "pcap"):
        _check("--reports", check_subfolder, sub)
    for option, path in (("--junit", junit), ("--html", html), ("--reports", reports_dir / "results.json")):
        _check(option, check_replaceable, path)
        _check(option, check_folder, path.parent)


def _check(option: str, check: Callable[[Path], None], path: Path) -> None:
    """Run `check` on `path`; its error names the option the path came from."""
    try:
        check(path)
    except HarnessError as exc:
        raise HarnessError(f"{option}: {exc.problem}", exc.hint) from None


def write_reports(
    results: Sequence[CaseResult], paths: ReportPaths, pcap: str = "all", run: RunInfo | None = None
) -> None:
    """JUnit, pcaps (`pcap`: all, failed or none), ladders, the HTML report and, given `run`, results.json."""
    write_junit(list(results), paths.junit, run=run)
    for r in results:
        if pcap == "all" or (pcap == "failed" and not r.passed):
            write_pcap(r, paths.pcap)
        if r.verdict is not None:
            write_file(paths.ladders / f"{r.case.id}.txt", render_ladder(r) + "\n")
    if run is not None:
        write_results_json(results, paths.results, run)
    write_html(list(results), paths.html, paths.pcap, run=run)
