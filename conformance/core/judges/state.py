"""The judge of ``state``: the target's TCP state of a connection, and how long it lasts.

White box, the agent reads the state in the target (``sock_diag``). Black box, a state is inferred from a probe
and the reply that proves it: the table :data:`BLACK_BOX` (state -> probe, reply, what the reply means). A
state the table does not have is reported as not checked.

With ``lasts: X``, the state must still hold just before X (less the tolerance; white box only) and the 4-tuple
be free (CLOSED) just after it (plus the tolerance), with silence from the target meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Reference, SegmentPattern, SendStep, StateStep
from ..outcomes import Status
from ..params import Params
from ..timing import Window
from ..values import Expr, format_duration
from .app import AgentCommand
from .base import ActiveStep, Context, Sequence
from .segments import Expect, Send, Silence


@dataclass(frozen=True)
class Probe:
    """How a state is inferred black box: what we send (None: nothing, we wait), the reply that proves the
    state, how long the reply may take, and what it means (with the document that says so)."""

    send_flags: str | None
    send_seq: Expr | None
    reply: SegmentPattern
    #: Seconds, or a function of the target's parameters.
    within: float | str
    means: str
    #: How the expect step is described (None: "(<means>)").
    shown: str | None = None

    def window(self, params: Params) -> Window:
        if isinstance(self.within, str):
            factor, _, name = self.within.partition(" x ")
            return Window("within", float(factor) * params.value(name))
        return Window("within", self.within)


#: State -> how to infer it without an agent.
BLACK_BOX: dict[str, Probe] = {
    # RFC 9293 §3.10.7.1/.2: with no connection, an ACK-bearing segment gets <SEQ=SEG.ACK><CTL=RST>.
    "CLOSED": Probe(
        send_flags="A",
        send_seq=None,
        reply=SegmentPattern(flags="R", seq=Expr("rcv_nxt", 0)),
        within=1.0,
        means="black box: an ACK to a connection that does not exist gets a RST with seq = its ack",
    ),
    # RFC 9293 §3.10.7.4: in TIME-WAIT a retransmitted FIN is acknowledged again.
    "TIME-WAIT": Probe(
        send_flags="FA",
        send_seq=Expr("snd_nxt", -1),
        reply=SegmentPattern(flags="A", ack=Expr("snd_nxt", 0)),
        within=1.0,
        means="black box: a retransmission of our FIN is acknowledged again (this restarts Linux's TIME-WAIT timer)",
    ),
    # RFC 6298 §2.1: a half-open connection retransmits its SYN-ACK after the initial RTO.
    "SYN-RECEIVED": Probe(
        send_flags=None,
        send_seq=None,
        reply=SegmentPattern(flags="SA", ack=Expr("isn", 1)),
        within="2 x rto_initial",
        means="black box: a half-open connection retransmits its SYN-ACK (RFC 6298 §2.1 initial RTO)",
        shown="black box: the SYN-ACK is retransmitted",
    ),
}


def state_check(
    ctx: Context, st: StateStep, state: str, description: str, ref: Reference | None = None
) -> list[ActiveStep]:
    """The judges that check `state`: an agent query, or a probe from :data:`BLACK_BOX` when there is no agent."""
    if ctx.white_box:
        return [AgentCommand(st, description, cmd="state", state=state, ref=ref)]
    probe = BLACK_BOX.get(state)
    if probe is None:
        ctx.record(
            st.line, f"{description} (not checked: no agent, and no black-box inference for {state})", Status.SKIPPED
        )
        return []
    shown = f"{description} ({probe.shown or probe.means})"
    expect = Expect(st, probe.reply, probe.window(ctx.params), shown, note=probe.means)
    if probe.send_flags is None:
        return [expect]
    send = SendStep(
        line=st.line,
        conn=st.conn,
        ref=st.ref,
        flags=probe.send_flags,
        seq=probe.send_seq,
        ack=None,
        window=65535,
        data=b"",
        options=(),
    )
    return [Send(send), expect]


def state_judge(ctx: Context, st: StateStep) -> ActiveStep:
    """The judges of a ``state`` step, run one after the other."""
    children = state_check(ctx, st, st.state, f"state {st.state}")
    if st.lasts is not None:
        children += _lasts(ctx, st)
    return Sequence(st, children)


def _lasts(ctx: Context, st: StateStep) -> list[ActiveStep]:
    assert st.lasts is not None
    length = ctx.params.value(st.lasts) if isinstance(st.lasts, str) else float(st.lasts)
    tol = ctx.case.tolerance.of(length)
    what = f"{st.lasts} = {format_duration(length)}" if isinstance(st.lasts, str) else format_duration(length)
    # how long it lasts answers to the document of the value (a profile's, or the target's)
    lref = ctx.params[st.lasts].reference() if isinstance(st.lasts, str) else None
    quiet = f"{st.state} lasts {what}: nothing from the target meanwhile"
    still = f"state {st.state} still, {format_duration(length - tol)} on ({what} less tolerance {format_duration(tol)})"
    # Both bounds, white box and black box. Times count from the previous event: white box the agent's reads are
    # not events, so both silences count from entering the state; black box the probe is one (our FIN again,
    # ACKed again: it restarts TIME-WAIT's timer, RFC 9293 §3.10.7.4), so the 4-tuple must be free a whole
    # `lasts` plus tolerance after the probe.
    out: list[ActiveStep] = [Silence(st, length - tol, quiet), *state_check(ctx, st, st.state, still, lref)]
    probed = not ctx.white_box and st.state in BLACK_BOX and BLACK_BOX[st.state].send_flags is not None
    since = (
        "after the probe, which restarts the timer" if probed else f"on ({what} plus tolerance {format_duration(tol)})"
    )
    gone = f"state CLOSED (4-tuple free) {format_duration(length + tol)} {since}"
    out += [Silence(st, length + tol, quiet), *state_check(ctx, st, "CLOSED", gone, lref)]
    return out
