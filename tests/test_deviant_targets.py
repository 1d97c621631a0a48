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


def derived(source: Path, folder: Path, copies: int = 1) -> list[Path]:
    """`source` as a link target can play it: the target sysctls it sets dropped (the responder is given them
    as knobs instead) and a ``banner`` service made ``listen`` (the responder's banner port is the target's
    port); with `copies`, that many files with ids ``ID-01`` ... each."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data.pop("target", None)
    if data["service"] == "banner":
        data["service"] = "listen"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(copies):
        copy = dict(data, id=f"{data['id']}-{i + 1:02d}" if copies > 1 else data["id"])
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
    ns: str, port: int, cases: list[Path], reports: Path, *options: str, timeout: float = 180
) -> dict[str, dict[str, Any]]:
    """The tool against the responder's `port` (IPv4), its cases by id as ``results.json`` has them."""
    proc = play_in(ns, f"link:{TAP}:{ADDR}:{port}", cases, reports, "--ip", "4", *options, timeout=timeout)
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
            records = play(deviant_ns, LISTEN, [CASES / c for c in SHORT], tmp_path / f"run{run:02d}")
            assert set(statuses(records).values()) == {"passed"}, (run, statuses(records))
            passed += 1
    assert passed == RUNS
