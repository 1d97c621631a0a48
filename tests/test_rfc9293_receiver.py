"""The model's receiver SWS avoidance (RFC 9293 §3.8.6.2.2, MUST-39) and Linux's window update on a read."""

from __future__ import annotations

import pytest

from conformance.core.rfc9293 import LINUX, RFC
from conformance.core.rfc9293.profile import ModelProfile
from conformance.core.rfc9293.receiver import offered
from conformance.core.rfc9293.tcb import State, Tcb
from conformance.core.rfc9293.window_update import after_read


def test_a_quiescent_connection_offers_its_whole_buffer() -> None:
    """ "When the connection is quiescent, RCV.WND = RCV.BUFF and RCV.USER = 0"."""
    assert offered(2048, 0, 0, 0, 536) == 2048


def test_arriving_data_keeps_the_right_edge() -> None:
    """RCV.NXT advances by 400 while RCV.USER grows by 400: RCV.NXT+RCV.WND stays, RCV.WND falls by 400."""
    assert offered(2048, 400, 2048, 400, 536) == 1648


@pytest.mark.parametrize(
    ("read", "window"),
    [(1, 0), (199, 0), (200, 200), (1024, 1024)],
)
def test_a_closed_window_opens_only_by_the_bound(read: int, window: int) -> None:
    """The buffer full (RCV.USER = RCV.BUFF = 2048, RCV.WND = 0), the user reads `read` octets: the reduction is
    `read`; the edge stays until it reaches min(Fr * RCV.BUFF, Eff.snd.MSS) = min(1024, 200) = 200."""
    assert offered(2048, 2048 - read, 0, 0, 200) == window


def test_a_small_buffer_takes_half_of_it_as_the_bound() -> None:
    """min(Fr * RCV.BUFF, Eff.snd.MSS) with RCV.BUFF 600, Eff.snd.MSS 536: 300."""
    assert offered(600, 301, 0, 0, 536) == 0
    assert offered(600, 300, 0, 0, 536) == 300


def _full(profile: ModelProfile) -> Tcb:
    """A connection whose 2048-octet buffer is full (RCV.WND = 0), the peer's MSS 200."""
    tcb = Tcb(("198.18.0.2", 80), ("198.18.0.1", 4000), State.ESTABLISHED, profile, passive=True)
    tcb.rcv_buf, tcb.send_mss, tcb.received, tcb.rcv_wnd = 2048, 200, b"x" * 2048, 0
    return tcb


@pytest.mark.parametrize(("read", "window"), [(30, None), (2048, 2048)])
def test_linux_updates_the_window_when_a_read_opens_it(read: int, window: int | None) -> None:
    """tcp_cleanup_rbuf: an ACK at once when the new window is not zero and at least twice the old (here 0); a read
    below the SWS bound leaves the window closed, and no ACK."""
    tcb = _full(LINUX)
    tcb.received = tcb.received[read:]
    sent = after_read(tcb)
    assert [s.window for s in sent] == ([] if window is None else [window])


def test_the_rfc_profile_leaves_the_update_to_the_sender_probes() -> None:
    tcb = _full(RFC)
    tcb.received = b""
    assert after_read(tcb) == []
