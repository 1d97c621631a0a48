"""The model as a reference target: a case's dialogue played against a :class:`~.host.Host` on a fake clock.

Like ``tests/helpers.FakeWire``, but the other end is the model rather than a script. Segments take
:data:`ONE_WAY` seconds on the fake wire; our own segments come back to the dialogue as their capture
:data:`CAPTURE` seconds after they are sent. Time jumps from one event to the next (a segment arriving, the
dialogue's deadline, the model's timer), so a case whose timers run for minutes plays in milliseconds.

The target's application is the case's service (:mod:`.apps`, or ``closed``); with an ``agent`` the
commands are answered by :mod:`.agent`. The target's sysctls of a case become the profile's knobs where the
model has one (:data:`SYSCTL_KNOBS`); a case that needs any other is not played (:func:`unsupported`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace

from ..engine import Addressing, AppRequest, Dialogue, Policy, Verdict
from ..model import AppStep, Case, ExpectStep, Reference
from ..outcomes import Level, Outcome
from ..params import Profile, resolve
from ..profiles import outcome
from ..segment import Segment
from .agent import GETSOCKOPT, OPTIONS, Agent
from .apps import APPS
from .host import Host
from .ip import connection_of
from .profile import LINUX, ModelProfile

OUR_IP = "198.18.0.1"
TARGET_IP = "198.18.0.2"
TARGET_PORT = 7000
#: The target's subnet and its second address (:mod:`.ip`), so that a case's named addresses (broadcast,
#: secondary) resolve as on the embedded target.
PREFIX = 24
SECONDARY_IP = "198.18.0.3"
ADDRESSING = Addressing(OUR_IP, TARGET_IP, TARGET_PORT, PREFIX, SECONDARY_IP)
#: Our first source port and ISN; later connections count up.
SPORT, ISN = 40000, 1000
ONE_WAY = 0.0002
CAPTURE = 0.0001
#: How long past the dialogue's deadline it is advanced (its deadlines are inclusive).
STEP = 0.001
#: A dialogue that needs more events than this is a bug in the model or the engine, not a long case.
MAX_EVENTS = 200_000

#: Target sysctls (net.ipv4.X) the model has a knob for: sysctl -> profile field.
SYSCTL_KNOBS = {
    "accept_source_route": "accept_source_route",
    "tcp_synack_retries": "synack_retries",
    "tcp_syn_retries": "syn_retries",
    "tcp_syn_linear_timeouts": "syn_linear",
    "tcp_retries2": "data_retries",
    "tcp_orphan_retries": "orphan_retries",
    "tcp_fin_timeout": "fin_timeout",
    "tcp_syncookies": "syncookies",
    "tcp_abort_on_overflow": "abort_on_overflow",
}

#: The TCP options the model sends (on its SYN-ACK when the SYN offered them: :mod:`.options`).
SENT_OPTIONS = frozenset({"mss", "wscale", "timestamp"})


def unsupported(case: Case) -> str | None:
    """Why the model cannot play `case` (None: it can)."""
    other = sorted(set(case.sysctls) - set(SYSCTL_KNOBS))
    if other:
        return f"needs target sysctls the model has no knob for: {', '.join(other)}"
    if case.service not in (*APPS, "closed", "agent"):
        return f"needs the {case.service} service, an application the model does not have"
    for step in case.steps:
        if isinstance(step, ExpectStep):
            wanted = {o.kind for o in step.pattern.options or () if not o.absent} - SENT_OPTIONS
            if wanted:
                return f"expects options the model does not send: {', '.join(sorted(wanted))}"
        if not isinstance(step, AppStep):
            continue
        args = dict(step.args)
        names = args.get("names")
        if step.do == "getsockopt" and isinstance(names, list) and set(names) <= set(GETSOCKOPT):
            continue
        if step.do == "getsockopt":
            kept = sorted(str(n) for n in set(names) - set(GETSOCKOPT)) if isinstance(names, list) else ["all"]
            return f"asks the stack getsockopt for options the model keeps no value of: {', '.join(kept)}"
        options = args.get("options")
        if isinstance(options, dict) and set(options) - set(OPTIONS):
            return f"needs socket options the model does not have: {', '.join(sorted(set(options) - set(OPTIONS)))}"
    return None


def profile_for(case: Case, profile: ModelProfile) -> ModelProfile:
    """`profile` with the case's target sysctls applied."""
    changes = {SYSCTL_KNOBS[k]: v for k, v in case.sysctls.items() if k in SYSCTL_KNOBS}
    return replace(profile, **changes) if changes else profile  # type: ignore[arg-type]


@dataclass
class Played:
    """A case played against the model: the verdict, and the model (its decisions) for inspection."""

    verdict: Verdict
    host: Host
    dialogue: Dialogue


class _Wire:
    """Segments in flight, by arrival time."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, bool, Segment]] = []
        self._count = 0

    def push(self, time: float, to_target: bool, seg: Segment) -> None:
        self._count += 1
        heapq.heappush(self._heap, (time, self._count, to_target, seg))

    def next_time(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[float, bool, Segment]:
        time, _, to_target, seg = heapq.heappop(self._heap)
        return time, to_target, seg


def policy_for(profile: ModelProfile, strict: bool = True) -> Policy:
    """A check that does not hold is judged as a run judges it (:func:`~conformance.core.profiles.outcome`) against
    the profile's stack with ``--strict``, but for the SHOULDs the profile documents the stack does not follow
    (:attr:`~.profile.ModelProfile.should_departures`), which warn as in a run: a MUST fails, a SHOULD fails unless
    it is a documented departure (then it warns), a MAY is information, a stack's documented default fails under
    that stack's profile and is information under any other. `strict` False: a SHOULD warns, as in a default run."""
    departs = {requirement for requirement, _ in profile.should_departures}
    stack = Profile(name=profile.name, title=profile.name, stack=profile.stack, read_sysctls=False)

    def policy(ref: Reference | None) -> Outcome:
        if ref is not None and ref.level in (Level.SHOULD, Level.SHOULD_NOT) and ref.id in departs:
            return Outcome.WARN
        return outcome(ref, stack, strict=strict)

    return policy


def play(case: Case, profile: ModelProfile = LINUX, *, policy: Policy | None = None) -> Played:
    """Play `case` against the model with `profile`; the dialogue's parameters are the documented defaults
    (with the case's sysctls), so a profile that departs from them is a target that departs from them. The
    verdict is judged by `policy`, by default :func:`policy_for` the profile."""
    policy = policy_for(profile) if policy is None else policy
    host = Host(TARGET_IP, profile_for(case, profile), PREFIX, SECONDARY_IP)
    if case.service in APPS:
        host.listen(TARGET_PORT, case.service)
    names = case.connections()
    ports = {name: SPORT + i for i, name in enumerate(names)}
    isns = {name: ISN + 1000 * i for i, name in enumerate(names)}
    agent = Agent(host, ADDRESSING) if case.needs_agent or case.service == "agent" else None
    params = resolve(dict(case.sysctls))
    dialogue = Dialogue(case, params, ADDRESSING, ports, isns, white_box=agent is not None, policy=policy)
    wire = _Wire()

    def dispatch(actions: list[Segment | AppRequest], now: float) -> None:
        for action in actions:
            if isinstance(action, AppRequest):
                if agent is None:
                    dialogue.app_answer(action.id, {"ok": False, "error": "no agent"}, now)
                else:
                    from_target(agent.request(action, dialogue, now), now)
                continue
            dialogue.receive(replace(action, time=now + CAPTURE, extra={**action.extra, "ours": True}))
            wire.push(now + ONE_WAY, True, action)

    def from_target(segments: list[Segment], now: float) -> None:
        for seg in segments:
            wire.push(now + ONE_WAY, False, host.ip.output(seg, connection_of(seg, host.tcbs, host.gone)))

    now = 0.0
    dispatch(dialogue.advance(now), now)
    for _ in range(MAX_EVENTS):
        if agent is not None and agent.answered:
            agent.answered = False
            dispatch(dialogue.advance(now), now)
            continue
        if dialogue.done and wire.next_time() is None:
            break
        times = [t for t in (wire.next_time(), host.deadline(), agent.deadline() if agent else None) if t is not None]
        deadline = dialogue.next_deadline()
        if deadline is not None:
            times.append(deadline + STEP)
        if not times:
            break
        now = max(now, min(times))
        arrival = wire.next_time()
        if arrival is not None and arrival <= now:
            _, to_target, seg = wire.pop()
            if to_target:
                from_target([e.segment for e in host.receive(seg, now)], now)
                if agent is not None:
                    agent.poll(dialogue, now)
            else:
                dialogue.receive(seg.at(now))
                dispatch(dialogue.advance(now), now)
            continue
        due = host.deadline()
        if due is not None and due <= now:
            from_target([e.segment for e in host.advance(now)], now)
            if agent is not None:
                agent.poll(dialogue, now)
            continue
        if agent is not None:
            from_target(agent.advance(dialogue, now), now)
        dispatch(dialogue.advance(now), now)
    else:
        raise RuntimeError(f"{case.id}: more than {MAX_EVENTS} events against the model: a loop in the model?")
    return Played(dialogue.verdict(), host, dialogue)
