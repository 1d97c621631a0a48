"""Delayed ACKs: when the ACK of in-order text is sent (RFC 9293 §3.8.6.3; RFC 1122 §4.2.3.2).

"A TCP endpoint SHOULD implement a delayed ACK" (SHLD-18), "an ACK SHOULD be generated for at least every second
full-sized segment or 2*RMSS bytes of new data" (SHLD-19), and "the delay MUST be less than 0.5 seconds" (MUST-40).
The profile's ``ack_delay`` is the delay; None acknowledges every segment at once (a policy the bounds allow, and
the one every other policy's replies are compatible with, which is why the RFC profile takes it).

The rest follows Linux (net/ipv4/tcp_input.c), which the LINUX profile models:

- **quick-ack mode** (``tcp_event_data_recv``): the first text of a connection, and text after a silence longer
  than the RTO, give ``quickacks`` ACKs at once (TCP_MAX_QUICKACKS 16; observations E5);
- **more than one full frame** (``__tcp_ack_snd_check``): an ACK at once when the octets not yet acknowledged
  exceed the receiver's MSS estimate, which starts at 536 (``tcp_initialize_rcv_mss``: TCP_MSS_DEFAULT) and grows
  to the largest segment seen, up to the MSS offered (``tcp_measure_rcv_mss``);
- otherwise the delayed-ACK timer, ``ack_delay`` (TCP_ATO_MIN 40 ms);
- every segment sent that carries the ACK cancels the timer (``tcp_event_ack_sent``).

Out-of-order text and a FIN are acknowledged at once, by :mod:`.arrive` (RFC 5681 §4.2, MUST-58).
"""

from __future__ import annotations

from .tcb import Tcb


def take(tcb: Tcb, octets: int, now: float) -> bool:
    """In-order text of `octets` was taken: True when its ACK goes now, False when the timer holds it."""
    p = tcb.profile
    if p.ack_delay is None:
        return True
    if tcb.last_text is None or now - tcb.last_text > tcb.timer.rto:
        tcb.quick = p.quickacks
    tcb.last_text = now
    tcb.rcv_mss = max(tcb.rcv_mss, min(octets, p.mss))
    tcb.unacked_octets += octets
    if tcb.quick > 0:
        tcb.quick -= 1
        return True
    if tcb.unacked_octets > tcb.rcv_mss:
        return True
    if tcb.delack_deadline is None:
        tcb.delack_deadline = now + p.ack_delay
    return False


def acked(tcb: Tcb) -> None:
    """A segment carrying RCV.NXT was sent: nothing is left to acknowledge."""
    tcb.unacked_octets = 0
    tcb.delack_deadline = None


def due(tcb: Tcb, now: float) -> bool:
    """Has the delayed-ACK timer expired?"""
    return tcb.delack_deadline is not None and now >= tcb.delack_deadline
