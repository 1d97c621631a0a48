"""The tool's side of the target agent: a JSON-lines client over a pipe or a TCP connection.

:class:`AgentClient` starts ``python -m conformance.inside.agent`` with the
command it is given (e.g. ``ip netns exec NS ...``), or
:meth:`AgentClient.over_tcp` reaches one a user started with ``--listen`` (it
sends the token first); either waits for the hello line (its protocol must be
ours, ``docs/agent-protocol.md``) and routes each answer to the callback of its
request, with the time the answer arrived here. The agent exits when this client
closes its stdin; over TCP it closes the sockets this client opened.
"""

from __future__ import annotations

import itertools
import json
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, Any

from ..core.errors import HarnessError
from ..inside.agent import UsageError, parse_listen
from ..inside.agent import read_token as inside_read_token

Callback = Callable[[dict[str, Any], float], None]
READY_TIMEOUT = 10.0
#: The version of the agent protocol this client speaks (docs/agent-protocol.md).
PROTOCOL = 2


def spawn(
    command: list[str], what: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    """Start a program that announces itself with one JSON line; return it and that line.

    The program runs until its stdin closes (the agent, the target's services).
    Raises HarnessError, after ending the program, when it does not say it is ready.
    """
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    ready = sel.select(READY_TIMEOUT)
    sel.close()
    line = proc.stdout.readline() if ready else ""
    try:
        return proc, _hello_line(line, what)
    except HarnessError as exc:
        stop(proc)
        err = proc.stderr.read().strip() if proc.stderr else ""
        if err and not line:
            raise HarnessError(f"{what} did not start: {err}") from None
        raise exc from None


def stop(proc: subprocess.Popen[str]) -> None:
    """End a program started by :func:`spawn`: close its stdin, then kill it (our own child) if it lingers."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=3)
    except (subprocess.TimeoutExpired, OSError):
        proc.kill()
        proc.wait(timeout=3)


@dataclass(frozen=True)
class AgentAddress:
    """Where an agent started with ``--listen`` waits: ``tcp:ADDR:PORT``, and the file of the shared secret."""

    host: str
    port: int
    token_file: str

    def __str__(self) -> str:
        return f"tcp:[{self.host}]:{self.port}" if ":" in self.host else f"tcp:{self.host}:{self.port}"


def parse_agent_address(text: str, token_file: str | None) -> AgentAddress:
    """``--agent tcp:ADDR:PORT`` (ADDR6 in brackets, in the test ranges) with ``--agent-token F``."""
    kind, _, rest = text.partition(":")
    try:
        if kind != "tcp":
            raise UsageError(f"--agent {text!r}: expected tcp:ADDR:PORT")
        host, port = parse_listen(rest, "--agent", "tcp:ADDR:PORT")
    except UsageError as exc:
        raise HarnessError(str(exc), "e.g. --agent tcp:198.18.2.2:7700 --agent-token F") from None
    if not token_file:
        raise HarnessError(f"--agent {text!r} needs --agent-token F", "the file the agent was started with")
    return AgentAddress(host, port, token_file)


def read_token(path: str) -> bytes:
    """The shared secret of `path`, as the agent reads it (its first line; private, not empty)."""
    try:
        return inside_read_token(path, "--agent-token")
    except UsageError as exc:
        raise HarnessError(str(exc)) from None


def _hello_line(line: str, what: str, err: str = "") -> dict[str, Any]:
    """The agent's hello, checked: ready, and our protocol (a hello without one is taken as version 1)."""
    try:
        hello = json.loads(line)
    except json.JSONDecodeError:
        hello = None
    if not isinstance(hello, dict) or not hello.get("ready"):
        reason = hello.get("error") if isinstance(hello, dict) else None
        raise HarnessError(
            f"{what} did not start: {reason or line.strip() or err or f'no answer within {READY_TIMEOUT:g} s'}"
        )
    if hello.get("protocol", 1) != PROTOCOL:
        raise HarnessError(
            f"{what} speaks protocol {hello.get('protocol')!r}; this tool speaks {PROTOCOL}",
            "run the agent of the same version as the tool (docs/agent-protocol.md)",
        )
    return hello


def _hang_up(sock: socket.socket) -> None:
    """End the connection now, though files made from it are still open (the reader's)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class AgentClient:
    """Requests to an agent, each answered to its callback on the reader thread (see the module docstring)."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        proc, hello = spawn(command, "the target agent", env)
        assert proc.stdin is not None and proc.stdout is not None
        self._start(proc.stdin, proc.stdout, hello, lambda: stop(proc))

    @classmethod
    def over_tcp(cls, address: AgentAddress, timeout: float = READY_TIMEOUT) -> AgentClient:
        """The agent a user started with ``--listen`` at `address`: connect, send the token, read the hello."""
        token = read_token(address.token_file)
        what = f"the agent at {address}"
        try:
            sock = socket.create_connection((address.host, address.port), timeout=timeout)
        except OSError as exc:
            raise HarnessError(
                f"cannot reach {what}: {exc.strerror or exc}",
                f"start it there: python -m conformance.inside.agent --listen {address.host}:{address.port} "
                "--token-file F (and check the route to it)",
            ) from None
        try:
            sock.sendall(token + b"\n")
            reader = sock.makefile("r", encoding="utf-8", newline="\n")
            try:
                line = reader.readline()
            except OSError:
                line = ""
            if not line:
                raise HarnessError(
                    f"{what} closed the connection without a hello",
                    "the token must be the agent's --token-file, and this host its --peer if it has one",
                )
            hello = _hello_line(line, what)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(None)
        client = cls.__new__(cls)
        client._start(sock.makefile("w", encoding="utf-8", newline="\n"), reader, hello, lambda: _hang_up(sock))
        return client

    def _start(self, out: IO[str], lines: Iterable[str], hello: dict[str, Any], close: Callable[[], None]) -> None:
        self._out, self._lines, self._close = out, lines, close
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self.hello = hello
        self.kernel = str(hello.get("kernel", "?"))
        self.protocol = int(hello.get("protocol", 1))
        self._reader = threading.Thread(target=self._read, name="agent-reader", daemon=True)
        self._reader.start()

    def request(self, cmd: str, args: dict[str, Any], callback: Callback) -> None:
        rid = next(self._ids)
        with self._lock:
            self._callbacks[rid] = callback
            try:
                self._out.write(json.dumps({"id": rid, "cmd": cmd, **args}) + "\n")
                self._out.flush()
            except (OSError, ValueError):
                self._callbacks.pop(rid, None)
                callback({"ok": False, "error": "agent gone", "detail": "the target agent has exited"}, time.time())

    def _read(self) -> None:
        try:
            for line in self._lines:
                now = time.time()
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                rid = msg.get("id") if isinstance(msg, dict) else None
                with self._lock:
                    cb = self._callbacks.pop(rid, None) if isinstance(rid, int) else None
                if cb is not None:
                    cb(msg, now)
        except (OSError, ValueError):  # the connection was closed under the reader
            pass

    def close(self) -> None:
        try:
            self._out.close()
        except OSError:
            pass
        self._close()
