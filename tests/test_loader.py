"""Loading case files: every shipped case loads, broken ones say file, line, field and what is valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.core import step_parsers
from conformance.core.errors import CaseFormatError
from conformance.core.loader import discover, load_case, load_schema
from conformance.core.model import (
    ANY_CONN,
    AppStep,
    AssertStep,
    ExpectStep,
    OptionSpec,
    SendStep,
    SilenceStep,
    WithholdStep,
)
from conformance.core.segment import FLAG_ORDER
from conformance.core.timing import DEFAULT_TOLERANCE, Tolerance, Window
from conformance.core.values import Expr

from .helpers import ROOT, case_text, line_of, write_case

CASE_DIRS = [ROOT / "cases", ROOT / "tests" / "cases"]
CASE_FILES = sorted(p for d in CASE_DIRS for p in [*d.rglob("*.yaml"), *d.rglob("*.yml")])
TOP_LEVEL = sorted(load_schema()["properties"])
STEP_FIELDS = sorted(load_schema()["$defs"]["step"]["properties"])
STEP_KINDS = ["send", "expect", "silence", "withhold", "assert", "app", "app_result", "state"]
BUILTINS = ["isn", "rcv_nxt", "snd_nxt"]


def load_error(path: Path) -> CaseFormatError:
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    return info.value


def assert_where(err: CaseFormatError, path: Path, line: int | None, field: str) -> None:
    assert err.path == str(path)
    assert err.line == line
    assert err.field == field
    text = str(err)
    assert text.startswith(f"{path}:{line}: {field}: " if line is not None else f"{path}: {field}: ")
    if err.valid:
        assert f"(valid: {', '.join(err.valid)})" in text


# ---------------------------------------------------------------- the shipped cases


def test_there_are_case_files() -> None:
    assert any(p.is_relative_to(ROOT / "cases") for p in CASE_FILES)


@pytest.mark.parametrize("path", CASE_FILES, ids=[str(p.relative_to(ROOT)) for p in CASE_FILES])
def test_every_case_file_loads(path: Path) -> None:
    root = next(d for d in CASE_DIRS if path.is_relative_to(d))
    case = load_case(path, root)
    assert case.path == str(path)
    assert case.steps
    assert case.refs
    if "group" not in yaml.safe_load(path.read_text(encoding="utf-8")):
        assert case.group == ".".join(path.parent.relative_to(root).parts)
    for step in case.steps:
        assert step.line >= 1
        # every step names a connection of the case, but for those that concern none or all
        if not (
            isinstance(step, AssertStep) or step.conn == ANY_CONN or (isinstance(step, AppStep) and step.do == "listen")
        ):
            assert step.conn in case.connections()
        assert step.ref is None or case.reference(step.ref) is not None


def test_discover_all_cases_with_unique_ids() -> None:
    cases = discover(CASE_DIRS)
    assert len(cases) == len(CASE_FILES)
    assert len({c.id for c in cases}) == len(cases)
    by_id = {c.id: c for c in cases}
    if "synack-ack" in by_id:
        assert by_id["synack-ack"].group == "handshake"


# ---------------------------------------------------------------- what a good case becomes


def test_a_good_case(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        """\
  - send: {flags: AS, seq: isn}
  - expect: {flags: "SAE?", ack: isn+1, len: 0}
    label: synack
    bind: {peer_isn: seq}
  - withhold: final ACK
    retransmits: synack
    schedule: synack
    count: 2
  - send: {flags: PA, data: hello, options: {mss: 1460, nop: 2, sackok: true}}
    conn: other
  - expect: {ack: snd_nxt, after: 200ms}
    conn: other
    ref: EP-5
  - silence: 1.5s
""",
        extra="tolerance: {absolute: 10ms, percent: 5}\ntarget:\n  sysctl: {tcp_synack_retries: 2}\n",
    )
    case = load_case(path, tmp_path)
    assert case.id == "test-case"
    assert case.group == tmp_path.name
    assert case.service == "listen"
    assert case.tolerance == Tolerance(0.01, 5.0)
    assert case.sysctls == {"tcp_synack_retries": 2}
    assert case.needs_own_target
    assert case.connections() == ["main", "other"]
    s0, s1, s2, s3, s4, s5 = case.steps
    assert isinstance(s0, SendStep)
    assert (s0.flags, s0.seq, s0.ack, s0.window, s0.data) == ("SA", Expr("isn", 0), None, 65535, b"")
    assert s0.line == line_of(path, "- send: {flags: AS")
    assert isinstance(s1, ExpectStep)
    assert s1.pattern.flags == "SA" and s1.pattern.flags_optional == "E"
    assert s1.pattern.ack == Expr("isn", 1) and s1.pattern.length == 0
    assert s1.window_ == Window("within", 1.0)
    assert (s1.label, s1.bind) == ("synack", (("peer_isn", "seq"),))
    assert isinstance(s2, WithholdStep)
    assert (s2.what, s2.retransmits, s2.schedule, s2.count, s2.then_silence) == (
        "final ACK",
        "synack",
        "synack",
        2,
        False,
    )
    assert isinstance(s3, SendStep) and s3.conn == "other"
    assert s3.data == b"hello"
    assert s3.options == (OptionSpec("mss", 1460), OptionSpec("nop"), OptionSpec("nop"), OptionSpec("sackok", True))
    assert isinstance(s4, ExpectStep) and s4.window_ == Window("after", 0.2) and s4.ref == "EP-5"
    assert isinstance(s5, SilenceStep) and s5.seconds == 1.5


def test_defaults(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - send: {flags: S, len: 3}\n  - expect: {}\n"))
    assert case.tolerance == DEFAULT_TOLERANCE
    assert case.sysctls == {} and not case.needs_own_target
    send, expect = case.steps
    assert isinstance(send, SendStep) and send.data == b"xxx" and send.conn == "main"
    assert isinstance(expect, ExpectStep)
    assert expect.pattern.flags is None and expect.pattern.options is None
    assert expect.window_ == Window("within", 1.0)


def test_withhold_then_silence_defaults_to_true_without_count(tmp_path: Path) -> None:
    case = load_case(
        write_case(tmp_path, "  - expect: {flags: SA}\n    label: s\n  - withhold: final ACK\n    retransmits: s\n")
    )
    w = case.steps[1]
    assert isinstance(w, WithholdStep)
    assert (w.schedule, w.count, w.then_silence) == ("synack", None, True)


def test_assert_step(tmp_path: Path) -> None:
    steps = "".join(f"  - expect: {{flags: SA}}\n    conn: c{i}\n    bind: {{v{i}: seq}}\n" for i in range(3))
    case = load_case(write_case(tmp_path, steps + "  - assert: {unpredictable: [v0, v1, v2]}\n"))
    a = case.steps[-1]
    assert isinstance(a, AssertStep)
    assert (a.check, a.names) == ("unpredictable", ("v0", "v1", "v2"))


# ---------------------------------------------------------------- malformed case files


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n", extra="colour: blue\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "colour:"), "colour")
    assert "unknown field 'colour'" in err.problem
    assert err.valid == TOP_LEVEL


def test_unknown_top_level_key_with_a_block_value_points_at_the_key(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n", extra="colour:\n  hue: blue\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "colour:"), "colour")


def test_unknown_key_in_a_step(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n    colour: blue\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "colour:"), "steps[0].colour")
    assert "unknown field 'colour'" in err.problem
    assert err.valid == STEP_FIELDS


def test_step_key_that_does_not_go_with_the_kind(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - send: {flags: A}\n    label: ack\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "label: ack"), "steps[1].label")
    assert "'label' does not go with 'send'" in err.problem
    assert err.valid == ["conn", "ref", "send"]


def test_unknown_key_inside_a_segment(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - expect: {flags: SA, colour: blue}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "colour"), "steps[1].expect.colour")
    assert err.valid == sorted(load_schema()["$defs"]["segment"]["properties"])


def test_step_with_two_kinds(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - send: {flags: S}\n    expect: {flags: SA}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- send", 2), "steps[1]")
    assert "exactly one of" in err.problem and "this one has send, expect" in err.problem
    assert err.valid == STEP_KINDS


def test_step_with_no_kind(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - conn: main\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- conn: main"), "steps[0]")
    assert "this one has none" in err.problem
    assert err.valid == STEP_KINDS


@pytest.mark.parametrize("flags", ["X", "s", "SAZ"])
def test_bad_flag_letter(tmp_path: Path, flags: str) -> None:
    path = write_case(tmp_path, f"  - send: {{flags: S}}\n  - expect: {{flags: {flags}}}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, f"flags: {flags}"), "steps[1].expect.flags")
    assert repr(flags) in err.problem


def test_bad_flag_letter_lists_the_valid_letters(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: X}\n")
    err = load_error(path)
    assert set(FLAG_ORDER) <= {v[0] for v in err.valid if v}


@pytest.mark.parametrize(
    ("flags", "problem"),
    [
        ('"S?"', "only allowed in expect"),
        ('"?S"', "'?' must follow a flag letter"),
    ],
)
def test_optional_flags_in_send(tmp_path: Path, flags: str, problem: str) -> None:
    path = write_case(tmp_path, f"  - send: {{flags: {flags}}}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- send"), "steps[0].send.flags")
    assert problem in err.problem


def test_flag_both_required_and_optional(tmp_path: Path) -> None:
    path = write_case(tmp_path, '  - expect: {flags: "S?S"}\n')
    err = load_error(path)
    assert_where(err, path, line_of(path, "- expect"), "steps[0].expect.flags")
    assert "both required and optional" in err.problem


def test_bad_expression(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - expect:\n      flags: SA\n      ack: isn+\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "ack: isn+"), "steps[1].expect.ack")
    assert "'isn+'" in err.problem and "NAME+NUMBER" in err.problem
    assert err.valid == []


def test_expression_out_of_range(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, seq: 4294967296}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "seq: 4294967296"), "steps[0].send.seq")
    assert "outside" in err.problem


def test_unbound_name_in_seq(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "  - send: {flags: S}\n  - expect: {flags: SA}\n    bind: {peer_win: win}\n"
        "  - send: {flags: A, seq: peer_isn+1}\n",
    )
    err = load_error(path)
    assert_where(err, path, line_of(path, "seq: peer_isn+1"), "steps[2].send.seq")
    assert "'peer_isn' is not bound before this step" in err.problem
    assert err.valid == sorted([*BUILTINS, "peer_win"])


def test_name_used_in_the_step_that_binds_it(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - expect: {flags: SA, seq: peer_isn}\n    bind: {peer_isn: seq}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "seq: peer_isn"), "steps[0].expect.seq")
    assert err.valid == BUILTINS


def test_binding_a_builtin_name(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - expect: {flags: SA}\n    bind:\n      isn: seq\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "isn: seq"), "steps[0].bind.isn")
    assert "built-in" in err.problem


def test_unknown_schedule(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "  - expect: {flags: SA}\n    label: synack\n  - withhold: final ACK\n"
        "    retransmits: synack\n    schedule: weekly\n",
    )
    err = load_error(path)
    assert_where(err, path, line_of(path, "schedule: weekly"), "steps[1].schedule")
    assert "'weekly'" in err.problem
    assert sorted(err.valid) == ["data", "persist", "syn", "synack"]


def test_withhold_of_an_unknown_label(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "  - expect: {flags: SA}\n    label: synack\n  - withhold: final ACK\n    retransmits: synak\n",
    )
    err = load_error(path)
    assert_where(err, path, line_of(path, "retransmits: synak"), "steps[1].retransmits")
    assert "no earlier expect step has label 'synak'" in err.problem
    assert err.valid == ["synack"]


def test_withhold_of_a_later_label(tmp_path: Path) -> None:
    path = write_case(
        tmp_path,
        "  - withhold: final ACK\n    retransmits: synack\n  - expect: {flags: SA}\n    label: synack\n",
    )
    err = load_error(path)
    assert_where(err, path, line_of(path, "retransmits: synack"), "steps[0].retransmits")
    assert err.valid == []


def test_withhold_without_retransmits(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - withhold: final ACK\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- withhold"), "steps[0]")
    assert "retransmits" in err.problem


def test_label_used_twice(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - expect: {flags: SA}\n    label: x\n  - expect: {flags: A}\n    label: x\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "label: x", 2), "steps[1].label")


def test_unknown_ref(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n    ref: EP-6\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "ref: EP-6"), "steps[0].ref")
    assert err.valid == ["EP-5"]


def test_within_and_after(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - expect: {flags: SA, within: 1s, after: 1s}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- expect"), "steps[0].expect.after")


def test_timing_on_a_send(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, within: 1s}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- send"), "steps[0].send.within")


def test_bad_duration(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n  - silence: a while\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "silence: a while"), "steps[1].silence")
    assert "not a duration" in err.problem


def test_assert_of_an_unbound_name(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - expect: {flags: SA}\n    bind: {a: seq}\n  - assert: {unpredictable: [a, b, c]}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- assert"), "steps[1].assert.unpredictable[1]")
    assert err.valid == sorted([*BUILTINS, "a"])


@pytest.mark.parametrize("kind", ["send", "expect"])
def test_len_disagreeing_with_data(tmp_path: Path, kind: str) -> None:
    path = write_case(tmp_path, f"  - {kind}:\n      flags: PA\n      data: hello\n      len: 4\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "len: 4"), f"steps[0].{kind}.len")
    assert "len 4 disagrees with data (5 octets)" in err.problem


def test_len_counts_octets_not_characters(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - send: {flags: PA, data: héllo, len: 6}\n"))
    step = case.steps[0]
    assert isinstance(step, SendStep) and step.data == "héllo".encode()


def test_schema_type_error(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, win: 70000}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "win: 70000"), "steps[0].send.win")


def test_enum_error_lists_valid_values(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n", extra="service: smtp\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "service: smtp"), "service")
    assert err.valid == ["listen", "banner", "echo", "http", "closed", "agent"]


def test_missing_required_field(tmp_path: Path) -> None:
    path = tmp_path / "no-title.yaml"
    path.write_text(case_text("  - send: {flags: S}\n").replace("title: A test case\n", ""), encoding="utf-8")
    err = load_error(path)
    assert err.field == "(top level)"
    assert "'title' is missing (required)" in err.problem
    assert err.line == 1


def test_duplicate_key(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S, seq: 1, seq: 2}\n")
    err = load_error(path)
    assert_where(err, path, line_of(path, "- send"), "steps[0].send.seq")
    assert "duplicate key" in err.problem


def test_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: broken\ntitle: t\n  refs: oops\nsteps: []\n", encoding="utf-8")
    err = load_error(path)
    assert_where(err, path, 3, "YAML")
    assert "mapping values are not allowed" in err.problem


def test_invalid_yaml_deeper_in_the_file(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S\n  - expect: {flags: SA}\n")
    err = load_error(path)
    assert err.field == "YAML"
    assert err.line == line_of(path, "- expect")
    assert f"{path}:{err.line}: YAML: " in str(err)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("", "file", "empty case file"),
        ("# just a comment\n", "file", "empty"),
        ("- a\n- b\n", "(top level)", "mapping"),
    ],
)
def test_not_a_case(tmp_path: Path, text: str, field: str, problem: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    err = load_error(path)
    assert err.field == field and problem in err.problem


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    err = load_error(missing)
    assert (err.path, err.line, err.field) == (str(missing), None, "file")
    assert str(err).startswith(f"{missing}: file: cannot read")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("id: caf\xe9\n".encode("latin-1"))
    assert "UTF-8" in load_error(latin1).problem


def test_zero_nops(tmp_path: Path) -> None:
    case = load_case(write_case(tmp_path, "  - send: {flags: S, options: {mss: 1460, nop: 0}}\n"))
    step = case.steps[0]
    assert isinstance(step, SendStep) and step.options == (OptionSpec("mss", 1460),)


# ---------------------------------------------------------------- discover


def test_discover_sorted_with_groups(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    write_case(tmp_path / "b", "  - send: {flags: S}\n", id="two")
    write_case(tmp_path / "a" / "deep", "  - send: {flags: S}\n", id="one")
    cases = discover([tmp_path])
    assert [c.id for c in cases] == ["one", "two"]
    assert [c.group for c in cases] == ["a.deep", "b"]
    single = discover([tmp_path / "b" / "two.yaml"])
    assert [c.group for c in single] == ["b"]


def test_discover_duplicate_ids(tmp_path: Path) -> None:
    first = write_case(tmp_path, "  - send: {flags: S}\n", id="same", name="a")
    second = write_case(tmp_path, "  - send: {flags: S}\n", id="same", name="b")
    with pytest.raises(CaseFormatError) as info:
        discover([tmp_path])
    err = info.value
    assert_where(err, second, 1, "id")
    assert f"also used by {first}" in err.problem


def test_discover_duplicate_id_points_at_the_id_line(tmp_path: Path) -> None:
    write_case(tmp_path, "  - send: {flags: S}\n", id="same", name="a")
    second = tmp_path / "b.yaml"
    second.write_text("# a case with a header comment\n\n" + case_text("  - send: {flags: S}\n", id="same"))
    with pytest.raises(CaseFormatError) as info:
        discover([tmp_path])
    assert info.value.line == line_of(second, "id: same")


def test_discover_missing_path(tmp_path: Path) -> None:
    with pytest.raises(CaseFormatError) as info:
        discover([tmp_path / "nowhere"])
    assert info.value.field == "path"


def test_discover_stops_at_the_first_broken_file(tmp_path: Path) -> None:
    write_case(tmp_path, "  - send: {flags: S}\n", id="good")
    bad = write_case(tmp_path, "  - send: {flags: Q}\n", id="zz-bad")
    with pytest.raises(CaseFormatError) as info:
        discover([tmp_path])
    assert info.value.path == str(bad)


def test_discover_overlapping_selection(tmp_path: Path) -> None:
    path = write_case(tmp_path, "  - send: {flags: S}\n", id="only")
    cases = discover([tmp_path, path])
    assert [c.id for c in cases] == ["only"]


# ---------------------------------------------------------------- property: only CaseFormatError escapes


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="FSRPAUECXs? ", max_size=6), st.sampled_from(["send", "expect"]))
def test_any_flags_text_loads_or_is_a_case_format_error(
    tmp_path_factory: pytest.TempPathFactory, flags: str, kind: str
) -> None:
    path = tmp_path_factory.getbasetemp() / "flags-property.yaml"
    path.write_text(case_text(f"  - {kind}: {{flags: {json.dumps(flags)}}}\n"), encoding="utf-8")
    try:
        case = load_case(path)
    except CaseFormatError as err:
        assert err.field in ("steps[0]", f"steps[0].{kind}.flags")
        assert err.line == line_of(path, f"- {kind}")
        return
    step = case.steps[0]
    required = step.flags if isinstance(step, SendStep) else step.pattern.flags  # type: ignore[attr-defined]
    assert required is not None
    assert set(required) <= set(flags) and set(required) <= set(FLAG_ORDER)
    assert required == "".join(f for f in FLAG_ORDER if f in required)


def test_every_step_kind_of_the_schema_has_a_parser() -> None:
    step_branches = load_schema()["$defs"]["step"]["oneOf"]
    schema_kinds = {key for branch in step_branches for key in branch.get("required", ())}
    assert set(step_parsers.PARSERS) == set(step_parsers.STEP_KINDS) == set(step_parsers.STEP_KEYS) == schema_kinds
    assert list(step_parsers.STEP_KINDS) == STEP_KINDS
