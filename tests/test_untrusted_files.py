"""Profiles (--profile FILE) and baselines (--baseline FILE) are untrusted files, read as case files are: a malformed
one is a clear error naming the file and the field (exit code 2), never a traceback or a value silently misread."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

import pytest

import conformance.inside.agent as inside
from conformance.core.errors import HarnessError
from conformance.run.baseline import Baseline
from conformance.run.cli import EXIT_ERROR, EXIT_OK, main

ROOT = Path(__file__).resolve().parent.parent
SYNACK_ACK = ROOT / "cases" / "handshake" / "synack-ack.yaml"
DEEP = "[" * 5000 + "]" * 5000
VALUE = "values:\n  rto_min: {value: 0.2, level: default, source: 'Linux TCP_RTO_MIN'}\n"

PROFILES = [
    # each of these was an internal error (RecursionError, ValueError)
    (DEEP, "YAML: nested more than 40 levels deep"),
    ("name: 2024-02-30\n", "name: '2024-02-30' is not a value"),
    ("name: x\nvalues: {rto_min: {value: " + "9" * 5000 + ", source: s}}\n", "values.rto_min.value: "),
    ("name: x\n1: 2\nfoo: 3\n", "unknown field"),
    ("name: x\nvalues: {rto_min: {value: " + "9" * 400 + ", source: s}}\n", "is out of range"),  # OverflowError
    ("name: x\nvalues: {rto_min: {value: '" + "a" * 100_000 + "', source: s}}\n", "is not a number"),
    # each of these was taken, misread
    ("name: x\nread_sysctls: 'no'\n", "read_sysctls: 'no' is not true or false"),
    ("name: [a, b]\n", "name: list is not a text of 1 to 2000 characters"),
    ("name: x\nstack: {a: 1}\n", "stack: dict is not a text"),
    ("name: x\ntitle: ''\n", "title: '' is not a text"),
    ("name: x\nvalues: {rto_min: {value: 1, source: {a: 1}}}\n", "values.rto_min.source: dict is not a text"),
    ("name: x\nvalues: {rto_min: {value: 1, levle: MUST, source: s}}\n", "values.rto_min.levle: unknown field"),
    ("name: x\nname: y\n", "name: duplicate key"),
    ("name: !!python/object:os.system x\n", "could not determine a constructor"),
]


@pytest.mark.parametrize(("text", "message"), PROFILES)
def test_a_malformed_profile_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["explain", str(SYNACK_ACK), "--profile", str(path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"conformance: {path}" in err and message in err and "internal error" not in err, err[:2000]
    assert len(err) < 5000, "the error quotes the bad value shortened"


def test_a_good_profile_file_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"# my stack\nname: mine\nstack: mine\nread_sysctls: false\n{VALUE}", encoding="utf-8")
    assert main(["explain", str(SYNACK_ACK), "--profile", str(path)]) == EXIT_OK, capsys.readouterr().err


ENTRY = "- case: closed-ack\n  check: expect R\n  why: answers RST,ACK\n"

BASELINES = [
    (DEEP, "not YAML the tool reads (line 1: nested more than 40 levels deep)"),
    (ENTRY + "  until: 2024-02-30\n", "not YAML the tool reads (line 4: '2024-02-30' is not a value"),
    (ENTRY + "  until: " + "9" * 5000 + "\n", "not YAML the tool reads (line 4: "),
    (ENTRY + "  1: x\n  foo: y\n", "entry 1: unknown field '1'"),
    (ENTRY + "  until: 2024-01-01 10:00:00\n", "until 2024-01-01 10:00:00 (a day and a time) is not a date"),
    (ENTRY + "  until: [2024]\n", "until a list is not a date"),
    (ENTRY + "  until: 20240101\n", "until 20240101 is not a date"),
    (ENTRY.replace("closed-ack", "x" * 201), "'case' must be a non-empty text of at most 200 characters"),
    (ENTRY.replace("closed-ack", "'Closed ack'"), "case 'Closed ack' is not a case id"),
    (ENTRY.replace("answers RST,ACK", "x" * 2001), "'why' must be a non-empty text of at most 2000 characters"),
    (ENTRY + "  case: again\n", "duplicate key"),
]


@pytest.mark.parametrize(("text", "message"), BASELINES)
def test_a_malformed_baseline_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HarnessError) as caught:
        Baseline.load(str(path))
    assert str(caught.value).startswith(f"--baseline {path}: ") and message in str(caught.value)


def test_a_baseline_of_comments_only_is_empty_and_a_day_is_a_date(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text("# no known deviation yet\n", encoding="utf-8")
    assert Baseline.load(str(path)).entries == []
    path.write_text(ENTRY + "  until: 2025-12-31\n", encoding="utf-8")
    assert Baseline.load(str(path)).entries[0].until == dt.date(2025, 12, 31)
    path.write_text(ENTRY + "  until: '2025-12-31'\n", encoding="utf-8")
    assert Baseline.load(str(path)).entries[0].until == dt.date(2025, 12, 31)


LONG = "a" * 5000  # a name no file system takes: each of these was an OSError ('internal error')


@pytest.mark.parametrize(
    "argv",
    [
        ["list", LONG],
        ["list", "/".join(["a" * 255] * 20)],
        ["coverage", "--results", LONG],
        ["coverage", LONG],
        ["explain", LONG],
        ["explain", str(SYNACK_ACK), "--profile", LONG],
        ["baseline", "--from", LONG],
    ],
)
def test_a_file_name_too_long_is_a_clear_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "File name too long" in err and "internal error" not in err and len(err) < 400, err


def _token_error(path: str) -> str:
    """What reading the token file `path` says, on a thread: a FIFO must not block it."""
    said: list[str] = []

    def read() -> None:
        try:
            inside.read_token(path, "--agent-token")
        except inside.UsageError as exc:
            said.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), f"reading {path} blocked"
    return said[0] if said else ""


def test_a_token_file_is_a_regular_file_read_boundedly(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    assert "not a regular file" in _token_error(str(fifo))  # was: blocked for ever in open()
    # /dev/zero (read until memory ran out) is refused by the same check; not read here, lest a regression do that
    assert "not a regular file" in _token_error(str(tmp_path))
    big = tmp_path / "big"
    big.write_bytes(b"x" * inside.MAX_TOKEN_LINE + b"\n")
    big.chmod(0o600)
    assert "a first line over 4095 octets" in _token_error(str(big))  # the agent could never match it
    big.write_bytes(b"x" * (inside.MAX_TOKEN_LINE - 1) + b"\n" + b"y" * 100_000)
    assert inside.read_token(str(big)) == b"x" * (inside.MAX_TOKEN_LINE - 1)


@pytest.mark.parametrize("seed", ["-1", str(2**64), "1_0", "\u0663", "1e3"])
def test_a_seed_is_a_whole_number_a_report_can_give(seed: str, capsys: pytest.CaptureFixture[str]) -> None:
    """int() took -1 (results.json's schema wants a seed from 0), 1_0 and other scripts' digits."""
    with pytest.raises(SystemExit) as stopped:
        main(["run", f"--seed={seed}", str(SYNACK_ACK)])
    assert stopped.value.code == EXIT_ERROR
    assert "is not a seed: give a whole number from 0 to 18446744073709551615" in capsys.readouterr().err
