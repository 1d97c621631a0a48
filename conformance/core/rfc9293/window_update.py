"""A window update when the application's read opens the window (Linux net/ipv4/tcp.c tcp_cleanup_rbuf).

RFC 9293 §3.8.6.2.2: the receiver's SWS avoidance (:mod:`.receiver`) "determines when the right window edge may be
advanced; [...] This algorithm combines with the delayed ACK algorithm (Section 3.8.6.3) to determine when an ACK
segment containing the current window will really be sent": the RFC leaves it there (the sender probes a closed
window, §3.8.6.1), and so does the RFC profile. Linux, after a read, sends an ACK at once "if we can now advertise a
non-zero window which has been raised significantly": when the window offered now is at most half the clamp, and the
new one (__tcp_select_window) is not zero and at least twice it; not once the receive side is shut (a FIN received,
RCV_SHUTDOWN). The model's clamp is RCV.BUFF.
"""

from __future__ import annotations

from ..segment import Segment
from .tcb import State, Tcb

#: The states in which a read can open the window of a peer that still sends.
OPEN = (State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2)


def after_read(tcb: Tcb) -> list[Segment]:
    """The ACK a read of some octets calls for under the profile's ``window_update_on_read`` (none or one)."""
    if not (tcb.profile.window_update_on_read and tcb.state in OPEN):
        return []
    if tcb.fin_received or tcb.rcv_shutdown:
        return []
    buffer = tcb.profile.rcv_wnd if tcb.rcv_buf is None else tcb.rcv_buf
    now = tcb.rcv_wnd
    if 2 * now > buffer:
        return []
    new = tcb.window_left()
    if not new or new < 2 * now:
        return []
    tcb.rcv_wnd = new
    return [tcb.segment("A", tcb.snd_nxt, tcb.rcv_nxt)]
