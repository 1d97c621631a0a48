"""The prober's side of ARP and Neighbor Discovery on a wire that has no kernel address behind it.

A TAP descriptor (:mod:`conformance.wire.tap`) and a packet socket on an interface without addresses
(:mod:`conformance.wire.link`) both carry frames that no kernel stack answers for the prober: this mixin
answers ARP requests and Neighbor Solicitations for the prober's addresses, and asks the target's MAC
(:meth:`NeighbourResponder.resolve`) on the same wire, woken by the answer its capture thread hands over.

May import: :mod:`conformance.core` and this package.
"""

from __future__ import annotations

import ipaddress
import threading
import time

from ..core.errors import HarnessError
from . import arp, nd


class NeighbourResponder:
    """ARP and ND for the prober; the class it is mixed into supplies :meth:`_write` (one frame out) and calls
    :meth:`_neighbour` on every frame it receives."""

    iface: str
    our_mac: str
    our_ip: str | None
    our_ip6: str | None
    target_mac: str
    target_mac6: str | None

    def _init_neighbours(self) -> None:
        self._arp_lock = threading.Lock()
        self._arp_wanted: dict[str, threading.Event] = {}
        self._arp_found: dict[str, str] = {}
        self.arp_answered = 0  # requests for our address we answered
        self.nd_answered = 0  # solicitations for our IPv6 address we answered

    def _write(self, frame: bytes) -> None:
        raise NotImplementedError

    def _where(self) -> str:
        """The wire, as the "no answer" error names it."""
        return self.iface

    def resolve(self, ip: str, timeout: float = arp.TIMEOUT) -> str:
        """The MAC address of `ip` on the wire, by ARP (IPv4) or Neighbor Solicitation (IPv6);
        HarnessError after `timeout` seconds without an answer."""
        v6 = ":" in ip
        if v6:
            if self.our_ip6 is None:
                raise HarnessError(f"internal: no IPv6 address of ours to ask {ip} from")
            ip = ipaddress.IPv6Address(ip).compressed
            question = nd.solicit(self.our_mac, self.our_ip6, ip)
        else:
            if self.our_ip is None:
                raise HarnessError(f"internal: no IPv4 address of ours to ask {ip} from")
            question = arp.request(self.our_mac, self.our_ip, ip)
        event = threading.Event()
        with self._arp_lock:
            self._arp_wanted[ip] = event
        try:
            end = time.monotonic() + timeout
            while (left := end - time.monotonic()) > 0:
                self._write(question)
                if event.wait(min(arp.RETRY, left)):
                    with self._arp_lock:
                        return self._arp_found[ip]
        finally:
            with self._arp_lock:
                self._arp_wanted.pop(ip, None)
        raise (nd if v6 else arp).no_answer(ip, self._where(), timeout)

    def _neighbour(self, data: bytes) -> bool:
        """Handle `data` if it is an ARP or ND frame (True: it was, and is used up here)."""
        found = arp.parse(data)
        if found is not None:
            self._arp(found)
            return True
        if nd.is_nd(data):  # the target may solicit our address's group, or us directly (unreachability probe)
            found6 = nd.parse(data)
            if found6 is not None:
                self._nd(found6)
                return True
        return False

    def _arp(self, packet: arp.Arp) -> None:
        if (
            self.our_ip is not None
            and packet.op == arp.OP_REQUEST
            and packet.target_ip == self.our_ip
            and packet.sender_ip != self.our_ip
            and self._answer(arp.reply_to(packet, self.our_mac))
        ):
            self.arp_answered += 1
        if self.our_ip is not None and arp.is_answer(packet, packet.sender_ip, self.our_ip):
            self._found(packet.sender_ip, packet.sender_mac)

    def _nd(self, packet: nd.Nd) -> None:
        """Answer a solicitation for our IPv6 address (from any source: link-local, global, or the unspecified
        address of duplicate address detection); hand an advertisement to :meth:`resolve`."""
        if (
            self.our_ip6 is not None
            and nd.asks_for(packet, self.our_ip6)
            and self._answer(nd.advertise_to(packet, self.our_mac))
        ):
            self.nd_answered += 1
        mac = nd.answer_mac(packet, packet.target)
        if mac is not None:
            self._found(packet.target, mac)

    def _answer(self, frame: bytes) -> bool:
        """Write an ARP reply or a Neighbor Advertisement; False when the wire would not take it."""
        try:
            self._write(frame)
        except OSError:
            return False
        return True

    def _found(self, ip: str, mac: str) -> None:
        """`ip` is at `mac`: wake :meth:`resolve` if it asks for `ip`."""
        with self._arp_lock:
            event = self._arp_wanted.get(ip)
            if event is not None:
                self._arp_found[ip] = mac
                event.set()
