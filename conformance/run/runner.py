"""The runner: opens the targets, starts the cases, gathers the results.

The dialogues themselves are played by a :class:`~conformance.run.player.Player`, on
one thread for the whole run, each on its own 4-tuples; a case that sets sysctls
gets a target of its own. Cases start ``START_SPACING`` apart, at most ``jobs``
at a time. Targets
are set up two at a time, the shared one first; a target's cases start as soon
as it is up, and it is removed as soon as they have ended, so the set-up and
removal of the others overlap the cases already running.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..core.errors import HarnessError
from ..core.model import Case
from ..core.params import resolve
from ..core.profiles import load_profile
from ..core.results import CaseResult, TargetInfo
from ..core.schedules import expected_duration
from ..targets.base import Endpoint, Target, TargetOptions, TargetSpec
from ..targets.docker import DockerSpec, DockerTarget
from ..targets.grammar import parse_target
from ..targets.link import LinkSpec, LinkTarget
from ..targets.netns import NamespaceSpec, NamespaceTarget
from ..targets.remote import RemoteSpec, RemoteTarget
from ..targets.tap import TapSpec, TapTarget
from ..wire.capture import Wire
from .player import Player
from .probe import check_listening
from .session import PORT_WINDOW, OpenedTarget, Ports, RunSettings, ports_needed
from .signals import INTERRUPTS

T = TypeVar("T")

#: Dialogues played at once unless --jobs says otherwise. Waiting costs nothing, but every
#: segment costs the capture thread and the dialogue's thread some CPU: the benchmark saw
#: reactions slow to tens of ms with hundreds at once on 2 cores, and verdicts suffer.
DEFAULT_MAX_JOBS = 64


@contextmanager
def open_target(
    spec: str,
    index: int,
    sysctls: dict[str, int],
    options: TargetOptions | None = None,
    sports: range | None = None,
) -> Iterator[OpenedTarget]:
    """A started target with its wire, removed on exit.

    `sports` is the run's source-port window (a remote target filters its
    kernel's RSTs for exactly these); default: every port the allocator may use.
    """
    parsed = parse_target(spec, options)
    if isinstance(parsed, LinkSpec):  # before TapSpec, which it extends: the same form, a packet-socket wire
        with LinkTarget(parsed, index, sysctls) as (endpoint, link_wire):
            yield OpenedTarget(endpoint, link_wire)
        return
    if isinstance(parsed, TapSpec):
        with TapTarget(parsed, index, sysctls) as (endpoint, tap_wire):
            yield OpenedTarget(endpoint, tap_wire)
        return
    target: Target[Endpoint]
    if isinstance(parsed, RemoteSpec):
        if sysctls:
            raise HarnessError("internal: cases that set sysctls are skipped on a remote target")
        target = RemoteTarget(parsed, index, sports if sports is not None else range(20000, 40000 + PORT_WINDOW))
    elif isinstance(parsed, DockerSpec):
        target = DockerTarget(parsed, index, sysctls)
    else:
        assert isinstance(parsed, NamespaceSpec)
        target = NamespaceTarget(index, sysctls, existing=parsed.existing)
    with (
        target as endpoint,
        Wire(
            endpoint.iface,
            endpoint.netns,
            endpoint.our_mac,
            endpoint.target_mac,
            endpoint.our_ip,
            peer_ip=endpoint.target_ip,
            our_ip6=endpoint.our_ip6,
            peer_ip6=endpoint.target_ip6,
        ) as wire,
    ):
        wire.target_mac6 = endpoint.target_mac6
        yield OpenedTarget(endpoint, wire)


def play(
    case: Case, target: OpenedTarget, ports: Ports, rng: random.Random, settings: RunSettings, family: int = 4
) -> CaseResult:
    """Play one case to its verdict on a player of its own (:func:`run` shares one). Never raises for a
    deviation of the target."""
    player = Player(settings, ports)
    try:
        return player.submit(case, target, rng, family).result()
    finally:
        player.close()


def run(
    cases: list[Case],
    settings: RunSettings,
    on_start: Callable[[Case, float], None] = lambda c, d: None,
    on_result: Callable[[CaseResult], None] = lambda r: None,
) -> list[CaseResult]:
    """Play every case (over each address family asked for); results come back in order.

    Over IPv6 a case is played as a copy whose id ends in ``.ipv6``.
    """
    return _Run(_plan(cases, settings), settings, on_start, on_result).play()


@dataclass
class _Plan:
    """What a run plays, worked out before any target is opened; a case's index is its place in :attr:`cases`."""

    cases: list[Case]  # one per case and address family
    families: list[int]  # the address family of each
    rngs: list[random.Random]  # each case's, drawn up front: the same seed, the same ISNs
    ports: Ports
    #: Each case's source ports, reserved up front from the seed and its id: the same seed, the same ports.
    case_ports: list[list[int]]
    #: Cases this kind of target cannot play (a service it lacks, sysctls it cannot set, an address family),
    #: with the reason: no target is opened for them.
    skips: dict[int, str]
    slots: list[_Slot]  # the targets to open, the shared one first


def new_seed() -> int:
    """A seed for a run not given one (--seed): the caller keeps it, so the reports can say which it was."""
    return int.from_bytes(os.urandom(8), "big")


def _plan(cases: list[Case], settings: RunSettings) -> _Plan:
    cases, families = _per_family(cases, settings)
    seed = settings.seed if settings.seed is not None else new_seed()
    rng = random.Random(seed)
    ports = Ports(rng, salt=str(seed))
    skips = skip_reasons(cases, families, parse_target(settings.target, settings.target_options))
    # Each case's ISNs and ports come from the seed and the case's id alone: the same --seed gives a case the
    # same ones in every run, whatever else the run plays (-k, --ip, other cases added).
    rngs = [random.Random(f"{seed}:{c.id}") for c in cases]
    case_ports: list[list[int]] = [[] for _ in cases]
    for i in sorted(range(len(cases)), key=lambda i: cases[i].id):
        case_ports[i] = ports.reserve(cases[i].id, ports_needed(cases[i]))
    return _Plan(cases, families, rngs, ports, case_ports, skips, _slots(cases, skips))


def skip_reasons(cases: list[Case], families: list[int], spec: TargetSpec) -> dict[int, str]:
    """The cases (by index) the target of `spec` cannot play, each with the reason: a service it lacks, sysctls it
    cannot set, no agent, or an address family (`families`: each case's) it has no address of."""
    skips = {i: why for i, c in enumerate(cases) if (why := spec.skip_reason(c)) is not None}
    for i, family in enumerate(families):  # e.g. --ip both against a remote host given by one address
        if family not in spec.families() and i not in skips:
            skips[i] = f"this target has no IPv{family} address"
    return skips


def plan_of(cases: list[Case], target: str, options: TargetOptions, ip: str = "4") -> list[tuple[Case, str | None]]:
    """What a run against `target` would play, before anything is opened: each case (an IPv6 copy's id ending in
    ``.ipv6``) with the reason it is skipped, or None when it plays (``conformance list --target``)."""
    per_family, families = _per_family(cases, RunSettings(target=target, target_options=options, ip=ip))
    skips = skip_reasons(per_family, families, parse_target(target, options))
    return [(c, skips.get(i)) for i, c in enumerate(per_family)]


def _per_family(cases: list[Case], settings: RunSettings) -> tuple[list[Case], list[int]]:
    """Each case once per address family asked for (an IPv6 copy's id ends in ``.ipv6``), and its family."""
    if settings.tolerance is not None:
        cases = [dataclasses.replace(c, tolerance=settings.tolerance) for c in cases]
    wanted = {"4": (4,), "6": (6,), "both": (4, 6)}.get(settings.ip)
    if wanted is None:
        raise HarnessError(f"--ip {settings.ip}: not 4, 6 or both")
    jobs_of = [(c if fam == 4 else dataclasses.replace(c, id=f"{c.id}.ipv6"), fam) for c in cases for fam in wanted]
    return [c for c, _ in jobs_of], [fam for _, fam in jobs_of]


def _sysctl_key(case: Case) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(case.sysctls.items()))


def _slots(cases: list[Case], skips: dict[int, str]) -> list[_Slot]:
    """A target for each set of sysctls the cases not skipped ask for; the shared one (none) first, index 0."""
    keys = sorted({_sysctl_key(c) for i, c in enumerate(cases) if i not in skips})
    if () in keys:
        keys.remove(())
        keys.insert(0, ())
    by_key: dict[tuple[tuple[str, int], ...], list[int]] = {k: [] for k in keys}
    for i, case in enumerate(cases):
        if i not in skips:
            by_key[_sysctl_key(case)].append(i)
    return [_Slot(key, index, len(by_key[key]), by_key[key]) for index, key in enumerate(keys)]


class _Run:
    """One run in flight: targets opening, cases ready and playing, targets closing.

    Targets are opened (and removed) on a pool of their own, TARGET_WORKERS at a time, the shared one
    first; a target's cases start as soon as it is up and it is removed as soon as they have ended,
    so setting up and removing the other targets overlaps the cases already running. Cases start
    START_SPACING apart, at most `jobs` at a time, all on the run's player.
    """

    def __init__(
        self,
        plan: _Plan,
        settings: RunSettings,
        on_start: Callable[[Case, float], None],
        on_result: Callable[[CaseResult], None],
    ) -> None:
        self.plan, self.settings = plan, settings
        self.on_start, self.on_result = on_start, on_result
        self.jobs = settings.jobs or min(len(plan.cases), DEFAULT_MAX_JOBS)
        self.results: dict[int, CaseResult] = {}
        # Every future reports itself here when done: waiting is one queue read, not concurrent.futures.wait()
        # over all of them (which installs a waiter on each, every time: with 64 dialogues in flight, the main
        # thread held the interpreter lock more than the player did).
        self.done_q: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.opening: dict[Future[_Slot], _Slot] = {}
        self.ready: deque[tuple[int, _Slot]] = deque()  # cases whose target is up, in order, not started yet
        self.playing: dict[Future[CaseResult], tuple[int, _Slot]] = {}
        self.closing: set[Future[None]] = set()
        self.next_start = 0.0
        self.collector = _Collector()
        self.openers = ThreadPoolExecutor(max_workers=TARGET_WORKERS, thread_name_prefix="target")
        self.player = Player(settings, plan.ports)

    def play(self) -> list[CaseResult]:
        """Every case to its result, in order; whatever happens, every target opened is removed."""
        try:
            self.opening = {self._track(self.openers.submit(self._open, slot)): slot for slot in self.plan.slots}
            if not self.plan.slots:
                self._report_skips(None)
            while self.opening or self.ready or self.playing or self.closing:
                self._turn()
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: stop, remove everything, and return what is known (the finished cases, the
            # others as interrupted), so that the reports of an interrupted run are still written.
            self.settings.cancel.set()
        except BaseException:
            self.settings.cancel.set()
            raise
        finally:
            # Wait for the openers in flight, then close what is still open (an ExitStack closes once; a
            # second close is a no-op). A signal meanwhile is held: clean-up is never cut short.
            with INTERRUPTS.held():
                self.player.close()
                self.openers.shutdown(wait=True, cancel_futures=True)
                self.collector.resume()
                _close_all(self.plan.slots)
        for fut, (i, _slot) in self.playing.items():  # the dialogues in flight, ended as interrupted
            if i not in self.results and fut.done():
                self.results[i] = fut.result()
        interrupted = "interrupted before it started"  # a run cancelled before its target was up
        cases = self.plan.cases
        return [self.results.get(i) or CaseResult(cases[i], "error", interrupted, 0.0, None) for i in range(len(cases))]

    def _track(self, fut: Future[T]) -> Future[T]:
        fut.add_done_callback(self.done_q.put)
        return fut

    def _open(self, slot: _Slot) -> _Slot:
        """Open a slot's target (on the openers' pool), with its profile and the run's `around_target`."""
        settings = self.settings
        if settings.cancel.is_set():
            return slot
        opened = slot.stack.enter_context(
            open_target(settings.target, slot.index, dict(slot.key), settings.target_options, self.plan.ports.window)
        )
        check_listening(opened, self.plan.ports)  # a wrong listen port stops the run before its cases
        opened.profile = load_profile(
            settings.profile or ("linux" if opened.endpoint.kind in ("netns", "docker") else "rfc")
        )
        opened.endpoint.params = resolve(opened.endpoint.sysctls, opened.profile)
        if settings.around_target is not None:
            slot.stack.enter_context(settings.around_target(opened.endpoint))
        slot.target = opened
        return slot

    def _turn(self) -> None:
        """One turn of the run: start a case if one may start, then handle whatever has finished meanwhile."""
        while self.ready and self.settings.cancel.is_set():
            i, slot = self.ready.popleft()
            self._finished(i, slot, CaseResult(self.plan.cases[i], "error", "interrupted before it started", 0.0, None))
        self.collector.check()
        startable = self._start_next()
        timeout = max(0.0, self.next_start - time.monotonic()) if startable else 0.5
        try:
            done = [self.done_q.get(timeout=timeout)]
        except queue.Empty:
            return
        while not self.done_q.empty():
            done.append(self.done_q.get_nowait())
        for fut in done:
            self._handle(fut)

    def _start_next(self) -> bool:
        """Start the next ready case if a job is free and START_SPACING has passed; whether one was waiting to."""
        now = time.monotonic()
        startable = bool(self.ready) and len(self.playing) < self.jobs
        if startable and now >= self.next_start and not self.settings.cancel.is_set():
            i, slot = self.ready.popleft()
            assert slot.target is not None
            case = self.plan.cases[i]
            self.on_start(case, expected_duration(case, slot.target.endpoint.params))
            fut = self.player.submit(
                case, slot.target, self.plan.rngs[i], self.plan.families[i], self.plan.case_ports[i]
            )
            self.playing[self._track(fut)] = (i, slot)
            self.next_start = now + START_SPACING
        return startable

    def _handle(self, fut: Future[Any]) -> None:
        """A target opened, a case ended or a target removed."""
        if fut in self.opening:
            slot = self.opening.pop(fut)
            fut.result()  # a target that cannot be opened ends the run (HarnessError)
            if slot.target is None:  # cancelled before it was opened
                return
            self.collector.pause()
            if slot.index == 0:
                self._report_skips(slot.target.info)
            self.ready.extend((i, slot) for i in slot.cases)
        elif fut in self.playing:
            i, slot = self.playing.pop(fut)
            self._finished(i, slot, fut.result())
        else:
            self.closing.discard(fut)
            fut.result()

    def _finished(self, i: int, slot: _Slot, result: CaseResult) -> None:
        self.results[i] = result
        self.on_result(result)
        slot.left -= 1
        if slot.left == 0:
            self.closing.add(self._track(self.openers.submit(slot.stack.close)))

    def _report_skips(self, info: TargetInfo | None) -> None:
        for i in sorted(self.plan.skips):
            self.results[i] = CaseResult(self.plan.cases[i], "skipped", self.plan.skips[i], 0.0, info)
            self.on_result(self.results[i])


#: Least time between two dialogues' starts. A start costs about 1 ms of CPU (the thread, the
#: dialogue, the first segments through both stacks); 64 at once kept the process busy for 60 ms,
#: and the dialogues already running answered 10 ms late. Spaced out, they answer within 2 ms.
#: (64 cases start in 0.13 s: nothing next to the protocol timers.)
START_SPACING = 0.002


class _Collector:
    """Keeps Python's cyclic garbage collector from stopping the dialogues while they play.

    A collection holds the interpreter lock: with Scapy and the rest loaded, the
    young generations alone took 1.5-3.6 ms, the full one 39 ms, and a target
    segment that came in meanwhile was answered that much later (the benchmark's
    reaction outliers). While cases play, what is loaded is frozen
    (:func:`gc.freeze`) and automatic collection is off; a run leaves ~60 objects
    in reference cycles per case, collected when the run ends, or on the way
    when more than :attr:`BUDGET` container objects have piled up.
    """

    BUDGET = 500_000

    def __init__(self) -> None:
        self.paused = False
        self._was_enabled = gc.isenabled()

    def pause(self) -> None:
        if not self.paused:
            self.paused = True
            gc.freeze()
            gc.disable()

    def check(self) -> None:
        if self.paused and gc.get_count()[0] > self.BUDGET:
            gc.collect()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()


#: Targets set up (or removed) at once: set-up is mostly waiting on the kernel and on processes starting.
TARGET_WORKERS = 2


@dataclass
class _Slot:
    """One target of a run: its sysctls, index, how many of its cases are still to end, and what removes it."""

    key: tuple[tuple[str, int], ...]
    index: int
    left: int
    cases: list[int]  # their indexes in the run's plan
    stack: ExitStack = field(default_factory=ExitStack)
    target: OpenedTarget | None = None


def _close_all(slots: list[_Slot]) -> None:
    """Remove every target still open, in parallel; the first error is raised after all are tried."""
    errors: list[BaseException] = []

    def close(slot: _Slot) -> None:
        try:
            slot.stack.close()
        except BaseException as exc:  # keep removing the others
            errors.append(exc)

    threads = [threading.Thread(target=close, args=(slot,), name=f"remove-{slot.index}") for slot in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
