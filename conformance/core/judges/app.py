"""Judges of the steps the target's application takes through the agent: ``app``, a white-box ``state`` query,
and ``app_result`` (the answer of an ``app`` step that was not waited for)."""

from __future__ import annotations

from ..checks import Check
from ..ipfields import broadcast
from ..matching import FieldDiff
from ..model import AppResultStep, AppStep, Reference, Step
from ..outcomes import FailureKind, Status
from ..steps import AGENT_TIMEOUT, DELIVERY_GRACE, STATE_SETTLE, Connection
from ..timing import Window
from ..values import format_duration
from .base import ActiveStep, Context, Progress
from .withhold import judge_persistence


class AgentCommand(ActiveStep):
    """An ``app`` step, or a state query (`cmd` = "state", `state` = the expected state): a command for the agent,
    then its answer."""

    def __init__(
        self,
        step: Step,
        description: str,
        cmd: str,
        state: str = "",
        ref: Reference | None = None,
    ) -> None:
        self.step = step
        self.description = description
        self.cmd = cmd
        self.state = state  # expected state, for state queries
        self.ref = ref  # the document the check answers to, when not the step's ref
        self.earliest: float | None = None  # not before this time
        self.request: int | None = None
        self.sent_at: float | None = None
        self.timeout = AGENT_TIMEOUT

    def start(self, ctx: Context, now: float) -> None:
        step = self.step
        if isinstance(step, AppStep) and step.at:
            self.earliest = ctx.last_event_time(default=now) + step.at

    def deadline(self, ctx: Context) -> float | None:
        if self.sent_at is not None:
            return self.sent_at + self.timeout
        return self.earliest

    def _conn(self, ctx: Context) -> Connection:
        name = self.step.conn
        return ctx.conns[name] if name in ctx.conns else next(iter(ctx.conns.values()))

    def _arguments(self, ctx: Context, conn: Connection) -> dict[str, object] | str:
        """The agent command's arguments, or why the command cannot be given yet."""
        step = self.step
        args: dict[str, object] = dict(step.args) if isinstance(step, AppStep) else {}
        args.pop("answer", None)  # what the answer must hold: the judge's, not the agent's
        cmd = self.cmd
        if cmd == "state":
            if conn.tport is None:
                return f"the target's port of connection {conn.name} is not known yet"
            return {"local": [conn.taddr or ctx.addr.target_ip, conn.tport], "remote": [ctx.addr.our_ip, conn.sport]}
        if cmd == "listen":
            args["port"] = ctx.addr.target_port
            args["addr"] = "::" if ":" in ctx.addr.target_ip else "0.0.0.0"
        elif cmd == "accept":
            if ctx.listener is None:
                return "accept before listen"
            timeout = _seconds(args.get("timeout", 5.0))
            args.update(sock=ctx.listener, timeout=timeout)
            self.timeout = timeout + AGENT_TIMEOUT
        elif cmd == "connect":
            self.timeout = CONNECT_TIMEOUT
            return _connect_arguments(ctx, conn, args)
        else:
            if conn.sock is None:
                return f"the application has no socket for connection {conn.name} (accept or connect first)"
            args["sock"] = conn.sock
            if cmd == "recv":
                self.timeout = _seconds(args.get("timeout", 5.0)) + AGENT_TIMEOUT
        return args

    def advance(self, ctx: Context, now: float) -> Progress:
        if self.request is None:
            return self._ask(ctx, now)
        got = ctx.answer(self.request)
        if got is None:
            assert self.sent_at is not None
            if now <= self.sent_at + self.timeout:
                return Progress.WAIT
            message = f"the target agent did not answer within {self.timeout:g} s"
            ctx.fail(self.step, self.description, FailureKind.AGENT, message, now, fatal=True)
            return Progress.DONE
        answer, when = got
        ctx.last_app_answer = when if ctx.last_app_answer is None else max(ctx.last_app_answer, when)
        if self.cmd == "state":
            return self._check_state(ctx, answer, when, now)
        return self._check_answer(ctx, answer, when, now)

    def _ask(self, ctx: Context, now: float) -> Progress:
        step = self.step
        if self.earliest is None and self.cmd == "state":
            self.earliest = ctx.last_event_time(default=now) + STATE_SETTLE
        if self.earliest is not None and now < self.earliest:
            return Progress.WAIT
        args = self._arguments(ctx, self._conn(ctx))
        if isinstance(args, str):
            ctx.fail(step, self.description, FailureKind.APP, f"cannot run: {args}", now, fatal=True)
            return Progress.DONE
        label = step.label if isinstance(step, AppStep) else None
        self.request, self.sent_at = ctx.ask(self._conn(ctx).name, self.cmd, args, label), now
        if isinstance(step, AppStep) and not step.wait:
            ctx.record(step.line, self.description, Status.PASSED, now, timing="not waited for")
            return Progress.DONE
        return Progress.AGAIN

    def _check_answer(self, ctx: Context, answer: dict[str, object], when: float, now: float) -> Progress:
        if not answer.get("ok") and self.cmd == "listen" and answer.get("error") == "EADDRINUSE":
            message = (  # the listener's port is the tool's choice (_arguments): another socket there holds it
                f"the port the tool gave the agent's listener, {ctx.addr.target_port}, is in use on the target: "
                "not a verdict about the target (keep the run's port window out of the target's ephemeral ports, "
                "net.ipv4.ip_local_reserved_ports, as the embedded target does)"
            )
            ctx.fail(self.step, self.description, FailureKind.HARNESS, message, now, time=when, fatal=True)
            return Progress.DONE
        if not answer.get("ok"):
            message = (
                f"the target's application failed: {self.cmd} -> {answer.get('error')} ({answer.get('detail', '')})"
            )
            ctx.fail(self.step, self.description, FailureKind.APP, message, now, time=when, fatal=True)
            return Progress.DONE
        if self.cmd == "listen":
            ctx.listener = _integer(answer["sock"])
        elif self.cmd in ("accept", "connect"):
            self._conn(ctx).sock = _integer(answer["sock"])
        expected = dict(self.step.args).get("answer") if isinstance(self.step, AppStep) else None
        diffs = answer_diffs(expected, answer) if isinstance(expected, dict) else []
        if not all(d.ok for d in diffs):
            message = f"the application's {self.cmd} answered otherwise"
            kind, check = FailureKind.APP, Check.RESULT
            ctx.fail(self.step, self.description, kind, message, now, tuple(diffs), when, check=check)
            return Progress.DONE
        ctx.record(self.step.line, self.description, Status.PASSED, when, tuple(diffs))
        return Progress.DONE

    def _check_state(self, ctx: Context, answer: dict[str, object], when: float, now: float) -> Progress:
        ref = ctx.event_time(ctx.last_event)  # -1: the dialogue's start (0.0 on a fake clock is a time, not none)
        how = (
            f"white box: sock_diag in the target (Linux {answer.get('linux')}), "
            f"read {format_duration(when - ref)} after the previous event"
        )
        if not answer.get("ok"):
            message = f"the agent could not read the state: {answer.get('detail')}"
            ctx.fail(self.step, self.description, FailureKind.AGENT, message, now, fatal=True)
            return Progress.DONE
        observed = str(answer.get("state"))
        if observed != self.state:
            ctx.fail(
                self.step,
                self.description,
                FailureKind.STATE,
                f"expected state {self.state}, observed {observed} ({how})",
                now,
                diffs=(FieldDiff("state", self.state, observed, False),),
                time=when,
                ref=self.ref if self.ref is not None else True,
                check=Check.STATE,
            )
            return Progress.DONE
        diffs = (FieldDiff("state", self.state, observed, True),)
        ctx.record(self.step.line, self.description, Status.PASSED, when, diffs, how)
        return Progress.DONE


class AppResult(ActiveStep):
    """``app_result``: the answer of an earlier ``app`` step that was not waited for, and when it came."""

    step: AppResultStep

    def __init__(self, step: AppResultStep) -> None:
        self.step = step
        want = step.error or ("ok" if step.ok else "an answer")
        self.description = f"app_result of {step.of}: {want}"
        self.limit: float | None = None

    def deadline(self, ctx: Context) -> float | None:
        return self.limit

    def _window(self, ctx: Context) -> Window | None:
        if self.step.give_up and ctx.last_give_up is not None:
            return Window("after", ctx.last_give_up)
        return self.step.window

    def advance(self, ctx: Context, now: float) -> Progress:
        step = self.step
        tol = ctx.case.tolerance
        ref = ctx.event_time(ctx.last_event)  # -1: the dialogue's start (0.0 on a fake clock is a time, not none)
        window = self._window(ctx)
        got = ctx.app_result(step.of)
        if got is None:
            self.limit = ref + (window.deadline(tol) if window else 600.0) + DELIVERY_GRACE
            if now <= self.limit:
                return Progress.WAIT
            message = f"no answer from the application's {step.of} ({window or 'any time'} of the previous event)"
            ctx.fail(step, self.description, FailureKind.MISSING, message, now, check=Check.MISSING)
            return Progress.DONE
        answer, when = got
        diffs: list[FieldDiff] = []
        if step.error is not None:
            observed = str(answer.get("error")) if not answer.get("ok") else "success"
            diffs.append(FieldDiff("result", step.error, observed, observed == step.error))
        if step.ok is not None:
            ok = bool(answer.get("ok"))
            diffs.append(FieldDiff("ok", str(step.ok), str(ok), ok == step.ok))
        if not all(d.ok for d in diffs):
            message = f"the application's {step.of} ended otherwise"
            ctx.fail(step, self.description, FailureKind.APP, message, now, tuple(diffs), when, check=Check.RESULT)
            return Progress.DONE
        if window is not None:
            problem = window.check(when - ref, tol)
            if problem is not None:
                kind, timing = FailureKind.TIMING, Check.TIMING
                ctx.fail(step, self.description, kind, problem, now, tuple(diffs), when, check=timing)
                return Progress.DONE
        shown = f"{format_duration(when - ref)} after the previous event"
        ctx.record(step.line, self.description, Status.PASSED, when, tuple(diffs), shown)
        series = ctx.last_series
        if step.give_up and series is not None:  # how long the sender kept trying, where the profile bounds it
            gave_up = when - series.origin_time
            series.gave_up = gave_up
            description = f"app_result of {step.of}: the target keeps trying"
            judge_persistence(ctx, step, series.schedule, gave_up, now, description, "its SYN")
        return Progress.DONE


#: How long a connect may take: the stack's give-up on its SYNs (Linux's default, 127 s, and longer ones).
CONNECT_TIMEOUT = 600.0


def _connect_arguments(ctx: Context, conn: Connection, args: dict[str, object]) -> dict[str, object] | str:
    """connect's arguments: to us (or to the target subnet's broadcast address, ``to: broadcast``), from the
    listening port (``local_port: listen``) or the target's address (``local_addr: target``) when asked."""
    to = args.pop("to", None)
    if to not in (None, "broadcast"):  # the loader allows only these; a model built another way is refused here
        return f"to: {to!r} is not a destination the tool knows (broadcast, or none: us)"
    if to == "broadcast":
        address = broadcast(ctx.addr.target_ip, ctx.addr.prefix)
        if address is None:
            return "to: broadcast needs an IPv4 target whose subnet the run knows (one it set up)"
        args.update(addr=address)
    else:
        args.update(addr=ctx.addr.our_ip)
    args["port"] = conn.sport
    if args.get("local_port") == "listen":
        args["local_port"] = ctx.addr.target_port
    if args.get("local_addr") == "target":
        args["local_addr"] = ctx.addr.target_ip
    return args


def answer_diffs(expected: dict[str, object], answer: dict[str, object]) -> list[FieldDiff]:
    """Each field an ``app`` step's ``answer:`` names, against the agent's answer. A field is a name of the answer
    or a dotted path into it (``options.TCP_KEEPIDLE``); the expected value is the value itself, or bounds
    ``{min: N}``, ``{max: N}``."""
    out: list[FieldDiff] = []
    for path, want in expected.items():
        got: object = answer
        for part in str(path).split("."):
            got = got.get(part, MISSING) if isinstance(got, dict) else MISSING
        shown = "absent" if got is MISSING else _shown(got)
        if isinstance(want, dict):
            low, high = want.get("min"), want.get("max")
            bounds = (f"at least {low}" if low is not None else "", f"at most {high}" if high is not None else "")
            text = " and ".join(t for t in bounds if t)
            number = got if isinstance(got, int | float) and not isinstance(got, bool) else None
            ok = number is not None and (low is None or number >= low) and (high is None or number <= high)
            out.append(FieldDiff(str(path), text, shown, ok))
        else:
            out.append(FieldDiff(str(path), _shown(want), shown, got is not MISSING and got == want))
    return out


MISSING = object()


def _shown(value: object) -> str:
    """A value as the case file writes it (YAML's true/false, quoted strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _seconds(value: object) -> float:
    return float(value) if isinstance(value, int | float | str) else 5.0


def _integer(value: object) -> int:
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"not a number: {value!r}")
