"""The capture barrier, offline: a wire's capture thread on fake sockets (a socketpair stands for the packet
socket, another for the TAP descriptor), slowed down so that frames wait in the socket as they do after a stall.

Checked: :meth:`Wire.catch_up` returns only once every frame queued before it was asked is handed on; under a
flood that never leaves the socket empty it still answers (a frame stamped after the question); a wire whose
capture thread is not running answers None; a TAP wire answers through its parsing thread too.
"""

from __future__ import annotations

import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from conformance.core.segment import Segment
from conformance.wire.barrier import Barrier
from conformance.wire.capture import Captured, Wire
from conformance.wire.codec import encode
from conformance.wire.tap import TapWire

OURS, THEIRS = "198.18.0.1", "198.18.0.2"
OUR_MAC, THEIR_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
PORT = 40000


def frame(seq: int) -> bytes:
    return encode(Segment(THEIRS, OURS, 7000, PORT, seq=seq, flags="A"), THEIR_MAC, OUR_MAC)


class SlowCapture:
    """A packet socket as Scapy's L2ListenSocket shows it: `recv_raw` gives (class, frame, kernel stamp). Each
    datagram is a stamp (8 bytes) then the frame; each read takes `delay` s, so frames queue up."""

    def __init__(self, delay: float) -> None:
        self.ins, self.peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.delay = delay

    def fileno(self) -> int:
        return self.ins.fileno()

    def put(self, data: bytes, stamp: float) -> None:
        self.peer.send(struct.pack("d", stamp) + data)

    def recv_raw(self) -> tuple[None, bytes, float]:
        raw = self.ins.recv(65536)
        time.sleep(self.delay)
        return None, raw[8:], struct.unpack("d", raw[:8])[0]

    def close(self) -> None:
        self.ins.close()
        self.peer.close()


@pytest.fixture
def wire() -> Iterator[tuple[Wire, SlowCapture]]:
    w = Wire("fake0", None, OUR_MAC, THEIR_MAC, OURS)
    cap = SlowCapture(delay=0.005)
    w._cap = cap
    w._thread = threading.Thread(target=w._capture, daemon=True)
    w._thread.start()
    yield w, cap
    w.close()


def test_catch_up_returns_once_every_queued_frame_is_handed_on(wire: tuple[Wire, SlowCapture]) -> None:
    w, cap = wire
    got: queue.Queue[Captured] = w.subscribe([PORT])  # type: ignore[assignment]
    for i in range(40):  # 40 frames x 5 ms: 0.2 s of reading behind
        cap.put(frame(i), time.time())
    at = w.catch_up()
    assert at is not None
    assert got.qsize() == 40, "every frame queued before the question is in the inbox"
    assert [got.get().segment.seq for _ in range(40)] == list(range(40))


def test_catch_up_answers_under_a_flood(wire: tuple[Wire, SlowCapture]) -> None:
    w, cap = wire
    w.subscribe([PORT])
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            cap.put(frame(1), time.time())
            time.sleep(0.001)  # faster than the capture reads: the socket is never empty

    feeder = threading.Thread(target=flood, daemon=True)
    feeder.start()
    try:
        time.sleep(0.05)
        started = time.monotonic()
        assert w.catch_up() is not None
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        feeder.join()


def test_a_wire_that_is_not_capturing_does_not_answer() -> None:
    w = Wire("fake0", None, OUR_MAC, THEIR_MAC, OURS)
    assert w.catch_up(timeout=0.1) is None
    b = Barrier()
    assert b.ask(timeout=0.05) is None and b.waiting()  # nobody answers
    b.answer(1)
    assert not b.waiting()
    b.close()


def test_a_tap_wire_catches_up_through_its_parser() -> None:
    w = TapWire("faketap0", OUR_MAC, OURS, THEIRS)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    w._fd = ours.fileno()
    w._thread = threading.Thread(target=w._capture, daemon=True)
    w._parser = threading.Thread(target=w._parse, daemon=True)
    w._thread.start()
    w._parser.start()
    got: queue.Queue[Captured] = w.subscribe([PORT])  # type: ignore[assignment]
    try:
        for i in range(200):
            theirs.send(frame(i))
        assert w.catch_up() is not None
        assert got.qsize() == 200
    finally:
        w._stop.set()
        w._thread.join()
        w._fd = -1  # the socketpair is closed below, not by the wire
        w._release()
        ours.close()
        theirs.close()


def test_a_flooded_tap_wire_answers_after_a_queue_length_of_frames() -> None:
    """A TAP descriptor has no kernel stamps, so under a flood that never empties it the capture answers once
    it has read as many frames after the question as the device's queue holds: all that was queued then."""
    w = TapWire("faketap0", OUR_MAC, OURS, THEIRS)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    w._fd, w._ring = ours.fileno(), 8
    w._thread = threading.Thread(target=w._capture, daemon=True)
    w._parser = threading.Thread(target=w._parse, daemon=True)
    stop = threading.Event()

    theirs.settimeout(0.05)  # never blocked for good once the reader stops

    def flood() -> None:
        while not stop.is_set():
            try:
                theirs.send(frame(1))
            except TimeoutError:
                continue
            except OSError:
                return

    feeder = threading.Thread(target=flood, daemon=True)
    w.subscribe([PORT])
    try:
        feeder.start()
        time.sleep(0.05)
        w._thread.start()
        w._parser.start()
        started = time.monotonic()
        assert w.catch_up() is not None
        assert time.monotonic() - started < 1.0
    finally:
        stop.set()
        w._stop.set()
        w._thread.join()
        w._fd = -1
        w._release()
        feeder.join()
        theirs.close()
        ours.close()


def test_an_idle_wire_answers_at_once(wire: tuple[Wire, SlowCapture]) -> None:
    """A question that wakes the capture thread from its select() is answered then, not at the next 0.2 s
    timeout (that cost every agent step 200 ms and failed timed cases under the full suite)."""
    w, _ = wire
    time.sleep(0.05)  # the capture thread sits in select()
    for _ in range(5):
        started = time.monotonic()
        assert w.catch_up() is not None
        assert time.monotonic() - started < 0.1
        time.sleep(0.01)
