"""Read everything up to now: a handshake between the player and a wire's capture thread.

A deadline is judged by the kernel's timestamps, not by when the player woke. After a stall (a loaded
machine, or the tool stopped with SIGSTOP for 0.4 s) the player and the capture thread wake together, and a
frame the kernel stamped well inside a deadline may still wait in the capture socket: judged then, the
target would fail "nothing came" for a segment that came. So before it judges a deadline the player asks
the wire (:meth:`Barrier.ask`): the capture thread answers once it has handed on every frame that had
arrived when it was asked, that is when it finds its socket empty after the question, or reads a frame
stamped after it (a socket's queue is in arrival order)::

    player                           capture thread
    ------                           --------------
    ask(): n += 1, at = now, poke ──▶ select() wakes on the pipe
      wait for answered >= n          reads the socket until it is empty (or a frame stamped >= at)
                                ◀──  answer(n)
    every frame stamped <= at is in the player's inbox: drain it, then judge at `at`

May import: the standard library.
"""

from __future__ import annotations

import os
import threading
import time


class Barrier:
    """The question the player asks (:meth:`ask`) and the capture thread answers (:meth:`answer`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._asked = 0
        self._asked_at = float("inf")
        self._answered = 0
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def fileno(self) -> int:
        """The descriptor a capture thread adds to its ``select``: readable while a question waits."""
        return self._r

    def ask(self, timeout: float) -> float | None:
        """Wait until the capture thread has handed on every frame that had arrived by now; return that time
        (every frame stamped up to it has been handed on), or None when it did not answer within `timeout`."""
        with self._cond:
            self._asked += 1
            n, at = self._asked, time.time()
            self._asked_at = at
            try:
                os.write(self._w, b"?")
            except BlockingIOError:  # the pipe is full of earlier questions: it is readable anyway
                pass
            except OSError:  # closed: nobody will answer
                return None
            if not self._cond.wait_for(lambda: self._answered >= n, timeout):
                return None
        return at

    def pending(self) -> tuple[int, float]:
        """The latest question (its number, the time it was asked): taken before the socket is looked at."""
        with self._cond:
            return self._asked, self._asked_at

    def waiting(self) -> bool:
        """Whether a question is not answered yet."""
        with self._cond:
            return self._asked > self._answered

    def answer(self, n: int) -> None:
        """Every frame that had arrived when question `n` was asked has been handed on."""
        with self._cond:
            if n > self._answered:
                self._answered = n
                self._cond.notify_all()

    def clear(self) -> None:
        """Empty the pipe (the capture thread, once it has seen it readable)."""
        try:
            while os.read(self._r, 4096):
                pass
        except OSError:
            pass

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._r = self._w = -1
