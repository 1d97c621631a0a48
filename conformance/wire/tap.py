"""The wire on a TAP descriptor: the :class:`~conformance.wire.capture.Wire` interface on ``/dev/net/tun``,
with an ARP and Neighbor Discovery responder for the prober.

May import: :mod:`conformance.core` and this package.
"""

from __future__ import annotations

import errno
import fcntl
import os
import queue
import select
import struct
import sys
import threading
import time
from pathlib import Path

from ..core.errors import HarnessError
from ..core.segment import Segment
from . import arp
from .capture import Wire
from .codec import encode
from .neighbours import NeighbourResponder

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
READ_SIZE = 65536
#: The interpreter's thread switch interval while a TAP wire is open (default 5 ms): a frame is stamped
#: when the capture thread gets the GIL, so a shorter interval bounds that wait more tightly.
SWITCH_INTERVAL = 0.0005
#: How often the capture thread reads the device's drop counter (and whenever the player waits on it).
DROPS_EVERY = 0.05


def queue_length(ifname: str) -> int:
    """How many frames the device holds for its descriptor (its ``tx_queue_len``, the size of tun's ring)."""
    try:
        return max(1, int(Path(f"/sys/class/net/{ifname}/tx_queue_len").read_text().strip()))
    except (OSError, ValueError):
        return 1000  # more than tun's default (500): the barrier waits a little longer, never too little


def tx_dropped(ifname: str) -> int | None:
    """The frames `ifname` dropped on their way to its descriptor (its queue was full, or nobody read it):
    the TAP device's ``tx_dropped`` counter; None when it cannot be read."""
    try:
        return int(Path(f"/sys/class/net/{ifname}/statistics/tx_dropped").read_text().strip())
    except (OSError, ValueError):
        return None


def tap_flags(ifname: str) -> int | None:
    """The TUN/TAP flags of `ifname` in this namespace; None when it is not a TUN/TAP device (or missing)."""
    try:
        return int(Path(f"/sys/class/net/{ifname}/tun_flags").read_text().strip(), 16)
    except (OSError, ValueError):
        return None


class TapWire(NeighbourResponder, Wire):
    """The :class:`~conformance.wire.capture.Wire` interface on a TAP descriptor, with an ARP and ND responder.

    Frames are read by the capture thread (``select`` on the descriptor); ARP
    requests and Neighbor Solicitations for our addresses are answered there,
    ARP replies and Neighbor Advertisements wake :meth:`resolve`, TCP segments
    go to the subscribed dialogues like on a :class:`Wire`. Our own frames are
    handed to their dialogue as the capture of a packet socket would, stamped
    just before the write.
    """

    loss_cause = "the TAP device dropped them on their way to the tool, its queue full: its tx_dropped counter"

    def __init__(
        self,
        ifname: str,
        our_mac: str,
        our_ip: str | None,
        peer_ip: str | None,
        our_ip6: str | None = None,
        peer_ip6: str | None = None,
    ) -> None:
        super().__init__(ifname, None, our_mac, arp.BROADCAST, our_ip, peer_ip, our_ip6, peer_ip6)
        self._fd = -1
        self._switch: float | None = None
        self._parser: threading.Thread | None = None
        #: Frames for the parsing thread; an int answers that question of the barrier once the parser gets to it.
        self._frames: queue.SimpleQueue[tuple[bytes, float] | int | None] = queue.SimpleQueue()
        self._drops_base: int | None = None  # the device's tx_dropped when we attached
        self._drops_next = 0.0
        self._ring = 1000  # the device's queue length, read when it is attached
        self._write_lock = threading.Lock()
        self._init_neighbours()

    def open(self) -> None:
        flags = tap_flags(self.iface)
        if flags is None:
            raise HarnessError(
                f"there is no TAP device {self.iface!r} in this network namespace",
                f"create it (ip tuntap add dev {self.iface} mode tap), give the stack under test its side, and "
                "run the tool in the namespace that holds it; the tool does not create the device",
            )
        if not flags & IFF_TAP:
            raise HarnessError(f"{self.iface} is a TUN (layer 3) device, not a TAP device", "use mode tap")
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH22x", self.iface.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(fd, TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            if exc.errno == errno.EBUSY:
                raise HarnessError(
                    f"TAP device {self.iface} is attached to another process already",
                    "a stack that holds the device itself (a user-space stack opens it) is reached on the "
                    f"interface side: use --target link:{self.iface}:ADDR[:PORT] (a packet socket on "
                    f"{self.iface}); otherwise detach the other process",
                ) from None
            if exc.errno == errno.EPERM:
                raise HarnessError(
                    f"cannot attach to TAP device {self.iface}: {exc.strerror}",
                    "run as root (CAP_NET_ADMIN), or make the device yours (ip tuntap add ... user NAME)",
                ) from None
            raise HarnessError(f"cannot attach to TAP device {self.iface}: {exc.strerror}") from None
        self._fd = fd
        self._drops_base = tx_dropped(self.iface)
        self._ring = queue_length(self.iface)
        self._switch = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch, SWITCH_INTERVAL))
        self._thread = threading.Thread(target=self._capture, name=f"capture-{self.iface}", daemon=True)
        self._thread.start()
        self._parser = threading.Thread(target=self._parse, name=f"parse-{self.iface}", daemon=True)
        self._parser.start()

    def _release(self) -> None:
        """Stop the parsing thread, give the interpreter its switch interval back, close the descriptor."""
        if self._parser is not None:
            self._frames.put(None)
            self._parser.join(timeout=2)
            self._parser = None
        if self._switch is not None:
            sys.setswitchinterval(self._switch)
            self._switch = None
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass
        self._barrier.close()

    def _write(self, frame: bytes) -> None:
        with self._write_lock:
            os.write(self._fd, frame)

    def send(self, seg: Segment) -> None:
        frame = encode(seg, self.our_mac, self.mac_for(seg))
        stamp = time.time()
        self._write(frame)
        # Our own copy, as a packet socket's capture would give it (the engine takes its send time from
        # it): the segment itself, not a parse of the frame, to hold the GIL as briefly as possible while
        # the capture thread waits to stamp the answer.
        self._route(seg.at(stamp), frame)

    def _where(self) -> str:
        return f"TAP device {self.iface}"

    def _capture(self) -> None:
        told = 0  # the latest question of the barrier handed to the parser
        counting, reads = 0, 0  # the question being counted for, and the frames read since it was asked
        while not self._stop.is_set():
            self._count_drops()
            # Before the descriptor is looked at (see wire.barrier). A frame is stamped when it is read, so its
            # stamp says nothing of what is queued behind it: an empty descriptor answers, or as many frames
            # read after the question as the device's queue holds (all that was queued when it was asked).
            asked, _ = self._barrier.pending()
            wait = 0.0 if asked > told else 0.2  # a question waits: look at once (its pipe byte may be gone)
            try:
                ready, _, _ = select.select([self._fd, self._barrier.fileno()], [], [], wait)
                if self._barrier.fileno() in ready:
                    self._barrier.clear()
                if self._fd not in ready:
                    if asked > told:  # nothing queued after the question: answered once the parser is here
                        self._frames.put(told := asked)
                    continue
                data = os.read(self._fd, READ_SIZE)
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # e.g. EBADFD while the interface is down: do not spin
                continue
            stamp = time.time()
            if not self._neighbour(data):
                self._frames.put((data, stamp))  # parsed on another thread: the next read is not held up
            counting, reads = asked, (reads + 1 if counting == asked else 1)
            if asked > told and reads >= self._ring:
                self._frames.put(told := asked)

    def _count_drops(self) -> None:
        """The device's drops since we attached (its ``tx_dropped``), read every :data:`DROPS_EVERY` seconds
        and whenever the player waits for the barrier."""
        now = time.monotonic()
        if now < self._drops_next and not self._barrier.waiting():
            return
        self._drops_next = now + DROPS_EVERY
        count = tx_dropped(self.iface)
        if count is not None and self._drops_base is not None:
            self.drops = max(0, count - self._drops_base)

    def _parse(self) -> None:
        while (item := self._frames.get()) is not None:
            if isinstance(item, int):
                self._barrier.answer(item)
            else:
                self._frame(*item)

    def _frame(self, data: bytes, stamp: float) -> None:
        self._received(data, stamp)
