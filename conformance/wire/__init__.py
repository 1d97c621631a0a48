"""The wire: frames in and out of an interface, with kernel timestamps.

``capture`` (packet sockets on an interface: capture both directions, inject at layer 2), ``tap`` (the same on a
TAP descriptor), ``codec`` (Ethernet/IP/TCP frames to and from :class:`~conformance.core.segment.Segment`),
``tcp_options`` (the codec's TCP options as octets and as Scapy's lists), ``arp`` and ``nd`` (asking and
answering for next hops), ``firewall`` (the nftables table that keeps this machine's kernel from answering for the
prober).

May import: :mod:`conformance.core` and this package.
"""
