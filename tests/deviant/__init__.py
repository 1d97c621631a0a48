"""A deviant target of our own: the RFC 9293 model answering real frames on a TAP device, with knobs that make it
deviate the way real user-space stacks do (issue 12, "Done means").

* :mod:`.responder` — sans-IO: frames in (with the time), frames out; the model
  (:class:`conformance.core.rfc9293.Host`) behind an ARP/ND responder, and the knobs (:class:`.responder.Knobs`):
  timers on a coarse tick, another backoff factor, ICMP port unreachable instead of a RST for a closed port,
  every data segment repeated every few milliseconds, options in the SYN-ACK that the SYN did not ask for;
* :mod:`.__main__` — the loop that drives it in real time on a TAP descriptor
  (``python -m tests.deviant --tap IF --addr ADDR ...``), until its stdin closes.

The tests (``tests/test_deviant_targets.py``) run it as a child process in a namespace of their own, holding a
TAP device's descriptor, and run the tool in that namespace with ``--target link:IF:ADDR:PORT``: the tool's packet
socket sits on the interface side of the device, the responder on the descriptor side::

    the tool (link:dvt0)                       python -m tests.deviant
    packet socket on dvt0  ◀── frames ──▶  /dev/net/tun fd of dvt0: ARP, ND, the model + knobs
"""
