"""Before a run: is anything listening on a black-box target's listen port?

A remote host or a stack behind a TAP device is given as ``HOST:PORT``; with a
wrong port every case failed ("expected SA, observed RA") and nothing said why.
:func:`check_listening` sends one SYN from the prober to the listen port over
each address family the target has, and stops the run with a
:class:`~conformance.core.errors.HarnessError` that says what to do unless a
SYN-ACK answers (which it then resets, so the target keeps no half-open
connection of ours). The embedded and netns targets run our own listeners,
and a docker target's listening ports are read from the container.
"""

from __future__ import annotations

import queue
import random
import time

from ..core.errors import HarnessError
from ..core.segment import Segment
from ..wire.capture import Captured
from .session import OpenedTarget, Ports

#: How long the SYN's answer is waited for (a remote host answers within a round trip).
TIMEOUT = 3.0
#: The kinds of target whose listen port the tool cannot see: it asks them with a SYN.
PROBED_KINDS = ("remote", "tap", "link")


def check_listening(target: OpenedTarget, ports: Ports, timeout: float = TIMEOUT) -> None:
    """A SYN to the listen port over each family, from a source port of the run's; HarnessError unless each is
    answered by a SYN-ACK. Targets of other kinds are left alone (and take no port)."""
    endpoint = target.endpoint
    port = endpoint.ports.get("listen")
    if endpoint.kind not in PROBED_KINDS or port is None:
        return
    sport = ports.take()
    for ours, theirs in ((endpoint.our_ip, endpoint.target_ip), (endpoint.our_ip6, endpoint.target_ip6)):
        if ours is not None and theirs is not None:
            _probe(target, ours, theirs, sport, port, timeout)


def _probe(target: OpenedTarget, ours: str, theirs: str, sport: int, port: int, timeout: float) -> None:
    wire = target.wire
    isn = random.getrandbits(32)
    where = f"[{theirs}]:{port}" if ":" in theirs else f"{theirs}:{port}"
    inbox = wire.subscribe([sport])
    assert isinstance(inbox, queue.Queue)
    try:
        wire.send(Segment(ours, theirs, sport, port, seq=isn, flags="S", window=65535))
        answer = _answer(inbox, theirs, sport, timeout)
        if answer is not None and "S" in answer.flags and "A" in answer.flags:
            wire.send(Segment(ours, theirs, sport, port, seq=(isn + 1) % 2**32, flags="R", window=0))
            return
    finally:
        wire.unsubscribe([sport])
    kind = target.endpoint.kind
    form = "--target HOST:PORT" if kind == "remote" else f"--target {kind}:IFNAME:ADDR:PORT"
    if answer is None:
        raise HarnessError(
            f"no answer from {where} to a SYN within {timeout:g} s: every case would fail",
            f"check that the target is up and that nothing drops its port {port} (a firewall), or give the port its "
            f"server listens on ({form})",
        )
    raise HarnessError(
        f"nothing listens on {where}: it answered a SYN with {answer.flags or 'no flags'} (every case would fail "
        "with 'expected SA, observed RA')",
        f"start the target's server on port {port}, or give the port it listens on ({form})",
    )


def _answer(inbox: queue.Queue[Captured], theirs: str, sport: int, timeout: float) -> Segment | None:
    """The target's first segment to `sport` within `timeout` (our own SYN comes back through the capture too)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            seg = inbox.get(timeout=left).segment
        except queue.Empty:
            return None
        if seg.src == theirs and seg.dport == sport:
            return seg
    return None
