"""The bodies of the ``conformance`` subcommands: what ``run``, ``list``, ``explain``, ``profiles``, ``baseline``,
``coverage`` and ``cleanup`` do with their parsed arguments (:mod:`conformance.run.cli` parses them).

Each ``cmd_*`` takes the :class:`argparse.Namespace` and returns the exit code: :data:`EXIT_OK` every case passed,
:data:`EXIT_FAILED` a case failed, :data:`EXIT_ERROR` a usage or environment error. A usage error is raised as a
:class:`~conformance.core.errors.ConformanceError` or :class:`~conformance.core.errors.HarnessError`, which the
command line prints as one line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Few imports here, the rest where they are used: a Ctrl-C while modules load is a traceback, not our message.
from .. import __version__
from ..core.errors import ConformanceError, HarnessError
from .selection import select
from .signals import INTERRUPTS

if TYPE_CHECKING:
    from ..core.model import Case
    from ..core.timing import Tolerance
    from ..targets.base import TargetOptions

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


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
    if baseline is not None:
        baseline.check_keys(cases)  # and an entry that names no step of its case
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
