"""Fuzzing the tool's untrusted input (issue 11): case files, value languages, --target and -k.

Whatever comes in, the answer is a value or one of the tool's own errors
(:class:`CaseFormatError`, :class:`HarnessError`, :class:`ConformanceError`,
or ValueError from the value parsers, which the loader turns into a
CaseFormatError), each within the deadline: never another exception, never a
hang. Bounded so that the offline suite stays quick: ~200 examples a test.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.core.errors import CaseFormatError, ConformanceError, HarnessError
from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.timing import DEFAULT_TOLERANCE
from conformance.core.values import MAX_DURATION, parse_duration, parse_expr
from conformance.run.selection import parse_selection, select
from conformance.targets.base import TargetOptions
from conformance.targets.grammar import parse_target

from .helpers import ROOT

FUZZ = settings(
    max_examples=200,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SHIPPED = sorted((ROOT / "cases").rglob("*.yaml"))
SHIPPED_TEXT = [p.read_text(encoding="utf-8") for p in SHIPPED]

# ---------------------------------------------------------------- case files

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["isn+1", "peer_isn", "1s", "500ms", "2min", "SA", "S", "A?", "listen", "MUST", "default"])
)
FIELDS = st.sampled_from(
    ["id", "title", "refs", "steps", "send", "expect", "flags", "seq", "ack", "len", "data", "options", "within",
     "after", "nop", "mss", "wscale", "timestamp", "target", "sysctl", "tcp_synack_retries", "tolerance", "percent",
     "absolute", "withhold", "retransmits", "count", "label", "bind", "app", "do", "silence", "state", "lasts", "doc",
     "level", "service", "conn", "ref", "win"]
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(FIELDS | st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)
YAML_ALPHABET = st.sampled_from(list("{}[]&*!:-?|>'\"#%@`, \n\t.0123456789abSAisn+\\u<"))
YAML_TEXT = st.lists(
    YAML_ALPHABET | st.sampled_from(["!!", "<<", "\\ud800", ".nan", "&a", "*a", "\n  "]), max_size=120
).map("".join)


def load_text(text: str) -> Case | None:
    """Load `text` as a case file: a Case, or None when the loader refused it with a CaseFormatError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_case(path)
        except CaseFormatError as exc:
            assert exc.path == str(path)
            return None


@FUZZ
@given(VALUES)
def test_loader_takes_any_yaml_document(value: Any) -> None:
    load_text(yaml.safe_dump(value, allow_unicode=True))


@FUZZ
@given(YAML_TEXT)
def test_loader_takes_any_text(text: str) -> None:
    load_text(text)


@FUZZ
@given(
    st.sampled_from(SHIPPED_TEXT),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 40), YAML_TEXT), max_size=4),
)
def test_loader_takes_shipped_cases_mutated_as_text(text: str, edits: list[tuple[int, int, str]]) -> None:
    for at, cut, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut :]
    load_text(text)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [path] + [p for k, v in value.items() for p in _leaves(v, path + (k,))]
    if isinstance(value, list):
        return [path] + [p for i, v in enumerate(value) for p in _leaves(v, path + (i,))]
    return [path]


@FUZZ
@given(st.sampled_from(SHIPPED_TEXT), st.data())
def test_loader_takes_shipped_cases_with_a_value_replaced(text: str, data: st.DataObject) -> None:
    doc = yaml.safe_load(text)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_leaves(doc)))
        if not path:
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = data.draw(VALUES)
    case = load_text(yaml.safe_dump(doc, allow_unicode=True))
    if case is not None:  # what loads is bounded
        assert all(isinstance(v, int) and 0 <= v < 2**31 for v in case.sysctls.values())
        assert 0 <= case.tolerance.absolute <= MAX_DURATION and 0 <= case.tolerance.percent <= 100


# ---------------------------------------------------------------- value languages

VALUE_INPUTS = SCALARS | st.text(st.sampled_from(list("0123456789.+- smhinx_\u00b2\u0663")), max_size=30) | VALUES


@FUZZ
@given(VALUE_INPUTS)
def test_parse_duration_gives_a_bounded_duration_or_value_error(value: Any) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError:
        return
    assert 0 <= seconds <= MAX_DURATION


@FUZZ
@given(VALUE_INPUTS)
def test_parse_expr_gives_an_expression_or_value_error(value: Any) -> None:
    try:
        expr = parse_expr(value)
    except ValueError:
        return
    assert 0 <= expr.evaluate(dict.fromkeys(expr.names, 7)) < 2**32


# ---------------------------------------------------------------- --target

TARGET_PIECES = st.sampled_from(
    ["embedded", "netns:", "tap:", "docker:", "198.18.2.2", "[2001:2::2]", "2001:2::2", ",", ":", "[", "]", "%",
     "80", "0", "65536", "\u00b2", "\u0668", "tap0", "web", "..", "/", "10.0.0.1", "::1", " ", "\n"]
)  # fmt: skip
TARGETS = st.lists(TARGET_PIECES, max_size=8).map("".join) | st.text(max_size=60)
OPTIONS = st.builds(
    TargetOptions,
    iface=st.none() | st.text(max_size=10),
    closed_port=st.none() | st.integers(-5, 70000),
    prober_ip=st.none() | st.lists(TARGET_PIECES, max_size=4).map("".join),
)


@FUZZ
@given(TARGETS, OPTIONS)
def test_target_grammar_gives_a_spec_or_harness_error(text: str, options: TargetOptions) -> None:
    try:
        spec = parse_target(text, options)
    except HarnessError:
        return
    assert spec.text == text


# ---------------------------------------------------------------- -k

K_PIECES = st.sampled_from(["and", "or", "not", "(", ")", "synack", "ci", "fin", " ", "  ", "((", "))"])
CASES = [
    Case(id=i, title=i, group="g", path="", refs=(), service="listen", steps=(), tolerance=DEFAULT_TOLERANCE)
    for i in ("synack", "fin-ci", "close")
]


@FUZZ
@given(st.lists(K_PIECES, max_size=600).map(" ".join) | st.text(max_size=80))
def test_selection_gives_cases_or_conformance_error(expr: str) -> None:
    try:
        parse_selection(expr)
        chosen = select(CASES, expr)
    except ConformanceError as exc:
        assert "valid: words joined by and, or, not and parentheses" in str(exc)
        return
    assert {c.id for c in chosen} <= {c.id for c in CASES}
