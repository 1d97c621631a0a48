"""``conformance explain``: the dialogue, the RFC text and the schedules of a case, offline."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.core.errors import ConformanceError
from conformance.core.rfctext import RfcText, is_requirement_id, reference_dir, sections_cited
from conformance.run.cli import main
from conformance.run.explain import explain, find_case

from .helpers import ROOT, line_of

CASES = ROOT / "cases"
SYNACK = CASES / "handshake" / "synack-retransmit.yaml"
needs_rfc = pytest.mark.skipif(
    RfcText.load() is None, reason=f"the RFC 9293 text is not in {reference_dir()} on this machine"
)


def row(text: str, line: int) -> str:
    """The dialogue row of case line `line`."""
    rows = [r for r in text.splitlines() if re.match(rf"^\s*{line}\s+(\S+\s+)?│", r)]
    assert len(rows) == 1, (line, rows)
    return rows[0]


@needs_rfc
def test_explain_a_shipped_case(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["explain", "synack-retransmit"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("synack-retransmit: With the final ACK withheld")
    # the steps, with their lines: ours to the right, the target's to the left, the rest annotated
    syn = row(out, line_of(SYNACK, "- send: {flags: S"))
    assert "│─ S seq=isn ─" in syn and syn.rstrip().endswith("─>│")
    synack = row(out, line_of(SYNACK, "- expect: {flags: SA"))
    assert "│<─" in synack and "SA ack=isn+1 len=0 within 1.000 s ─│" in synack
    assert synack.rstrip().endswith("label synack; bind peer_isn=seq")
    withhold = row(out, line_of(SYNACK, "- withhold"))
    assert "··" in withhold and "withhold final ACK: the target retransmits synack on schedule synack" in withhold
    assert withhold.rstrip().endswith("ref MUST-19")
    rst = row(out, line_of(SYNACK, "- expect: {flags: R"))
    assert "R seq=peer_isn+1 within 1.000 s" in rst and rst.rstrip().endswith("ref EP-4")
    # the references, with RFC 9293's words
    assert "  MUST-19: RFC 9293 §3.8.2 (MUST)" in out
    assert 'RFC 9293 §3.8.2 "TCP Congestion Control", the paragraph with MUST-19 (rfc9293.txt lines' in out
    assert "      | A TCP endpoint MUST implement the basic congestion control algorithms" in out
    assert "      | avoid creating congestion collapse conditions (MUST-19).  RFC 5681" in out
    assert 'RFC 9293 §3.10.7.2 "LISTEN STATE", the start of the section' in out  # EP-4 is not an RFC label
    assert "      | If the state is LISTEN, then" in out
    quoted = [ln for ln in out.splitlines() if ln.startswith("      | ")]
    assert len(quoted) <= 2 * 16  # two RFC 9293 references, at most 15 lines and "[...]" each
    assert "RFC6298-2.1: RFC 6298 §2.1 (SHOULD)" in out  # not RFC 9293: listed, not quoted
    # the schedule with the documented defaults
    assert "the documented defaults (conformance.core.params.resolve)" in out
    assert "tcp_synack_retries=5 (documented default)" in out
    assert "derivation: initial RTO 1 s (RFC 6298 §2.1) doubled on each expiry" in out
    gaps = re.findall(r"^\s+\d\. after\s+(\S+ s) ±\s+(\S+ m?s)", out, re.M)
    assert gaps == [
        ("1.000 s", "150.0 ms"),
        ("2.000 s", "300.0 ms"),
        ("4.000 s", "600.0 ms"),
        ("8.000 s", "1.200 s"),
        ("16.000 s", "2.400 s"),
    ]
    assert "then the target gives up 32.000 s after the last: nothing expected for 36.800 s" in out


def test_explain_a_case_file_with_its_own_target_and_no_rfc_text(tmp_path: Path) -> None:
    case = find_case(str(CASES / "handshake" / "synack-retransmit-ci.yaml"), CASES)
    assert case.id == "synack-retransmit-ci" and case.group == "handshake"
    out = explain(case, RfcText.load(tmp_path))  # nothing there
    assert out.count("(RFC text not available here)") == 2  # MUST-19 and EP-4
    assert "this case sets tcp_synack_retries=2 on a target of its own" in " ".join(out.split())
    assert "tcp_synack_retries=2 (target sysctl net.ipv4.tcp_synack_retries)" in out
    assert re.findall(r"^\s+\d\. after\s+(\S+ s)", out, re.M) == ["1.000 s", "2.000 s"]


def test_explain_several_connections_and_other_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "isn-unpredictable", "--cases", str(CASES)]) == 0
    out = capsys.readouterr().out
    path = CASES / "isn" / "unpredictable.yaml"
    assert re.search(r"\bc3\s+│─ S seq=isn ─", row(out, line_of(path, "- send", 3)))
    assert "assert unpredictable: isn1, isn2, isn3, isn4, isn5" in row(out, line_of(path, "- assert"))
    assert "Schedules\n\n  none: the case has no withhold step" in out


def test_unknown_case_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "synack-retransmt", "--cases", str(CASES)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("conformance: no case with id 'synack-retransmt' under ")
    close = err.split("close matches: ", 1)[1].split(", ")
    assert close[0] == "synack-retransmit" and "synack-retransmit-ci" in close
    with pytest.raises(ConformanceError, match="no such case file"):
        find_case("cases/nowhere.yaml", CASES)


def test_unknown_case_id_from_the_shell() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "explain", "no-such-case"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no case with id 'no-such-case'" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


# ----------------------------------------------------------------- rfctext
SAMPLE = """\
3.8.  Things

   An opening paragraph that says what the section is about, which
   goes on for a second line.

3.8.1.  First Part

   A TCP endpoint MUST do one thing (MUST-1).

   A TCP endpoint MUST do another thing, and the label is broken (SHLD-
   19).

3.8.2.  Second Part

   It SHOULD also compute it with the expression:

   X = A + B

   where A is a timer (MUST-19).

4.  Next
"""


def test_rfctext_finds_sections_and_labels() -> None:
    rfc = RfcText(SAMPLE)
    q = rfc.quote("3.8.1", "MUST-1")
    assert q is not None and q.lines == ("A TCP endpoint MUST do one thing (MUST-1).",)
    assert (q.first_line, q.last_line, q.title) == (8, 8, "First Part")
    q = rfc.quote("3.8.1", "SHLD-19")  # broken across a line
    assert q is not None and q.what == "the paragraph with SHLD-19" and q.lines[-1] == "19)."
    q = rfc.quote("3.8.2", "MUST-19")  # with the paragraphs its sentence continues
    assert q is not None and q.lines == (
        "It SHOULD also compute it with the expression:",
        "",
        "X = A + B",
        "",
        "where A is a timer (MUST-19).",
    )
    q = rfc.quote("3.8", "MUST-19")  # a section includes its subsections; MUST-1 does not match MUST-19
    assert q is not None and q.first_line == 15
    q = rfc.quote("3.8", "EP-4")  # not a requirement label: the start of the section
    assert q is not None and q.what == "the start of the section" and q.lines[0].startswith("An opening")
    q = rfc.quote("3.8.1", "MUST-7")
    assert q is not None and q.what == "the start of the section (MUST-7 is not in it)"
    assert rfc.quote("3.9", "MUST-1") is None
    many = rfc.quote("3.8", "", max_lines=1)
    assert many is not None and many.lines[-1] == "[...]"


def test_reference_documents() -> None:
    assert sections_cited("RFC 9293 §3.10.7.4 (eighth, FIN bit)") == ["3.10.7.4"]
    assert sections_cited("RFC 9293 §3.4.1, RFC 6528") == ["3.4.1"]
    assert sections_cited("RFC 9293 section 3.5, Figure 7") == ["3.5"]
    assert sections_cited("RFC 6298 §2.1") == [] and sections_cited("Linux ip-sysctl.rst") == []
    assert is_requirement_id("MUST-19") and is_requirement_id("SHLD-1") and not is_requirement_id("EP-4")
