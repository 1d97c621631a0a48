"""The tool's side of the target agent: a JSON-lines client over a pipe.

Starts ``python -m conformance.agent`` with the command it is given (e.g.
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

from .errors import HarnessError

Callback = Callable[[dict[str, Any], float], None]
READY_TIMEOUT = 10.0


class AgentClient:
    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callback] = {}
        assert self._proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self._proc.stdout, selectors.EVENT_READ)
        ready = sel.select(READY_TIMEOUT)
        sel.close()
        line = self._proc.stdout.readline() if ready else ""
        try:
            hello = json.loads(line)
        except json.JSONDecodeError:
            self.close()
            raise HarnessError(f"the target agent did not start: {line.strip() or 'no answer'}") from None
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
        proc = self._proc
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=3)
        except (subprocess.TimeoutExpired, OSError):
            proc.kill()  # our own child, by its Popen handle
            proc.wait(timeout=3)
