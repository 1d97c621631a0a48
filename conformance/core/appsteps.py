"""The target's application in a dialogue: app steps, state checks (white box through
the agent, black box from probes) and app results. Part of the sans-IO engine."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .matching import FieldDiff
from .model import AppResultStep, AppStep, Reference, SegmentPattern, SendStep, StateStep
from .steps import (
    AGENT_TIMEOUT,
    DELIVERY_GRACE,
    STATE_SETTLE,
    Active,
    ActiveApp,
    ActiveExpect,
    ActiveSilence,
    AppRequest,
    Connection,
)
from .timing import Window
from .values import Expr, format_duration

if TYPE_CHECKING:
    from .engine import Dialogue


def request(d: Dialogue, cur: ActiveApp, now: float, conn: Connection) -> AppRequest | str:
    """Build the agent command of `cur`, or say why it cannot be built."""
    args: dict[str, object] = {}
    step = cur.step
    if isinstance(step, AppStep):
        args.update(dict(step.args))
    cmd = cur.cmd
    if cmd == "state":
        if conn.tport is None:
            return f"the target's port of connection {conn.name} is not known yet"
        args = {"local": [d.addr.target_ip, conn.tport], "remote": [d.addr.our_ip, conn.sport]}
    elif cmd == "listen":
        args["port"] = d.addr.target_port
        args["addr"] = "::" if ":" in d.addr.target_ip else "0.0.0.0"
    elif cmd == "accept":
        if d._listener is None:
            return "accept before listen"
        args.update(sock=d._listener, timeout=float(args.get("timeout", 5.0)))  # type: ignore[arg-type]
        cur.timeout = float(args["timeout"]) + AGENT_TIMEOUT  # type: ignore[arg-type]
    elif cmd == "connect":
        args.update(addr=d.addr.our_ip, port=conn.sport)
        cur.timeout = 600.0
    else:
        if conn.sock is None:
            return f"the application has no socket for connection {conn.name} (accept or connect first)"
        args["sock"] = conn.sock
        if cmd == "recv":
            cur.timeout = float(args.get("timeout", 5.0)) + AGENT_TIMEOUT  # type: ignore[arg-type]
    req = AppRequest(d._next_request, conn.name, cmd, args)
    d._next_request += 1
    return req


def run_app(d: Dialogue, cur: ActiveApp, now: float) -> bool:
    step = cur.step
    conn = d.conns[step.conn] if step.conn in d.conns else next(iter(d.conns.values()))
    if isinstance(step, AppResultStep):
        return run_app_result(d, cur, step, now)
    if cur.request is None:
        if cur.earliest is None and cur.cmd == "state":
            ref = d.trace[d._last_event].time if d._last_event >= 0 else now
            cur.earliest = ref + STATE_SETTLE
        if cur.earliest is not None and now < cur.earliest:
            return False
        req = request(d, cur, now, conn)
        if isinstance(req, str):
            d._fail(step, cur.description, "app", f"cannot run: {req}", now, fatal=True)
            return True
        cur.request, cur.sent_at = req.id, now
        d._out.append(req)
        if isinstance(step, AppStep) and step.label:
            d._request_label[req.id] = step.label
        if isinstance(step, AppStep) and not step.wait:
            d._record(step.line, cur.description, "passed", now, timing="not waited for")
            d._current = None
            return True
        return True
    got = d._answers.pop(cur.request, None)
    if got is None:
        assert cur.sent_at is not None
        if now > cur.sent_at + cur.timeout:
            d._fail(
                step,
                cur.description,
                "agent",
                f"the target agent did not answer within {cur.timeout:g} s",
                now,
                fatal=True,
            )
            return True
        return False
    answer, when = got
    if cur.cmd == "state":
        return check_state(d, cur, conn, answer, when, now)
    if not answer.get("ok"):
        d._fail(
            step,
            cur.description,
            "app",
            f"the target's application failed: {cur.cmd} -> {answer.get('error')} ({answer.get('detail', '')})",
            now,
            time=when,
            fatal=True,
        )
        return True
    if cur.cmd == "listen":
        d._listener = int(answer["sock"])  # type: ignore[call-overload]
    elif cur.cmd in ("accept", "connect"):
        conn.sock = int(answer["sock"])  # type: ignore[call-overload]
    d._record(step.line, cur.description, "passed", when)
    d._current = None
    return True


def check_state(
    d: Dialogue, cur: ActiveApp, conn: Connection, answer: dict[str, object], when: float, now: float
) -> bool:
    step = cur.step
    ref = d.trace[d._last_event].time if d._last_event >= 0 else (d._start or now)
    how = (
        f"white box: sock_diag in the target (Linux {answer.get('linux')}), "
        f"read {format_duration(when - ref)} after the previous event"
    )
    if not answer.get("ok"):
        d._fail(
            step,
            cur.description,
            "agent",
            f"the agent could not read the state: {answer.get('detail')}",
            now,
            fatal=True,
        )
        return True
    observed = str(answer.get("state"))
    if observed != cur.state:
        d._fail(
            step,
            cur.description,
            "state",
            f"expected state {cur.state}, observed {observed} ({how})",
            now,
            diffs=(FieldDiff("state", cur.state, observed, False),),
            time=when,
            ref=cur.ref if cur.ref is not None else True,
        )
        d._current = None
        return True
    d._record(step.line, cur.description, "passed", when, (FieldDiff("state", cur.state, observed, True),), how)
    d._current = None
    return True


def run_app_result(d: Dialogue, cur: ActiveApp, step: AppResultStep, now: float) -> bool:
    tol = d.case.tolerance
    ref = d.trace[d._last_event].time if d._last_event >= 0 else (d._start or now)
    window = step.window
    if step.give_up and d._last_give_up is not None:
        window = Window("after", d._last_give_up)
    got = d.app_results.get(step.of)
    if got is None:
        limit = ref + (window.deadline(tol) if window else 600.0) + DELIVERY_GRACE
        cur.earliest = limit  # for next_deadline
        if now > limit:
            d._fail(
                step,
                cur.description,
                "missing",
                f"no answer from the application's {step.of} ({window or 'any time'} of the previous event)",
                now,
            )
            d._current = None
            return True
        return False
    answer, when = got
    diffs: list[FieldDiff] = []
    if step.error is not None:
        observed = str(answer.get("error")) if not answer.get("ok") else "success"
        diffs.append(FieldDiff("result", step.error, observed, observed == step.error))
    if step.ok is not None:
        diffs.append(FieldDiff("ok", str(step.ok), str(bool(answer.get("ok"))), bool(answer.get("ok")) == step.ok))
    if not all(d.ok for d in diffs):
        d._fail(step, cur.description, "app", f"the application's {step.of} ended otherwise", now, tuple(diffs), when)
        d._current = None
        return True
    if window is not None:
        problem = window.check(when - ref, tol)
        if problem is not None:
            d._fail(step, cur.description, "timing", problem, now, tuple(diffs), when)
            d._current = None
            return True
    d._record(
        step.line,
        cur.description,
        "passed",
        when,
        tuple(diffs),
        f"{format_duration(when - ref)} after the previous event",
    )
    d._current = None
    return True


def state_check(d: Dialogue, st: StateStep, state: str, description: str, ref: Reference | None = None) -> list[Active]:
    """Steps that check `state`: an agent query, or probes when there is no agent."""
    if d.white_box:
        return [ActiveApp(st, description, cmd="state", state=state, ref=ref)]
    how = "black box"
    if state == "CLOSED":
        # RFC 9293 §3.10.7.1/.2: with no connection, an ACK-bearing segment gets <SEQ=SEG.ACK><CTL=RST>.
        probe = SendStep(
            line=st.line,
            conn=st.conn,
            ref=st.ref,
            flags="A",
            seq=None,
            ack=None,
            window=65535,
            data=b"",
            options=(),
        )
        want = SegmentPattern(flags="R", seq=Expr("rcv_nxt", 0))
        note = f"{how}: an ACK to a connection that does not exist gets a RST with seq = its ack"
    elif state == "TIME-WAIT":
        # RFC 9293 §3.10.7.4: in TIME-WAIT a retransmitted FIN is acknowledged again.
        probe = SendStep(
            line=st.line,
            conn=st.conn,
            ref=st.ref,
            flags="FA",
            seq=Expr("snd_nxt", -1),
            ack=None,
            window=65535,
            data=b"",
            options=(),
        )
        want = SegmentPattern(flags="A", ack=Expr("snd_nxt", 0))
        note = f"{how}: a retransmission of our FIN is acknowledged again (this restarts Linux's TIME-WAIT timer)"
    elif state == "SYN-RECEIVED":
        rto = d.params.value("rto_initial")
        e = ActiveExpect(
            st,
            SegmentPattern(flags="SA", ack=Expr("isn", 1)),
            Window("within", 2 * rto),
            f"{description} ({how}: the SYN-ACK is retransmitted)",
            note=f"{how}: a half-open connection retransmits its SYN-ACK (RFC 6298 §2.1 initial RTO)",
        )
        return [e]
    else:
        d._record(st.line, f"{description} (not checked: no agent, and no black-box inference for {state})", "skipped")
        return []
    return [probe, ActiveExpect(st, want, Window("within", 1.0), f"{description} ({note})", note=note)]


def expand_state(d: Dialogue, st: StateStep, now: float) -> None:
    expanded: list[Active] = state_check(d, st, st.state, f"state {st.state}")
    if st.lasts is not None:
        length = d.params.value(st.lasts) if isinstance(st.lasts, str) else float(st.lasts)
        tol = d.case.tolerance.of(length)
        what = f"{st.lasts} = {format_duration(length)}" if isinstance(st.lasts, str) else format_duration(length)
        # how long it lasts answers to the document of the value (a profile's, or the target's)
        lref = d.params[st.lasts].reference() if isinstance(st.lasts, str) else None
        if d.white_box:
            expanded += [
                ActiveSilence(st, length - tol, f"{st.state} lasts {what}: nothing from the target meanwhile"),
                *state_check(
                    d,
                    st,
                    st.state,
                    f"state {st.state} still, {format_duration(length - tol)} on "
                    f"({what} less tolerance {format_duration(tol)})",
                    lref,
                ),
            ]
        expanded += [
            ActiveSilence(st, length + tol, f"{st.state} lasts {what}: nothing from the target meanwhile"),
            *state_check(
                d,
                st,
                "CLOSED",
                f"state CLOSED (4-tuple free) {format_duration(length + tol)} on "
                f"({what} plus tolerance {format_duration(tol)})",
                lref,
            ),
        ]
    d._pending.extendleft(reversed(expanded))
