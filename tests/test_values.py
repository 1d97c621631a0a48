"""Sequence expressions and durations: the small value languages of the case format."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.matching import _rel
from conformance.core.model import SendStep
from conformance.core.segment import SEQ_MOD, canonical_flags, seq_add, seq_diff
from conformance.core.values import Expr, format_duration, parse_duration, parse_expr

from .helpers import load_steps, write_case

# ---------------------------------------------------------------- expressions


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (0, Expr(None, 0)),
        (7, Expr(None, 7)),
        (SEQ_MOD - 1, Expr(None, SEQ_MOD - 1)),
        ("0", Expr(None, 0)),
        ("4294967295", Expr(None, SEQ_MOD - 1)),
        ("isn", Expr("isn", 0)),
        ("isn+1", Expr("isn", 1)),
        ("isn-0", Expr("isn", 0)),
        ("peer_isn + 6", Expr("peer_isn", 6)),
        ("rcv_nxt-1", Expr("rcv_nxt", -1)),
        ("  snd_nxt  ", Expr("snd_nxt", 0)),
        ("_x9 +100", Expr("_x9", 100)),
        ("rcv_nxt+peer_win", Expr("rcv_nxt", 0, "peer_win")),
        ("rcv_nxt + peer_win - 1", Expr("rcv_nxt", -1, "peer_win")),
        ("snd_nxt+w+10000", Expr("snd_nxt", 10000, "w")),
        ("isn + x", Expr("isn", 0, "x")),
    ],
)
def test_parse_expr_accepts(text: object, expected: Expr) -> None:
    assert parse_expr(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "isn+",
        "+1",
        "-1",
        "isn+-1",
        "1isn",
        "a+b+c",
        "a-b",
        "a+b+1+1",
        "a+1+b",
        "isn*2",
        "isn+1+1",
        "1+isn",
        "",
        "   ",
        "4294967296",
        -1,
        SEQ_MOD,
        True,
        False,
        None,
        1.5,
        ["isn"],
    ],
)
def test_parse_expr_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_expr(text)


def test_parse_expr_error_messages_help() -> None:
    with pytest.raises(ValueError, match=r"NAME\+NUMBER"):
        parse_expr("isn+")
    with pytest.raises(ValueError, match="outside"):
        parse_expr(SEQ_MOD)
    with pytest.raises(ValueError, match="boolean"):
        parse_expr(True)


def test_expr_evaluates_modulo_2_32() -> None:
    names = {"isn": SEQ_MOD - 1, "zero": 0}
    assert parse_expr("isn+1").evaluate(names) == 0
    assert parse_expr("isn+2").evaluate(names) == 1
    assert parse_expr("zero-1").evaluate(names) == SEQ_MOD - 1
    assert parse_expr("42").evaluate({}) == 42
    with pytest.raises(KeyError):
        parse_expr("peer_isn").evaluate(names)


def test_a_sum_of_two_names_evaluates_modulo_2_32() -> None:
    names = {"rcv_nxt": SEQ_MOD - 10, "peer_win": 65535}
    assert parse_expr("rcv_nxt+peer_win").evaluate(names) == 65525
    assert parse_expr("rcv_nxt+peer_win-1").evaluate(names) == 65524
    assert parse_expr("rcv_nxt+peer_win+10000").evaluate(names) == 75525
    assert parse_expr("rcv_nxt+peer_win").names == ("rcv_nxt", "peer_win")
    with pytest.raises(KeyError, match="peer_win"):
        parse_expr("rcv_nxt+peer_win").evaluate({"rcv_nxt": 1})


def test_a_value_is_shown_relative_to_both_names() -> None:
    expr = parse_expr("rcv_nxt+peer_win")
    names = {"rcv_nxt": 1000, "peer_win": 500}
    assert _rel(1499, expr, names) == "rcv_nxt+peer_win-1 (1499)"
    assert _rel(1500, expr, names) == "rcv_nxt+peer_win (1500)"


def test_the_loader_takes_a_sum_of_bound_names(tmp_path: Path) -> None:
    case = load_steps(
        tmp_path,
        "  - send: {flags: S}\n  - expect: {flags: SA}\n    bind: {peer_isn: seq, peer_win: win}\n"
        "  - send: {flags: A, seq: rcv_nxt+peer_win-1, ack: peer_isn+1}\n",
    )
    step = case.steps[2]
    assert isinstance(step, SendStep) and step.seq == Expr("rcv_nxt", -1, "peer_win")


def test_the_loader_refuses_a_sum_with_an_unbound_second_name(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - send: {flags: A, seq: rcv_nxt+peer_win}\n")
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    assert info.value.field == "steps[1].send.seq"
    assert "'peer_win' is not bound before this step" in info.value.problem


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        (Expr(None, 12), "12"),
        (Expr("isn", 0), "isn"),
        (Expr("isn", 1), "isn+1"),
        (Expr("rcv_nxt", -3), "rcv_nxt-3"),
        (Expr("rcv_nxt", 0, "peer_win"), "rcv_nxt+peer_win"),
        (Expr("rcv_nxt", 10000, "peer_win"), "rcv_nxt+peer_win+10000"),
    ],
)
def test_expr_str(expr: Expr, text: str) -> None:
    assert str(expr) == text


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
SPACES = st.sampled_from(["", " ", "  "])


@st.composite
def expression_texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(SPACES) + str(draw(st.integers(0, SEQ_MOD - 1))) + draw(SPACES)
    name = draw(NAMES)
    if draw(st.booleans()):
        name += f"{draw(SPACES)}+{draw(SPACES)}{draw(NAMES)}"
    if draw(st.booleans()):
        return draw(SPACES) + name + draw(SPACES)
    sign = draw(st.sampled_from("+-"))
    offset = draw(st.integers(0, SEQ_MOD - 1))  # beyond: refused (issue 11)
    return f"{draw(SPACES)}{name}{draw(SPACES)}{sign}{draw(SPACES)}{offset}{draw(SPACES)}"


@given(expression_texts(), st.integers(0, SEQ_MOD - 1))
def test_parse_expr_round_trips_through_str(text: str, base: int) -> None:
    expr = parse_expr(text)
    again = parse_expr(str(expr))
    assert again == expr
    names = dict.fromkeys(expr.names, base)
    assert again.evaluate(names) == expr.evaluate(names)
    assert 0 <= expr.evaluate(names) < SEQ_MOD


@given(st.integers(0, SEQ_MOD - 1), st.integers(-(2**31), 2**31 - 1))
def test_expr_offset_matches_seq_add(base: int, offset: int) -> None:
    sign = "+" if offset >= 0 else "-"
    expr = parse_expr(f"x{sign}{abs(offset)}")
    assert expr.evaluate({"x": base}) == seq_add(base, offset)
    assert seq_diff(expr.evaluate({"x": base}), base) == offset


# ---------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (0, 0.0),
        (2, 2.0),
        (1.5, 1.5),
        ("0", 0.0),
        ("1.5", 1.5),
        ("1s", 1.0),
        ("2 s", 2.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("  250 ms ", 0.25),
        ("2min", 120.0),
        ("1.5min", 90.0),
    ],
)
def test_parse_duration_accepts(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize(
    "text",
    ["-1", "-1s", "1h", "ms", "s", "", "1,5s", "1 .5s", ".5s", "1 s s", "500 mss", "1e3", -1, -0.5, True, None, [1]],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_parse_duration_rejects_non_finite(value: float) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    "value",
    ["1" + "0" * 400, 10**400, "1" + "0" * 400 + "ms", 6e17, "600000000000000000 s", 3601, "61min", -math.inf],
)
def test_parse_duration_refuses_more_than_an_hour(value: object) -> None:
    """Issue 11: a 400-digit duration became infinity, 6e17 s a timer nobody would see end."""
    with pytest.raises(ValueError, match="longer than an hour|negative|not a duration") as info:
        parse_duration(value)
    assert len(str(info.value)) < 200  # the message does not quote 400 digits


@pytest.mark.parametrize("value", [3600, "3600s", "60min", "3600000ms"])
def test_parse_duration_accepts_an_hour(value: object) -> None:
    assert parse_duration(value) == 3600.0


@pytest.mark.parametrize("text", ["isn+" + "9" * 5000, "9" * 5000, "isn+4294967296", "isn+\u0663", "\u0661\u0662"])
def test_parse_expr_refuses_long_or_foreign_numbers(text: str) -> None:
    """Issue 11: offsets beyond 2**32 and digits of other scripts (int() takes them) are refused."""
    with pytest.raises(ValueError) as info:
        parse_expr(text)
    assert len(str(info.value)) < 200


@given(st.integers(0, 3600))
def test_milliseconds_and_seconds_agree(ms: int) -> None:
    assert parse_duration(f"{ms}ms") == pytest.approx(ms / 1000)
    assert parse_duration(f"{ms} s") == pytest.approx(float(ms))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.0125, "12.5 ms"), (0.002, "2.0 ms"), (0.999, "999.0 ms"), (1.0, "1.000 s"), (63.0, "63.000 s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ---------------------------------------------------------------- segment helpers the values rely on


def test_canonical_flags() -> None:
    assert canonical_flags("AS") == "SA"
    assert canonical_flags("APF") == "FPA"
    assert canonical_flags("") == ""
    with pytest.raises(ValueError, match="X"):
        canonical_flags("SX")


def test_seq_diff_is_signed_and_wraps() -> None:
    assert seq_diff(5, 3) == 2
    assert seq_diff(3, 5) == -2
    assert seq_diff(0, SEQ_MOD - 1) == 1
    assert seq_diff(SEQ_MOD - 1, 0) == -1
    assert seq_add(SEQ_MOD - 1, 2) == 1
