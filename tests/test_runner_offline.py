"""The runner's scheduling, offline: targets and dialogues replaced by fakes that record what happened.

What is checked: the shared target opens first and its cases start before the
others' targets are up; every target is removed as soon as its own cases end,
and always, also when another cannot be opened; dialogues start
``START_SPACING`` apart; the garbage collector is back as it was after a run.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conformance.core.errors import HarnessError
from conformance.core.model import Case
from conformance.core.params import resolve
from conformance.core.results import CaseResult
from conformance.run import runner
from conformance.run.session import OpenedTarget, RunSettings
from conformance.targets.base import Endpoint

from .helpers import load_steps

STEPS = "  - send: {flags: S, seq: isn}\n"


class Recorder:
    """Fake targets and plays; `events` is (monotonic time, what) in the order things happened.

    A case plays `play_time` seconds on the shared target, a fifth of it on a tuned one.
    """

    def __init__(self, open_delay: float = 0.05, play_time: float = 0.02, fail_index: int | None = None) -> None:
        self.events: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        self.open_delay = open_delay
        self.play_time = play_time
        self.fail_index = fail_index
        self.gc_enabled: list[bool] = []  # at each case's start: the collector must be off
        self.ports: dict[str, list[int]] = {}  # each case's reserved source ports

    def note(self, what: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), what))

    def times(self, prefix: str) -> list[float]:
        return [t for t, what in self.events if what.startswith(prefix)]

    @contextmanager
    def open_target(
        self, spec: str, index: int, sysctls: dict[str, int], options: object = None, sports: object = None
    ) -> Iterator[Any]:
        self.note(f"open {index}")
        time.sleep(self.open_delay)
        if index == self.fail_index:
            raise HarnessError(f"target {index} cannot be made")
        endpoint = Endpoint(
            iface="prb",
            netns=None,
            our_mac="02:00:00:00:00:01",
            target_mac="02:00:00:00:00:02",
            our_ip="198.18.0.1",
            target_ip="198.18.0.2",
            ports={"listen": 7000},
            params=resolve({}),
            description="fake",
            sysctls=dict(sysctls),
        )
        try:
            self.note(f"up {index}")
            yield OpenedTarget(endpoint, wire=None)  # type: ignore[arg-type]
        finally:
            self.note(f"removed {index}")

    def player(self, settings: Any, ports: Any) -> FakePlayer:
        return FakePlayer(self)


class FakePlayer:
    """The runner's :class:`~conformance.run.player.Player`, each case a thread that sleeps and passes."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.threads: list[threading.Thread] = []

    def submit(self, case: Case, target: Any, rng: Any, family: int = 4, ports: Any = None) -> Future[CaseResult]:
        fut: Future[CaseResult] = Future()
        rec = self.rec
        rec.ports[case.id] = list(ports or [])

        def play() -> None:
            rec.note(f"start {case.id} on {target.endpoint.sysctls or 'shared'}")
            rec.gc_enabled.append(gc.isenabled())
            seconds = rec.play_time * (0.2 if case.sysctls else 1.0)
            time.sleep(seconds)
            rec.note(f"end {case.id}")
            fut.set_result(CaseResult(case, "passed", "", seconds, target.info))

        thread = threading.Thread(target=play)
        thread.start()
        self.threads.append(thread)
        return fut

    def close(self) -> None:
        for thread in self.threads:
            thread.join()


@pytest.fixture
def cases(tmp_path: Path) -> list[Case]:
    base = load_steps(tmp_path, STEPS)
    shared = [dataclasses.replace(base, id=f"shared-{i}") for i in range(10)]
    tuned = [dataclasses.replace(base, id=f"tuned-{n}", sysctls={"tcp_syncookies": n}) for n in (0, 1, 2)]
    return shared + tuned


def run_with(recorder: Recorder, cases: list[Case], monkeypatch: pytest.MonkeyPatch) -> list[CaseResult]:
    monkeypatch.setattr(runner, "open_target", recorder.open_target)
    monkeypatch.setattr(runner, "Player", recorder.player)
    return runner.run(cases, RunSettings(ip="4", seed=1))


def test_shared_target_first_and_each_removed_when_its_cases_end(
    cases: list[Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder(open_delay=0.05, play_time=0.3)
    results = run_with(rec, cases, monkeypatch)
    assert [r.status for r in results] == ["passed"] * len(cases)
    assert rec.gc_enabled == [False] * len(cases), "dialogues play with the automatic collector off"
    assert [r.case.id for r in results] == [c.id for c in cases], "results come back in the cases' order"
    first_open = rec.events[0][1]
    assert first_open == "open 0", rec.events
    # The shared target's cases start before the last tuned target is up: set-up overlaps play.
    assert min(rec.times("start shared")) < max(rec.times("up ")), rec.events
    # Every target is removed once, after its own cases ended, and a tuned target (one case of
    # 0.06 s) is gone before the shared one's ten cases (0.3 s each) are over.
    for index in range(4):
        assert len(rec.times(f"removed {index}")) == 1, rec.events
    tuned_end = rec.times("end tuned-0")[0]
    removed_1 = rec.times("removed 1")[0]
    assert tuned_end <= removed_1 < rec.times("removed 0")[0], rec.events
    assert gc.isenabled()


def test_starts_are_spaced(cases: list[Case], monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(open_delay=0.0, play_time=0.2)
    run_with(rec, cases[:10], monkeypatch)
    starts = sorted(rec.times("start "))
    ends = sorted(rec.times("end "))
    # Measured where the fake dialogues begin (thread scheduling may delay one start, never advance it).
    assert len(starts) == 10 and starts[-1] - starts[0] >= 8 * runner.START_SPACING, starts
    at_once = max(sum(1 for s in starts if s <= t) - sum(1 for e in ends if e <= t) for t in starts)
    assert at_once >= 5, "spacing only: the cases still play at once"


def test_a_target_that_cannot_be_opened_ends_the_run_and_the_others_are_removed(
    cases: list[Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder(open_delay=0.02, play_time=0.5, fail_index=2)
    with pytest.raises(HarnessError, match="target 2 cannot be made"):
        run_with(rec, cases, monkeypatch)
    ups = {what.split()[1] for _, what in rec.events if what.startswith("up ")}
    removed = {what.split()[1] for _, what in rec.events if what.startswith("removed ")}
    assert ups and ups == removed, rec.events
    assert gc.isenabled()


def test_cancel_reports_unstarted_cases_as_interrupted(cases: list[Case], monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(open_delay=0.0, play_time=0.1)
    settings = RunSettings(ip="4", seed=1, jobs=1)

    class CancellingPlayer(FakePlayer):
        def submit(self, case: Case, target: Any, rng: Any, family: int = 4, ports: Any = None) -> Future[CaseResult]:
            settings.cancel.set()  # as Ctrl-C would, once the first case has started
            return super().submit(case, target, rng, family, ports)

    monkeypatch.setattr(runner, "open_target", rec.open_target)
    monkeypatch.setattr(runner, "Player", lambda settings, ports: CancellingPlayer(rec))
    results = runner.run(cases[:4], settings)
    assert [r.status for r in results] == ["passed", "error", "error", "error"]
    assert all("interrupted" in r.message for r in results[1:])
    assert rec.times("removed 0")


def test_a_family_the_target_lacks_is_skipped_before_anything_is_opened(
    cases: list[Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    monkeypatch.setattr(runner, "open_target", rec.open_target)
    monkeypatch.setattr(runner, "Player", rec.player)
    settings = RunSettings(target="[2001:2:0:2::2]:7000", ip="4", seed=1)
    results = runner.run(cases[:3], settings)
    assert [(r.status, r.message) for r in results] == [("skipped", "this target has no IPv4 address")] * 3
    assert rec.events == [], "no target opened (no ND, no firewall table) for cases it cannot play"


def test_the_same_seed_gives_each_case_the_same_source_ports(
    cases: list[Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ports are reserved per case when the run is planned, not taken as cases start: however the targets come
    up (here: in another order, and one case at a time), a case keeps its ports under the same --seed."""
    first = Recorder(open_delay=0.0, play_time=0.01)
    run_with(first, cases, monkeypatch)
    second = Recorder(open_delay=0.03, play_time=0.01)
    monkeypatch.setattr(runner, "open_target", second.open_target)
    monkeypatch.setattr(runner, "Player", second.player)
    runner.run(list(reversed(cases[2:])), RunSettings(ip="4", seed=1, jobs=1))
    other = Recorder(open_delay=0.0, play_time=0.01)
    monkeypatch.setattr(runner, "open_target", other.open_target)
    monkeypatch.setattr(runner, "Player", other.player)
    runner.run(cases, RunSettings(ip="4", seed=2))
    assert first.ports and all(first.ports.values())
    assert second.ports == {c.id: first.ports[c.id] for c in cases[2:]}, "fewer cases, another order"
    every = [p for ports in first.ports.values() for p in ports]
    assert len(every) == len(set(every)), "no two cases share a source port"
    assert other.ports != first.ports, "another seed, other ports"
