"""Reporters: ladders, JUnit XML, HTML, results.json, pcaps and the terminal, all reading CaseResults.

May import: :mod:`conformance.core` and this package.
"""

from __future__ import annotations

from .files import write_file
from .html import write_html
from .junit import write_junit
from .ladder import render_failure, render_ladder, summarize_failure
from .outputs import ReportPaths, check_output_paths, write_reports
from .pcap import write_pcap
from .results_json import write_results_json
from .run_info import RunInfo
from .terminal import TerminalReporter

__all__ = [
    "ReportPaths",
    "RunInfo",
    "TerminalReporter",
    "check_output_paths",
    "render_failure",
    "render_ladder",
    "summarize_failure",
    "write_file",
    "write_html",
    "write_junit",
    "write_pcap",
    "write_reports",
    "write_results_json",
]
