"""Crafted case files (issue 11): each is refused quickly with the message its first line gives.

Case files come from other people and the tool runs as root. Every file under
``tests/corpus/`` once ended in a traceback, a hang, a file written anywhere or
a value silently changed; its first line, ``# error: TEXT``, is what the
loader's message must now contain. Files that cannot live in git (a FIFO, a
device, a symbolic link, a file of megabytes) are made here in ``tmp_path``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from conformance.core.errors import CaseFormatError
from conformance.core.loader import MAX_FILE_BYTES, discover, load_case, load_schema
from conformance.core.params import CONF_SYSCTLS, SYSCTLS
from conformance.inside import services
from conformance.run.cli import EXIT_ERROR, main

from .helpers import case_text

CORPUS = Path(__file__).resolve().parent / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))


def expected_message(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# error: "), f"{path.name}: the first line says the message: # error: TEXT"
    return first.removeprefix("# error: ")


def refusal(path: Path | str) -> CaseFormatError:
    """The loader's error for `path`, which it must give within a second."""
    started = time.monotonic()
    with pytest.raises(CaseFormatError) as info:
        load_case(path)
    assert time.monotonic() - started < 1.0
    return info.value


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_crafted_file_is_refused_with_its_message(path: Path) -> None:
    err = refusal(path)
    assert expected_message(path) in str(err)
    assert str(err).startswith(f"{path}:")
    assert len(str(err)) < 600  # a message, not the file quoted back


def test_cli_refuses_a_crafted_file_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    path = CORPUS / "sysctl-path-traversal.yaml"
    assert main(["list", str(path)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "is not a sysctl the tool knows" in err and "valid: accept_source_route, tcp_abort_on_overflow" in err
    assert "Traceback" not in err and "internal error" not in err


def test_sysctl_names_are_those_the_tool_knows() -> None:
    """The schema's closed list of sysctls is params.py's: a sysctl documented there can be set by a case."""
    schema = load_schema()["properties"]["target"]["properties"]["sysctl"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["properties"]) == sorted((*SYSCTLS, *CONF_SYSCTLS))
    for name, values in CONF_SYSCTLS.items():  # per interface: the services write exactly these values
        assert [str(v) for v in values] == list(services.CONF_SYSCTLS[name]), name
        spec = schema["properties"][name]
        assert (spec["minimum"], spec["maximum"]) == (min(values), max(values)), name
    for name, spec in schema["properties"].items():
        assert spec["type"] == "integer" and 0 <= spec["minimum"] <= spec["maximum"] <= 2**31 - 1, name


def test_a_fifo_named_yaml_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    assert "not a regular file" in str(refusal(fifo))
    with pytest.raises(CaseFormatError, match="not a regular file"):
        discover([tmp_path])


def test_a_device_is_refused() -> None:
    assert "not a regular file" in str(refusal("/dev/zero"))


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    assert "a symbolic link" in str(refusal(tmp_path / "zero.yaml"))


def test_a_folder_named_yaml_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cases.yaml").mkdir()
    assert "not a regular file" in str(refusal(tmp_path / "cases.yaml"))


def test_a_large_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(case_text("  - silence: 1s\n") + "#" * MAX_FILE_BYTES, encoding="utf-8")
    assert f"larger than {MAX_FILE_BYTES} octets" in str(refusal(big))


def test_a_file_at_the_limit_still_loads(tmp_path: Path) -> None:
    text = case_text("  - silence: 1s\n")
    path = tmp_path / "padded.yaml"
    path.write_text(text + "#" * (MAX_FILE_BYTES - len(text.encode()) - 1) + "\n", encoding="utf-8")
    assert load_case(path).id == "test-case"


def test_sysctls_in_range_still_load(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(
        case_text("  - silence: 1s\n", extra="target:\n  sysctl: {tcp_synack_retries: 255, tcp_syncookies: 2}\n"),
        encoding="utf-8",
    )
    assert load_case(path).sysctls == {"tcp_synack_retries": 255, "tcp_syncookies": 2}
