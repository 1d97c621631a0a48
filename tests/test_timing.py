"""Tolerance max(absolute, percent) and timing windows (within / after)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.core.params import resolve
from conformance.core.schedules import SCHEDULES, data, synack
from conformance.core.timing import DEFAULT_TOLERANCE, Tolerance, Window

TOL = Tolerance(absolute=0.05, percent=15.0)

# ---------------------------------------------------------------- tolerance


def test_default_tolerance() -> None:
    assert DEFAULT_TOLERANCE == Tolerance(0.05, 15.0)


@pytest.mark.parametrize(
    ("gap", "tolerance"),
    [
        (0.0, 0.05),  # absolute floor
        (0.1, 0.05),  # 15 % is 15 ms: the floor wins
        (1 / 3, 0.05),  # exactly where 15 % reaches 50 ms
        (1.0, 0.15),  # percentage wins
        (2.0, 0.3),
        (32.0, 4.8),
    ],
)
def test_tolerance_is_max_of_absolute_and_percent(gap: float, tolerance: float) -> None:
    assert TOL.of(gap) == pytest.approx(tolerance)


def test_tolerance_zero_percent_is_absolute_only() -> None:
    assert Tolerance(0.01, 0.0).of(100.0) == 0.01
    assert Tolerance(0.0, 10.0).of(2.0) == pytest.approx(0.2)


def test_tolerance_str_names_both_parts() -> None:
    assert str(TOL) == "max(50.0 ms, 15%)"


@given(
    st.floats(0, 10, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
    st.floats(0, 1000, allow_nan=False),
)
def test_tolerance_property(absolute: float, percent: float, gap: float) -> None:
    t = Tolerance(absolute, percent).of(gap)
    assert t >= absolute
    assert t >= percent / 100 * gap
    assert math.isclose(t, absolute) or math.isclose(t, percent / 100 * gap)


# ---------------------------------------------------------------- windows


def test_within_accepts_anything_up_to_the_deadline() -> None:
    w = Window("within", 1.0)
    assert w.check(0.0, TOL) is None
    assert w.check(-0.5, TOL) is None  # never "early"
    assert w.check(0.999, TOL) is None
    assert w.check(1.14, TOL) is None  # inside the 150 ms tolerance
    assert w.deadline(TOL) == pytest.approx(1.15)
    assert w.earliest(TOL) == -math.inf


def test_within_late() -> None:
    problem = Window("within", 1.0).check(1.2, TOL)
    assert problem is not None
    assert problem.startswith("late:")
    assert "within 1.000 s" in problem
    assert "1.200 s" in problem


def test_within_short_gap_uses_the_absolute_floor() -> None:
    w = Window("within", 0.1)  # 15 % = 15 ms < 50 ms
    assert w.check(0.149, TOL) is None
    assert w.check(0.151, TOL) is not None


@pytest.mark.parametrize("gap", [1.71, 1.9, 2.0, 2.1, 2.29])
def test_after_accepts_the_expected_gap_plus_minus_tolerance(gap: float) -> None:
    assert Window("after", 2.0).check(gap, TOL) is None


@pytest.mark.parametrize("gap", [0.0, 1.0, 1.69])
def test_after_early(gap: float) -> None:
    problem = Window("after", 2.0).check(gap, TOL)
    assert problem is not None
    assert problem.startswith("early:")
    assert "after 2.000 s" in problem
    assert "off by -" in problem


@pytest.mark.parametrize("gap", [2.31, 3.0, 10.0])
def test_after_late(gap: float) -> None:
    problem = Window("after", 2.0).check(gap, TOL)
    assert problem is not None
    assert problem.startswith("late:")
    assert "off by " in problem and "off by -" not in problem


def test_after_window_bounds() -> None:
    w = Window("after", 2.0)
    assert w.earliest(TOL) == pytest.approx(1.7)
    assert w.deadline(TOL) == pytest.approx(2.3)
    assert str(w) == "after 2.000 s"
    assert str(Window("within", 0.5)) == "within 500.0 ms"


@given(st.floats(0.001, 100, allow_nan=False), st.floats(-1, 1, allow_nan=False))
def test_after_check_agrees_with_its_bounds(seconds: float, fraction: float) -> None:
    w = Window("after", seconds)
    gap = seconds + fraction * 2 * TOL.of(seconds)
    inside = w.earliest(TOL) <= gap <= w.deadline(TOL)
    # Stay clear of the exact edges, where float rounding decides.
    if abs(abs(fraction) - 0.5) > 1e-6:
        assert (w.check(gap, TOL) is None) == inside


# ---------------------------------------------------------------- schedules (the windows withhold builds)


def test_tolerance_text_gives_each_end_of_a_range() -> None:
    tol = Tolerance(0.05, 15.0, 0.004)
    assert Window("after", 0.2).tolerance_text(tol) == "tolerance 54.0 ms, max(50.0 ms, 15%) + timer granularity 4.0 ms"
    text = Window("after", 0.2, "rto", latest=3.0).tolerance_text(tol)
    assert text.startswith("tolerance 54.0 ms at 200.0 ms and 454.0 ms at 3.000 s, ")  # 454 ms sets the deadline
    assert Window("after", 0.2, "rto", latest=3.0).deadline(tol) == pytest.approx(3.454)


def test_synack_schedule_doubles_from_the_initial_rto() -> None:
    s = synack(resolve({"tcp_synack_retries": 2}))
    assert s.intervals == (1.0, 2.0)
    assert s.give_up == 4.0
    assert "tcp_synack_retries" in s.derivation


def test_synack_schedule_linux_default_is_63_seconds() -> None:
    s = synack(resolve({}))
    assert s.intervals == (1.0, 2.0, 4.0, 8.0, 16.0)
    assert sum(s.intervals) + s.give_up == 63.0


@pytest.mark.parametrize(
    ("rtt", "first"),
    [
        (None, 0.2),
        (0.0, 0.2),
        (0.002, 0.202),  # R + max(200 ms, 2R) with R = 2 ms
        (0.1, 0.3),  # 2R = 200 ms: both terms equal
        (0.15, 0.45),  # 2R wins
    ],
)
def test_data_schedule_first_rto(rtt: float | None, first: float) -> None:
    s = data(resolve({}), rtt)
    assert s.intervals[0] == pytest.approx(first)
    assert s.intervals[1] == pytest.approx(2 * first)
    assert s.give_up == pytest.approx(2 * s.intervals[-1])


def test_data_schedule_uses_the_targets_rto_min() -> None:
    s = data(resolve({"tcp_rto_min_us": 50_000}), 0.001)
    assert s.intervals[0] == pytest.approx(0.051)


def test_schedule_registry() -> None:
    assert set(SCHEDULES) == {"synack", "data", "syn", "persist"}
