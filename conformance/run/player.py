"""The player: every dialogue of a run, played on one thread.

The engine is sans-IO, so a dialogue is a value that needs three things: the
segments of its flows, the agent's answers, and to be woken at its next
deadline. One thread does that for all of them::

    capture thread ──(play, segment)──▶ inbox ◀──(play, answer)── agent reader
                                          │
                                          ▼
            player thread: deliver, advance, send; sleep until the next
            message or the earliest deadline of any dialogue (a heap)

A dialogue that waits on a timer costs a heap entry, not a thread. This
replaced a thread per dialogue: with 64 of them blocked on their queues, the
machine 80 % idle, a target segment still waited 2-10 ms (median) for our
answer. The capture sockets keep a thread each that reads a frame as soon as
it arrives: reading them from the player's loop instead gained no measurable
latency in the benchmark.

When a dialogue is done it lingers for ``LINGER`` seconds (our cleanup segments
and stragglers still reach its pcap and ladder, unjudged), then its
:class:`~conformance.core.results.CaseResult` is set on the future
:meth:`Player.submit` returned.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from ..core.engine import Action, Addressing, AppRequest, Dialogue
from ..core.errors import HarnessError
from ..core.ipfields import unplayable
from ..core.model import Case, Reference
from ..core.outcomes import Outcome
from ..core.profiles import outcome
from ..core.results import CaseResult, self_test
from ..targets.base import Endpoint
from ..wire.capture import CATCH_UP, Captured, CapturedIcmp
from .session import OpenedTarget, Ports, RunSettings

#: After a dialogue ends, keep listening this long for our own cleanup segments
#: and stragglers, so the pcap and ladder are complete. Not judged.
LINGER = 0.15
#: The longest the player sleeps without a message or a deadline (to notice a cancel).
IDLE_WAKE = 0.5


@dataclass(frozen=True)
class _AppAnswer:
    """The agent's answer to a dialogue's request."""

    request: int
    answer: dict[str, object]
    time: float


class _Sink:
    """What the wire and the agent put a dialogue's messages into: the player's inbox, tagged."""

    __slots__ = ("inbox", "play")

    def __init__(self, inbox: queue.SimpleQueue[Any], play: _Play) -> None:
        self.inbox = inbox
        self.play = play

    def put(self, item: Captured | CapturedIcmp | _AppAnswer) -> None:
        self.inbox.put((self.play, item))


@dataclass(eq=False)
class _Play:
    """One dialogue in flight."""

    case: Case
    target: OpenedTarget
    dialogue: Dialogue
    our_ports: dict[str, int]
    isns: dict[str, int]
    future: Future[CaseResult]
    started: float
    hard_stop: float
    drops_before: int
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    error: str = ""
    linger_until: float | None = None
    wake: float = 0.0
    over: bool = False
    answered: bool = False  # the agent answered since the dialogue was last stepped


class Player:
    """Plays dialogues on a thread of its own; :meth:`submit` from any thread, :meth:`close` at the end."""

    def __init__(self, settings: RunSettings, ports: Ports) -> None:
        self.settings = settings
        self.ports = ports
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._heap: list[tuple[float, int, _Play]] = []
        self._order = itertools.count()
        self._plays: set[_Play] = set()
        self._thread = threading.Thread(target=self._loop, name="player", daemon=True)
        self._thread.start()

    def submit(
        self,
        case: Case,
        target: OpenedTarget,
        rng: random.Random,
        family: int = 4,
        ports: Sequence[int] | None = None,
    ) -> Future[CaseResult]:
        """Start playing `case` (on the player's thread); the future gets its result."""
        fut: Future[CaseResult] = Future()
        fut.set_running_or_notify_cancel()
        self._inbox.put(("start", (case, target, rng, family, fut, ports)))
        return fut

    def close(self) -> None:
        """End every dialogue still in flight (as interrupted) and stop the thread."""
        self._inbox.put(("stop", None))
        self._thread.join()

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while True:
            timeout = IDLE_WAKE if not self._heap else min(IDLE_WAKE, max(0.0, self._heap[0][0] - time.time()))
            touched: dict[_Play, None] = {}
            try:
                msg = self._inbox.get(timeout=timeout)
            except queue.Empty:
                pass
            else:
                if self._take(msg, touched) or self._take_all(touched):
                    return
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                at, _, p = heapq.heappop(self._heap)
                if not p.over and at == p.wake:
                    touched[p] = None
            if any(self._judges(p, now) for p in touched):
                self._catch_up(touched, now)  # every frame stamped up to `now` is in the inbox after this
                if self._take_all(touched):
                    return
            for p in touched:
                if not p.over:
                    self._step(p, now)

    def _take(self, msg: tuple[Any, Any], touched: dict[_Play, None]) -> bool:
        """Act on one message of the inbox (start a dialogue, deliver to one); True for "stop"."""
        who, item = msg
        if who == "stop":
            self._stop_all()
            return True
        if who == "start":
            new = self._start(*item)
            if new is not None:
                touched[new] = None
        elif not who.over:
            self._deliver(who, item)
            touched[who] = None
        return False

    def _take_all(self, touched: dict[_Play, None]) -> bool:
        """Act on every message waiting in the inbox; True for "stop"."""
        while True:
            try:
                msg = self._inbox.get_nowait()
            except queue.Empty:
                return False
            if self._take(msg, touched):
                return True

    @staticmethod
    def _judges(p: _Play, now: float) -> bool:
        """Whether stepping `p` at `now` may judge what did not come: a deadline (or its linger) is due, or the
        agent answered (the next step may count from an event long past)."""
        if p.over:
            return False
        if p.linger_until is not None:
            return now >= p.linger_until
        deadline = p.dialogue.next_deadline()
        return p.answered or (deadline is not None and deadline <= now)

    def _catch_up(self, touched: dict[_Play, None], now: float) -> None:
        """Before a deadline is judged, every frame the kernel stamped up to `now` must be in the inbox: ask each
        wire of the touched dialogues to read what it has queued (see :mod:`conformance.wire.barrier`). A
        dialogue whose wire did not answer is a harness error (its deadline cannot be judged)."""
        wires = {id(p.target.wire): p.target.wire for p in touched if not p.over}
        for key, wire in wires.items():
            if wire.catch_up() is not None:
                continue
            for p in touched:
                if not p.over and id(p.target.wire) == key and self._judges(p, now):
                    self._fail(
                        p,
                        loss_of(p)
                        or f"the capture on {wire.iface} did not catch up with the wire within {CATCH_UP:g} s: "
                        "this case's deadline cannot be judged (is the machine overloaded? run fewer cases at once)",
                    )
        for p in touched:
            p.answered = False

    def _start(
        self,
        case: Case,
        target: OpenedTarget,
        rng: random.Random,
        family: int,
        fut: Future[CaseResult],
        ports: Sequence[int] | None = None,
    ) -> _Play | None:
        try:
            return self._begin(case, target, rng, family, fut, ports)
        except Exception as exc:  # a bug of the tool: report it as a harness error, keep going
            if not fut.done():
                fut.set_result(CaseResult(case, "error", f"internal error: {type(exc).__name__}: {exc}", 0.0, None))
            return None

    def _begin(
        self,
        case: Case,
        target: OpenedTarget,
        rng: random.Random,
        family: int,
        fut: Future[CaseResult],
        ports: Sequence[int] | None = None,
    ) -> _Play | None:
        started = time.time()
        conns = case.connections()
        reserved = iter(ports if ports is not None else ())

        def take() -> int:
            return next(reserved, None) or self.ports.take()

        our_ports = {c: take() for c in conns}
        isns = {c: rng.getrandbits(32) for c in conns}
        ep = target.endpoint

        def early(status: str, message: str) -> None:
            fut.set_result(CaseResult(case, status, message, 0.0, target.info))

        prefix = ep.prefix if family == 4 else None
        secondary = ep.secondary_ip6 if family == 6 else ep.secondary_ip
        our_ip, target_ip = (ep.our_ip6, ep.target_ip6) if family == 6 else (ep.our_ip, ep.target_ip)
        if our_ip is None or target_ip is None:
            early("skipped", f"this target has no IPv{family} address")
            return None
        if (why := _unplayable_here(case, ep, family, prefix, secondary)) is not None:
            early("skipped", why)
            return None
        port = take() if case.service == "agent" else ep.ports.get(case.service)
        if port is None:
            early("error", f"the target has no {case.service!r} service")
            return None
        addressing = Addressing(our_ip, target_ip, port, prefix, secondary)
        dialogue = self._dialogue(case, target, addressing, our_ports, isns)
        p = _Play(
            case,
            target,
            dialogue,
            our_ports,
            isns,
            fut,
            started,
            started + self.settings.case_timeout,
            target.wire.drops,
        )
        try:
            target.wire.subscribe(our_ports.values(), into=_Sink(self._inbox, p), icmp=True)
        except HarnessError as exc:
            early("error", str(exc))
            return None
        self._plays.add(p)
        return p

    def _dialogue(
        self,
        case: Case,
        target: OpenedTarget,
        addressing: Addressing,
        our_ports: dict[str, int],
        isns: dict[str, int],
    ) -> Dialogue:
        profile, strict = target.profile, self.settings.strict

        def policy(ref: Reference | None) -> Outcome:
            return outcome(ref, profile, strict)

        ep = target.endpoint
        return Dialogue(case, ep.params, addressing, our_ports, isns, white_box=ep.agent is not None, policy=policy)

    def _deliver(self, p: _Play, item: Captured | CapturedIcmp | _AppAnswer) -> None:
        try:
            if isinstance(item, _AppAnswer):
                p.answered = True
                p.dialogue.app_answer(item.request, item.answer, item.time)
            elif isinstance(item, CapturedIcmp):  # an ICMP error about one of our segments
                p.frames.append((item.error.time, item.frame))
                p.dialogue.receive_icmp(item.error)
            else:
                p.frames.append((item.segment.time, item.frame))
                p.dialogue.receive(item.segment)
        except Exception as exc:
            self._fail(p, f"internal error: {type(exc).__name__}: {exc}")

    def _step(self, p: _Play, now: float) -> None:
        """Advance one dialogue at `now`: send what it asks, then schedule its next wake."""
        try:
            if p.linger_until is not None:
                if now >= p.linger_until:
                    self._finish(p)
                else:
                    self._wake(p, p.linger_until)
                return
            for action in p.dialogue.advance(now):
                self._perform(p, action)
            if p.dialogue.done:
                p.linger_until = now + LINGER
                self._wake(p, p.linger_until)
                return
            if self.settings.cancel.is_set():
                self._fail(p, "interrupted")
                return
            if now > p.hard_stop:
                self._fail(p, f"the case did not finish within {self.settings.case_timeout:g} s (harness time limit)")
                return
            deadline = p.dialogue.next_deadline()
            self._wake(p, now + IDLE_WAKE if deadline is None else min(deadline, now + IDLE_WAKE))
        except HarnessError as exc:
            self._fail(p, str(exc))
        except OSError as exc:
            self._fail(p, f"wire error: {exc}")
        except Exception as exc:  # a bug of the tool: this case is a harness error, the others go on
            self._fail(p, f"internal error: {type(exc).__name__}: {exc}")

    def _perform(self, p: _Play, action: Action) -> None:
        if isinstance(action, AppRequest):
            agent = p.target.endpoint.agent
            assert agent is not None
            rid, sink = action.id, _Sink(self._inbox, p)
            agent.request(action.cmd, action.args, lambda answer, t: sink.put(_AppAnswer(rid, answer, t)))
        else:
            p.target.wire.send(action)

    def _wake(self, p: _Play, at: float) -> None:
        p.wake = at
        heapq.heappush(self._heap, (at, next(self._order), p))

    def _fail(self, p: _Play, error: str) -> None:
        p.error = error
        self._finish(p)

    def _stop_all(self) -> None:
        for p in list(self._plays):
            if not p.over:
                self._fail(p, "interrupted")

    def _finish(self, p: _Play) -> None:
        if p.over:
            return
        p.over = True
        self._plays.discard(p)
        p.target.wire.unsubscribe(p.our_ports.values())
        try:
            result = result_of(p)
        except Exception as exc:
            result = CaseResult(p.case, "error", f"internal error: {type(exc).__name__}: {exc}", 0.0, None)
        p.future.set_result(result)


def _unplayable_here(
    case: Case, ep: Endpoint, family: int, prefix: int | None, secondary: str | None = None
) -> str | None:
    """Why ``case`` cannot play on this endpoint (no agent, steps the family cannot carry); None if it can."""
    if case.needs_agent and ep.agent is None:
        return "needs the target agent (app steps); this target has none"
    return unplayable(case.steps, family, prefix, secondary)


def loss_of(p: _Play) -> str:
    """The harness error of a case during which the wire lost frames ("" when it lost none)."""
    wire = p.target.wire
    lost = wire.drops - p.drops_before
    if not lost:
        return ""
    return (
        f"the capture lost {lost} frame(s) while this case ran ({wire.loss_cause}): the tool's loss, not the "
        "target's, and a verdict would not be trustworthy; run fewer cases at once (--jobs), or stop what floods "
        "the wire"
    )


def result_of(p: _Play) -> CaseResult:
    """The case's result from its finished dialogue (a self-test case's verdict inverted)."""
    case, target, error = p.case, p.target, p.error
    verdict = p.dialogue.verdict()
    duration = time.time() - p.started
    if not error:
        error = loss_of(p)
    if not error and verdict.failure is not None and verdict.failure.kind in ("agent", "harness"):
        error = verdict.failure.render()  # the harness failed, not the target
    frames = sorted(p.frames, key=lambda f: f[0])
    if error:
        return CaseResult(case, "error", error, duration, target.info, verdict, p.our_ports, p.isns, frames)
    status = verdict.status
    message = verdict.failure.render() if verdict.failure else verdict.skip_reason
    if verdict.findings:
        notes = "\n".join(
            f"{'warning' if f.outcome == 'warn' else 'note'}: {f.failure.render()}" for f in verdict.findings
        )
        message = f"{message}\n{notes}" if message else notes
    result = CaseResult(case, status, message, duration, target.info, verdict, p.our_ports, p.isns, frames)
    if case.expect_failure is not None:
        result.raw_status = status
        result.status, result.message = self_test(case.expect_failure, verdict, message)
    return result
