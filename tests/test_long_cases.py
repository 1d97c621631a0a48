"""Long cases (tagged ``long``): out of the default selection, played when named; and the shipped MUST-23 case.

Offline: the selection on folders of our own and on the shipped suite, the listing's mark, and the MUST-23 case
judged on a fake clock against scripted SYN series (Linux's documented give-up, an RFC 9293 sender, one that
gives up at 127 s).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.core.engine import AppRequest
from conformance.core.loader import load_case
from conformance.core.model import ExpectStep
from conformance.core.params import resolve
from conformance.core.profiles import load_profile
from conformance.core.schedules import expected_duration
from conformance.reporters.listing import LONG_MARK, list_json, list_plain
from conformance.run.cli import EXIT_ERROR, EXIT_OK, main
from conformance.run.suite import LONG, case_source, is_long

from .helpers import PEER_ISN, ROOT, FakeWire, write_case

CASES = ROOT / "cases"
PERSISTENCE = CASES / "client" / "syn-persistence.yaml"
STEPS = "  - send: {flags: S, seq: isn}\n  - expect: {flags: SA, ack: isn+1}\n"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """A folder with a quick case and a long one, in a subfolder each."""
    suite = tmp_path / "suite"
    for folder in ("quick", "slowpoke"):
        (suite / folder).mkdir(parents=True)
    write_case(suite / "quick", STEPS, id="quick-one", name="quick")
    write_case(suite / "slowpoke", STEPS, id="long-one", name="long", extra="tags: [timers, long]\n")
    return suite


@pytest.fixture
def inside(suite: Path) -> Iterator[Path]:
    """The current folder holds `suite` as its cases/: what a run with no paths takes."""
    here = suite.parent / "here"
    here.mkdir()
    (here / "cases").symlink_to(suite)
    old = Path.cwd()
    os.chdir(here)
    try:
        yield here
    finally:
        os.chdir(old)


def ids(paths: list[str] | None, long: bool = False) -> list[str]:
    source = case_source(paths, long=long)
    assert source is not None
    return sorted(c.id for c in source.load())


def test_the_default_selection_leaves_long_cases_out(inside: Path) -> None:
    assert ids(None) == ["quick-one"]
    taken = case_source(None).take()  # type: ignore[union-attr]
    assert [c.id for c in taken.long_left_out] == ["long-one"]
    assert "1 long case(s) left out (long-one): --long plays them" == taken.note()


def test_long_plays_them_and_so_does_naming_the_file(suite: Path, inside: Path) -> None:
    assert ids(None, long=True) == ["long-one", "quick-one"]
    assert ids([str(suite)]) == ["quick-one"]  # a folder walk, like the default
    assert ids([str(suite / "slowpoke")]) == []
    assert ids([str(suite / "slowpoke")], long=True) == ["long-one"]
    assert ids([str(suite / "slowpoke" / "long.yaml")]) == ["long-one"]  # named: asked for
    assert ids([str(suite / "quick"), "cases/slowpoke/long.yaml"]) == ["long-one", "quick-one"]


def test_the_command_line_says_how_to_play_what_it_left_out(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(suite / "slowpoke"), "--reports", str(suite / "r")]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "no case matches" in err and "1 long case(s) left out (long-one): --long plays them" in err
    assert main(["run", str(suite), "-k", "long-one", "--reports", str(suite / "r")]) == EXIT_ERROR
    assert "--long plays them" in capsys.readouterr().err


def test_list_shows_long_cases_marked(suite: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", str(suite), "--format", "plain"]) == EXIT_OK
    lines = {line.split("\t")[1]: line for line in capsys.readouterr().out.splitlines()}

    assert lines["long-one"].endswith("\t" + LONG_MARK) and LONG_MARK not in lines["quick-one"]
    assert main(["list", str(suite), "--format", "json"]) == EXIT_OK
    records = {r["id"]: r["long"] for r in json.loads(capsys.readouterr().out)}
    assert records == {"long-one": True, "quick-one": False}


def test_the_listing_marks_by_the_selection_tag() -> None:
    case = load_case(PERSISTENCE)
    assert is_long(case) and LONG in case.tags
    assert list_plain([case]).rstrip("\n").endswith(LONG_MARK) and json.loads(list_json([case]))[0]["long"] is True


def test_the_shipped_default_suite_is_as_long_as_its_longest_timer_and_the_long_cases_are_not() -> None:
    """Every case the default suite plays lasts at most the SYN-ACK schedule's ~70 s (the suite's budget is 1.05 x
    its longest timer); every shipped long case lasts longer, which is why it is left out."""
    source = case_source([str(CASES)])
    assert source is not None
    taken = source.take()
    params = resolve({}, load_profile("linux"))

    def length(case_file: str) -> float:
        case = load_case(case_file, CASES)
        return expected_duration(case, resolve(dict(case.sysctls), load_profile("linux")))

    longest = max(length(c.path) for c in taken.cases)
    assert 60 <= longest <= 75, longest
    assert PERSISTENCE.resolve() in {Path(c.path).resolve() for c in taken.long_left_out}
    for case in taken.long_left_out:  # its timers, or a wait the target's own backoff may stretch beyond the budget
        waits = [s.window_.seconds for s in case.steps if isinstance(s, ExpectStep) and s.window_.kind == "within"]
        assert max(expected_duration(case, params), *waits) > 1.05 * longest, case.id


# --- client-syn-persistence: MUST-23 ------------------------------------------------------------------------


def syn_series(profile: str, gaps: list[float], gives_up: float) -> FakeWire:
    """The target's app connects; its SYN is retransmitted after each of `gaps`, and connect() fails with
    ETIMEDOUT `gives_up` seconds after the first SYN."""
    w = FakeWire(load_case(PERSISTENCE, CASES), profile=load_profile(profile))
    t0 = 100.0
    w.advance(t0)
    (connect,) = [r for r in w.requests if isinstance(r, AppRequest) and r.cmd == "connect"]
    t = t0 + 0.001
    for gap in [0.0, *gaps]:
        t += gap
        seg = w.segment(t, "S", seq=PEER_ISN, ack=0)
        w.dialogue.receive(seg.__class__(**{**seg.__dict__, "sport": 50000, "dport": w.ports["main"]}))
        w.advance(t)
    w.dialogue.app_answer(connect.id, {"ok": False, "error": "ETIMEDOUT"}, t0 + 0.001 + gives_up)
    w.run_until(t0 + gives_up + 30)
    return w


LINUX_GAPS = [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]  # tcp_syn_retries=6, linear_timeouts=4


def _must23(w: FakeWire) -> list[str]:
    return [s.timing for s in w.verdict().steps if s.status == "failed" and "at least 180.000 s" in s.timing]


def test_linux_default_give_up_passes_under_linux() -> None:
    """131 s: the count of tcp_syn_retries=6 that the linux profile documents; no duration bound there."""
    v = syn_series("linux", LINUX_GAPS, 131.0).verdict()
    assert v.status == "passed", v.failure and v.failure.render()


def test_linux_default_give_up_fails_must_23_under_rfc() -> None:
    w = syn_series("rfc", LINUX_GAPS, 131.0)
    assert w.verdict().status == "failed" and _must23(w), [(s.description, s.timing) for s in w.verdict().steps]


def test_a_doubling_sender_that_gives_up_at_127_s_fails_must_23_only() -> None:
    """RFC 6298 §5.5's doubling, six retries: the series is right, the persistence is not (127 s < 3 min)."""
    w = syn_series("rfc", [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 127.0)
    v = w.verdict()
    assert v.status == "failed" and v.failure is not None and v.failure.reference is not None
    assert "MUST-23" in v.failure.reference.doc + v.failure.reference.id, v.failure.render()


def test_a_sender_that_keeps_trying_for_3_minutes_passes_under_rfc() -> None:
    w = syn_series("rfc", [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 190.0)
    v = w.verdict()
    assert not _must23(w) and v.status != "failed", v.failure and v.failure.render()
