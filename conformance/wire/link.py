"""The wire on an interface whose other side is the stack under test: a :class:`~conformance.wire.capture.Wire`
(packet sockets, kernel timestamps both ways) that also answers ARP and Neighbor Discovery for the prober.

The interface has no address (:mod:`conformance.targets.link` checks it and keeps the kernel quiet there), so
nothing else answers for the prober: its capture thread does (:class:`~conformance.wire.neighbours.
NeighbourResponder`), on the frames it reads anyway. The prober's MAC is not the interface's: the capture
socket asks the interface for promiscuous mode (``PACKET_MR_PROMISC``, held by the socket and dropped with it,
so a physical port passes the frames addressed to the prober), and the kernel drops those frames itself
(addressed to another host).

May import: :mod:`conformance.core` and this package.
"""

from __future__ import annotations

import socket
import struct

from .arp import BROADCAST, mac_bytes
from .capture import SOL_PACKET, Wire
from .neighbours import NeighbourResponder

PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC = 1, 1


class LinkWire(NeighbourResponder, Wire):
    """A :class:`Wire` on `ifname`, answering ARP and ND for the prober; see the module docstring."""

    def __init__(
        self,
        ifname: str,
        our_mac: str,
        our_ip: str | None,
        peer_ip: str | None,
        our_ip6: str | None = None,
        peer_ip6: str | None = None,
    ) -> None:
        super().__init__(ifname, None, our_mac, BROADCAST, our_ip, peer_ip, our_ip6, peer_ip6)
        self._init_neighbours()
        self._our_mac_raw = mac_bytes(our_mac)

    def open(self) -> None:
        super().open()
        index = socket.if_nametoindex(self.iface)
        mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")  # struct packet_mreq
        self._cap.ins.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)

    def _where(self) -> str:
        return f"interface {self.iface}"

    def _write(self, frame: bytes) -> None:
        self._out.outs.send(frame)  # one frame per send on a packet socket: the dialogues' sends may interleave

    def _received(self, frame: bytes, stamp: float) -> None:
        # Our own frames come back through the capture (their true send time): ARP and ND of ours are not
        # questions or answers to us.
        if frame[6:12] != self._our_mac_raw and self._neighbour(frame):
            return
        super()._received(frame, stamp)
