"""The target's retransmission timeout as the wire shows it: RTT samples from the trace, RTO bounds from them.

The target measures an RTT from each of its segments to the ACK that first acknowledges it (RFC 6298 §3), so the
samples it could have taken are visible on the wire: its SYN-ACK (or SYN) to our ACK of it, and its data (or FIN)
to our first ACK covering it. Both ends are wire times, so a sample includes our prober's reaction time: a loaded
prober that acknowledges late makes the target's RTO grow, and an expected RTO must grow with it.

One sample per ACK, from the oldest segment it newly acknowledges (Linux ``tcp_clean_rtx_queue``: ``first_ackt``
of the oldest acknowledged skb), and none from an ACK that covers retransmitted data (Karn's algorithm, RFC 6298
§3; Linux ``FLAG_RETRANS_DATA_ACKED``).

Stacks differ in which samples they take (handshake or not, one timed segment per RTT or every ACK) and in how
they smooth them, so :func:`rto_bounds` gives a range, from the smallest to the largest of these RTOs:

* the RFC 6298 §2.2 value after the first sample alone (the handshake's, where it was taken);
* the RFC 6298 §2.2-2.3 value over every sample in order (SRTT and RTTVAR smoothed);
* the §2.2 value after the smallest, and after the largest, sample alone (a stack that timed only that segment).

As in the ``data`` schedule (:func:`conformance.core.schedules.data`), the run's ``rto_min`` stands in for the
clock granularity G (Linux bounds the variance term below by TCP_RTO_MIN), and the target's timer granularity goes
into the tolerance, not into the RTO. With no sample at all, the RTO is the initial one (RFC 6298 §2.1) up to the
3 s of §5.7 (:func:`no_sample_bounds`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .segment import Segment, seq_diff
from .values import format_duration
from .verdict import TraceEntry


@dataclass(frozen=True)
class RttSample:
    """One RTT the target could have measured: its segment `what` at `sent`, our ACK of it at `acked`."""

    what: str
    sent: float
    acked: float

    @property
    def seconds(self) -> float:
        return self.acked - self.sent

    def __str__(self) -> str:
        return f"{self.what} to our ACK {format_duration(self.seconds)}"


@dataclass
class _Pending:
    """A segment of the target's not yet acknowledged."""

    what: str
    seq: int
    end: int
    time: float
    retransmitted: bool = False


def _timed(entry: TraceEntry, conn: str) -> bool:
    seg = entry.segment
    return entry.conn == conn and "icmp" not in seg.extra and seg.checksum_ok is not False


def _describe(seg: Segment, base: int | None) -> str:
    if "S" in seg.flags:
        return "its SYN-ACK" if "A" in seg.flags else "its SYN"
    offset = f" at +{seq_diff(seg.seq, base)}" if base is not None else ""
    return f"its {len(seg.payload)} octets{offset}" + (" with FIN" if "F" in seg.flags else "")


def rtt_samples(entries: Sequence[TraceEntry], conn: str) -> list[RttSample]:
    """The RTT samples the target could have taken on connection `conn` from `entries` (the trace so far)."""
    pending: list[_Pending] = []
    samples: list[RttSample] = []
    base: int | None = None  # the target's ISN, for readable offsets
    high: int | None = None  # the end of the target's highest segment so far
    for entry in entries:
        if not _timed(entry, conn):
            continue
        seg = entry.segment
        if not entry.outgoing:
            if seg.seg_len == 0:
                continue
            base = seg.seq if "S" in seg.flags else base
            end = (seg.seq + seg.seg_len) % 2**32
            if high is not None and seq_diff(seg.seq, high) < 0:  # a retransmission: Karn's algorithm
                for p in pending:
                    if seq_diff(p.end, seg.seq) > 0 and seq_diff(end, p.seq) > 0:
                        p.retransmitted = True
            else:
                pending.append(_Pending(_describe(seg, base), seg.seq, end, entry.time))
            high = end if high is None or seq_diff(end, high) > 0 else high
        elif "A" in seg.flags and pending:
            covered = [p for p in pending if seq_diff(seg.ack, p.end) >= 0]
            pending = [p for p in pending if p not in covered]
            if covered and not any(p.retransmitted for p in covered):
                samples.append(RttSample(covered[0].what, covered[0].time, entry.time))
    return samples


def first_sample_rto(r: float, rto_min: float) -> float:
    """RFC 6298 §2.2 after one sample R: SRTT = R, RTTVAR = R/2, RTO = R + max(G, 2R), rto_min for G."""
    return r + max(rto_min, 2 * r)


def smoothed_rto(samples: Sequence[float], rto_min: float) -> float:
    """RFC 6298 §2.2-2.3 over `samples` in order: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, then
    SRTT <- 7/8 SRTT + 1/8 R'; RTO = SRTT + max(G, 4 RTTVAR), rto_min for G."""
    srtt, rttvar = samples[0], samples[0] / 2
    for r in samples[1:]:
        rttvar = 0.75 * rttvar + 0.25 * abs(srtt - r)
        srtt = 0.875 * srtt + 0.125 * r
    return srtt + max(rto_min, 4 * rttvar)


@dataclass(frozen=True)
class RtoBounds:
    """The smallest and largest RTO the target could have, and how each was derived."""

    low: float
    high: float
    how: str


#: RFC 6298 §5.7: a SYN or SYN-ACK retransmitted, so no RTT sample from the handshake, and an initial RTO under
#: 3 s: the RTO MUST be re-initialized to 3 s when data transmission begins. Linux tcp_init_metrics does so
#: whenever srtt_us == 0 after the handshake (TCP_TIMEOUT_FALLBACK = 3 s, include/net/tcp.h).
FALLBACK_RTO = 3.0


def no_sample_bounds(rto_initial: float, rto_initial_from: str) -> RtoBounds:
    """No RTT sample on the wire: the initial RTO (RFC 6298 §2.1, 1 s; the run's `rto_initial`) up to the 3 s of
    RFC 6298 §5.7 (a stack whose handshake gave no sample, e.g. Linux's TCP_TIMEOUT_FALLBACK)."""
    high = max(rto_initial, FALLBACK_RTO)
    initial = f"rto_initial {format_duration(rto_initial)} ({rto_initial_from})"
    fallback = (
        f"{format_duration(FALLBACK_RTO)} (RFC 6298 §5.7: after a handshake that gave no sample; Linux "
        "tcp_init_metrics TCP_TIMEOUT_FALLBACK)"
    )
    span = f"rto = {initial}" if high - rto_initial < 1e-6 else f"rto from {initial} to {fallback}"
    return RtoBounds(rto_initial, high, f"{span}: no RTT sample on the wire (RFC 6298 §2.1: the initial RTO until one)")


def rto_bounds(
    samples: Sequence[RttSample],
    rto_min: float,
    rto_min_from: str,
    rto_initial: float = 1.0,
    rto_initial_from: str = "RFC 6298 §2.1",
) -> RtoBounds:
    """The range of RTOs a conforming target could have after `samples` (see the module docstring); with no
    sample, :func:`no_sample_bounds`."""
    if not samples:
        return no_sample_bounds(rto_initial, rto_initial_from)
    values = [s.seconds for s in samples]
    smallest, largest = min(samples, key=lambda s: s.seconds), max(samples, key=lambda s: s.seconds)
    candidates = {
        f"R + max(rto_min, 2R) with the first sample R = {format_duration(values[0])} (RFC 6298 §2.2)": (
            first_sample_rto(values[0], rto_min)
        ),
        f"SRTT + max(rto_min, 4 RTTVAR) over all {len(values)} samples in order (RFC 6298 §2.2-2.3)": (
            smoothed_rto(values, rto_min)
        ),
        f"R + max(rto_min, 2R) with the smallest sample R = {format_duration(smallest.seconds)} ({smallest.what})": (
            first_sample_rto(smallest.seconds, rto_min)
        ),
        f"R + max(rto_min, 2R) with the largest sample R = {format_duration(largest.seconds)} ({largest.what})": (
            first_sample_rto(largest.seconds, rto_min)
        ),
    }
    low_how, low = min(candidates.items(), key=lambda kv: kv[1])
    high_how, high = max(candidates.items(), key=lambda kv: kv[1])
    span = (
        f"rto = {format_duration(low)} ({low_how})"
        if high - low < 1e-6
        else f"rto from {format_duration(low)} ({low_how}) to {format_duration(high)} ({high_how})"
    )
    how = (
        f"{span}; RTT samples the target could take: {'; '.join(map(str, samples))}; "
        f"rto_min {format_duration(rto_min)} ({rto_min_from})"
    )
    return RtoBounds(low, high, how)
