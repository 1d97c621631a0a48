"""The tool's side of the target agent: a JSON-lines client over a pipe.

Starts ``python -m conformance.inside.agent`` with the command it is given (e.g.
``ip netns exec NS ...``), waits for its ready line, and routes each answer to
the callback of its request. The agent exits when this client closes its stdin.
"""

from __future__ import annotations

import itertools
import json
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.errors import HarnessError

Callback = Callable[[dict[str, Any], float], None]
READY_TIMEOUT = 10.0


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
        hello = json.loads(line)
    except json.JSONDecodeError:
        hello = None
    if not isinstance(hello, dict) or not hello.get("ready"):
        stop(proc)
        reason = hello.get("error") if isinstance(hello, dict) else None
        err = proc.stderr.read().strip() if proc.stderr else ""
        raise HarnessError(
            f"{what} did not start: {reason or line.strip() or err or f'no answer within {READY_TIMEOUT:g} s'}"
        )
    return proc, hello


def stop(proc: subprocess.Popen[str]) -> None:
    """End a program started by :func:`spawn`: close its stdin, then kill it (our own child) if it lingers."""
    try:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=3)
    except (subprocess.TimeoutExpired, OSError):
        proc.kill()
        proc.wait(timeout=3)


class AgentClient:
    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self._proc, hello = spawn(command, "the target agent", env)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        self.kernel = str(hello.get("kernel", "?"))
        self._reader = threading.Thread(target=self._read, name="agent-reader", daemon=True)
        self._reader.start()

    def request(self, cmd: str, args: dict[str, Any], callback: Callback) -> None:
        rid = next(self._ids)
        with self._lock:
            self._callbacks[rid] = callback
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(json.dumps({"id": rid, "cmd": cmd, **args}) + "\n")
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                self._callbacks.pop(rid, None)
                callback({"ok": False, "error": "agent gone", "detail": "the target agent has exited"}, time.time())

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            now = time.time()
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            rid = msg.get("id")
            with self._lock:
                cb = self._callbacks.pop(rid, None) if isinstance(rid, int) else None
            if cb is not None:
                cb(msg, now)

    def close(self) -> None:
        stop(self._proc)
