"""The command line's untrusted input (issue 11): every wrong argument is a usage error (exit 2) saying what is
valid, never a hang, a traceback or "internal error"."""

from __future__ import annotations

import argparse

import pytest

from conformance.core.errors import ConformanceError, HarnessError
from conformance.core.model import Case
from conformance.core.timing import DEFAULT_TOLERANCE as TOLERANCE
from conformance.run import cli
from conformance.run.cli import EXIT_ERROR, main
from conformance.run.selection import MAX_DEPTH, MAX_TOKENS, parse_selection, select
from conformance.targets.base import parse_port
from conformance.targets.grammar import parse_target

from .helpers import ROOT

CASES = str(ROOT / "cases")


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of a run that must stop with exit 2 before doing anything."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    assert code == EXIT_ERROR, err
    assert "Traceback" not in err and "internal error" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--jobs", "-1"], "give a whole number from 1 to 1024"),
        (["--jobs", "0"], "give a whole number from 1 to 1024"),
        (["--jobs", "99999999999999"], "give a whole number from 1 to 1024"),
        (["--tolerance-pct", "-50"], "give a number from 0 to 100"),
        (["--tolerance-pct", "nan"], "give a number from 0 to 100"),
        (["--tolerance-pct", "inf"], "give a number from 0 to 100"),
        (["--tolerance-pct", "much"], "give a number from 0 to 100"),
        (["--tolerance-abs", "2h"], "is not a duration"),
        (["--tolerance-abs", "1" + "0" * 400], "is not a duration"),
        (["--tolerance-abs", "61min"], "longer than an hour"),
        (["--closed-port", "\u00b2"], "give a whole number from 1 to 65535"),
        (["--closed-port", "\u0668\u0660"], "give a whole number from 1 to 65535"),
        (["--target", "[2001:2::1%rtv0]:80"], "a zone (%NAME) is not allowed"),
        (["--target", "198.18.2.2:\u00b2"], "give a number from 1 to 65535"),
        (["--target", "198.18.2.2:" + "9" * 5000], "give a number from 1 to 65535"),
        (["--target", "tap:tap0:198.18.3.2:\u00b2"], "give a number from 1 to 65535"),
        (["--target", "docker:web:\u00b2"], "give a number from 1 to 65535"),
        (["--target", "netns:../../run/x"], "is not a namespace name"),
        (["-k", "not " * 5000 + "a"], f"more than {MAX_TOKENS} words"),
        (["-k", "a (b)"], "expected and, or or the end after 'a', found '('"),
    ],
)
def test_run_refuses(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in usage_error(["run", *argv, CASES], capsys)


def test_a_ctrl_c_while_the_arguments_are_parsed_is_our_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> argparse.ArgumentParser:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert "interrupted" in usage_error(["list"], capsys)


@pytest.mark.parametrize("text", ["\u00b2", "\u0668\u0660", "0", "65536", "+80", " 80", "80 ", "", "9" * 5000])
def test_parse_port_takes_ascii_ports_only(text: str) -> None:
    with pytest.raises(HarnessError, match="not a TCP port"):
        parse_port(text, "port")


@pytest.mark.parametrize("text", ["[2001:2::1%rtv0]:80", "[2001:2::1%25]:80", "tap:tap0:[2001:2:0:3::2%tap0]:80"])
def test_an_ipv6_zone_is_refused(text: str) -> None:
    with pytest.raises(HarnessError, match="zone"):
        parse_target(text)


# ---------------------------------------------------------------- -k


@pytest.mark.parametrize(
    ("expr", "matches"),
    [
        ("synack", {"syn-ack", "synack-retransmit"}),
        ("not synack", {"fin", "close"}),
        ("not not synack", {"syn-ack", "synack-retransmit"}),
        ("synack and not retransmit", {"syn-ack"}),
        ("(fin or close) and not retransmit", {"fin", "close"}),
        ("fin or synack and retransmit", {"fin", "synack-retransmit"}),  # and binds tighter, as in Python
        ("((((synack))))", {"syn-ack", "synack-retransmit"}),
        ("SYNACK", {"syn-ack", "synack-retransmit"}),
    ],
)
def test_selection_matches_like_pytest(expr: str, matches: set[str]) -> None:
    def case(id: str, title: str) -> Case:
        return Case(id=id, title=title, group="g", path="", refs=(), service="listen", steps=(), tolerance=TOLERANCE)

    cases = [
        case("syn-ack", "synack"),
        case("synack-retransmit", "synack retransmit"),
        case("fin", "a"),
        case("close", "b"),
    ]
    assert {c.id for c in select(cases, expr)} == matches


@pytest.mark.parametrize(
    "expr",
    ["a (b)", "a b", "(", ")", "()", "a and", "or a", "not", "a (", "a )", "and", "(" * (MAX_DEPTH + 1) + "a"],
)
def test_selection_refuses_with_what_is_valid(expr: str) -> None:
    with pytest.raises(ConformanceError, match="valid: words joined by and, or, not and parentheses"):
        parse_selection(expr)
