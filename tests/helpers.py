"""Shared helpers of the offline tests: case files in tmp_path and a fake wire.

Nothing here opens a socket or sleeps: time is a plain float that the tests
choose, and the "target" is whatever segments a test scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from conformance.core.engine import Addressing, AppRequest, Dialogue, Policy, Verdict
from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.params import resolve
from conformance.core.profiles import Profile, load_profile, outcome
from conformance.core.segment import Segment

ROOT = Path(__file__).resolve().parent.parent

OUR_IP = "198.18.0.1"
TARGET_IP = "198.18.0.2"
TARGET_PORT = 7000
ADDR = Addressing(OUR_IP, TARGET_IP, TARGET_PORT)

#: Our ISN and source port of the first connection; later connections count up.
ISN = 1000
SPORT = 40000
#: The target's ISN in the scripted SYN-ACKs.
PEER_ISN = 5555

HEADER = """\
id: {id}
title: A test case
refs:
  - id: EP-5
    doc: RFC 9293 §3.10.7.2
    level: MUST
    says: "LISTEN, SYN arrives: send <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>"
"""


def case_text(steps: str, *, id: str = "test-case", extra: str = "") -> str:
    """A complete case file: the standard header, `extra` top-level keys, then `steps:`."""
    return HEADER.format(id=id) + extra + "steps:\n" + steps


def write_case(directory: Path, steps: str, *, id: str = "test-case", extra: str = "", name: str = "") -> Path:
    path = directory / f"{name or id}.yaml"
    path.write_text(case_text(steps, id=id, extra=extra), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based number of the line holding the `occurrence`-th `needle` in the file."""
    seen = 0
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in text:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not found {occurrence} time(s) in {path}")


def load_steps(directory: Path, steps: str, *, extra: str = "") -> Case:
    return load_case(write_case(directory, steps, extra=extra))


class FakeWire:
    """Drives a :class:`Dialogue` the way the runner does, on a fake clock.

    * :meth:`advance` runs the engine at `now`, records what it sends and feeds
      each segment back through ``receive()`` as the capture would, stamped
      `capture_delay` later (the "kernel timestamp" of our own segment);
    * :meth:`target` delivers a segment from the target;
    * :meth:`run_until` advances at every deadline up to a time, like a runner
      that sleeps until ``next_deadline()`` when nothing arrives.
    """

    def __init__(
        self,
        case: Case,
        sysctls: Mapping[str, int] | None = None,
        *,
        capture_delay: float = 0.0005,
        isn: int = ISN,
        profile: Profile | None = None,
        strict: bool = False,
    ) -> None:
        conns = case.connections()
        self.ports = {name: SPORT + i for i, name in enumerate(conns)}
        self.isns = {name: isn + 1000 * i for i, name in enumerate(conns)}
        policy: Policy = (lambda ref: outcome(ref, profile, strict)) if profile is not None else (lambda ref: "fail")
        self.dialogue = Dialogue(
            case, resolve(dict(sysctls or {}), profile), ADDR, self.ports, self.isns, policy=policy
        )
        self.capture_delay = capture_delay
        self.sent: list[Segment] = []
        self.requests: list[AppRequest] = []  # agent commands the engine gave, in order
        self.now = 0.0

    # -------------------------------------------------------------- clock
    def advance(self, now: float, capture_delay: float | None = None) -> list[Segment]:
        self.now = now
        actions = self.dialogue.advance(now)
        delay = self.capture_delay if capture_delay is None else capture_delay
        out: list[Segment] = []
        for action in actions:
            if isinstance(action, AppRequest):
                self.requests.append(action)
                continue
            out.append(action)
            self.sent.append(action)
            self.dialogue.receive(action.at(now + delay))
        return out

    def run_until(self, until: float) -> None:
        """Advance at each deadline (just after it) before `until`, then at `until`."""
        while not self.dialogue.done:
            deadline = self.dialogue.next_deadline()
            if deadline is None or deadline + 0.001 >= until:
                break
            self.advance(deadline + 0.001)
        self.advance(until)

    # -------------------------------------------------------------- target
    def segment(
        self,
        time: float,
        flags: str,
        *,
        seq: int = PEER_ISN,
        ack: int | None = None,
        payload: bytes = b"",
        conn: str = "main",
        window: int = 65535,
    ) -> Segment:
        return Segment(
            src=TARGET_IP,
            dst=OUR_IP,
            sport=TARGET_PORT,
            dport=self.ports[conn],
            seq=seq,
            ack=self.isns[conn] + 1 if ack is None else ack,
            flags=flags,
            window=window,
            payload=payload,
            time=time,
        )

    def target(
        self,
        time: float,
        flags: str,
        *,
        seq: int = PEER_ISN,
        ack: int | None = None,
        payload: bytes = b"",
        conn: str = "main",
    ) -> Segment:
        """The target sends a segment at `time`; the engine sees it (no advance)."""
        seg = self.segment(time, flags, seq=seq, ack=ack, payload=payload, conn=conn)
        self.dialogue.receive(seg)
        return seg

    def reply(
        self,
        time: float,
        flags: str,
        *,
        seq: int = PEER_ISN,
        ack: int | None = None,
        payload: bytes = b"",
        conn: str = "main",
    ) -> list[Segment]:
        """The target sends a segment at `time` and the runner advances right then."""
        self.target(time, flags, seq=seq, ack=ack, payload=payload, conn=conn)
        return self.advance(time)

    def deadline(self) -> float:
        """``next_deadline()``, which must be set."""
        deadline = self.dialogue.next_deadline()
        assert deadline is not None, "the engine has no deadline"
        return deadline

    # -------------------------------------------------------------- results
    def verdict(self) -> Verdict:
        return self.dialogue.verdict()

    def sent_with(self, flags: str) -> list[Segment]:
        return [s for s in self.sent if s.flags == flags]


def answer_app_requests(w: FakeWire, answered: set[int], now: float) -> None:
    """Answer every agent command the engine gave and `answered` does not hold, as the agent would for a
    well-behaved application on a socket with the defaults (TCP_NODELAY 0): a send took all its octets, a
    state query reads ESTABLISHED."""
    for request in w.requests:
        if request.id in answered:
            continue
        answered.add(request.id)
        answer: dict[str, object] = {"ok": True, "sock": 1 + len(answered), "options": {"TCP_NODELAY": 0}}
        if request.cmd == "send":
            answer["sent"] = len(str(request.args.get("data", "")).encode())
        if request.cmd == "state":
            answer.update(state="ESTABLISHED", linux="ESTABLISHED")
        w.dialogue.app_answer(request.id, answer, now)
        w.advance(now)


def agent_handshake(path: Path, t: float, commands: int) -> tuple[FakeWire, Callable[[float], None]]:
    """The agent case at `path` on the fake wire under the linux profile, started at `t`: its listen answered, our
    SYN answered by a SYN-ACK, then the next `commands` agent commands answered a millisecond apart. Returns the
    wire and the function that answers the commands given so far at a time."""
    w = FakeWire(load_case(path), profile=load_profile("linux"))
    answered: set[int] = set()
    w.advance(t)

    def answer_app(now: float) -> None:
        answer_app_requests(w, answered, now)

    answer_app(t + 0.001)  # listen
    w.reply(t + 0.002, "SA", seq=PEER_ISN, ack=ISN + 1)
    for i in range(commands):
        answer_app(t + 0.003 + i * 0.001)
    return w, answer_app
