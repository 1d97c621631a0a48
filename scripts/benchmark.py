#!/usr/bin/env python3
"""Benchmark of the conformance tool against the embedded Linux target.

Usage (as root, from anywhere)::

    .venv/bin/python scripts/benchmark.py [--runs N] [--quick] [--no-stability] [--no-link | --link-only]
                                          [--cases DIR] [--pcap-dir DIR]

It prints the machine and the command line, progress on stderr, then a plain
table of figures and, last, one JSON line with every number.

What is measured, and how
-------------------------
1. **Suite wall time vs the longest protocol timer.** The default suite (every
   case under ``cases/`` but those tagged ``long``, which the default suite leaves
   out too: :mod:`conformance.run.suite`) is run once, all cases at once (``jobs=0``). Wall time
   = the whole :func:`conformance.run.runner.run` call, namespace set-up and
   teardown included (the time a user waits; the benchmark's own tcpdump
   start/stop is shown apart as "capture overhead").

   The *ideal duration* of a case is the sum of the waits its steps expect,
   derived after the run from the case's steps and the finished result:

   * a ``withhold`` step: the intervals of its schedule *as the run derived
     them* (``verdict.schedules``, in the order the withhold steps were reached;
     from the target's parameters if the case stopped before) -- only the first
     ``count`` when ``count`` is set -- plus, when ``then_silence``, the give-up
     silence the engine listens for: ``give_up + tolerance(give_up)``;
   * a ``silence`` step: its duration;
   * an ``expect`` step with ``after: X``: X (``within`` expects wait for a
     reaction, ideally 0);
   * where the model has them: ``app`` ``at: X`` (X), ``state`` ``lasts: D``
     (D + tolerance(D), as the engine listens), ``app_result`` ``after: X`` (X).

   The *protocol-timer* variant counts the give-up silence without its
   tolerance (the target's timers alone: 63 s for ``tcp_synack_retries=5``).
   The headline ratio is wall time / the longest ideal duration (goal <= 1.05);
   the ratio to the longest protocol-timer duration is printed beside it. The
   longest case's own duration (``verdict.end - verdict.start``) is shown too.

2. **Timing precision.** During the suite run (and the latency runs of 3) a
   ``tcpdump -j host --time-stamp-precision=nano --immediate-mode -U`` runs in
   the prober namespace on each target's prober interface (started through
   ``RunSettings.around_target``). Each trace entry of each case is matched to a
   pcap packet by (src, sport, dst, dport, seq, ack, flags, payload length),
   n-th occurrence to n-th occurrence (when the tool missed an occurrence of
   a key, e.g. a lost SYN-ACK whose retransmission it saw, each entry takes
   the nearest unused occurrence instead, see ``_pairing``). For each case, the matched entries are
   put in pcap order and every interval between consecutive packets as the
   tool measured it (``TraceEntry.time``) is compared with the same interval
   from the pcap timestamps. Error = |tool interval - pcap interval|; p50, p99
   and max in microseconds (goal p99 <= 1 ms). Entries of ours whose capture
   never came back (``provisional``: the tool only has its send-call time) and
   unmatched entries are counted and left out of the intervals. The other way
   round, packets of a case's flows that tcpdump saw between the dialogue's
   start and end but that its trace lacks are counted as "missed by the tool"
   (frames its capture lost, or delivered after the case had ended).

2b. **Timing precision on a ``link:`` target** (``--no-link`` leaves it out,
   ``--link-only`` measures it alone). The wire of ``link:IFNAME:ADDR`` is a
   packet socket on an interface of this namespace, with kernel timestamps, not
   the namespace target's. The script makes a veth pair: ``cfblPID`` here, with
   no address (the tool's interface), and its peer in a namespace of its own,
   ``cfbench-PID`` (IPv6 off), holding 198.18.201.2/24 and the project's
   services (listen 7000, banner 7001, echo 7007, http 7080, given with
   ``--service``) on that namespace's Linux stack, judged under the ``linux``
   profile. The suite is played on ``link:cfblPID:198.18.201.2:7000``, all at
   once (the cases that set sysctls are skipped there: the tool cannot set a
   stack's parameters over a link), with tcpdump on ``cfblPID``, and the
   precision is computed as in 2. The namespace, and with it the veth pair, and
   the services are removed on exit, also on failure.

3. **Reaction latency.** A reaction is a trace entry of ours (outgoing) that
   directly follows an incoming entry in the same case, where the entry comes
   from a ``send`` step (its note is ``line N``) and the case step just before
   that send is an ``expect`` (e.g. SYN-ACK -> our ACK). The cleanup RSTs the
   engine sends when a case ends are not case steps and are not counted.
   Latency = pcap time of our segment - pcap time of the target's segment.
   Measured on copies of the timer-free cases (ideal duration < 0.5 s, from 1):
   one dialogue at a time (``jobs=1``) and all copies at once (``jobs=0``). The
   same latency by the tool's own timestamps is shown for comparison.

4. **Verdict stability.** ``select(cases, 'not slow')`` is run ``--runs`` times
   (default 20, ``--quick`` 3) in each mode: serial (``jobs=1``), concurrent
   (``jobs=0``), concurrent with both cores loaded by CPU hogs (one busy-loop
   Python process per core, started and killed by their Popen handles). A flip
   is a (run, case) whose status differs from that case's status in the first
   run of the same mode; flipped cases are listed with their failure message.

5. **Throughput.** Copies of the timer-free cases (ideal < 0.5 s; 100 copies,
   fewer if the runner's source-port window, ``PORT_WINDOW``, cannot hold
   them), all at once: cases per second over the whole ``run()`` call and over its play phase
   (first case started -> last result), the peak RSS of this process
   (``getrusage(RUSAGE_SELF).ru_maxrss``), and, from a tcpdump running
   alongside, the packets the tool missed (as in 2).

Percentiles are nearest-rank. Everything the script starts (namespaces through
the runner, tcpdump and hog processes by their own Popen handles) is removed on
exit, on failure, on Ctrl-C and on SIGTERM; the end of the output says whether
any ``cfp-``/``cft-`` namespace of this process is left.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from conformance.core.engine import TraceEntry
from conformance.core.errors import ConformanceError
from conformance.core.loader import discover
from conformance.core.model import Case, ExpectStep, SendStep, SilenceStep, WithholdStep
from conformance.core.results import CaseResult
from conformance.core.schedules import SCHEDULES
from conformance.core.segment import Segment, canonical_flags
from conformance.run import runner as runner_module
from conformance.run.runner import RunSettings, run
from conformance.run.selection import select
from conformance.run.suite import is_long
from conformance.targets.base import Endpoint, TargetOptions
from conformance.targets.netns import PREFIX_PROBER, PREFIX_TARGET, check_privileges

ROOT = Path(__file__).resolve().parent.parent
GOAL_SUITE_RATIO = 1.05
GOAL_PRECISION_P99_US = 1000.0
GOAL_LATENCY_P99_US = 2000.0
TIMER_FREE_BELOW = 0.5  # s of ideal duration
TCPDUMP_READY_TIMEOUT = 10.0
HOG_CODE = (
    "import os\n"
    "parent = os.getppid()\n"
    "while os.getppid() == parent:  # exits by itself if the benchmark dies without cleaning up\n"
    "    for _ in range(2_000_000):\n"
    "        pass\n"
)

#: Every subprocess this script starts, to check at the end that none is left.
_STARTED: list[subprocess.Popen[Any]] = []


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------- numbers
def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_us(values_us: Sequence[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values_us),
        "p50_us": pct(values_us, 50),
        "p99_us": pct(values_us, 99),
        "max_us": max(values_us) if values_us else None,
    }


# --------------------------------------------------------------------- machine
def machine() -> dict[str, str | int]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count() or 0,
        "kernel": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


# ------------------------------------------------------------------- tcpdump
@dataclass
class CaptureFile:
    path: Path
    netns: str | None
    iface: str
    tstamp_types: list[str] = field(default_factory=list)
    start_s: float = 0.0  # until tcpdump said "listening on"
    stop_s: float = 0.0
    captured: int | None = None
    dropped: int | None = None


def _netns_prefix(netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns] if netns else []


class TcpdumpCaptures:
    """``RunSettings.around_target``: one tcpdump per target, on its prober interface."""

    def __init__(self, directory: Path, label: str) -> None:
        self.directory = directory
        self.label = label
        self.files: list[CaptureFile] = []

    @property
    def overhead_s(self) -> float:
        return sum(f.start_s + f.stop_s for f in self.files)

    @contextlib.contextmanager
    def __call__(self, ep: Endpoint) -> Iterator[CaptureFile]:
        cap = CaptureFile(self.directory / f"{self.label}-{ep.iface}.pcap", ep.netns, ep.iface)
        self.files.append(cap)
        t0 = time.monotonic()
        probe = subprocess.run(
            [*_netns_prefix(ep.netns), "tcpdump", "-J", "-i", ep.iface], capture_output=True, text=True, timeout=10
        )
        cap.tstamp_types = re.findall(r"^\s+(\S+) \(", probe.stdout + probe.stderr, re.M)
        tstamp = ["-j", "host"] if "host" in cap.tstamp_types else []
        cmd = [
            *_netns_prefix(ep.netns),
            "tcpdump",
            "-i",
            ep.iface,
            "-w",
            str(cap.path),
            "--time-stamp-precision=nano",
            *tstamp,
            "-U",
            "--immediate-mode",  # no TPACKET_V3 block waiting: nothing left in the ring when we stop it
            "-B",
            "8192",
            "-Z",
            "root",  # do not drop privileges: the file lives in our private temporary folder
            "-n",
            "tcp",
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _STARTED.append(proc)
        try:
            self._wait_ready(proc, cmd)
            cap.start_s = time.monotonic() - t0
            yield cap
        finally:
            t1 = time.monotonic()
            err = self._stop(proc)
            cap.stop_s = time.monotonic() - t1
            m = re.search(r"(\d+) packets? captured", err)
            cap.captured = int(m.group(1)) if m else None
            m = re.search(r"(\d+) packets? dropped by kernel", err)
            cap.dropped = int(m.group(1)) if m else None

    @staticmethod
    def _wait_ready(proc: subprocess.Popen[bytes], cmd: list[str]) -> None:
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        seen = b""
        end = time.monotonic() + TCPDUMP_READY_TIMEOUT
        try:
            while b"listening on" not in seen:
                left = end - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise RuntimeError(f"tcpdump did not start within {TCPDUMP_READY_TIMEOUT:g} s: {shlex.join(cmd)}")
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"tcpdump exited: {seen.decode(errors='replace').strip()} ({shlex.join(cmd)})")
                seen += chunk
        finally:
            sel.close()

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> str:
        """Stop our tcpdump (by its own handle) and return what it wrote to stderr."""
        if proc.poll() is None:
            time.sleep(0.05)  # let the last frames reach its ring
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                _, err = proc.communicate(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        return (err or b"").decode(errors="replace")


# ----------------------------------------------------------------------- hogs
@contextlib.contextmanager
def cpu_hogs(n: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` busy-loop processes of ours, killed by their Popen handles on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(n):
            p = subprocess.Popen([sys.executable, "-c", HOG_CODE], stdin=subprocess.DEVNULL)
            _STARTED.append(p)
            procs.append(p)
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- runs
@dataclass
class Outcome:
    results: list[CaseResult]
    wall: float  # the whole run() call
    play: float  # first case started -> last result
    captures: TcpdumpCaptures | None

    def statuses(self) -> Counter[str]:
        return Counter(r.status for r in self.results)


def forget_scapy_interfaces() -> None:
    """Work around a stale-ifindex problem when one process calls run() more than once.

    The wire opens its Scapy sockets with promiscuous mode, and Scapy's
    ``set_promisc`` takes the interface index from its process-wide interface
    cache (``conf.ifaces``), filled the first time the prober interface's name
    was looked up (inside the prober namespace). The next run makes a new veth
    with the same name (``cf<PID>p<N>``) but a new index: the cached index no
    longer exists and opening the wire fails with "No such device". Reloading
    the cache here, in this namespace where no ``cf*`` interface lives, makes
    the next lookup miss and re-read the interfaces inside the new prober
    namespace.
    """
    from scapy.config import conf

    if conf.ifaces is not None:  # None: Scapy has not listed interfaces yet, nothing is cached
        conf.ifaces.reload()


def play_cases(
    cases: list[Case], jobs: int, label: str, capture_dir: Path | None = None, target: LinkHost | None = None
) -> Outcome:
    """Play `cases` on the embedded target, or on `target` (a ``link:`` one) when given."""
    captures = TcpdumpCaptures(capture_dir, label) if capture_dir is not None else None
    settings = RunSettings(jobs=jobs, around_target=captures)
    if target is not None:
        settings = dataclasses.replace(
            settings, target=target.spec, target_options=target.options, profile=target.profile
        )
    lock = threading.Lock()
    marks: dict[str, float] = {}

    def started(case: Case, *_: object) -> None:  # (case) or (case, expected duration): both runner versions
        with lock:
            marks.setdefault("first", time.monotonic())

    def finished(result: CaseResult) -> None:
        marks["last"] = time.monotonic()

    forget_scapy_interfaces()
    t0 = time.monotonic()
    results = run(cases, settings, on_start=started, on_result=finished)
    wall = time.monotonic() - t0
    play = marks.get("last", t0) - marks.get("first", t0)
    out = Outcome(results, wall, play, captures)
    log(f"{label}: {len(cases)} cases, jobs={jobs or 'all'}: {wall:.2f} s, {dict(out.statuses())}")
    for r in results:  # a verdict that is not a pass is named: under load it is a flip to look into
        if str(r.status) in ("failed", "error"):
            log(f"  {r.status}: {r.case.id}: {r.message.splitlines()[0] if r.message else ''}")
    return out


def copies(cases: Sequence[Case], n: int) -> list[Case]:
    return [dataclasses.replace(c, id=f"{c.id}#{i}") for i in range(n) for c in cases]


# ------------------------------------------------------------ 2b. a link: target
LINK_NS = f"cfbench-{os.getpid()}"
LINK_IF, LINK_PEER = f"cfbl{os.getpid()}", f"cfbh{os.getpid()}"
LINK_ADDR = "198.18.201.2"
LINK_PORTS = {"listen": 7000, "banner": 7001, "echo": 7007, "http": 7080}
LINK_READY_TIMEOUT = 10.0


@dataclass(frozen=True)
class LinkHost:
    """How :func:`play_cases` reaches the stack at the far end of the veth."""

    spec: str
    options: TargetOptions
    profile: str = "linux"  # the far end is a Linux kernel: judged by what Linux documents


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise ConformanceError(f"ip {shlex.join(args)}: {proc.stderr.strip()}")


@contextlib.contextmanager
def link_host() -> Iterator[LinkHost]:
    """A veth pair: ``cfblPID`` here, without an address, the tool's ``link:`` interface; ``cfbhPID`` in a
    namespace of ours (``cfbench-PID``, IPv6 off) holding LINK_ADDR/24 and the project's services on a Linux
    kernel stack. The namespace (and with it the veth pair) and the services are removed on exit."""
    services: subprocess.Popen[str] | None = None
    try:
        _ip("netns", "add", LINK_NS)
        _ip("link", "add", LINK_IF, "type", "veth", "peer", "name", LINK_PEER, "netns", LINK_NS)
        Path(f"/proc/sys/net/ipv6/conf/{LINK_IF}/disable_ipv6").write_text("1")
        inside = ["ip", "netns", "exec", LINK_NS]
        for command in (
            ["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"],
            ["ethtool", "-K", LINK_PEER, "tx", "off"],  # checksums computed by the stack, as the namespace target
        ):
            subprocess.run([*inside, *command], check=True, capture_output=True, timeout=30)
        _ip("-n", LINK_NS, "addr", "add", f"{LINK_ADDR}/24", "dev", LINK_PEER)
        _ip("-n", LINK_NS, "link", "set", LINK_PEER, "up")
        _ip("-n", LINK_NS, "link", "set", "lo", "up")
        _ip("link", "set", LINK_IF, "up")
        ports = [f"--{kind}={port}" for kind, port in LINK_PORTS.items()]
        services = subprocess.Popen(
            [*inside, sys.executable, "-m", "conformance.inside.services", "--addr", LINK_ADDR, *ports],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )  # fmt: skip
        _STARTED.append(services)
        _wait_services(services)
        extra = tuple((kind, port) for kind, port in LINK_PORTS.items() if kind != "listen")
        yield LinkHost(f"link:{LINK_IF}:{LINK_ADDR}:{LINK_PORTS['listen']}", TargetOptions(services=extra))
    finally:
        if services is not None:
            _stop_services(services)
        subprocess.run(["ip", "netns", "delete", LINK_NS], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "delete", LINK_IF], capture_output=True, timeout=30)  # gone with its peer


def _wait_services(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(LINK_READY_TIMEOUT):
            raise ConformanceError(f"the services in {LINK_NS} did not start within {LINK_READY_TIMEOUT:g} s")
    finally:
        sel.close()
    line = proc.stdout.readline()
    if not json.loads(line or "{}").get("ready"):
        raise ConformanceError(f"the services in {LINK_NS} did not start: {line.strip() or 'no answer'}")


def _stop_services(proc: subprocess.Popen[str]) -> None:
    """The services serve until their stdin closes; killed by their handle if they do not stop."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def link_precision(all_cases: list[Case], pcap_dir: Path, report: dict[str, Any], rows: list[list[str]]) -> None:
    """2b: the suite played on a ``link:`` target, its precision measured against tcpdump as in 2."""
    with link_host() as host:
        log(f"link: {host.spec}, the suite all at once, with tcpdump on {LINK_IF}")
        out = play_cases(all_cases, 0, "link", pcap_dir, host)
    assert out.captures is not None
    prec = precision_of(out, load_pcaps(out.captures))
    report.setdefault("precision", {})["link"] = {
        "target": host.spec,
        "statuses": dict(out.statuses()),
        "not_passed": {r.case.id: r.message for r in out.results if r.status not in ("passed", "skipped")},
        "wall_s": out.wall,
        **prec.as_dict(),
        "captures": [_capture_dict(c) for c in out.captures.files],
    }
    rows.append(["2 precision (link: run)", "cases (passed/failed/error)", _statuses(out), ""])
    _precision_rows(rows, "link: run", prec)


# --------------------------------------------------------------- 1. durations
@dataclass(frozen=True)
class Ideal:
    played: float  # the waits as the case defines them (give-up silence with its tolerance)
    protocol: float  # the target's timers alone (give-up silence without tolerance)


def ideal_duration(result: CaseResult) -> Ideal:
    """The waits the case's steps expect; see the module docstring.

    Step kinds that newer versions of the model add are recognised by name, so
    that the script runs against either: an ``app`` step with ``at: X`` waits X,
    a ``state`` step with ``lasts: D`` listens D + tolerance(D) (the protocol
    timer alone: D), an ``app_result`` with ``after: X`` waits X (``after:
    give_up``: the give-up time of the preceding withhold's schedule).
    """
    case = result.case
    schedules = list(result.verdict.schedules) if result.verdict is not None else []
    params = result.target.params if result.target is not None else None
    played = protocol = 0.0
    last_give_up: float | None = None

    def add(seconds: float, tolerance: float = 0.0) -> None:
        nonlocal played, protocol
        played += seconds + tolerance
        protocol += seconds

    for step in case.steps:
        kind = type(step).__name__
        if isinstance(step, SilenceStep):
            add(step.seconds or 0.0)
        elif isinstance(step, ExpectStep) and step.window_.kind == "after":
            add(step.window_.seconds)
        elif isinstance(step, WithholdStep):
            if schedules:
                schedule = schedules.pop(0)
            elif params is not None:
                schedule = SCHEDULES[step.schedule](params, None)
            else:
                continue
            last_give_up = schedule.give_up
            add(sum(schedule.intervals[: step.count] if step.count else schedule.intervals))
            if step.then_silence:
                add(schedule.give_up, case.tolerance.of(schedule.give_up))
        elif kind == "AppStep" and getattr(step, "at", None):
            add(float(getattr(step, "at", 0.0)))
        elif kind == "StateStep" and getattr(step, "lasts", None) is not None:
            lasts = getattr(step, "lasts", 0.0)
            if isinstance(lasts, str):
                if params is None:
                    continue
                lasts = params.value(lasts)
            add(float(lasts), case.tolerance.of(float(lasts)))
        elif kind == "AppResultStep":
            window = getattr(step, "window", None)
            if getattr(step, "give_up", False) and last_give_up is not None:
                add(last_give_up)
            elif window is not None and window.kind == "after":
                add(window.seconds)
    return Ideal(played, protocol)


def base_id(case: Case) -> str:
    return case.id.split("#", 1)[0]


# -------------------------------------------------------- 2./3. pcap matching
Key = tuple[str, int, str, int, int, int, str, int]


def seg_key(seg: Segment) -> Key:
    return (seg.src, seg.sport, seg.dst, seg.dport, seg.seq, seg.ack, seg.flags, len(seg.payload))


@dataclass
class PcapIndex:
    """The TCP packets of a run's captures."""

    #: key -> capture times (ns since the epoch), in order
    by_key: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    #: port (either end) -> (time ns, key, n-th occurrence of the key)
    by_port: dict[int, list[tuple[int, Key, int]]] = field(default_factory=lambda: defaultdict(list))


def load_pcaps(captures: TcpdumpCaptures | None) -> PcapIndex:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import RawPcapReader

    index = PcapIndex()
    if captures is None:
        return index
    for cap in captures.files:
        if not cap.path.exists():
            continue
        reader = RawPcapReader(str(cap.path))
        try:
            scale = 1 if reader.nano else 1000
            for data, meta in reader:
                pkt = Ether(data)
                if IP not in pkt or TCP not in pkt:
                    continue
                ip, tcp = pkt[IP], pkt[TCP]
                try:
                    flags = canonical_flags(str(tcp.flags))
                except ValueError:
                    continue
                paylen = max(0, ip.len - ip.ihl * 4 - tcp.dataofs * 4)
                key = (ip.src, tcp.sport, ip.dst, tcp.dport, tcp.seq, tcp.ack, flags, paylen)
                index.by_key[key].append(meta.sec * 1_000_000_000 + meta.usec * scale)
        finally:
            reader.close()
    for key, times in index.by_key.items():
        times.sort()
        for n, t in enumerate(times):
            index.by_port[key[1]].append((t, key, n))
            index.by_port[key[3]].append((t, key, n))
    return index


def _pairing(result: CaseResult, index: PcapIndex) -> list[tuple[TraceEntry, Key, int | None]]:
    """Each trace entry with the occurrence (index into ``by_key[key]``) of the same packet in the pcap.

    The n-th entry of a key goes with the n-th pcap occurrence of that key, as
    long as the trace has every occurrence the pcap has during the dialogue.
    When the pcap has more (the tool missed one: e.g. it lost a SYN-ACK and saw
    only its retransmission 1 s later), n-th to n-th would pair different
    packets; then each entry takes the unused occurrence nearest to its own
    timestamp (identical segments are retransmissions, at least 200 ms apart).
    """
    v = result.verdict
    if v is None:
        return []
    lo, hi = int(v.start * 1e9), int(v.end * 1e9)
    keys = [seg_key(e.segment) for e in v.trace]
    in_trace = Counter(keys)
    out: list[tuple[TraceEntry, Key, int | None]] = []
    used: dict[Key, set[int]] = defaultdict(set)
    for entry, k in zip(v.trace, keys, strict=True):
        times = index.by_key.get(k, [])
        during = sum(1 for t in times if lo <= t <= hi)
        free = [i for i in range(len(times)) if i not in used[k]]
        if not free:
            out.append((entry, k, None))
            continue
        if in_trace[k] >= during:
            n = free[0]
        else:
            n = min(free, key=lambda i: abs(times[i] - entry.time * 1e9))
        used[k].add(n)
        out.append((entry, k, n))
    return out


def match_trace(result: CaseResult, index: PcapIndex) -> list[tuple[TraceEntry, int | None]]:
    """Each trace entry with the pcap time (ns) of the same packet (see :func:`_pairing`); None: not found."""
    return [(e, None if n is None else index.by_key[k][n]) for e, k, n in _pairing(result, index)]


def missed_by_tool(result: CaseResult, index: PcapIndex) -> int:
    """Packets of the case's flows that tcpdump saw during the dialogue (verdict start to end) and its trace lacks."""
    v = result.verdict
    if v is None or not result.ports:
        return 0
    lo, hi = int(v.start * 1e9), int(v.end * 1e9)
    in_pcap = {(k, n) for port in result.ports.values() for t, k, n in index.by_port.get(port, []) if lo <= t <= hi}
    in_trace = {(k, n) for _, k, n in _pairing(result, index) if n is not None}
    return len(in_pcap - in_trace)


@dataclass
class Precision:
    errors_us: list[float] = field(default_factory=list)
    signed_us: list[float] = field(default_factory=list)
    entries: int = 0
    unmatched: int = 0
    provisional: int = 0
    missed: int = 0  # packets of the cases' flows in the pcap, during the dialogue, that the trace lacks
    missed_cases: int = 0
    worst: str = ""

    def add(self, result: CaseResult, matched: list[tuple[TraceEntry, int | None]]) -> None:
        pairs: list[tuple[int, float]] = []
        for entry, t_ns in matched:
            self.entries += 1
            if entry.provisional:
                self.provisional += 1
            elif t_ns is None:
                self.unmatched += 1
            else:
                pairs.append((t_ns, entry.time))
        pairs.sort()
        for (p0, t0), (p1, t1) in zip(pairs, pairs[1:], strict=False):
            err = ((t1 - t0) - (p1 - p0) / 1e9) * 1e6
            if not self.errors_us or abs(err) > max(self.errors_us):
                self.worst = f"{result.case.id}: {err:+.1f} us over a {(p1 - p0) / 1e6:.3f} ms interval"
            self.errors_us.append(abs(err))
            self.signed_us.append(err)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = summary_us(self.errors_us)
        d["intervals"] = d.pop("n")
        d["mean_signed_us"] = sum(self.signed_us) / len(self.signed_us) if self.signed_us else None
        d.update(
            entries=self.entries,
            unmatched=self.unmatched,
            provisional=self.provisional,
            missed_by_tool=self.missed,
            cases_with_missed=self.missed_cases,
            worst=self.worst,
        )
        return d


def precision_of(outcome: Outcome, index: PcapIndex) -> Precision:
    prec = Precision()
    for r in outcome.results:
        prec.add(r, match_trace(r, index))
        missed = missed_by_tool(r, index)
        prec.missed += missed
        prec.missed_cases += missed > 0
    return prec


def reactions(outcome: Outcome, index: PcapIndex) -> tuple[list[float], list[float], int]:
    """Reaction latencies in µs: by the pcap, by the tool's own timestamps; and the pairs not found in the pcap."""
    by_pcap: list[float] = []
    by_tool: list[float] = []
    missing = 0
    for r in outcome.results:
        steps = list(r.case.steps)
        position = {s.line: i for i, s in enumerate(steps)}
        matched = match_trace(r, index)
        for i in range(1, len(matched)):
            (prev, t_prev), (entry, t_entry) = matched[i - 1], matched[i]
            if not entry.outgoing or prev.outgoing:
                continue
            m = re.fullmatch(r"line (\d+)", entry.note)
            if m is None:
                continue  # cleanup RSTs and the like: not a case step
            j = position.get(int(m.group(1)))
            if j is None or j == 0 or not isinstance(steps[j], SendStep) or not isinstance(steps[j - 1], ExpectStep):
                continue
            if t_prev is None or t_entry is None:
                missing += 1
                continue
            by_pcap.append((t_entry - t_prev) / 1e3)
            by_tool.append((entry.time - prev.time) * 1e6)
    return by_pcap, by_tool, missing


# ------------------------------------------------------------- 4. stability
@dataclass
class Stability:
    mode: str
    runs: int = 0
    flips: int = 0
    flipped: dict[str, str] = field(default_factory=dict)  # case -> message of the differing run
    not_passed: int = 0  # (run, case) pairs that did not pass
    failures: dict[str, str] = field(default_factory=dict)  # case -> a failure message
    walls: list[float] = field(default_factory=list)
    hog_cpu_s: float | None = None

    def add(self, outcome: Outcome, first: dict[str, CaseResult]) -> None:
        self.runs += 1
        self.walls.append(outcome.wall)
        for r in outcome.results:
            if r.status not in ("passed", "skipped"):
                self.not_passed += 1
                self.failures.setdefault(r.case.id, f"[{r.status}] {r.message}")
            base = first.get(r.case.id)
            if base is not None and base.status != r.status:
                self.flips += 1
                shown = r if r.status != "passed" else base
                self.flipped.setdefault(
                    r.case.id,
                    f"run 1 {base.status}, run {self.runs} {r.status}: {shown.message.strip()}",
                )


def stability(cases: list[Case], mode: str, runs: int, jobs: int, hogs: int) -> Stability:
    st = Stability(mode)
    first: dict[str, CaseResult] = {}
    with cpu_hogs(hogs) as procs:
        cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        for i in range(runs):
            out = play_cases(cases, jobs, f"stability {mode} {i + 1}/{runs}")
            if i == 0:
                first = {r.case.id: r for r in out.results}
            st.add(out, first)
        if procs:
            st.hog_cpu_s = sum(cpu_seconds(p.pid) for p in procs) - cpu0
    return st


# ----------------------------------------------------------------- cleanup
def our_namespaces() -> tuple[list[str], list[str]]:
    """(namespaces of this process, cfp-/cft- namespaces of other processes)."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    pid = os.getpid()
    ours = [n for n in names if n.startswith((f"{PREFIX_PROBER}{pid}-", f"{PREFIX_TARGET}{pid}-")) or n == LINK_NS]
    others = [n for n in names if n.startswith((PREFIX_PROBER, PREFIX_TARGET)) and n not in ours]
    return ours, others


# -------------------------------------------------------------------- main
_MAIN_PID = os.getpid()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGINT/SIGTERM: unwind (cleaning up) in this process; just exit in a forked child.

    pyroute2 forks short-lived children (netns creation, NetNS sockets) and stops
    them with SIGTERM, possibly before they reach their os._exit(). A child that
    inherited a raising handler would unwind *our* stack: print a report and
    remove the run's namespaces under the parent's feet.
    """
    if os.getpid() != _MAIN_PID:
        os._exit(128 + signum)
    raise KeyboardInterrupt


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description="Benchmark of the conformance tool (needs root).")
    ap.add_argument("--runs", type=int, default=None, help="runs per stability mode (default 20, --quick 3)")
    ap.add_argument("--quick", action="store_true", help="fewer runs and copies, to try the script out")
    ap.add_argument("--cases", default=str(ROOT / "cases"), help="the default suite (default: cases/)")
    ap.add_argument("--pcap-dir", help="keep the tcpdump captures in this folder (default: a temporary one)")
    ap.add_argument("--no-stability", action="store_true", help="leave out 4, the stability runs (the longest part)")
    link = ap.add_mutually_exclusive_group()
    link.add_argument("--no-link", action="store_true", help="leave out 2b, the precision on a link: target")
    link.add_argument("--link-only", action="store_true", help="measure 2b alone (the precision on a link: target)")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 20
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    return args


def benchmark(args: argparse.Namespace, pcap_dir: Path, report: dict[str, Any], rows: list[list[str]]) -> None:
    quick = args.quick
    serial_copies, concurrent_copies, throughput_copies = (3, 5, 20) if quick else (10, 20, 100)
    all_cases = [c for c in discover([args.cases]) if not is_long(c)]  # as the default suite: no long cases
    if args.link_only:
        link_precision(all_cases, pcap_dir, report, rows)
        return

    # 1 + 2: the default suite, captured independently ------------------------------------------
    log(f"suite: {len(all_cases)} cases from {args.cases}, all at once, with tcpdump")
    suite = play_cases(all_cases, 0, "suite", pcap_dir)
    ideals = {r.case.id: ideal_duration(r) for r in suite.results}
    longest = max(suite.results, key=lambda r: ideals[r.case.id].played)
    li = ideals[longest.case.id]
    longest_actual = longest.verdict.end - longest.verdict.start if longest.verdict else longest.duration
    longest_protocol_case, longest_protocol = max(((k, v.protocol) for k, v in ideals.items()), key=lambda kv: kv[1])
    assert suite.captures is not None
    ratio = suite.wall / li.played
    report["suite"] = {
        "cases": len(all_cases),
        "statuses": dict(suite.statuses()),
        "not_passed": {r.case.id: r.message for r in suite.results if not r.passed},
        "wall_s": suite.wall,
        "play_s": suite.play,
        "capture_overhead_s": suite.captures.overhead_s,
        "longest_case": longest.case.id,
        "longest_ideal_s": li.played,
        "longest_protocol_timer_s": longest_protocol,
        "longest_protocol_timer_case": longest_protocol_case,
        "longest_case_actual_s": longest_actual,
        "ratio": ratio,
        "ratio_to_protocol_timer": suite.wall / longest_protocol,
        "goal_ratio": GOAL_SUITE_RATIO,
        "met": ratio <= GOAL_SUITE_RATIO,
        "ideal_s": {k: round(v.played, 6) for k, v in ideals.items()},
        "protocol_timer_s": {k: round(v.protocol, 6) for k, v in ideals.items()},
        "actual_s": {r.case.id: (r.verdict.end - r.verdict.start) if r.verdict else None for r in suite.results},
    }
    rows += [
        ["1 suite", "cases (passed/failed/error)", _statuses(suite), ""],
        ["1 suite", "wall time of run()", f"{suite.wall:.2f} s", ""],
        [
            "1 suite",
            f"  of which outside the play phase ({len(suite.captures.files)} targets up/down)",
            f"{suite.wall - suite.play:.2f} s",
            "",
        ],
        ["1 suite", "  of which benchmark tcpdump start/stop", f"{suite.captures.overhead_s:.2f} s", ""],
        ["1 suite", f"longest ideal case duration ({longest.case.id})", f"{li.played:.2f} s", ""],
        ["1 suite", "  its actual duration (verdict end - start)", f"{longest_actual:.2f} s", ""],
        [
            "1 suite",
            f"longest protocol-timer duration, no give-up tolerance ({longest_protocol_case})",
            f"{longest_protocol:.2f} s",
            "",
        ],
        ["1 suite", "ratio wall / longest ideal", f"{ratio:.3f}", _goal(ratio <= GOAL_SUITE_RATIO, "<= 1.05")],
        ["1 suite", "ratio wall / longest protocol timers", f"{suite.wall / longest_protocol:.3f}", ""],
    ]

    suite_index = load_pcaps(suite.captures)
    prec = precision_of(suite, suite_index)
    report["precision"] = {"suite": prec.as_dict(), "captures": [_capture_dict(c) for c in suite.captures.files]}
    _precision_rows(rows, "suite run", prec)
    if not args.no_link:
        link_precision(all_cases, pcap_dir, report, rows)

    # 3: reaction latency ------------------------------------------------------------------------
    timer_free_ids = sorted(k for k, v in ideals.items() if v.played < TIMER_FREE_BELOW)
    timer_free = [c for c in all_cases if c.id in timer_free_ids]
    report["timer_free_cases"] = timer_free_ids
    log(f"timer-free cases (ideal < {TIMER_FREE_BELOW} s): {', '.join(timer_free_ids)}")
    latency: dict[str, Any] = {}
    for mode, n, jobs in (("serial", serial_copies, 1), ("concurrent", concurrent_copies, 0)):
        out = play_cases(copies(timer_free, n), jobs, f"latency {mode} ({n} copies)", pcap_dir)
        at_once = jobs or min(len(out.results), runner_module.DEFAULT_MAX_JOBS)  # the runner's default cap
        index = load_pcaps(out.captures)
        by_pcap, by_tool, missing = reactions(out, index)
        lp = precision_of(out, index)
        latency[mode] = {
            "cases": len(out.results),
            "jobs": at_once,
            "statuses": dict(out.statuses()),
            "wall_s": out.wall,
            "pcap": summary_us(by_pcap),
            "tool": summary_us(by_tool),
            "pairs_missing_in_pcap": missing,
            "met": (pct(by_pcap, 99) or math.inf) <= GOAL_LATENCY_P99_US,
            "precision": lp.as_dict(),
            "captures": [_capture_dict(c) for c in out.captures.files] if out.captures else [],
        }
        p99 = pct(by_pcap, 99)
        label = f"3 latency {mode}"
        rows += [
            [label, f"{len(out.results)} cases, {at_once} at a time", _statuses(out), ""],
            [label, f"reactions measured (missing in pcap: {missing})", str(len(by_pcap)), ""],
            [
                label,
                "p50 / p99 / max by pcap (us)",
                _triple(by_pcap),
                _goal(p99 is not None and p99 <= GOAL_LATENCY_P99_US, "p99 <= 2000"),
            ],
            [label, "p50 / p99 / max by the tool's timestamps (us)", _triple(by_tool), ""],
        ]
        _precision_rows(rows, f"latency {mode} run", lp)
    report["latency"] = latency

    # 5: throughput --------------------------------------------------------------------------------
    window = getattr(runner_module, "PORT_WINDOW", None)
    per_set = sum(ports_per_case(c) for c in timer_free)
    if window is not None and per_set and throughput_copies * per_set > window * 0.9:
        throughput_copies = max(1, int(window * 0.9) // per_set)
        log(f"throughput: {throughput_copies} copies (the runner's port window holds {window} source ports)")
    tp_cases = copies(timer_free, throughput_copies)
    out = play_cases(tp_cases, 0, f"throughput ({throughput_copies} copies)", pcap_dir)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tp_prec = precision_of(out, load_pcaps(out.captures))
    report["throughput"] = {
        "cases": len(tp_cases),
        "statuses": dict(out.statuses()),
        "not_passed": _messages(out.results),
        "wall_s": out.wall,
        "play_s": out.play,
        "cases_per_s": len(tp_cases) / out.wall,
        "cases_per_s_play": len(tp_cases) / out.play if out.play > 0 else None,
        "peak_rss_mb": rss_mb,
        "precision": tp_prec.as_dict(),
        "captures": [_capture_dict(c) for c in out.captures.files] if out.captures else [],
    }
    rows += [
        ["5 throughput", f"{len(tp_cases)} timer-free cases at once", _statuses(out), ""],
        [
            "5 throughput",
            "packets tcpdump saw that the traces lack (cases)",
            f"{tp_prec.missed} ({tp_prec.missed_cases})",
            "",
        ],
        ["5 throughput", "cases/s over run() (incl. namespace set-up)", f"{len(tp_cases) / out.wall:.1f}", ""],
        [
            "5 throughput",
            "cases/s over the play phase",
            f"{len(tp_cases) / out.play:.1f}" if out.play > 0 else "-",
            "",
        ],
        ["5 throughput", "peak RSS of the benchmark process", f"{rss_mb:.1f} MB", ""],
    ]

    # 4: stability ---------------------------------------------------------------------------------
    if args.no_stability:
        report["stability"] = None
        rows.append(["4 stability", "not measured (--no-stability)", "-", ""])
        return
    subset = select(all_cases, "not slow")
    ncpu = os.cpu_count() or 1
    report["stability"] = {"cases": [c.id for c in subset], "modes": {}}
    for mode, jobs, hogs in (("serial", 1, 0), ("concurrent", 0, 0), (f"concurrent+{ncpu} hogs", 0, ncpu)):
        st = stability(subset, mode, args.runs, jobs, hogs)
        report["stability"]["modes"][mode] = {
            "runs": st.runs,
            "cases_per_run": len(subset),
            "flips": st.flips,
            "flipped_cases": st.flipped,
            "not_passed": st.not_passed,
            "failures": st.failures,
            "wall_s_mean": sum(st.walls) / len(st.walls),
            "hog_cpu_s": st.hog_cpu_s,
            "met": st.flips == 0,
        }
        label = f"4 stability {mode}"
        rows.append([label, f"runs x cases ({len(subset)} cases)", f"{st.runs} x {len(subset)}", ""])
        rows.append([label, "verdict flips (vs run 1)", str(st.flips), _goal(st.flips == 0, "0")])
        rows.append([label, "(run, case) not passed", str(st.not_passed), ""])
        rows.append([label, "mean wall time per run", f"{sum(st.walls) / len(st.walls):.2f} s", ""])
        if st.hog_cpu_s is not None:
            share = st.hog_cpu_s / max(1e-9, sum(st.walls)) / ncpu * 100
            rows.append([label, "CPU taken by the hogs (of all cores)", f"{share:.0f} %", ""])
        for case_id, msg in st.flipped.items():
            rows.append([label, f"FLIPPED {case_id}", _one_line(msg), ""])
        for case_id, msg in st.failures.items():
            if case_id not in st.flipped:
                rows.append([label, f"not passed {case_id}", _one_line(msg), ""])


def _statuses(out: Outcome) -> str:
    s = out.statuses()
    text = f"{s.get('passed', 0)}/{s.get('failed', 0)}/{s.get('error', 0)}"
    others = ", ".join(
        f"{n} {status}" for status, n in sorted(s.items()) if status not in ("passed", "failed", "error")
    )
    return text + (f" ({others})" if others else "")


def ports_per_case(case: Case) -> int:
    """Source ports a case takes from the run's window: one per connection, one more for an agent service."""
    return len(case.connections()) + (1 if case.service == "agent" else 0)


def code_version() -> str:
    """Where the conformance package comes from, and its git state when it is a checkout."""
    import conformance

    where = Path(conformance.__file__).resolve().parent
    try:
        git = subprocess.run(
            ["git", "-C", str(where), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        state = git.stdout.strip() if git.returncode == 0 else "not a git checkout"
    except (OSError, subprocess.TimeoutExpired):
        state = "git unavailable"
    return f"{where} ({state})"


def _messages(results: list[CaseResult], limit: int = 5) -> dict[str, str]:
    bad = [r for r in results if not r.passed]
    return {r.case.id: r.message for r in bad[:limit]}


def _one_line(text: str, width: int = 400) -> str:
    text = " | ".join(line.strip() for line in text.strip().splitlines())
    return text if len(text) <= width else text[: width - 3] + "..."


def _goal(met: bool, goal: str) -> str:
    return f"{goal}: {'met' if met else 'NOT MET'}"


def _triple(values: Sequence[float]) -> str:
    return f"{fmt(pct(values, 50))} / {fmt(pct(values, 99))} / {fmt(max(values) if values else None)}"


def _capture_dict(c: CaptureFile) -> dict[str, Any]:
    return {
        "iface": c.iface,
        "netns": c.netns,
        "tstamp_types": c.tstamp_types,
        "captured": c.captured,
        "dropped": c.dropped,
        "start_s": c.start_s,
        "stop_s": c.stop_s,
    }


def _precision_rows(rows: list[list[str]], where: str, p: Precision) -> None:
    p99 = pct(p.errors_us, 99)
    rows += [
        [f"2 precision ({where})", "intervals compared", str(len(p.errors_us)), ""],
        [
            f"2 precision ({where})",
            "|error| p50 / p99 / max (us)",
            _triple(p.errors_us),
            _goal(p99 is not None and p99 <= GOAL_PRECISION_P99_US, "p99 <= 1000"),
        ],
        [
            f"2 precision ({where})",
            "trace entries / unmatched / provisional",
            f"{p.entries} / {p.unmatched} / {p.provisional}",
            "",
        ],
        [
            f"2 precision ({where})",
            "packets tcpdump saw that the traces lack (cases)",
            f"{p.missed} ({p.missed_cases})",
            "",
        ],
    ]


def print_table(rows: list[list[str]], max_value: int = 40) -> None:
    """The figures as a plain table; values longer than `max_value` go to numbered notes below it."""
    notes: list[str] = []
    shown: list[list[str]] = []
    for r in rows:
        if len(r[2]) > max_value:
            notes.append(r[2])
            r = [r[0], r[1], f"(note {len(notes)})", r[3]]
        shown.append(r)
    rows = shown
    headers = ["section", "figure", "value", "goal"]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    print(line)
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    print(line)
    previous = ""
    for r in rows:
        if r[0] != previous and previous:
            print()
        previous = r[0]
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(line)
    for i, note in enumerate(notes, 1):
        print(f"note {i}: {note}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    info = machine()
    command = shlex.join(getattr(sys, "orig_argv", sys.argv))
    print(f"machine: nproc {info['nproc']}, {info['kernel']}, CPU {info['cpu']}, {info['python']}")
    print(f"command: {command}")
    print(f"conformance: {code_version()}")
    print(f"started: {time.strftime('%Y-%m-%d %H:%M:%S %z')}, load average {_loadavg()}", flush=True)
    report: dict[str, Any] = {
        "machine": info,
        "command": command,
        "conformance": code_version(),
        "loadavg_start": _loadavg(),
        "runs": args.runs,
        "quick": args.quick,
    }
    rows: list[list[str]] = []
    code = 0
    t0 = time.monotonic()
    keep = args.pcap_dir is not None
    pcap_dir = Path(args.pcap_dir) if keep else Path(tempfile.mkdtemp(prefix="cf-bench-"))
    try:
        check_privileges()
        if shutil.which("tcpdump") is None:
            raise ConformanceError("tcpdump is missing: run bash .ci/setup")
        pcap_dir.mkdir(parents=True, exist_ok=True)
        benchmark(args, pcap_dir, report, rows)
    except KeyboardInterrupt:
        print("benchmark: interrupted; cleaning up", file=sys.stderr)
        report["interrupted"] = True
        code = 130
    except ConformanceError as exc:
        print(f"benchmark: {exc}", file=sys.stderr)
        report["error"] = str(exc)
        code = 2
    except Exception as exc:  # a bug here or in the tool: keep the figures gathered so far
        traceback.print_exc()
        report["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(["error", "the benchmark stopped early", f"{type(exc).__name__}: {exc}", ""])
        code = 1
    finally:
        if not keep:
            shutil.rmtree(pcap_dir, ignore_errors=True)
    report["elapsed_s"] = time.monotonic() - t0
    report["loadavg_end"] = _loadavg()
    ours, others = our_namespaces()
    alive = [p.pid for p in _STARTED if p.poll() is None]
    veth_left = "yes" if Path(f"/sys/class/net/{LINK_IF}").exists() else "no"
    report["cleanup"] = {
        "our_namespaces_left": ours,
        "other_cfp_cft_namespaces": others,
        "our_processes_left": alive,
        "link_veth_left": veth_left == "yes",
        "processes_started": len(_STARTED),
    }
    rows += [
        ["cleanup", "our cfp-/cft-/cfbench- namespaces left", " ".join(ours) or "none", ""],
        ["cleanup", f"the link: veth {LINK_IF} left", veth_left, ""],
        ["cleanup", f"tcpdump/hog processes left (of {len(_STARTED)} started)", str(len(alive)), ""],
        ["cleanup", "cfp-/cft- namespaces of other processes", " ".join(others) or "none", ""],
        ["total", "benchmark elapsed", f"{report['elapsed_s']:.1f} s", ""],
        ["total", "load average at the end (1/5/15 min)", report["loadavg_end"], ""],
    ]
    if rows:
        print_table(rows)
    print(json.dumps(report, default=_json_default, sort_keys=False))
    return code


def _loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _json_default(o: object) -> object:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
