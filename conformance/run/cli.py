"""Command line: ``conformance run | list | explain | profiles | baseline | coverage | cleanup | agent-check``.

Exit codes: 0 every case passed, 1 a case failed, 2 a usage or environment
error (a message says what to do; never a traceback).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Few imports here, the rest where they are used: a Ctrl-C while modules load is a traceback, not our message.
from .. import __version__
from ..core.errors import ConformanceError, HarnessError
from .agent_check import add_agent_check, agent_arguments
from .selection import select
from .signals import INTERRUPTS

if TYPE_CHECKING:
    from ..core.model import Case
    from ..core.timing import Tolerance
    from ..targets.base import TargetOptions

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
__all__ = ["EXIT_ERROR", "EXIT_FAILED", "EXIT_OK", "build_parser", "main", "select"]


def _cases(args: argparse.Namespace, listing: bool = False) -> list[Case]:
    """The cases asked for: the paths given, else cases/ here, else the shipped suite (args.cases_from says which);
    the long ones only with --long or their file named, unless `listing` (a list shows them, marked)."""
    from .suite import case_source, matrix_model

    source = case_source(args.paths, matrix=args.matrix, long=args.long or listing)
    if source is None:
        raise ConformanceError("no cases/ folder here and no suite shipped with the tool: name case files or folders")
    paths = [str(p) for p in source.paths] + (["matrix"] if source.matrix else [])
    taken = source.take(matrix_model(getattr(args, "profile", None), getattr(args, "target", None)))
    args.cases_from = source.description + (f"; {taken.note()}" if taken.note() else "")
    cases = select(taken.cases, args.k)
    if not cases:
        asked = f"paths {' '.join(paths)}{', -k ' + args.k if args.k else ''}"
        raise ConformanceError(f"no case matches ({asked})" + (f"; {taken.note()}" if taken.note() else ""))
    return cases


def cmd_list(args: argparse.Namespace) -> int:
    from ..reporters.listing import print_list

    if args.target is not None:
        return _list_plan(args)
    print_list(_cases(args, listing=True), args.format)
    return EXIT_OK


def _list_plan(args: argparse.Namespace) -> int:
    """``list --target T``: which cases a run against T plays and which it skips, with the reason, before any
    target is opened (the runner's own plan)."""
    import json

    from .runner import plan_of

    plan = plan_of(_cases(args), args.target, _target_options(args), args.ip)
    if args.format == "json":
        print(json.dumps([{"id": c.id, "plays": why is None, "skipped": why} for c, why in plan], indent=2))
        return EXIT_OK
    for case, why in plan:
        print(f"plays\t{case.id}" if why is None else f"skipped\t{case.id}\t{why}")
    plays = sum(why is None for _, why in plan)
    print(f"{plays} of {len(plan)} cases play on --target {args.target}; {len(plan) - plays} skipped", file=sys.stderr)
    return EXIT_OK


def _tolerance(args: argparse.Namespace) -> Tolerance | None:
    """--tolerance-abs and --tolerance-pct (each checked by its argparse type), or None for the cases' own."""
    from ..core.timing import DEFAULT_TOLERANCE, Tolerance

    if args.tolerance_abs is None and args.tolerance_pct is None:
        return None
    absolute = args.tolerance_abs if args.tolerance_abs is not None else DEFAULT_TOLERANCE.absolute
    pct = args.tolerance_pct if args.tolerance_pct is not None else DEFAULT_TOLERANCE.percent
    return Tolerance(absolute, pct)


def _target_options(args: argparse.Namespace) -> TargetOptions:
    """--target's options, the spec checked: a wrong --target is a usage error before anything is set up."""
    from ..targets.base import TargetOptions, parse_service
    from ..targets.grammar import parse_target
    from ..targets.remote import RemoteSpec

    prober_ip = ",".join(args.prober_ip) if args.prober_ip else None  # repeated or comma-separated: one text
    services = [parse_service(text) for text in args.service or []]
    closed = {port for kind, port in services if kind == "closed"} | ({args.closed_port} - {None})
    if len(closed) > 1:
        raise HarnessError(f"two closed ports given ({', '.join(map(str, sorted(closed)))})", "give one")
    options = TargetOptions(
        iface=args.iface,
        closed_port=closed.pop() if closed else None,  # --closed-port N is --service closed=N
        prober_ip=prober_ip,
        services=tuple((kind, port) for kind, port in services if kind != "closed"),
        agent=args.agent,
        agent_token=args.agent_token,
    )
    spec = parse_target(args.target, options)
    if (args.agent or args.agent_token) and not isinstance(spec, RemoteSpec):
        raise HarnessError(
            f"--agent and --agent-token are for a remote target (HOST:PORT), not {args.target}",
            "the tool starts its own agent on embedded, netns and docker targets",
        )
    return options


def cmd_run(args: argparse.Namespace) -> int:
    from ..core.profiles import load_profile
    from ..reporters import ReportPaths, RunInfo, TerminalReporter, check_output_paths, write_reports
    from ..targets.netns import check_privileges
    from .baseline import Baseline
    from .runner import RunSettings, new_seed, run

    cases = _cases(args)
    target_options = _target_options(args)
    if args.profile:
        load_profile(args.profile)  # a bad profile is a usage error, before anything is set up
    baseline = Baseline.load(args.baseline) if args.baseline else None  # so is a bad baseline
    check_privileges()
    paths = ReportPaths.of(args.reports, args.junit, args.html)
    check_output_paths(paths.folder, paths.junit, paths.html)  # before the first packet
    seed = args.seed if args.seed is not None else new_seed()  # kept: every report records it
    settings = RunSettings(
        target=args.target,
        jobs=args.jobs,
        tolerance=_tolerance(args),
        seed=seed,
        profile=args.profile,
        strict=args.strict,
        ip=args.ip,
    )
    settings.target_options = target_options
    reporter = TerminalReporter()
    print(f"conformance {__version__}: {len(cases)} case(s) from {args.cases_from}; seed {seed}")
    started = time.time()
    with reporter.live():
        on_result = reporter.case_finished if baseline is None else lambda r: reporter.case_finished(baseline.judge(r))
        results = run(cases, settings, on_start=reporter.case_started, on_result=on_result)
    if baseline is not None:
        baseline.settle(baseline.judge(r) for r in results)  # known deviations are skips before any report
    elapsed = time.time() - started
    info = RunInfo(__version__, seed, tuple(args.argv), args.cases_from, started, elapsed)
    try:
        with INTERRUPTS.held():  # a report is written whole, or the previous one kept
            write_reports(results, paths, args.pcap, info)
    finally:
        reporter.summary(results, elapsed)  # the verdicts, even when a report could not be written
        for line in baseline.lines() if baseline is not None else []:
            print(line)
    print(f"reports: {paths.html}, {paths.junit}, {paths.results}, {paths.pcap}, {paths.ladders}")
    if settings.cancel.is_set():
        finished = sum(1 for r in results if "interrupted" not in r.message)
        print(
            f"conformance: interrupted: {finished} of {len(results)} case(s) finished, the others are reported as "
            "interrupted; everything the run made was removed",
            file=sys.stderr,
        )
        return EXIT_ERROR
    if any(r.status == "error" for r in results):
        return EXIT_ERROR
    if baseline is not None and args.strict and baseline.judged.fixed:
        return EXIT_FAILED  # a stale baseline hides nothing, but --strict wants it kept true
    return EXIT_OK if all(r.status in ("passed", "warning", "skipped") for r in results) else EXIT_FAILED


def cmd_explain(args: argparse.Namespace) -> int:
    from ..core.profiles import load_profile
    from ..core.rfctext import RfcText
    from .explain import explain, find_case
    from .suite import find_matrix_case, matrix_model

    model = matrix_model(args.profile, None)
    case = find_matrix_case(args.case, model) or find_case(args.case, Path(args.cases) if args.cases else None)
    profile = load_profile(args.profile) if args.profile else None
    print(explain(case, RfcText.load(), profile=profile), end="")
    return EXIT_OK


def cmd_profiles(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..core.params import DOCUMENTED
    from ..core.profiles import builtin_names, load_profile

    console = Console(highlight=False)
    names = [args.name] if args.name else builtin_names()
    for name in names:
        profile = load_profile(name)
        table = Table(title=f"{profile.name}: {profile.title}", title_justify="left")
        for col in ("value", "expected", "level", "source"):
            table.add_column(col)
        for key, pv in profile.values.items():
            unit = DOCUMENTED[key].unit
            shown = f"{pv.value:g}" + ("" if unit in ("count", "mode", "bool") else f" {unit}")
            table.add_row(key, shown, pv.level if pv.level != "default" else f"{profile.stack} default", pv.source)
        console.print(table)
        extra = (
            "the target's sysctls override these"
            if profile.read_sysctls
            else ("the target's sysctls fill only the values left open here")
        )
        console.print(f"  stack: {profile.stack or '(none: standards only)'}; {extra}; file: {profile.path}\n")
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    """Write the deviations of a run's results.json as a baseline, each ``why`` to fill in."""
    from ..reporters.files import write_file
    from .baseline import dump, from_results

    entries = from_results(args.source)
    text = dump(entries)
    if args.output:
        write_file(Path(args.output), text)  # whole or not at all, never through a symbolic link
        print(f"{args.output}: {len(entries)} deviation(s) from {args.source}; fill in each 'why'", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_coverage(args: argparse.Namespace) -> int:
    """Every RFC 9293 requirement id and EP rule, the cases that check it and its verdict in the last run."""
    from .coverage import cmd_coverage as coverage

    return coverage(args.paths, args.results, args.format, args.json)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from ..targets.netns import check_privileges, cleanup

    check_privileges()
    cleaned = cleanup()
    removed = cleaned.removed
    print(f"removed {len(removed)} leftover(s)" + (f": {', '.join(removed)}" if removed else ""))
    for line in cleaned.left:
        print(line)
    return EXIT_OK


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
    p_run.add_argument("--seed", type=int, help="seed for source ports and ISNs (default: random)")
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
    except Exception as exc:  # a bug of the tool: one line that says where, not a traceback
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f" at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
        print(f"conformance: internal error: {type(exc).__name__}: {exc}{where} (please report it)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
