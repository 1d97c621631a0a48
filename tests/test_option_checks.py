"""Option checks in an expect: a value, present (null), absent; the schema's URL $id; explain shows every check."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import load_case
from conformance.core.matching import compare
from conformance.core.model import Case, ExpectStep, OptionSpec
from conformance.core.segment import Segment
from conformance.run.explain import explain

CASE = """\
# yaml-language-server: $schema=../conformance/data/case.schema.json
id: synack-options
title: The SYN-ACK carries an MSS and no window scale when we offered none
refs:
  - id: EP-5
    doc: RFC 9293 §3.10.7.2
    level: MUST
    says: "LISTEN, SYN arrives: send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"
steps:
  - send: {flags: S, seq: isn, options: {mss: 1460}}
  - expect: {flags: SA, ack: isn+1, win: 64240, options: {OPTIONS}, within: 1s}
"""


def load(tmp_path: Path, options: str, send_options: str = "{mss: 1460}") -> Case:
    path = tmp_path / "case.yaml"
    path.write_text(CASE.replace("{OPTIONS}", options).replace("{mss: 1460}", send_options, 1))
    return load_case(path)


def expected_options(case: Case) -> tuple[OptionSpec, ...]:
    step = case.steps[1]
    assert isinstance(step, ExpectStep) and step.pattern.options is not None
    return step.pattern.options


def option_diffs(case: Case, *options: tuple[str, object]) -> dict[str, tuple[str, str, bool]]:
    step = case.steps[1]
    assert isinstance(step, ExpectStep)
    seg = Segment("198.18.0.2", "198.18.0.1", 7000, 20000, 5, 1001, "SA", 64240, b"", tuple(options))
    diffs = compare(step.pattern, seg, {"isn": 1000}, {})
    return {d.field: (d.expected, d.observed, d.ok) for d in diffs if d.field.startswith("option")}


def test_value_present_and_absent_are_three_checks(tmp_path: Path) -> None:
    case = load(tmp_path, "{mss: 1460, sackok: null, wscale: absent}")
    assert expected_options(case) == (
        OptionSpec("mss", 1460),
        OptionSpec("sackok", None),
        OptionSpec("wscale", absent=True),
    )
    got = option_diffs(case, ("mss", 1460), ("sackok", True))
    assert got == {
        "option mss": ("1460", "1460", True),
        "option sackok": ("present", "True", True),
        "option wscale": ("absent", "absent", True),
    }
    got = option_diffs(case, ("mss", 536), ("wscale", 7))
    assert got == {
        "option mss": ("1460", "536", False),
        "option sackok": ("present", "absent", False),
        "option wscale": ("absent", "7", False),
    }


def test_absent_is_refused_in_a_send(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match=r"steps\[0\]\.send\.options\.wscale: absent is for expect"):
        load(tmp_path, "{mss: null}", send_options="{wscale: absent}")


def test_any_other_word_is_refused_by_the_schema(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError, match="wscale"):
        load(tmp_path, "{wscale: missing}")


def test_explain_prints_every_check_of_an_expect(tmp_path: Path) -> None:
    text = explain(load(tmp_path, "{mss: null, wscale: absent, timestamp: [1, 0]}"), None)
    assert "SA ack=isn+1 win=64240 mss present wscale absent timestamp=(1, 0) within 1.000 s" in text


def test_the_schema_id_is_a_versioned_url() -> None:
    schema = json.loads(resources.files("conformance").joinpath("data", "case.schema.json").read_text())
    assert schema["$id"] == "https://conformance.example/schema/case-1.json"
