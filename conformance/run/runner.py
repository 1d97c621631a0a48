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
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..core.errors import HarnessError
from ..core.model import Case
from ..core.params import resolve
from ..core.profiles import Profile, load_profile
from ..core.results import CaseResult, TargetInfo
from ..core.schedules import expected_duration
from ..core.timing import Tolerance
from ..targets.base import Endpoint, TargetOptions
from ..targets.docker import DockerSpec, DockerTarget
from ..targets.grammar import parse_target
from ..targets.netns import NamespaceSpec, NamespaceTarget
from ..targets.remote import RemoteSpec, RemoteTarget
from ..targets.tap import TapSpec, TapTarget
from ..wire.capture import Wire
from .player import Player

T = TypeVar("T")


@dataclass
class RunSettings:
    target: str = "embedded"  # see conformance.targets.grammar
    target_options: TargetOptions = field(default_factory=TargetOptions)  # --iface, --closed-port, --prober-ip
    jobs: int = 0  # 0: every case at once, up to DEFAULT_MAX_JOBS (waiting on a timer costs no CPU)
    tolerance: Tolerance | None = None  # overrides every case's tolerance
    case_timeout: float = 900.0
    seed: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Entered once each target is up, exited before it is removed: a place for
    #: tools such as the benchmark to attach an independent capture.
    around_target: Callable[[Endpoint], AbstractContextManager[object]] | None = None
    #: A profile name or file (None: linux for a Linux namespace target, rfc for any other).
    profile: str | None = None
    strict: bool = False  # SHOULD deviations fail instead of warning
    ip: str = "4"  # 4 | 6 | both: the address families each case is played over


#: Dialogues played at once unless --jobs says otherwise. Waiting costs nothing, but every
#: segment costs the capture thread and the dialogue's thread some CPU: the benchmark saw
#: reactions slow to tens of ms with hundreds at once on 2 cores, and verdicts suffer.
DEFAULT_MAX_JOBS = 64

#: Source ports a run may use: a window of this many from a random base in 20000-40000.
PORT_WINDOW = 2000


class _Ports:
    """Source ports unique within a run (so no two dialogues share a 4-tuple).

    They come from a fixed window, :attr:`window`, known before the first is
    taken: a remote target's RST filter covers exactly these ports.
    """

    def __init__(self, rng: random.Random) -> None:
        base = rng.randrange(20000, 40000)
        self.window = range(base, base + PORT_WINDOW)
        self._next = iter(self.window)
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            port = next(self._next, None)
        if port is None:
            raise HarnessError(
                f"the run used every source port of its window {self.window.start}-{self.window[-1]}",
                "run fewer cases at once (each connection of each case takes one)",
            )
        return port


@dataclass
class _Target:
    endpoint: Endpoint
    wire: Wire
    profile: Profile | None = None

    @property
    def info(self) -> TargetInfo:
        e = self.endpoint
        return TargetInfo(
            kind=e.kind,
            description=e.description,
            address=", ".join(a for a in (e.target_ip, e.target_ip6) if a),
            params=e.params,
            profile=self.profile.name if self.profile else "",
        )


@contextmanager
def open_target(
    spec: str,
    index: int,
    sysctls: dict[str, int],
    options: TargetOptions | None = None,
    sports: range | None = None,
) -> Iterator[_Target]:
    """A started target with its wire, removed on exit.

    `sports` is the run's source-port window (a remote target filters its
    kernel's RSTs for exactly these); default: every port the allocator may use.
    """
    parsed = parse_target(spec, options)
    if isinstance(parsed, TapSpec):
        with TapTarget(parsed, index, sysctls) as (endpoint, tap_wire):
            yield _Target(endpoint, tap_wire)
        return
    target: AbstractContextManager[Endpoint]
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
        yield _Target(endpoint, wire)


def play(
    case: Case, target: _Target, ports: _Ports, rng: random.Random, settings: RunSettings, family: int = 4
) -> CaseResult:
    """Play one case to its verdict on a player of its own (:func:`run` shares one). Never raises for a
    deviation of the target."""
    player = Player(settings, ports)
    try:
        return player.submit(case, target, rng, family).result()
    finally:
        player.close()


def _sysctl_key(case: Case) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(case.sysctls.items()))


def run(
    cases: list[Case],
    settings: RunSettings,
    on_start: Callable[[Case, float], None] = lambda c, d: None,
    on_result: Callable[[CaseResult], None] = lambda r: None,
) -> list[CaseResult]:
    """Play every case (over each address family asked for); results come back in order.

    Over IPv6 a case is played as a copy whose id ends in ``.ipv6``.
    """
    if settings.tolerance is not None:
        cases = [dataclasses.replace(c, tolerance=settings.tolerance) for c in cases]
    wanted = {"4": (4,), "6": (6,), "both": (4, 6)}.get(settings.ip)
    if wanted is None:
        raise HarnessError(f"--ip {settings.ip}: not 4, 6 or both")
    jobs_of = [(c if fam == 4 else dataclasses.replace(c, id=f"{c.id}.ipv6"), fam) for c in cases for fam in wanted]
    cases = [c for c, _ in jobs_of]
    families = [fam for _, fam in jobs_of]
    rng = random.Random(settings.seed if settings.seed is not None else int.from_bytes(os.urandom(8), "big"))
    ports = _Ports(rng)
    spec = parse_target(settings.target, settings.target_options)
    # Cases this kind of target cannot play (a service it lacks, sysctls it cannot set): skipped, with
    # the reason, and no target is opened for them.
    skips = {i: why for i, c in enumerate(cases) if (why := spec.skip_reason(c)) is not None}
    for i, family in enumerate(families):  # e.g. --ip both against a remote host given by one address
        if family not in spec.families() and i not in skips:
            skips[i] = f"this target has no IPv{family} address"
    keys = sorted({_sysctl_key(c) for i, c in enumerate(cases) if i not in skips})
    if () in keys:  # the shared target first, index 0
        keys.remove(())
        keys.insert(0, ())
    case_rngs = [random.Random(rng.getrandbits(64)) for _ in cases]  # drawn up front: the same seed, the same ISNs
    by_key: dict[tuple[tuple[str, int], ...], list[int]] = {k: [] for k in keys}
    for i, case in enumerate(cases):
        if i not in skips:
            by_key[_sysctl_key(case)].append(i)
    results: dict[int, CaseResult] = {}
    jobs = settings.jobs or min(len(cases), DEFAULT_MAX_JOBS)
    slots = [_Slot(key, index, len(by_key[key])) for index, key in enumerate(keys)]

    def open_slot(slot: _Slot) -> _Slot:
        if settings.cancel.is_set():
            return slot
        opened = slot.stack.enter_context(
            open_target(settings.target, slot.index, dict(slot.key), settings.target_options, ports.window)
        )
        opened.profile = load_profile(
            settings.profile or ("linux" if opened.endpoint.kind in ("netns", "docker") else "rfc")
        )
        opened.endpoint.params = resolve(opened.endpoint.sysctls, opened.profile)
        if settings.around_target is not None:
            slot.stack.enter_context(settings.around_target(opened.endpoint))
        slot.target = opened
        return slot

    def report_skips(info: TargetInfo | None) -> None:
        for i in sorted(skips):
            results[i] = CaseResult(cases[i], "skipped", skips[i], 0.0, info)
            on_result(results[i])

    # Targets are opened (and removed) on a pool of their own, TARGET_WORKERS at a time, the shared one
    # first; a target's cases start as soon as it is up and it is removed as soon as they have ended,
    # so setting up and removing the other targets overlaps the cases already running. Cases start
    # START_SPACING apart, at most `jobs` at a time, all on the run's player.
    openers = ThreadPoolExecutor(max_workers=TARGET_WORKERS, thread_name_prefix="target")
    player = Player(settings, ports)
    # Every future reports itself here when done: waiting is one queue read, not concurrent.futures.wait()
    # over all of them (which installs a waiter on each, every time: with 64 dialogues in flight, the main
    # thread held the interpreter lock more than the player did).
    done_q: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def track(fut: Future[T]) -> Future[T]:
        fut.add_done_callback(done_q.put)
        return fut

    opening: dict[Future[_Slot], _Slot] = {track(openers.submit(open_slot, slot)): slot for slot in slots}
    ready: deque[tuple[int, _Slot]] = deque()  # cases whose target is up, in order, not started yet
    playing: dict[Future[CaseResult], tuple[int, _Slot]] = {}
    closing: set[Future[None]] = set()
    next_start = 0.0
    collector = _Collector()

    def finished(i: int, slot: _Slot, result: CaseResult) -> None:
        results[i] = result
        on_result(result)
        slot.left -= 1
        if slot.left == 0:
            closing.add(track(openers.submit(slot.stack.close)))

    if not slots:
        report_skips(None)
    try:
        while opening or ready or playing or closing:
            while ready and settings.cancel.is_set():
                i, slot = ready.popleft()
                finished(i, slot, CaseResult(cases[i], "error", "interrupted before it started", 0.0, None))
            collector.check()
            now = time.monotonic()
            startable = bool(ready) and len(playing) < jobs
            if startable and now >= next_start and not settings.cancel.is_set():
                i, slot = ready.popleft()
                assert slot.target is not None
                on_start(cases[i], expected_duration(cases[i], slot.target.endpoint.params))
                playing[track(player.submit(cases[i], slot.target, case_rngs[i], families[i]))] = (i, slot)
                next_start = now + START_SPACING
            timeout = 0.5
            if startable:
                timeout = max(0.0, next_start - time.monotonic())
            try:
                done = [done_q.get(timeout=timeout)]
            except queue.Empty:
                continue
            while not done_q.empty():
                done.append(done_q.get_nowait())
            for fut in done:
                if fut in opening:
                    slot = opening.pop(fut)  # type: ignore[arg-type]
                    fut.result()  # a target that cannot be opened ends the run (HarnessError)
                    if slot.target is None:  # cancelled before it was opened
                        continue
                    collector.pause()
                    if slot.index == 0:
                        report_skips(slot.target.info)
                    ready.extend((i, slot) for i in by_key[slot.key])
                elif fut in playing:
                    i, slot = playing.pop(fut)  # type: ignore[arg-type]
                    finished(i, slot, fut.result())
                else:
                    closing.discard(fut)  # type: ignore[arg-type]
                    fut.result()
    except BaseException:
        settings.cancel.set()
        raise
    finally:
        # Whatever happened, every target opened is removed: wait for the openers in flight, then
        # close what is still open (an ExitStack closes once; a second close is a no-op).
        player.close()
        openers.shutdown(wait=True, cancel_futures=True)
        collector.resume()
        _close_all(slots)
    interrupted = "interrupted before it started"  # a run cancelled before its target was up
    return [results.get(i) or CaseResult(cases[i], "error", interrupted, 0.0, None) for i in range(len(cases))]


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
    """One target of a run: its sysctls, index, the cases still to end on it, and what removes it."""

    key: tuple[tuple[str, int], ...]
    index: int
    left: int
    stack: ExitStack = field(default_factory=ExitStack)
    target: _Target | None = None


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
