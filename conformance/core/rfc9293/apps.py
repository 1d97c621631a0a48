"""The target's services, played by the model: what each application does with its connection.

The model's applications are those of ``conformance.inside.services`` (the embedded target), as user calls of
RFC 9293 §3.10: each is told when a segment changed its connection and answers with the calls it makes, a
:class:`Write` (SEND, §3.10.2) or a :class:`Close` (CLOSE, §3.10.4); a RECEIVE (§3.10.3) is taking the
connection's received text (:func:`read`). The host makes the calls. The applications:

- ``listen`` never accepts (its connections are never read: the offered window shrinks under unread data);
- ``banner`` sends :data:`BANNER` once the connection is established and closes when the peer does;
- ``echo`` sends back what it reads and closes when it reads the end (RFC 862);
- ``http`` reads a request up to its blank line (or the peer's FIN, or :data:`MAX_REQUEST` octets), answers with
  :data:`HTTP_HEAD` then :data:`HTTP_BODY` (two writes) and closes first: the target's active close.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .tcb import State, Tcb

#: What the services send (conformance.inside.services: BANNER, HTTP_HEAD, HTTP_BODY, MAX_REQUEST).
BANNER = b"conformance banner: hello from the target\r\n"
HTTP_BODY = b"conformance: hello from the target\n"
HTTP_HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(
    HTTP_BODY
)
MAX_REQUEST = 65536

#: The states in which an accepted connection can be read and written by its application.
OPEN = (State.ESTABLISHED, State.CLOSE_WAIT)


@dataclass(frozen=True)
class Write:
    """SEND (§3.10.2) of `data`."""

    data: bytes


@dataclass(frozen=True)
class Close:
    """CLOSE (§3.10.4)."""


Call = Write | Close
App = Callable[[Tcb, State], list[Call]]


def read(tcb: Tcb) -> tuple[bytes, bool]:
    """RECEIVE (§3.10.3): the text received in order and not read yet, and whether the peer's FIN follows it
    (the end of the data: "connection closing"); both are taken from the receive queue."""
    data, tcb.received = tcb.received, b""
    eof = tcb.fin_received and tcb.fin_unread
    if eof:
        tcb.fin_unread = False
    return data, eof


def listen(tcb: Tcb, before: State) -> list[Call]:
    return []


def banner(tcb: Tcb, before: State) -> list[Call]:
    if before is State.SYN_RECEIVED and tcb.state is State.ESTABLISHED:
        return [Write(BANNER)]
    if before is not State.CLOSE_WAIT and tcb.state is State.CLOSE_WAIT:
        return [Close()]  # the service reads EOF and closes
    return []


def echo(tcb: Tcb, before: State) -> list[Call]:
    """RFC 862: "any data received is sent back"; the end read, the service closes."""
    if tcb.state not in OPEN or tcb.app_done:
        return []
    data, eof = read(tcb)
    calls: list[Call] = [Write(data)] if data else []
    if eof:
        tcb.app_done = True
        calls.append(Close())
    return calls


def http(tcb: Tcb, before: State) -> list[Call]:
    """Read the request to its blank line (or the end), answer in two writes, close first."""
    if tcb.state not in OPEN or tcb.app_done:
        return []
    data, eof = read(tcb)
    tcb.app_buffer += data
    request = tcb.app_buffer
    complete = b"\r\n\r\n" in request or b"\n\n" in request or len(request) >= MAX_REQUEST
    if not complete and not eof:
        return []
    tcb.app_done = True
    answer: list[Call] = [Write(HTTP_HEAD), Write(HTTP_BODY)] if request else []
    return [*answer, Close()]


#: Each service: what it does when a segment changed its connection.
APPS: dict[str, App] = {"listen": listen, "banner": banner, "echo": echo, "http": http}
