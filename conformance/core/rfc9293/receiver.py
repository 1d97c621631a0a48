"""The receiver's SWS avoidance (RFC 9293 §3.8.6.2.2, MUST-39): when the right window edge may advance.

"The suggested SWS avoidance algorithm for the receiver is to keep RCV.NXT+RCV.WND fixed until the reduction
satisfies: RCV.BUFF - RCV.USER - RCV.WND >= min( Fr * RCV.BUFF, Eff.snd.MSS ) where Fr is a fraction whose
recommended value is 1/2 [...]. When the inequality is satisfied, RCV.WND is set to RCV.BUFF-RCV.USER." The
receiver "must use its own Eff.snd.MSS" (the model's send MSS, :mod:`.tcb`).

Linux (net/ipv4/tcp_output.c __tcp_select_window) holds the window at zero while the free space is below half the
buffer and below its estimate of the peer's MSS (icsk_ack.rcv_mss), and rounds the window down to that MSS: the
same rule in its own buffer accounting, whose octets the model does not count (tcp_win_from_space); the model keeps
the RFC's rule under both profiles.
"""

from __future__ import annotations

FR = 2  # Fr = 1/2: the bound is RCV.BUFF // FR


def offered(buffer: int, unread: int, rcv_wnd: int, advancing: int, eff_snd_mss: int) -> int:
    """RCV.WND for RCV.BUFF `buffer` and RCV.USER `unread`, given the current RCV.WND `rcv_wnd` while RCV.NXT
    advances by `advancing` octets (the right edge fixed: RCV.WND falls by as much)."""
    free = max(buffer - unread, 0)  # RCV.BUFF - RCV.USER
    fixed = min(max(rcv_wnd - advancing, 0), free)  # the edge kept where it is (never beyond the buffer)
    if free - fixed >= min(buffer // FR, eff_snd_mss):  # the reduction
        return free
    return fixed
