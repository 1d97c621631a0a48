"""What the trace of a dialogue shows, read without changing it: the evidence the engine's judgements rest on.

Each function answers one question about the segments seen so far (both directions, with their capture
times): whether a repeat is one our late ACK caused, whether the wire saw our own segments, when a connection
was opened, which RST the target would accept, and whether any check of the case's main reference was made.
The :class:`~conformance.core.engine.Dialogue` asks them for its judges; nothing here holds state.
"""

from __future__ import annotations

from collections.abc import Sequence

from .checks import STEP_CHECKS, document
from .model import Case
from .outcomes import Status
from .segment import Segment, seq_add, seq_diff
from .verdict import StepRecord, TraceEntry


def late_repeat(trace: Sequence[TraceEntry], index: int, seg: Segment, floor: float) -> bool:
    """True when `seg` (trace entry `index`) repeats a segment already judged, at least `floor` seconds after
    the previous copy, and none of our segments had acknowledged it on the wire before the repeat was sent: a
    retransmission our late ACK caused.

    Expect steps pass such a repeat over when it is not what they expect, and silence steps always (withhold
    steps never: there retransmissions are the point). The target did right, and the verdict must not depend on
    how fast the prober answers; a repeat sooner than any retransmission timer is judged.
    """
    entry = trace[index]
    end = seq_add(seg.seq, seg.seg_len)
    copies = [
        e
        for e in trace[:index]
        if not e.outgoing
        and e.conn == entry.conn
        and e.segment.seq == seg.seq
        and e.segment.flags == seg.flags
        and e.segment.payload == seg.payload
        and e.segment.checksum_ok is not False
    ]
    if not any(e.ok is not None for e in copies) or seg.seg_len == 0:
        return False
    if seg.time - max(e.time for e in copies) < floor:
        return False  # too soon after the previous copy for a retransmission timer: judged
    return not any(
        e.outgoing
        and e.conn == entry.conn
        and "A" in e.segment.flags
        and not e.provisional
        and seq_diff(e.segment.ack, end) >= 0
        and e.time < seg.time
        for e in trace[:index]
    )


def opened(trace: Sequence[TraceEntry], conn: str) -> float | None:
    """When our first segment of connection `conn` was sent (None: we sent none; the target opened it)."""
    return next((e.time for e in trace if e.outgoing and e.conn == conn), None)


def blind_since(trace: Sequence[TraceEntry]) -> TraceEntry | None:
    """Our latest segment whose capture never came back: the wire did not see it, so it cannot vouch for
    anything it did not see either (None: every segment we sent was captured)."""
    ours = [e for e in trace if e.outgoing and not e.note.startswith("cleanup")]
    return ours[-1] if ours and ours[-1].provisional else None


def accepted_rst_seq(trace: Sequence[TraceEntry], conn: str, default: int) -> int:
    """The seq of a RST the target accepts: its RCV.NXT, i.e. the ack of its latest segment (`default` when it
    sent none with an ACK).

    RFC 9293 §3.10.7.4 with RFC 5961 §3.2: a RST whose seq is in the window but not exactly RCV.NXT gets a
    challenge ACK and the connection stays. Our snd_nxt is not it when the target dropped some of our segments.
    """
    for e in reversed(trace):
        if not e.outgoing and e.conn == conn and "A" in e.segment.flags:
            return e.segment.ack
    return default


def main_reference_unchecked(case: Case, records: Sequence[StepRecord]) -> str:
    """Why the case must be reported as skipped: every check of its main reference (its first ref) was not
    made; "" when one was (a case is never passed on checks it could not make)."""
    if not case.refs:
        return ""
    main = case.refs[0]
    lines = {
        s.line for s in case.steps if any(document(case, s, c) == main for c in STEP_CHECKS.get(type(s), frozenset()))
    }
    mine = [r for r in records if r.line in lines]
    if not mine or any(r.status != Status.SKIPPED for r in mine):
        return ""
    reasons = "; ".join(dict.fromkeys(r.description for r in mine))
    return f"no check of {main.id} ({main.doc}) could be made: {reasons}"
