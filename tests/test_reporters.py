"""Reporters, offline: results come from the engine driven with scripted segments."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance.core.engine import Addressing, Dialogue
from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.params import Params, resolve
from conformance.core.results import CaseResult, TargetInfo
from conformance.core.segment import Segment
from conformance.reporters import (
    TerminalReporter,
    render_failure,
    render_ladder,
    summarize_failure,
    write_junit,
    write_pcap,
)

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "cases"
US, TARGET, TPORT = "198.18.0.1", "198.18.0.2", 7000
SPORT, ISN, PEER_ISN = 40000, 1000, 5555
T0 = 1_700_000_000.0  # a realistic epoch time, as captured


def _case() -> Case:
    return load_case(CASES / "handshake" / "synack-ack.yaml", CASES)


def _params() -> Params:
    return resolve({"tcp_synack_retries": 3})


def _target(params: Params) -> TargetInfo:
    return TargetInfo("netns", f"Linux test kernel in namespace cft-test ({TARGET})", TARGET, params)


def _synack(ack: int, time: float) -> Segment:
    return Segment(TARGET, US, TPORT, SPORT, seq=PEER_ISN, ack=ack, flags="SA", time=time)


def _run(case: Case, synack_ack: int | None) -> CaseResult:
    """Play the handshake case; the target answers with `synack_ack` (None: it stays silent)."""
    params = _params()
    d = Dialogue(case, params, Addressing(US, TARGET, TPORT), {"main": SPORT}, {"main": ISN})
    sent = d.advance(T0)
    assert [s.flags for s in sent] == ["S"]
    d.receive(sent[0].at(T0 + 0.0001))  # our SYN, captured
    if synack_ack is None:
        d.advance(T0 + 1.5)
    else:
        d.receive(_synack(synack_ack, T0 + 0.002))
        for seg in d.advance(T0 + 0.003):
            d.receive(seg.at(T0 + 0.0031))
    v = d.verdict()
    message = v.failure.render() if v.failure is not None else ""
    return CaseResult(
        case=case,
        status=v.status,
        message=message,
        duration=v.end - v.start,
        target=_target(params),
        verdict=v,
        ports={"main": SPORT},
        isns={"main": ISN},
    )


@pytest.fixture(scope="module")
def passed() -> CaseResult:
    r = _run(_case(), ISN + 1)
    assert r.status == "passed"
    return r


@pytest.fixture(scope="module")
def failed() -> CaseResult:
    r = _run(_case(), ISN + 2)  # wrong ack: the SYN-ACK acknowledges isn+2
    assert r.status == "failed"
    return r


@pytest.fixture(scope="module")
def errored() -> CaseResult:
    return CaseResult(
        _case(), "error", "cannot create namespace: permission denied\n  what to do: run as root", 0.0, None
    )


# --------------------------------------------------------------------- ladder
def test_ladder_passed_draws_both_directions_with_relative_numbers(passed: CaseResult) -> None:
    text = render_ladder(passed)
    lines = text.splitlines()
    syn = next(ln for ln in lines if "─ S seq=0 " in ln)
    synack = next(ln for ln in lines if " SA seq=0 ack=1 " in ln)
    assert syn.rstrip().endswith("line 17") and "──>│" in syn
    assert "│<──" in synack and synack.rstrip().endswith("line 18 ✓")
    assert "R seq=1" in text and "cleanup (not judged)" in text  # the engine's cleanup RST
    assert lines.index(syn) < lines.index(synack)
    assert syn.lstrip().startswith("0.000 ms") and synack.lstrip().startswith("1.900 ms")
    assert f"our ISN {ISN}" in text and f"target ISN {PEER_ISN}" in text
    assert "✗" not in text and "FAILED" not in text
    assert render_failure(passed) == "" and summarize_failure(passed) == ""


def test_ladder_lines_fit_the_width(passed: CaseResult, failed: CaseResult) -> None:
    for width in (100, 80):
        for r in (passed, failed):
            ladder = [ln for ln in render_ladder(r, width).splitlines() if "│" in ln]
            assert ladder and all(len(ln) <= width for ln in ladder), (width, ladder)
    long = [ln for ln in render_ladder(failed, 100).splitlines() if len(ln) > 100]
    assert long == []


def test_ladder_failed_marks_the_segment_and_shows_expected_vs_observed(failed: CaseResult) -> None:
    text = render_ladder(failed)
    synack = next(ln for ln in text.splitlines() if " SA seq=0 ack=2 " in ln)
    assert "│<──" in synack and synack.rstrip().endswith("✗") and "line 18" in synack
    assert "line 18: expect SA ack=isn+1" in text
    assert "expected vs observed:" in text
    assert re.search(r"^✗ ack\s+isn\+1 \(1001\)\s+isn\+2 \(1002\)$", text, re.M)
    assert re.search(r"^  flags\s+SA\s+SA$", text, re.M)  # matching fields are listed, unmarked
    assert "RFC 9293 §3.10.7.2 (MUST, EP-5)" in text
    block = render_failure(failed)
    assert block and block in text and "ack: expected isn+1 (1001), observed isn+2 (1002)" in block
    summary = summarize_failure(failed)
    assert "\n" not in summary and "isn+1 (1001)" in summary and "RFC 9293 §3.10.7.2" in summary


def test_ladder_missing_reply_is_drawn() -> None:
    r = _run(_case(), None)
    assert r.status == "failed" and r.verdict is not None and r.verdict.failure is not None
    assert r.verdict.failure.kind == "missing"
    text = render_ladder(r)
    assert "no segment from the target" in text and "line 18 ✗" in text
    assert "target ISN unknown" in text


def test_ladder_names_connections_when_there_are_several(tmp_path: Path) -> None:
    group = tmp_path / "multi"
    group.mkdir()
    (group / "two.yaml").write_text(
        "id: two\n"
        "title: two connections\n"
        "refs:\n"
        "  - {id: X, doc: RFC 9293 §3.4, level: MUST}\n"
        "service: listen\n"
        "steps:\n"
        "  - send: {flags: S, seq: isn}\n"
        "  - expect: {flags: SA, ack: isn+1}\n"
        "  - send: {flags: S, seq: isn}\n"
        "    conn: second\n"
        "  - expect: {flags: SA, ack: isn+1}\n"
        "    conn: second\n"
    )
    case = load_case(group / "two.yaml", tmp_path)
    ports, isns = {"main": 40000, "second": 40001}, {"main": 1000, "second": 9000}
    d = Dialogue(case, _params(), Addressing(US, TARGET, TPORT), ports, isns)
    now = T0
    for conn, peer in (("main", 5555), ("second", 7777)):
        sent = d.advance(now)
        d.receive(sent[0].at(now + 0.0001))
        seg = Segment(TARGET, US, TPORT, ports[conn], seq=peer, ack=isns[conn] + 1, flags="SA", time=now + 0.001)
        d.receive(seg)
        now += 0.002
    d.advance(now)
    v = d.verdict()
    assert v.status == "passed"
    r = CaseResult(case, v.status, "", 0.01, None, v, ports, isns)
    rows = [ln for ln in render_ladder(r).splitlines() if "│" in ln]
    assert any("second" in ln and "SA seq=0 ack=1" in ln for ln in rows)
    assert any("main" in ln and "SA seq=0 ack=1" in ln for ln in rows)


def test_ladder_of_an_error_without_packets(errored: CaseResult) -> None:
    text = render_ladder(errored)
    assert "(no packets exchanged)" in text and "ERROR" in text and "permission denied" in text
    assert summarize_failure(errored) == "harness error: cannot create namespace: permission denied"


# ---------------------------------------------------------------------- junit
def _props(element: ET.Element) -> dict[str, str]:
    holder = element.find("properties")
    assert holder is not None
    return {p.attrib["name"]: p.attrib["value"] for p in holder.findall("property")}


def test_junit_report(tmp_path: Path, passed: CaseResult, failed: CaseResult, errored: CaseResult) -> None:
    path = tmp_path / "deep" / "dir" / "junit.xml"
    write_junit([passed, failed, errored], path, suite_name="handshake-run")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert root.attrib["tests"] == "3" and root.attrib["failures"] == "1" and root.attrib["errors"] == "1"
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].attrib["name"] == "handshake-run"
    suite_props = _props(suites[0])
    assert suite_props["target"].startswith("Linux test kernel")
    assert suite_props["tcp_synack_retries"] == "tcp_synack_retries=3 (target sysctl net.ipv4.tcp_synack_retries)"
    assert suite_props["rto_initial"] == "rto_initial=1 s (documented default)"

    cases = suites[0].findall("testcase")
    assert len(cases) == 3
    for tc in cases:
        assert tc.attrib["name"] == "synack-ack"
        assert tc.attrib["classname"] == "handshake"
        assert tc.attrib["file"] == passed.case.path
        assert tc[0].tag == "properties"  # first child, as consumers expect

    ok, bad, broken = cases
    assert ok.find("failure") is None and ok.find("error") is None
    assert float(ok.attrib["time"]) == pytest.approx(passed.duration, abs=1e-6)
    props = _props(ok)
    assert props["title"] == passed.case.title
    assert props["ref:EP-5"].startswith("RFC 9293 §3.10.7.2 (MUST): LISTEN, SYN arrives")
    assert props["ref:SEG.LEN"] == "RFC 9293 §3.4 (MUST): SEG.LEN counts the SYN as one sequence number"
    assert props["target"].startswith("Linux test kernel")
    assert props["tcp_synack_retries"] == "tcp_synack_retries=3 (target sysctl net.ipv4.tcp_synack_retries)"
    assert "expect_failure" not in props
    out = ok.find("system-out")
    assert out is not None and out.text is not None
    assert "─ S seq=0 " in out.text and " SA seq=0 ack=1 " in out.text and "line 18 ✓" in out.text

    failure = bad.find("failure")
    assert failure is not None
    message = failure.attrib["message"]
    assert "isn+1 (1001)" in message and "RFC 9293 §3.10.7.2 (MUST, EP-5)" in message
    assert failure.attrib["type"] == "mismatch"
    assert failure.text is not None and "expected vs observed:" in failure.text
    assert re.search(r"✗ ack\s+isn\+1 \(1001\)\s+isn\+2 \(1002\)", failure.text)
    bad_out = bad.find("system-out")
    assert bad_out is not None and bad_out.text is not None and " SA seq=0 ack=2 " in bad_out.text

    error = broken.find("error")
    assert error is not None and "permission denied" in error.attrib["message"]
    assert "target" not in _props(broken)  # no target: not claimed


def test_junit_self_test_and_schedules(tmp_path: Path, failed: CaseResult) -> None:
    from dataclasses import replace

    from conformance.core.schedules import synack

    case = replace(failed.case, expect_failure="isn+2")
    assert failed.verdict is not None
    verdict = replace(failed.verdict, schedules=[synack(_params())])
    r = CaseResult(case, "passed", "", 0.5, failed.target, verdict, failed.ports, failed.isns, raw_status="failed")
    path = tmp_path / "junit.xml"
    write_junit([r], path)
    tc = ET.parse(path).getroot().find("./testsuite/testcase")
    assert tc is not None and tc.find("failure") is None
    props = _props(tc)
    assert props["expect_failure"] == "isn+2" and props["raw_status"] == "failed"
    out = tc.find("system-out")
    assert out is not None and out.text is not None
    assert "schedules used:" in out.text and "tcp_synack_retries" in out.text
    assert "expected failure (self-test):" in render_failure(r)


# ----------------------------------------------------------------------- pcap
def test_pcap_round_trip(tmp_path: Path, passed: CaseResult) -> None:
    from dataclasses import replace

    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    times = [T0 + 0.000123456, T0 + 0.002, T0 + 1.5]
    frames = [
        (t, bytes(Ether() / IP(src=US, dst=TARGET) / TCP(sport=SPORT, dport=TPORT, flags=f, seq=ISN + i)))
        for i, (t, f) in enumerate(zip(times, ["S", "A", "R"], strict=True))
    ]
    r = replace(passed, frames=frames)
    path = write_pcap(r, tmp_path / "pcaps")
    assert path == tmp_path / "pcaps" / "synack-ack.pcap"
    packets = rdpcap(str(path))
    assert len(packets) == len(frames)
    for pkt, (t, raw) in zip(packets, frames, strict=True):
        assert bytes(pkt) == raw
        assert float(pkt.time) == pytest.approx(t, abs=1e-6)
        assert pkt[TCP].sport == SPORT


def test_pcap_without_frames(tmp_path: Path, passed: CaseResult) -> None:
    assert write_pcap(passed, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------- terminal
def test_terminal_plain_output(passed: CaseResult, failed: CaseResult, errored: CaseResult) -> None:
    buf = io.StringIO()
    rep = TerminalReporter(file=buf)
    for r in (passed, failed, errored):
        rep.case_started(r.case)
        rep.case_finished(r)
    rep.summary([passed, failed, errored], 2.5)
    text = buf.getvalue()
    assert "\x1b" not in text  # not a terminal: no control codes
    lines = text.splitlines()
    assert lines[0].startswith("PASS  synack-ack  A SYN gets a SYN-ACK")
    assert any(ln.startswith("FAIL  synack-ack") for ln in lines)
    assert any(ln.startswith("ERROR synack-ack") for ln in lines)
    assert "SA seq=0 ack=2" in text and "✗ ack" in text  # ladder and failure printed for FAIL
    assert "Summary: 1 passed, 1 failed, 1 error  (3 cases in 2.500 s)" in text
    assert any("FAIL  synack-ack: line 18" in ln and "RFC 9293 §3.10.7.2" in ln for ln in lines)
    assert all(len(ln) <= 100 for ln in lines if "│" in ln)


def test_terminal_is_thread_safe(failed: CaseResult) -> None:
    import threading

    buf = io.StringIO()
    rep = TerminalReporter(file=buf)
    threads = [threading.Thread(target=rep.case_finished, args=(failed,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    blocks = buf.getvalue().split("FAIL  synack-ack")[1:]
    assert len(blocks) == 8
    block_lines = [b.splitlines() for b in blocks]
    assert all(lines == block_lines[0] for lines in block_lines)  # never interleaved
