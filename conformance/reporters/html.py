"""One self-contained HTML report of a run: a summary, the requirements it checks, then every case.

The file needs nothing but a browser to read (no script, no network, no other
file): CSS is inline, the ladders and retransmission plots are inline SVG. It
prints: figures and tables are kept on one page where they fit.

For each case it shows what the JUnit report carries (references, target,
parameters and where they came from, the failure with its expected-versus-
observed fields) and two drawings:

* the **ladder**: two lifelines, ``us`` and ``target``, one arrow per segment
  of the trace, labelled like the text ladder (flags, seq/ack relative to the
  ISNs, len; the rows come from :func:`~conformance.reporters.ladder.ladder_rows`).
  The failing segment is red;
* for each ``withhold`` step reached, the **retransmission plot**: the gap of
  each retransmission against the expected gap of the schedule and its
  tolerance band, with the numbers in a table below.

Three layers, one job each: :mod:`.html_views` and :mod:`.html_figures`
compute what to show (view models: dataclasses of text and numbers), the
jinja2 templates in ``templates/`` lay it out as markup, and this module puts
the two together. :mod:`.html_coverage` computes the "Requirement coverage"
section from :mod:`conformance.core.coverage`, as ``conformance coverage``
does. Autoescape is on: every text of a case (titles, ids, messages) is
escaped by the templates, never by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from ..core.results import CaseResult
from .files import write_file
from .html_coverage import coverage_view
from .html_figures import ScheduleCheck, ladder_view, schedule_checks, schedule_plot
from .html_views import STATUSES, case_view, slug, summary_view
from .ladder import FAIL_MARK
from .run_info import RunInfo

__all__ = ["html_report", "ladder_svg", "schedule_checks", "schedule_svg", "write_html"]


def _px(value: float, digits: int = 1) -> str:
    """A coordinate in the SVG: one decimal by default."""
    return f"{value:.{digits}f}"


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("conformance.reporters", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["px"] = _px
    env.globals.update(known_statuses=STATUSES, fail_mark=FAIL_MARK)
    return env


_ENV = _environment()


def ladder_svg(result: CaseResult) -> str:
    """The case's packet exchange as an inline SVG ladder ("" when no packet was exchanged)."""
    ladder = ladder_view(result)
    return _ENV.get_template("ladder.svg.j2").render(ladder=ladder) if ladder is not None else ""


def schedule_svg(check: ScheduleCheck) -> str:
    """Measured gaps against the expected ones and their tolerance band, log scale ("" when nothing to plot)."""
    plot = schedule_plot(check)
    return _ENV.get_template("schedule.svg.j2").render(plot=plot) if plot is not None else ""


def html_report(
    results: Sequence[CaseResult],
    html_dir: Path,
    pcap_folder: Path | None,
    title: str = "",
    run: RunInfo | None = None,
) -> str:
    """The report as one HTML document; pcap links are relative to `html_dir`; `run` goes in the header."""
    slugs = [slug(i, r.case.id) for i, r in enumerate(results, 1)]
    return (
        _ENV.get_template("report.html.j2").render(
            heading=title or "TCP conformance report",
            stamp=datetime.now().isoformat(sep=" ", timespec="seconds"),
            run=run,
            summary=summary_view(results, slugs),
            coverage=coverage_view(results, slugs),
            cases=[case_view(r, s, html_dir, pcap_folder) for r, s in zip(results, slugs, strict=True)],
        )
        + "\n"
    )


def write_html(results: list[CaseResult], path: Path, pcap_folder: Path | None, run: RunInfo | None = None) -> None:
    """Write the HTML report of `results` to `path` (whole, never through a link), creating its folder.

    Each case links to ``pcap_folder/<id>.pcap`` (relative to the file) when that pcap exists.
    """
    path = Path(path)
    write_file(path, html_report(results, path.parent, pcap_folder, run=run))
