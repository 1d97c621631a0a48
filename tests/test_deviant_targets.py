"""Deviant targets of our own prove the judgements on the wire (issue 12, "Done means").

Offline, the responder (:mod:`tests.deviant.responder`) is checked knob by knob on a fake clock. On the wire
(integration), a namespace of the test's own holds TAP device ``dvt0`` (up, no address); the responder runs as a
child process holding its descriptor (``python -m tests.deviant``, ended by its PID through its stdin), and the
tool runs in the namespace with ``--target link:dvt0:198.18.12.2:PORT``. Port 7000 is a listener that never
accepts, 7001 one whose application sends a banner (the tool knows it as the link target's ``listen`` service).
Verdicts and cited documents are read from the run's ``results.json``.

Each deviation fails the case it must, citing the document it must; its conforming twin passes 20 of 20: the
short cases in 20 runs of the tool, the timer cases as 20 copies played at once in one run (each copy a
connection of its own, its timer on its own phase of the tick) so that the whole takes about 3 minutes.
"""

from __future__ import annotations

import json
import re
import selectors
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.core.segment import Segment
from conformance.wire import arp
from conformance.wire.codec import decode, decode_icmp, encode

from .deviant.responder import Knobs, Responder, next_tick
from .lab import ROOT, Lab, missing_tools
from .tool_runs import play_in

TAP, ADDR, ADDR6, LISTEN, BANNER = "dvt0", "198.18.12.2", "2001:2:0:12::2", 7000, 7001
PROBER, PROBER_MAC = "198.18.12.1", "02:cf:c6:12:0c:01"
CASES, OWN_CASES = ROOT / "cases", ROOT / "tests" / "deviant" / "cases"
PROFILES = ROOT / "conformance" / "data" / "profiles"
RUNS = 20


# ==================================================================== offline: the responder on a fake clock


def _frame(seg: Segment, responder: Responder) -> bytes:
    return encode(seg, PROBER_MAC, responder.mac)


def _syn(port: int = LISTEN, sport: int = 40000, options: tuple[tuple[str, object], ...] = ()) -> Segment:
    return Segment(PROBER, ADDR, sport, port, seq=1000, flags="S", options=options)


def _segments(frames: list[bytes]) -> list[Segment]:
    out = [decode(f, 0.0) for f in frames]
    assert all(s is not None for s in out)
    return [s for s in out if s is not None]


def test_arp_is_answered_for_our_address_only() -> None:
    r = Responder(Knobs(), {LISTEN: "listen"}, ADDR)
    (reply,) = r.receive(arp.request(PROBER_MAC, PROBER, ADDR), 0.0)
    found = arp.parse(reply)
    assert found is not None and found.op == arp.OP_REPLY and (found.sender_ip, found.sender_mac) == (ADDR, r.mac)
    assert r.receive(arp.request(PROBER_MAC, PROBER, "198.18.12.3"), 0.0) == []


def test_conforming_synack_and_timers() -> None:
    r = Responder(Knobs(rto_initial=3.0, synack_retries=2), {LISTEN: "listen"}, ADDR)
    (synack,) = _segments(r.receive(_frame(_syn(), r), 10.1))
    assert synack.flags == "SA" and synack.ack == 1001 and synack.options == (("mss", 1460),)
    assert r.wake() == pytest.approx(13.1)
    assert _segments(r.due(13.1))[0].seq == synack.seq
    assert r.wake() == pytest.approx(19.1)


def test_tick_fires_timers_on_its_boundaries_only() -> None:
    r = Responder(Knobs(tick=0.5, rto_initial=3.0, synack_retries=2), {LISTEN: "listen"}, ADDR)
    r.receive(_frame(_syn(), r), 10.1)
    assert r.wake() == pytest.approx(13.5)  # due at 13.1: the next tick
    assert r.due(13.4) == []
    assert len(r.due(13.5)) == 1
    assert r.wake() == pytest.approx(19.5)  # armed from the tick: 6 s, a boundary again
    assert next_tick(19.5 + 1e-9, 0.5) == pytest.approx(19.5)


def test_backoff_factor() -> None:
    r = Responder(Knobs(rto_initial=1.0, backoff=1.72), {LISTEN: "listen"}, ADDR)
    r.receive(_frame(_syn(), r), 0.0)
    times = []
    for _ in range(4):
        wake = r.wake()
        assert wake is not None
        times.append(wake)
        r.due(wake)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps == pytest.approx([1.0, 1.72, 1.72**2, 1.72**3])


def test_icmp_port_unreachable_for_a_closed_port() -> None:
    r = Responder(Knobs(icmp_closed=True), {LISTEN: "listen"}, ADDR, ADDR6)
    (reply,) = r.receive(_frame(_syn(port=9), r), 0.0)
    error = decode_icmp(reply, 0.0)
    assert error is not None and (error.version, error.type, error.code) == (4, 3, 3)
    assert (error.quoted.dport, error.quoted.seq, error.quoted.flags) == (9, 1000, "S")
    six = Segment("2001:2:0:12::1", ADDR6, 40000, 9, seq=7, flags="S")
    (reply6,) = r.receive(_frame(six, r), 0.0)
    error6 = decode_icmp(reply6, 0.0)
    assert error6 is not None and (error6.version, error6.type, error6.code) == (6, 1, 4)
    assert _segments(r.receive(_frame(_syn(), r), 0.0))[0].flags == "SA"  # a listener still answers


def test_repeats_of_data_segments() -> None:
    r = Responder(Knobs(repeat=3, repeat_every=0.005), {BANNER: "banner"}, ADDR)
    (synack,) = _segments(r.receive(_frame(_syn(port=BANNER), r), 0.0))
    ack = Segment(PROBER, ADDR, 40000, BANNER, seq=1001, ack=synack.seq + 1, flags="A")
    (banner,) = _segments(r.receive(_frame(ack, r), 0.001))
    assert banner.payload and r.wake() == pytest.approx(0.006)
    copies = _segments(r.due(0.0161))
    assert [c.payload for c in copies] == [banner.payload] * 3 and r.due(1.0) == []  # no more, and no RTO yet
    assert replace(copies[0], time=0.0) == replace(banner, time=0.0)


def test_unasked_options_in_the_synack() -> None:
    r = Responder(Knobs(synack_options=True), {LISTEN: "listen"}, ADDR)
    (synack,) = _segments(r.receive(_frame(_syn(), r), 0.0))
    names = [name for name, _ in synack.options]
    assert names == ["mss", "sackok", "timestamp", "nop", "wscale"]


# ==================================================================== on the wire

_skip = missing_tools("ip")
if _skip is None and not Path("/dev/net/tun").exists():
    _skip = "needs /dev/net/tun (the tun module)"
wire = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture(scope="module")
def deviant_ns() -> Iterator[str]:
    with Lab() as lab:
        ns = lab.netns("deviant")
        lab.ip(ns, "tuntap", "add", "dev", TAP, "mode", "tap")
        lab.ip(ns, "link", "set", TAP, "up")  # no address: the tool's own (link:)
        yield ns


@contextmanager
def responder(ns: str, folder: Path, *knobs: str) -> Iterator[subprocess.Popen[str]]:
    """The responder with `knobs` on dvt0 in `ns`, ready; ended by its PID (its stdin closed, else killed)."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.deviant", "--tap", TAP, "--addr", ADDR]
    cmd += ["--addr6", ADDR6, "--listen", str(LISTEN), "--banner", str(BANNER), "--log", str(folder / "frames.log")]
    with open(folder / "stderr.txt", "w", encoding="utf-8") as err:
        proc = subprocess.Popen(
            [*cmd, *knobs], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        ready = json.loads(proc.stdout.readline() or "{}") if sel.select(15) else {}
        assert ready.get("ready"), f"the responder did not start: {(folder / 'stderr.txt').read_text()}"
        yield proc
    finally:
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()  # it serves until its stdin closes
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                proc.kill()  # ours, by its PID
                proc.wait(timeout=5)


#: The first step of a staggered copy: nothing from the target while it waits to start.
STAGGER_REF = {
    "id": "stagger",
    "doc": "tests/test_deviant_targets.py",
    "level": "MUST",
    "says": "the copies of a timer case start on different phases of the target's timer tick",
}


def derived(source: Path, folder: Path, copies: int = 1, stagger: float = 0.0) -> list[Path]:
    """`source` as a link target can play it: the target sysctls it sets dropped (the responder is given them
    as knobs instead) and a ``banner`` service made ``listen`` (the responder's banner port is the target's
    port); with `copies`, that many files with ids ``ID-01`` ... each, copy i starting with a silence of
    i x `stagger` seconds (copies played at once then start on different phases of a timer tick)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.pop("target", None)
    if data["service"] == "banner":
        data["service"] = "listen"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(copies):
        copy = dict(data, id=f"{data['id']}-{i + 1:02d}" if copies > 1 else data["id"])
        if stagger and i:
            copy["refs"] = [*data["refs"], STAGGER_REF]
            copy["steps"] = [{"silence": f"{round(i * stagger * 1000)}ms", "ref": "stagger"}, *data["steps"]]
        path = folder / f"{copy['id']}.yaml"
        path.write_text(yaml.safe_dump(copy, sort_keys=False, allow_unicode=True), encoding="utf-8")
        out.append(path)
    return out


def profile_with(name: str, folder: Path, **values: tuple[float, str]) -> Path:
    """Built-in profile `name` with `values` (name: (value, source)) added at level ``default``, as a file."""
    data = yaml.safe_load((PROFILES / f"{name}.yaml").read_text(encoding="utf-8"))
    for key, (value, source) in values.items():
        data["values"][key] = {"value": value, "level": "default", "source": source}
    path = folder / f"{name}-deviant.yaml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def play(
    ns: str, port: int, cases: list[Path], reports: Path, *options: str, ip: str = "4", timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """The tool against the responder's `port` (`ip`: 4 or both), its cases by id as ``results.json`` has them."""
    target = f"link:{TAP}:{ADDR}:{port}" if ip == "4" else f"link:{TAP}:{ADDR},[{ADDR6}]:{port}"
    proc = play_in(ns, target, cases, reports, "--ip", ip, *options, timeout=timeout)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: a harness error
    results = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    return {c["id"]: c for c in results["cases"]}


def failure(record: dict[str, Any]) -> tuple[str, str, str]:
    """A failed case's message, cited reference id and document."""
    assert record["status"] == "failed", (record["id"], record["status"], record["message"])
    fail = record["failure"]
    ref = fail["reference"] or {}
    return fail["message"], ref.get("id", ""), ref.get("doc", "")


def statuses(records: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {case_id: record["status"] for case_id, record in records.items()}


SHORT = [
    "closed/syn.yaml",
    "closed/ack.yaml",
    "closed/rst.yaml",
    "handshake/synack-ack.yaml",
    "options/synack-unasked.yaml",
    "options/synack-mss.yaml",
    "data/ack-seq-plus-len.yaml",
]


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_conforming_short_cases_pass_20_of_20(deviant_ns: str, tmp_path: Path) -> None:
    """The conforming responder (RFC timers, no knob turned): the short cases pass in every one of 20 runs."""
    passed = 0
    with responder(deviant_ns, tmp_path / "responder"):
        for run in range(RUNS):
            records = play(deviant_ns, LISTEN, [CASES / c for c in SHORT], tmp_path / f"run{run:02d}", ip="both")
            assert len(records) == 2 * len(SHORT) and set(statuses(records).values()) == {"passed"}, (
                run,
                statuses(records),
            )
            passed += 1
    assert passed == RUNS


def sent_times(log: Path, flags: str) -> dict[int, list[float]]:
    """The responder's sends with `flags` (``SYN.ACK``), by the peer's port: their times, from its frame log."""
    out: dict[int, list[float]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if len(words) > 5 and words[1] == "out" and words[5] == flags:
            out.setdefault(int(words[4].rsplit(":", 1)[1]), []).append(float(words[0]))
    return out


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_tick_stack_passes_synack_retransmit_under_its_profile_20_of_20(deviant_ns: str, tmp_path: Path) -> None:
    """Timers on a 500 ms tick, RTO 3 s then 6 s, 2 SYN-ACK retransmissions: ``synack-retransmit-ci`` passes under
    ``lwip`` (timer_granularity 0.5 s), 20 copies of 20, their first gaps on several phases of the tick."""
    lwip = profile_with("lwip", tmp_path, tcp_synack_retries=(2, "the responder's --synack-retries 2"))
    cases = derived(CASES / "handshake/synack-retransmit-ci.yaml", tmp_path / "cases", RUNS, stagger=0.025)
    knobs = ("--tick", "0.5", "--rto-initial", "3", "--synack-retries", "2")
    with responder(deviant_ns, tmp_path / "responder", *knobs):
        records = play(deviant_ns, LISTEN, cases, tmp_path / "reports", "--profile", str(lwip))
    assert list(statuses(records).values()) == ["passed"] * RUNS, statuses(records)

    series = [t for t in sent_times(tmp_path / "responder" / "frames.log", "SYN.ACK").values() if len(t) > 1]
    assert len(series) == RUNS and all(len(t) == 3 for t in series)  # the original and 2 retransmissions
    firsts = [t[1] - t[0] for t in series]
    assert all(3.0 <= gap < 3.5 + 0.05 for gap in firsts), firsts  # due at 3 s, fired on the next tick
    assert max(firsts) - min(firsts) > 0.1, firsts  # several phases of the tick, not one
    assert all(abs(t[2] - t[1] - 6.0) < 0.05 for t in series)  # armed on a tick: 6 s exactly
    assert all(min(t % 0.5, 0.5 - t % 0.5) < 0.05 for s in series for t in s[1:])  # on the tick's boundaries


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_backoff_of_1_72_fails_the_data_backoff_with_rfc_6298(deviant_ns: str, tmp_path: Path) -> None:
    """RTO x 1.72 on each expiry (gaps 0.2, 0.34, 0.59, 1.0, 1.75 s) fails ``data-retransmit-backoff`` citing
    RFC 6298 §5.5; the same responder doubling passes it 20 of 20."""
    (case,) = derived(CASES / "data/retransmit-backoff.yaml", tmp_path / "cases")
    linux = ("--base", "linux", "--data-retries", "6")  # Linux's 200 ms floor: a short series
    with responder(deviant_ns, tmp_path / "deviant", *linux, "--backoff", "1.72"):
        records = play(deviant_ns, BANNER, [case], tmp_path / "reports", "--profile", "linux")
    message, ref_id, doc = failure(records["data-retransmit-backoff"])
    assert (ref_id, doc) == ("RFC6298-5.5", "RFC 6298 §5.5") and "early" in message, message

    cases = derived(CASES / "data/retransmit-backoff.yaml", tmp_path / "twins", RUNS)
    with responder(deviant_ns, tmp_path / "conforming", *linux):
        records = play(deviant_ns, BANNER, cases, tmp_path / "twin-reports", "--profile", "linux")
    assert list(statuses(records).values()) == ["passed"] * RUNS, statuses(records)


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_unasked_options_in_the_synack_fail_with_rfc_7323(deviant_ns: str, tmp_path: Path) -> None:
    """SACK-permitted, timestamps and window scale in the SYN-ACK to an option-less SYN fail
    ``options-synack-unasked`` citing RFC 7323 (and nothing else: ``synack-ack`` passes)."""
    cases = [CASES / "options/synack-unasked.yaml", CASES / "handshake/synack-ack.yaml"]
    with responder(deviant_ns, tmp_path / "responder", "--synack-options"):
        records = play(deviant_ns, LISTEN, cases, tmp_path / "reports")
    message, ref_id, doc = failure(records["options-synack-unasked"])
    assert ref_id == "RFC7323-2.2-3.2" and doc.startswith("RFC 7323"), (ref_id, doc)
    fields = {d["field"] for d in records["options-synack-unasked"]["failure"]["diffs"] if not d["ok"]}
    assert fields == {"option wscale", "option timestamp"} or {"wscale", "timestamp"} <= fields, fields
    assert records["synack-ack"]["status"] == "passed"


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_data_repeated_every_5ms_fails_the_silence_after_it(deviant_ns: str, tmp_path: Path) -> None:
    """Every data segment sent again 20 times 5 ms apart: the silence after we acknowledge the banner fails
    citing MUST-18 (RFC 6298), and so does the data backoff's first retransmission (Linux's 200 ms floor, under
    ``linux``); without the repeats both pass, the silence case 20 of 20."""
    silence = OWN_CASES / "ack-then-silence.yaml"
    (backoff,) = derived(CASES / "data/retransmit-backoff.yaml", tmp_path / "cases")
    with responder(deviant_ns, tmp_path / "deviant", "--base", "linux", "--repeat", "20"):
        records = play(deviant_ns, BANNER, [silence, backoff], tmp_path / "reports", "--profile", "linux")
    message, ref_id, doc = failure(records["deviant-ack-then-silence"])
    assert ref_id == "MUST-18" and "RFC 6298" in doc and "into a silence" in message, (message, ref_id)
    message, ref_id, _ = failure(records["data-retransmit-backoff"])
    observed = re.search(r"observed after ([\d.]+) ms", message)
    assert ref_id == "rto_min" and "early" in message and observed and float(observed[1]) < 20, message

    twins = derived(silence, tmp_path / "twins", RUNS)
    with responder(deviant_ns, tmp_path / "conforming", "--base", "linux"):
        records = play(deviant_ns, BANNER, twins, tmp_path / "twin-reports", "--profile", "linux")
    assert list(statuses(records).values()) == ["passed"] * RUNS, statuses(records)


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_data_repeated_every_5ms_fails_the_data_backoff_under_rfc(deviant_ns: str, tmp_path: Path) -> None:
    (backoff,) = derived(CASES / "data/retransmit-backoff.yaml", tmp_path / "cases")
    with responder(deviant_ns, tmp_path / "deviant", "--repeat", "20"):
        records = play(deviant_ns, BANNER, [backoff], tmp_path / "reports")
    failure(records["data-retransmit-backoff"])


ICMP_INSTEAD_OF_RST = {"closed-syn": "EP-1", "closed-ack": "EP-2", "closed-synfin-data": "EP-1"}


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_icmp_instead_of_a_rst_fails_the_closed_cases(deviant_ns: str, tmp_path: Path) -> None:
    """ICMP (ICMPv6) port unreachable instead of a RST fails ``closed-syn`` and its kind, over both families,
    citing RFC 9293 §3.10.7.1 and saying that the target answered with ICMP."""
    cases = [CASES / "closed/syn.yaml", CASES / "closed/ack.yaml", CASES / "closed/synfin-data.yaml"]
    with responder(deviant_ns, tmp_path / "responder", "--icmp-closed") as proc:
        records = play(deviant_ns, LISTEN, cases, tmp_path / "reports", ip="both")
        assert proc.poll() is None  # still serving after the run
    for case_id, ref in ICMP_INSTEAD_OF_RST.items():
        for name in (case_id, f"{case_id}.ipv6"):
            message, ref_id, doc = failure(records[name])
            assert "answered with ICMP port unreachable instead of a RST" in message, (name, message)
            assert (ref_id, doc) == (ref, "RFC 9293 §3.10.7.1"), (name, ref_id, doc)


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_icmp_answering_a_rst_fails_closed_rst(deviant_ns: str, tmp_path: Path) -> None:
    """An ICMP port unreachable that answers our RST to a closed port fails ``closed-rst``: RFC 9293 §3.10.7.1
    says the RST is discarded."""
    with responder(deviant_ns, tmp_path / "responder", "--icmp-closed"):
        records = play(deviant_ns, LISTEN, [CASES / "closed/rst.yaml"], tmp_path / "reports")
    message, _, doc = failure(records["closed-rst"])
    assert "ICMP" in message and doc == "RFC 9293 §3.10.7.1"
