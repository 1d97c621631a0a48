"""Retransmission schedules derived from the target's parameters.

A schedule is the list of expected gaps between successive retransmissions and
the time after the last one at which the sender gives up. Each schedule says how
it was derived, for the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import AppResultStep, Case, ExpectStep, SilenceStep, StateStep, WithholdStep
from .params import Params
from .values import format_duration


@dataclass(frozen=True)
class Schedule:
    name: str
    intervals: tuple[float, ...]
    give_up: float  # seconds after the last retransmission until the sender gives up
    derivation: str
    params_used: tuple[str, ...]
    #: The parameter the first gap is checked against, and the one that sets the count.
    initial_param: str | None = None
    count_param: str | None = None
    #: The parameter holding the least time the sender must keep retransmitting (0: none is documented).
    persistence_param: str | None = None


#: The largest initial RTO a shipped profile documents (lwIP's and Windows' 3 s): a withhold waits for a first
#: retransmission at least this long (plus the target's timer granularity and the tolerance) before calling it
#: missing, whatever the run's profile expects; a later one is judged late, at the level of the value it missed.
PLAUSIBLE_INITIAL_RTO = 3.0


def synack(params: Params, rtt: float | None = None) -> Schedule:
    """SYN-ACK retransmissions: initial RTO doubled after each expiry (RFC 6298 §5.5).

    The request is dropped when the timer expires once more after the last retry.
    """
    rto = params.value("rto_initial")
    retries = int(params.value("tcp_synack_retries"))
    intervals = tuple(rto * 2**i for i in range(retries))
    return Schedule(
        name="synack",
        intervals=intervals,
        give_up=rto * 2**retries,
        derivation=(
            f"initial RTO {rto:g} s (RFC 6298 §2.1) doubled on each expiry (RFC 6298 §5.5), "
            f"{retries} retransmissions (tcp_synack_retries)"
        ),
        params_used=("rto_initial", "tcp_synack_retries"),
        initial_param="rto_initial",
        count_param="tcp_synack_retries",
        persistence_param="persistence_synack",
    )


def data(params: Params, rtt: float | None = None) -> Schedule:
    """Data retransmissions after a handshake whose RTT sample is `rtt`.

    RFC 6298 §2.2: after the first sample R, RTO = SRTT + max(G, 4*RTTVAR) with
    SRTT = R and RTTVAR = R/2, i.e. R + max(G, 2R). Linux bounds the variance term
    below by rto_min (200 ms), which stands in for G here. Doubling per §5.5.
    The count is open (tcp_retries2); cases check the first few with `count`.
    """
    r = rtt if rtt is not None else 0.0
    rto_min = params.value("rto_min")
    first = r + max(rto_min, 2 * r)
    intervals = tuple(first * 2**i for i in range(8))
    return Schedule(
        name="data",
        intervals=intervals,
        give_up=intervals[-1] * 2,
        derivation=(
            f"first RTO = R + max(rto_min, 2R) = {first * 1000:.1f} ms with handshake RTT "
            f"R = {r * 1000:.2f} ms and rto_min {rto_min * 1000:g} ms (RFC 6298 §2.2; Linux TCP_RTO_MIN), "
            "doubled on each expiry (RFC 6298 §5.5)"
        ),
        params_used=("rto_min",),
        initial_param="rto_min",
    )


def persist(params: Params, rtt: float | None = None) -> Schedule:
    """Zero-window probes, counted from the first probe (RFC 9293 §3.8.6.1).

    The first probe SHOULD come when the window has been zero for one RTO
    (SHLD-29), and the interval between successive probes SHOULD grow
    exponentially (SHLD-30): doubled, as the RTO is (RFC 6298 §5.5). From the
    first probe on, the gaps are therefore 2 RTO, 4 RTO, ..., with the RTO of
    the `data` schedule. The count is open (Linux: tcp_retries2 unanswered probes).
    """
    first = data(params, rtt).intervals[0]
    intervals = tuple(first * 2 ** (i + 1) for i in range(8))
    return Schedule(
        name="persist",
        intervals=intervals,
        give_up=intervals[-1] * 2,
        derivation=(
            f"RTO = R + max(rto_min, 2R) = {first * 1000:.1f} ms (RFC 6298 §2.2, as the data schedule); the first "
            "probe one RTO into the zero window (RFC 9293 SHLD-29), each later interval doubled (SHLD-30, "
            "RFC 6298 §5.5): gaps from the first probe 2 RTO, 4 RTO, ..."
        ),
        params_used=("rto_min",),
        initial_param="rto_min",
    )


def syn(params: Params, rtt: float | None = None) -> Schedule:
    """SYN retransmissions of an active open (Linux >= 6.5).

    ip-sysctl.rst, tcp_syn_linear_timeouts: "With an initial RTO of 1 and
    tcp_syn_linear_timeouts = 4 we would expect SYN RTOs to be: 1, 1, 1, 1, 1,
    2, 4, ...". The connection gives up at the first expiry at which the time
    since the first SYN reaches the budget of tcp_syn_retries exponential
    backoffs, rto_initial * (2^(retries+1) - 1) (seen here: 7 s for 2 retries).
    """
    rto = params.value("rto_initial")
    retries = int(params.value("tcp_syn_retries"))
    linear = int(params.value("tcp_syn_linear_timeouts"))
    budget = rto * (2 ** (retries + 1) - 1)
    gaps: list[float] = []
    elapsed, i = 0.0, 0
    while True:
        gap = rto if i <= linear else rto * 2 ** (i - linear)
        if elapsed + gap >= budget - 1e-9:
            break
        gaps.append(gap)
        elapsed += gap
        i += 1
    return Schedule(
        name="syn",
        intervals=tuple(gaps),
        give_up=gap,
        derivation=(
            f"initial RTO {rto:g} s (RFC 6298 §2.1), {linear + 1} timeouts of that length then doubling "
            f"(tcp_syn_linear_timeouts={linear}), giving up once {budget:g} s have passed "
            f"(tcp_syn_retries={retries}: rto_initial x (2^(retries+1) - 1))"
        ),
        params_used=("rto_initial", "tcp_syn_retries", "tcp_syn_linear_timeouts"),
        initial_param="rto_initial",
        count_param="tcp_syn_retries",
        persistence_param="persistence_syn",
    )


SCHEDULES: dict[str, Callable[[Params, float | None], Schedule]] = {
    "synack": synack,
    "data": data,
    "syn": syn,
    "persist": persist,
}

#: Names an expected time (``within: NAME``, ``after: NAME``) may give instead of a duration, beside every
#: documented time (core.params, unit s): what each stands for.
NAMED_TIMES = {
    "rto": "one data RTO: from the smallest to the largest RTO the target could hold after the RTT samples on the "
    "wire up to the event the window counts from (RFC 6298 §2.2-2.3 with rto_min for G, as the `data` schedule; "
    "conformance.core.rto)",
}


def timed_names(documented: dict[str, str]) -> list[str]:
    """Every name an expected time may give: :data:`NAMED_TIMES` and the documented times (name -> unit)."""
    return sorted({*NAMED_TIMES, *(name for name, unit in documented.items() if unit == "s")})


def named_time(name: str, params: Params, rtt: float | None) -> tuple[float, str]:
    """The seconds `name` stands for in this run (see :data:`NAMED_TIMES`), and how they were derived.

    For ``rto`` this is the value after the handshake sample `rtt` alone (the `data` schedule's first interval),
    used where no dialogue is at hand (:func:`expected_duration`); a dialogue's ``after: rto`` takes every RTT
    sample on its wire instead (:func:`conformance.core.rto.rto_bounds`, resolved by the expect judge).
    """
    if name == "rto":
        r = rtt if rtt is not None else 0.0
        rto_min = params["rto_min"]
        first = data(params, rtt).intervals[0]
        return first, (
            f"rto = R + max(rto_min, 2R) = {first * 1000:.1f} ms (RFC 6298 §2.2) with handshake RTT "
            f"R = {r * 1000:.2f} ms and rto_min {format_duration(rto_min.value)} from {rto_min.origin} "
            f"({rto_min.source})"
        )
    param = params[name]
    return param.value, f"{name} {format_duration(param.value)} from {param.origin} ({param.source})"


def expected_duration(case: Case, params: Params) -> float:
    """How long a conforming dialogue of `case` takes: its timers, not its round trips.

    The sum of every ``after`` gap, ``silence``, and ``withhold`` schedule (the
    checked retransmissions, then the give-up silence with its tolerance). The
    ``data`` schedule is taken with a zero RTT. For progress displays and the
    benchmark's "longest timer".
    """
    total = 0.0
    give_up = 0.0
    for step in case.steps:
        if isinstance(step, ExpectStep) and step.window_.kind == "after":
            window = step.window_
            total += named_time(window.value, params, None)[0] if window.value else window.seconds
        elif isinstance(step, StateStep) and step.lasts is not None:
            length = params.value(step.lasts) if isinstance(step.lasts, str) else float(step.lasts)
            total += length + case.tolerance.of(length)
        elif isinstance(step, AppResultStep) and step.give_up:
            total += give_up
        elif isinstance(step, SilenceStep):
            total += step.seconds
        elif isinstance(step, WithholdStep):
            schedule = SCHEDULES[step.schedule](params, None)
            intervals = schedule.intervals[: step.count] if step.count else schedule.intervals
            total += sum(intervals)
            give_up = schedule.give_up
            if step.then_silence:
                total += schedule.give_up + case.tolerance.of(schedule.give_up)
    return total
