"""The target's agent, played by the model: the commands of ``conformance.inside.agent`` as user calls.

``listen`` is a passive OPEN, ``connect`` an active OPEN, ``send`` a SEND, ``shutdown`` (write) a CLOSE, ``close``
a CLOSE that makes the socket an orphan (Linux SOCK_DEAD: :mod:`.timeouts`; an ABORT when received data was never
read, as Linux does, RFC 2525 §2.17, or with SO_LINGER 0), and ``state`` a STATUS. Commands that block on a
socket (accept, connect, recv) wait until the model's state lets them answer, or their timeout. Answers carry the
same fields as the real agent's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..segment import Segment
from ..steps import Addressing, AppRequest
from . import keepalive, urgent, window_update
from .host import Host
from .tcb import State, Tcb

#: Socket options the model honours (others are refused); getsockopt answers those of :mod:`.keepalive`.
OPTIONS = ("SO_LINGER", "TCP_NODELAY", "SO_RCVBUF", "SO_OOBINLINE", *keepalive.DEFAULTS)
#: The options getsockopt answers, and their defaults: keep-alive's, and TCP_NODELAY off (the Nagle algorithm on:
#: RFC 9293 §3.7.4 SHLD-7; Linux tcp(7)).
GETSOCKOPT = {**keepalive.DEFAULTS, "TCP_NODELAY": 0}
#: And the IP layer's (:mod:`.ip`): IP_TTL (RFC 9293 §3.9.2 MUST-49), IP_TOS (§3.9.1.9 MUST-48).
OPTIONS = (*OPTIONS, "IP_TTL", "IP_TOS")
#: What a connect learns when the connection is deleted, by the reason (errno names).
ERRNO = {"refused": "ECONNREFUSED", "reset": "ECONNRESET", "timeout": "ETIMEDOUT", "aborted": "ECONNABORTED"}
EPHEMERAL = 50000
#: listen's backlog when the command has none (docs/agent-protocol.md, ``conformance.inside.agent``).
BACKLOG = 8


class Answering(Protocol):
    """The dialogue side of the agent: where answers go (implemented by the engine's Dialogue)."""

    def app_answer(self, request: int, answer: dict[str, object], time: float) -> None: ...


@dataclass
class _Sock:
    port: int
    tcb: Tcb | None = None  # None: a listener
    options: dict[str, object] = field(default_factory=dict)


class Agent:
    """See the module docstring."""

    def __init__(self, host: Host, addressing: Addressing) -> None:
        self.host = host
        self.addr = addressing
        self.socks: dict[int, _Sock] = {}
        self.accepted: set[int] = set()  # id() of the TCBs handed to the application
        self.waiting: list[tuple[AppRequest, float]] = []  # blocked commands and their time limit
        self._next_port = EPHEMERAL
        #: Set when an answer was given: the dialogue must be advanced to take it.
        self.answered = False

    def request(self, req: AppRequest, dialogue: Answering, now: float) -> list[Segment]:
        """A command from the dialogue: answered now, or kept until it can be."""
        out: list[Segment] = []
        answer = self._run(req, now, out)
        if answer is None:
            timeout = req.args.get("timeout", 600.0)
            limit = float(timeout) if isinstance(timeout, (int, float, str)) else 600.0
            self.waiting.append((req, now + limit))
        else:
            dialogue.app_answer(req.id, answer, now)
            self.answered = True
        return out

    def poll(self, dialogue: Answering, now: float) -> None:
        """The model's state changed: answer the blocked commands that can be answered."""
        for item in list(self.waiting):
            req, limit = item
            answer = self._blocked(req, now)
            if answer is None and now >= limit:
                answer = {"ok": False, "error": "TimeoutError", "detail": "timed out (model)"}
            if answer is not None:
                self.waiting.remove(item)
                dialogue.app_answer(req.id, answer, now)
                self.answered = True

    def advance(self, dialogue: Answering, now: float) -> list[Segment]:
        self.poll(dialogue, now)
        return []

    def deadline(self) -> float | None:
        return min((limit for _, limit in self.waiting), default=None)

    # ---------------------------------------------------------------- commands
    def _run(self, req: AppRequest, now: float, out: list[Segment]) -> dict[str, object] | None:
        args, cmd = req.args, req.cmd
        if cmd == "listen":
            port = int(str(args["port"]))
            options = args.get("options") or {}
            assert isinstance(options, dict)
            buffer = options.get("SO_RCVBUF")
            backlog = int(str(args.get("backlog", BACKLOG)))
            self.host.listen(port, "agent", None if buffer is None else int(str(buffer)), backlog)
            return self._register(_Sock(port, options=dict(options)))
        if cmd == "connect":
            self._next_port += 1
            remote = (str(args["addr"]), int(str(args["port"])))
            if self.host.ip.refuses_open(remote[0]):  # MUST-46 (Linux tcp_v4_connect: ENETUNREACH)
                return {"ok": False, "error": "ENETUNREACH", "detail": f"model: {remote[0]} is a broadcast address"}
            out += [e.segment for e in self.host.connect(self._next_port, remote, now)]
            sock = _Sock(self._next_port, self.host.tcbs[(self._next_port, remote[0], remote[1])])
            self.accepted.add(id(sock.tcb))
            self.socks[-req.id] = sock  # until it is established
            return self._blocked(req, now)
        if cmd == "state":
            here, there = args["local"], args["remote"]
            assert isinstance(here, list) and isinstance(there, list)
            state = self.host.status(int(here[1]), (str(there[0]), int(there[1])))
            return {"ok": True, "state": state.value, "linux": "model", "timer_ms": 0}
        if cmd in ("accept", "recv", "poll"):
            answer = self._blocked(req, now)
            reader = self.socks.get(int(str(args.get("sock", 0)))) if cmd == "recv" and answer else None
            if answer and answer.get("data") and reader is not None and reader.tcb is not None:
                out += window_update.after_read(reader.tcb)  # Linux tcp_cleanup_rbuf
            return answer
        found = self.socks.get(int(str(args.get("sock", 0))))
        if found is None:
            return {"ok": False, "error": "bad request", "detail": f"no socket {args.get('sock')!r}"}
        return self._on_socket(cmd, args, found, now, out)

    def _on_socket(
        self, cmd: str, args: dict[str, object], sock: _Sock, now: float, out: list[Segment]
    ) -> dict[str, object]:
        tcb = sock.tcb
        if cmd == "setsockopt":
            options = args.get("options", {})
            assert isinstance(options, dict)
            unknown = sorted(set(options) - set(OPTIONS))
            if unknown:
                return {"ok": False, "error": "bad request", "detail": f"the model has no {', '.join(unknown)}"}
            sock.options.update(options)
            if tcb is not None:
                tcb.oob_inline = bool(int(str(options.get("SO_OOBINLINE", int(tcb.oob_inline)))))
                keepalive.set_options(tcb, _ints(options), now)
                self.host.ip.set_options(tcb, options)
                if "SO_RCVBUF" in options:
                    tcb.rcv_buf = int(str(options["SO_RCVBUF"]))
                if "TCP_NODELAY" in options:
                    tcb.nodelay = bool(int(str(options["TCP_NODELAY"])))
                    if tcb.nodelay and self.host.profile.nagle_linux:  # __tcp_sock_set_nodelay: push what was held
                        out += [e.segment for e in self.host.send(tcb, b"", now)]
            return {"ok": True}
        if cmd == "getsockopt":
            return self._getsockopt(args, sock)
        if cmd == "sockatmark":  # ioctl SIOCATMARK (MUST-33)
            return {"ok": True, "at_mark": tcb is not None and urgent.at_mark(tcb)}
        if tcb is None:  # a listener: close it
            self.host.unlisten(sock.port)
            return {"ok": True}
        if cmd == "send":
            data = str(args.get("data", "")).encode()
            out += [e.segment for e in self.host.send(tcb, data, now, urgent=bool(args.get("urgent")))]
            return {"ok": True, "sent": len(data)}
        if cmd == "shutdown":  # the receive side shut by "read" or "both"; a FIN for "write" or "both"
            how = str(args.get("how", "write"))
            simplex = self.host.profile.half_close  # §3.6: CLOSE in a simplex fashion
            tcb.rcv_shutdown = tcb.rcv_shutdown or how in ("read", "both") or not simplex
            out += [e.segment for e in self.host.shutdown(tcb, now)] if how != "read" else []
            return {"ok": True}
        if cmd == "close":  # an orphan (:func:`.timeouts.orphan`)
            linger = sock.options.get("SO_LINGER")
            unread = bool(tcb.received) and self.host.profile.rst_on_unread_close
            abort = unread or linger in (0, [1, 0])
            calls = self.host.abort(tcb, now) if abort else self.host.close(tcb, now)
            out += [e.segment for e in calls]
            return {"ok": True}
        return {"ok": False, "error": "bad request", "detail": f"unknown command {cmd!r}"}

    def _blocked(self, req: AppRequest, now: float) -> dict[str, object] | None:
        """The answer of a blocking command, or None while it must wait."""
        if req.cmd == "accept":
            listener = self.socks[int(str(req.args["sock"]))]
            for tcb in self.host.tcbs.values():
                if tcb.local[1] == listener.port and tcb.passive and id(tcb) not in self.accepted:
                    if tcb.state not in (State.SYN_RECEIVED, State.CLOSED):
                        self.accepted.add(id(tcb))
                        self.host.listen_queues[listener.port].taken.add(id(tcb))  # off the accept queue
                        tcb.oob_inline = bool(int(str(listener.options.get("SO_OOBINLINE", 0))))
                        keepalive.set_options(tcb, _ints(listener.options), now)  # inherited from the listener
                        tcb.nodelay = bool(int(str(listener.options.get("TCP_NODELAY", 0))))
                        return self._register(_Sock(listener.port, tcb, dict(listener.options)), peer=list(tcb.remote))
            return None
        if req.cmd == "connect":
            sock = self.socks[-req.id]
            assert sock.tcb is not None
            if sock.tcb.state is State.CLOSED:
                del self.socks[-req.id]
                reason = sock.tcb.closed_by or "reset"
                return {"ok": False, "error": ERRNO.get(reason, reason), "detail": f"model: {reason}"}
            if sock.tcb.state in (State.SYN_SENT, State.SYN_RECEIVED):
                return None
            del self.socks[-req.id]
            return self._register(sock, local=[self.host.address, sock.port])
        found = self.socks.get(int(str(req.args.get("sock", 0))))
        if found is None or found.tcb is None:
            return {"ok": False, "error": "bad request", "detail": "no such socket"}
        tcb = found.tcb
        if req.cmd == "poll" or req.args.get("urgent"):
            return _urgent_or_poll(req, tcb)
        data = urgent.read(tcb, int(str(req.args.get("max", 65536))))
        if data:
            return {"ok": True, "data": data.decode(errors="replace"), "eof": False, "at_mark": urgent.at_mark(tcb)}
        if tcb.state is State.CLOSED and tcb.closed_by in ("reset", "timeout"):
            # §3.10.7.4: RECEIVEs get "reset" responses; §3.10.8: "connection aborted due to user timeout"
            reason = tcb.closed_by
            return {"ok": False, "error": ERRNO[reason], "detail": f"model: connection closed by {reason}"}
        if tcb.fin_received or tcb.state is State.CLOSED:
            return {"ok": True, "data": "", "eof": True, "at_mark": urgent.at_mark(tcb)}
        return None

    def _getsockopt(self, args: dict[str, object], sock: _Sock) -> dict[str, object]:
        """getsockopt: the socket's values of the options the model has, their defaults unless set."""
        names = args.get("names") or list(GETSOCKOPT)
        assert isinstance(names, list)
        unknown = sorted(str(n) for n in names if n not in GETSOCKOPT)
        if unknown:
            return {"ok": False, "error": "bad request", "detail": f"the model has no {', '.join(unknown)}"}
        nodelay = {"TCP_NODELAY": int(str(sock.options["TCP_NODELAY"]))} if "TCP_NODELAY" in sock.options else {}
        values = {**GETSOCKOPT, **_ints(sock.options), **nodelay}
        return {"ok": True, "options": {str(n): values[str(n)] for n in names}}

    def _register(self, sock: _Sock, **extra: object) -> dict[str, object]:
        number = max((n for n in self.socks if n > 0), default=0) + 1
        self.socks[number] = sock
        return {"ok": True, "sock": number, **extra}


def _urgent_or_poll(req: AppRequest, tcb: Tcb) -> dict[str, object] | None:
    """``recv`` with ``urgent`` (MSG_OOB, which never blocks), or ``poll`` (None while nothing is ready), answered
    as the agent does from :mod:`.urgent`'s state."""
    if req.cmd == "poll":
        readable = urgent.readable(tcb) or tcb.state is State.CLOSED
        pending = urgent.pending(tcb)
        if not readable and not pending:
            return None
        return {"ok": True, "readable": readable, "urgent": pending, "at_mark": urgent.at_mark(tcb)}
    got = urgent.read_oob(tcb)
    if isinstance(got, str):
        return {"ok": False, "error": got, "detail": "model: recv(MSG_OOB)"}
    return {"ok": True, "data": got.decode(errors="replace"), "eof": got == b"", "at_mark": urgent.at_mark(tcb)}


def _ints(options: dict[str, object]) -> dict[str, int]:
    """The options of :mod:`.keepalive` among `options`, as integers."""
    return {k: int(str(v)) for k, v in options.items() if k in keepalive.DEFAULTS}
