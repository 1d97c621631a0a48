"""The pytest plugin: ``pytest --conformance-target TARGET PATHS`` plays case files as pytest items.

Installed with the package (entry point ``pytest11``), and **off unless** ``--conformance-target`` is given: only
then is a YAML file collected, so a project that merely has the tool installed never sees its YAML taken for cases.

Theory of operation. Every ``*.yaml``/``*.yml`` under the paths given is a case file, as for ``conformance run
PATHS``; each case is one item (over IPv6 as well with ``--conformance-ip``: ``ID.ipv6``), with the case's tags as
markers. Once collection is over (and ``-k``/``-m`` have deselected what they do), the cases of the selected items
are played together in one :func:`conformance.run.runner.run`, before the first item runs: the same plan, seed,
targets, parallel play and verdicts as ``conformance run``. Then each item reports its own result:

* passed: a pass; a warning (a SHOULD the target did not keep): a pass, the findings issued as a
  :class:`ConformanceWarning` and recorded as properties (like the tool's own JUnit);
* failed: a failure whose text is the tool's: the failure, expected versus observed, and the ladder;
* skipped (a case this target cannot play): a skip with the reason;
* a harness error (the case's, or the run's: no root, a target that cannot be set up): an error.

Why the whole run up front rather than a case per item: the cases play at once (a suite lasts as long as its
longest timer, not the sum of them), a case that sets sysctls gets its own target exactly as in a run, and there is
one code path to the verdicts. What it costs: ``-x`` stops the reporting at the first failure, not the play.
"""

from __future__ import annotations

import re
import signal
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..core.model import Case
    from ..core.results import CaseResult
    from .session import RunSettings

CASE_SUFFIXES = (".yaml", ".yml")
#: A tag that is a marker name too (what ``-m`` can name); every tag is a ``-k`` keyword either way.
_MARKER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


class ConformanceWarning(UserWarning):
    """A SHOULD the target did not keep: the item passes, and this says what was seen (``-W error`` fails it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "TCP conformance cases (the conformance tool)")
    group.addoption(
        "--conformance-target",
        metavar="TARGET",
        default=None,
        help="play the case files (*.yaml, *.yml) under the paths given against TARGET, as `conformance run "
        "--target` takes it (embedded, netns:NAME, HOST:PORT, tap:..., docker:...); without it no YAML is collected",
    )
    group.addoption(
        "--conformance-ip",
        choices=("4", "6", "both"),
        default="4",
        help="the address families each case is played over (default 4; an IPv6 item is named ID.ipv6)",
    )
    group.addoption(
        "--conformance-seed", metavar="N", type=int, default=None, help="fix our source ports and ISNs (default: drawn)"
    )
    group.addoption("--conformance-profile", metavar="NAME|FILE", default=None, help="as conformance run --profile")
    group.addoption("--conformance-strict", action="store_true", help="a violated SHOULD fails its case")


def pytest_configure(config: pytest.Config) -> None:
    target = config.getoption("conformance_target")
    if target is not None:  # only then: YAML is nobody's business otherwise
        config.pluginmanager.register(CasePlugin(config, target), "conformance-cases")


class CasePlugin:
    """The plugin when ``--conformance-target`` is given: collects case files, plays them, holds the results."""

    def __init__(self, config: pytest.Config, target: str) -> None:
        from ..core.errors import ConformanceError
        from ..core.profiles import load_profile
        from ..targets.base import TargetOptions
        from ..targets.grammar import parse_target
        from .runner import new_seed
        from .session import RunSettings

        seed = config.getoption("conformance_seed")
        profile = config.getoption("conformance_profile")
        self.settings: RunSettings = RunSettings(
            target=target,
            target_options=TargetOptions(),
            seed=seed if seed is not None else new_seed(),
            profile=profile,
            strict=config.getoption("conformance_strict"),
            ip=config.getoption("conformance_ip"),
        )
        try:  # a wrong target or profile is a usage error, before anything is collected
            parse_target(target, self.settings.target_options)
            if profile:
                load_profile(profile)
        except ConformanceError as exc:
            raise pytest.UsageError(f"--conformance-target/--conformance-profile: {exc}") from None
        self.config = config
        self.ids: dict[str, Path] = {}  # case id -> its file: ids are unique across a run
        self.results: dict[str, CaseResult] = {}
        self.error: str | None = None  # the run's harness error: every item reports it

    # ------------------------------------------------------------ collection
    def pytest_report_header(self) -> str:
        from .. import __version__

        s = self.settings
        return (
            f"conformance {__version__}: target {s.target}, IP {s.ip}, seed {s.seed}, "
            f"profile {s.profile or '(the target kind default)'}{', strict' if s.strict else ''}"
        )

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.suffix in CASE_SUFFIXES:
            return CaseFile.from_parent(parent, path=file_path)
        return None

    def root_of(self, path: Path) -> Path | None:
        """The folder given on the command line that holds `path` (the case's group is relative to it)."""
        for arg in self.config.args:
            folder = Path(arg.split("::")[0]).resolve()
            if folder.is_dir() and path.resolve().is_relative_to(folder):
                return folder
        return None

    def copies(self, case: Case) -> list[tuple[str, int]]:
        """The items of a case: its id and address family over each family asked for."""
        families = {"4": (4,), "6": (6,), "both": (4, 6)}[self.settings.ip]
        return [(case.id if f == 4 else f"{case.id}.ipv6", f) for f in families]

    # ------------------------------------------------------------------ play
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Play the selected items' cases, once, before the first item runs (not when collection failed)."""
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return  # pytest stops the session next
        if session.config.option.collectonly:
            return
        cases: dict[str, Case] = {}
        for item in session.items:
            if isinstance(item, CaseItem):
                cases.setdefault(item.case.id, item.case)
        if cases:
            self.play(list(cases.values()))

    def play(self, cases: list[Case]) -> None:
        from ..core.errors import HarnessError
        from ..targets.netns import check_privileges
        from .runner import run

        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"conformance: playing {len(cases)} case(s) against {self.settings.target}")
        try:
            check_privileges()
            with _signals_handled():
                results = run(cases, self.settings)
        except HarnessError as exc:
            self.error = f"harness error (not a verdict about the target): {exc}"
            return
        if self.settings.cancel.is_set():  # Ctrl-C or SIGTERM: the runner removed what it made
            raise KeyboardInterrupt
        self.results = {r.case.id: r for r in results}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport | None:
        """An item's call lasts as long as its case played (the play itself happened before the first item); a
        harness error found at set-up is the tool's text, not a traceback of this plugin."""
        if not isinstance(item, CaseItem):
            return None
        report = pytest.TestReport.from_item_and_call(item, call)
        if call.excinfo is not None and isinstance(call.excinfo.value, CaseError):
            report.longrepr = str(call.excinfo.value)
        elif report.skipped and call.excinfo is not None:  # the case file skipped, not a line of this plugin
            report.longrepr = (str(item.path), 1, str(call.excinfo.value))
        result = self.results.get(item.name)
        if call.when == "call" and result is not None:
            report.duration = result.duration
        return report


@contextmanager
def _signals_handled() -> Iterator[None]:
    """The tool's Ctrl-C and SIGTERM handling while the cases play (clean-up never cut short), then pytest's."""
    from .signals import INTERRUPTS

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    INTERRUPTS.install()
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


class CaseFile(pytest.File):
    """A case file: one item per address family asked for; a broken file is a collection error with file:line."""

    def collect(self) -> Iterator[CaseItem]:
        from ..core.errors import ConformanceError
        from ..core.loader import load_case

        plugin = _plugin(self.config)
        try:
            case = load_case(self.path, plugin.root_of(self.path))
        except ConformanceError as exc:
            raise self.CollectError(str(exc)) from None
        first = plugin.ids.setdefault(case.id, self.path)
        if first != self.path:
            raise self.CollectError(f"{self.path}: id: id {case.id!r} is also used by {first}")
        for name, family in plugin.copies(case):
            yield CaseItem.from_parent(self, name=name, case=case, family=family)


class CaseItem(pytest.Item):
    """One case over one address family; its verdict comes from the session's run."""

    def __init__(self, *, case: Case, family: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case, self.family = case, family
        self.extra_keyword_matches.update({case.group, *case.tags})  # -k finds a case by group and tags
        for tag in case.tags:
            if _MARKER_NAME.fullmatch(tag):
                self.config.addinivalue_line("markers", f"{tag}: conformance case tag")  # known to --strict-markers
                self.add_marker(tag)

    def _result(self) -> CaseResult:
        plugin = _plugin(self.config)
        if plugin.error is not None:
            raise CaseError(plugin.error)
        result = plugin.results.get(self.name)
        if result is None:
            raise CaseError("harness error: the case was not played (the run ended before it)")
        return result

    def setup(self) -> None:
        """A case not played is settled here: skipped (with the reason) or a harness error."""
        from ..reporters.junit import case_properties
        from ..reporters.ladder import render_failure

        result = self._result()
        self.user_properties.extend(case_properties(result))
        self.user_properties.append(("seed", str(_plugin(self.config).settings.seed)))
        if result.status == "skipped":
            pytest.skip(result.message or "not played on this target")
        if result.status == "error":
            raise CaseError(render_failure(result))

    def runtest(self) -> None:
        from ..reporters.junit import system_err
        from ..reporters.ladder import render_ladder, summarize_failure

        result = self._result()
        if result.status == "failed":  # as the terminal shows it: the ladder (its header is the item's), the failure
            ladder = render_ladder(result).split("\n", 1)[1:]
            raise CaseFailed("\n\n".join([summarize_failure(result), *ladder]))
        findings = system_err(result)
        if findings:
            self.add_report_section("call", "conformance", findings)
            assert result.verdict is not None  # findings come from a verdict
            line = result.verdict.findings[0].failure.line  # the warning points at the case file's step
            warnings.warn_explicit(ConformanceWarning(f"{self.name}: {findings}"), None, str(self.path), line)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed | CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.name}: {self.case.title}"


class CaseFailed(Exception):
    """The target deviated: the text is the tool's ladder and failure."""


class CaseError(Exception):
    """The case could not be judged (a harness error): the text says what failed and what to do."""


def _plugin(config: pytest.Config) -> CasePlugin:
    plugin = config.pluginmanager.get_plugin("conformance-cases")
    assert isinstance(plugin, CasePlugin)
    return plugin
