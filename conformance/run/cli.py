"""Command line: ``conformance run | list | explain | profiles | baseline | coverage | cleanup | agent-check``.

The arguments each subcommand takes, each checked as it is parsed (a bounded number, a port, a percentage, a
duration), and :func:`main`, which runs the subcommand's body (:mod:`conformance.run.commands`) and turns every
error into one line. Exit codes: 0 every case passed, 1 a case failed, 2 a usage or environment error (a message
says what to do; never a traceback).
"""

from __future__ import annotations

import argparse
import math
import re
import sys

# Few imports here, the rest where they are used: a Ctrl-C while modules load is a traceback, not our message.
from .. import __version__
from ..core.errors import ConformanceError, HarnessError
from .agent_check import add_agent_check, agent_arguments
from .commands import (
    EXIT_ERROR,
    EXIT_FAILED,
    EXIT_OK,
    cmd_baseline,
    cmd_cleanup,
    cmd_coverage,
    cmd_explain,
    cmd_list,
    cmd_profiles,
    cmd_run,
)
from .selection import select
from .signals import INTERRUPTS

__all__ = ["EXIT_ERROR", "EXIT_FAILED", "EXIT_OK", "build_parser", "main", "select"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="conformance", description="TCP conformance tests as packet dialogues.")
    ap.add_argument("--version", action="version", version=f"conformance {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    _add_run(sub)
    _add_list(sub)
    _add_explain(sub)
    _add_profiles(sub)
    _add_baseline(sub)
    _add_coverage(sub)
    _add_cleanup(sub)
    add_agent_check(sub)
    return ap


_Subparsers = argparse._SubParsersAction  # what add_subparsers returns

#: The most cases played at once that --jobs takes.
MAX_JOBS = 1024
_DIGITS = re.compile(r"[0-9]{1,10}")  # ASCII: int() also takes other scripts' digits


def _bounded_int(text: str, low: int, high: int, what: str) -> int:
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not {what}: give a whole number from {low} to {high}")
    return int(text)


def _jobs(text: str) -> int:
    """--jobs: 1 to MAX_JOBS cases at once."""
    return _bounded_int(text, 1, MAX_JOBS, "a number of cases")


def _port(text: str) -> int:
    return _bounded_int(text, 1, 65535, "a TCP port")


#: The largest --seed: a run draws 8 random octets (results.json's seed is a whole number from 0).
MAX_SEED = 2**64 - 1


def _seed(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,20}", text) or int(text) > MAX_SEED:  # ASCII digits: not "-1", "1_0", "٣"
        raise argparse.ArgumentTypeError(f"{text[:30]!r} is not a seed: give a whole number from 0 to {MAX_SEED}")
    return int(text)


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 100:  # also NaN and infinity
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a percentage: give a number from 0 to 100")
    return value


def _duration(text: str) -> float:
    from ..core.values import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _selection_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="*", help="case files or folders (default: cases/ here, else the suite shipped with the tool)"
    )
    p.add_argument("-k", metavar="EXPR", help="select cases by words of id/title/group/tags: 'synack and not ci'")
    p.add_argument(
        "--matrix",
        action="store_true",
        help="add the generated RFC 9293 state x event matrix (880 cases; the path `matrix` names it alone)",
    )
    p.add_argument(
        "--long",
        action="store_true",
        help="add the cases tagged long (timers of minutes, e.g. MUST-23's 3 minutes of SYNs): a folder walk leaves "
        "them out; a long case's file named plays it",
    )


def _add_run(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_run = sub.add_parser("run", help="play cases against a target and write reports")
    _selection_arguments(p_run)
    _target_arguments(p_run)
    p_run.add_argument(
        "--jobs",
        type=_jobs,
        default=0,
        help="cases played at once (default: all, up to 64; waiting on a timer costs no CPU)",
    )
    _report_arguments(p_run)
    _judging_arguments(p_run)
    p_run.set_defaults(func=cmd_run)


def _target_arguments(p_run: argparse.ArgumentParser) -> None:
    """run: which target, and how to reach it."""
    p_run.add_argument(
        "--target",
        default="embedded",
        help="embedded (a fresh Linux namespace, the default), netns:NAME (a namespace you made), HOST:PORT (a "
        "remote host: 198.18.2.2:80, [2001:2:0:2::2]:80 or both, 198.18.2.2,[2001:2:0:2::2]:80), "
        "tap:IFNAME:ADDR[:PORT] (a stack behind a TAP device; ADDR like HOST), link:IFNAME:ADDR[:PORT] (a stack on "
        "the other side of interface IFNAME, e.g. a TAP device a user-space stack holds) or docker:CONTAINER[:PORT] "
        "(a running container, from its host)",
    )
    p_run.add_argument("--iface", metavar="IF", help="remote target: the prober's interface (default: the route's)")
    agent_arguments(p_run, "remote target: ")
    p_run.add_argument(
        "--service",
        metavar="KIND=PORT",
        action="append",
        help="remote/tap/link/docker target: a service it has, played by the cases that need one of its kind "
        "(listen, banner, echo, http, closed); repeat it: --service http=80 --service echo=7 --service closed=9",
    )
    p_run.add_argument(
        "--closed-port",
        type=_port,
        metavar="N",
        help="remote/tap/link/docker target: a port that must be closed there (default 9); as --service closed=N",
    )
    p_run.add_argument(
        "--prober-ip",
        metavar="IP",
        action="append",
        help="tap/link/docker target: the prober's address (default: ADDR's x.1 and ::1; docker: a free one of "
        "its subnet); for tap and link, one of each family: repeat the option or separate them by a comma",
    )


def _report_arguments(p_run: argparse.ArgumentParser) -> None:
    """run: where the reports go."""
    p_run.add_argument("--junit", metavar="PATH", help="JUnit XML file (default: REPORTS/junit.xml)")
    p_run.add_argument(
        "--html", metavar="PATH", help="HTML report, one self-contained file (default: REPORTS/index.html)"
    )
    p_run.add_argument("--reports", metavar="DIR", default="reports", help="report folder (default: reports)")
    p_run.add_argument("--pcap", choices=("all", "failed", "none"), default="all", help="pcaps to write (default: all)")


def _judging_arguments(p_run: argparse.ArgumentParser) -> None:
    """run: tolerances, seed, profile, strictness and address families."""
    p_run.add_argument(
        "--tolerance-abs",
        type=_duration,
        metavar="DURATION",
        help="override every case's absolute tolerance (e.g. 50ms; at most 1 hour)",
    )
    p_run.add_argument(
        "--tolerance-pct", type=_percent, metavar="PERCENT", help="override every case's percent tolerance (0-100)"
    )
    p_run.add_argument(
        "--seed", type=_seed, help="seed for source ports and ISNs, as a report gives it (default: random)"
    )
    p_run.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="expectations and how binding they are: rfc, linux, freebsd, lwip, windows, pytcp or a profile file "
        "(default: linux for a Linux namespace target, rfc for others); see `conformance profiles`",
    )
    p_run.add_argument(
        "--strict",
        action="store_true",
        help="a violated SHOULD fails the case instead of warning; a --baseline entry no longer seen fails the run",
    )
    p_run.add_argument(
        "--baseline",
        metavar="FILE",
        help="known deviations (YAML: case, check, why, until): reported as such, they do not fail the run; "
        "write one with `conformance baseline`",
    )
    p_run.add_argument(
        "--ip",
        choices=("4", "6", "both"),
        default="both",
        help="address family: 4 (198.18.0.0/15), 6 (2001:2::/48; cases get the suffix .ipv6) or both "
        "(default: both; on a target without IPv6 the .ipv6 copies are skipped)",
    )


def _add_list(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_list = sub.add_parser("list", help="list cases and the documents they check")
    _selection_arguments(p_list)
    p_list.add_argument(
        "--format",
        choices=("auto", "table", "plain", "json"),
        default="auto",
        help="table (on a terminal, the default there), plain (tab-separated lines, never cut: the default "
        "elsewhere) or json",
    )
    _target_arguments(p_list)
    p_list.add_argument(
        "--ip", choices=("4", "6", "both"), default="both", help="with --target: the address families (as run's)"
    )
    # Without --target, list the cases; with it, say which a run against it would play (and why not the others).
    p_list.set_defaults(func=cmd_list, target=None)


def _add_explain(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_explain = sub.add_parser(
        "explain", help="show a case's dialogue, the RFC text it checks and the schedules it would expect"
    )
    p_explain.add_argument("case", metavar="CASE", help="a case id (searched under --cases) or a case file")
    p_explain.add_argument(
        "--cases", metavar="DIR", help="where to look for the id (default: cases/ here, else the shipped suite)"
    )
    p_explain.add_argument("--profile", metavar="NAME|FILE", help="derive the schedules with this profile's values")
    p_explain.set_defaults(func=cmd_explain)


def _add_profiles(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_prof = sub.add_parser("profiles", help="list the stack profiles, their values, levels and sources")
    p_prof.add_argument("name", nargs="?", help="one profile (default: all)")
    p_prof.set_defaults(func=cmd_profiles)


def _add_baseline(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_base = sub.add_parser("baseline", help="write a baseline of known deviations from a run's results.json")
    p_base.add_argument(
        "--from", dest="source", metavar="RESULTS", default="reports/results.json", help="default: reports/results.json"
    )
    p_base.add_argument("-o", "--output", metavar="FILE", help="the baseline to write (default: standard output)")
    p_base.set_defaults(func=cmd_baseline)


def _add_coverage(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_cov = sub.add_parser(
        "coverage", help="every RFC 9293 requirement id and EP rule: its class, the cases that check it, its verdict"
    )
    p_cov.add_argument("paths", nargs="*", help="case files or folders (default: cases/ here, else the shipped suite)")
    p_cov.add_argument(
        "--results",
        metavar="FILE",
        help="the run whose verdicts to show (default: reports/results.json, when there is one)",
    )
    p_cov.add_argument("--json", metavar="FILE", help="also write the coverage as JSON to FILE")
    p_cov.add_argument(
        "--format",
        choices=("auto", "table", "plain", "json"),
        default="auto",
        help="table (on a terminal, the default there), plain (tab-separated lines: the default elsewhere) or json",
    )
    p_cov.set_defaults(func=cmd_coverage)


def _add_cleanup(sub: _Subparsers[argparse.ArgumentParser]) -> None:
    p_clean = sub.add_parser("cleanup", help="remove namespaces and nft tables left by a run that was killed (SIGKILL)")
    p_clean.set_defaults(func=cmd_cleanup)


def entry() -> None:
    """The ``conformance`` command: :func:`main`, then exit with its code, whatever signal comes meanwhile."""
    code = main()
    INTERRUPTS.ignore_from_now()
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    INTERRUPTS.install()
    try:
        args = build_parser().parse_args(argv)  # in the try: a Ctrl-C while it runs is our message too
        args.argv = ["conformance", *(argv if argv is not None else sys.argv[1:])]  # the reports record it
        code: int = args.func(args)
        return code
    except HarnessError as exc:
        print(f"conformance: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ConformanceError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("conformance: interrupted (before any target was made, or after every one was removed)", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        if exc.filename is None:  # not about a file: the tool's bug, or the environment's
            return _internal(exc)
        from .results_file import short_path  # a file named on the command line (or in a file it names)

        print(f"conformance: error: {short_path(str(exc.filename))}: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        return _internal(exc)


def _internal(exc: BaseException) -> int:
    """A bug of the tool: one line that says where, not a traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
    print(f"conformance: internal error: {type(exc).__name__}: {exc}{where} (please report it)", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
