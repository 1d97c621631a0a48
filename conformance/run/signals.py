"""Ctrl-C and SIGTERM: stop the run, and never cut its clean-up short.

The first SIGINT or SIGTERM raises :class:`KeyboardInterrupt` in the main thread, which unwinds the run through
every ``with`` that made something. While clean-up runs (:meth:`Interrupts.held`), and after the first signal,
further signals are only noted: a second Ctrl-C 0.2 s after the first used to interrupt the clean-up itself and
leave a namespace pair behind. Only SIGKILL cuts a run short now; ``conformance cleanup`` removes what it left.

Signal dispositions belong to the process, so there is one :data:`INTERRUPTS` per process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_WAIT = b"conformance: removing what the run made; please wait (SIGKILL would leave it for `conformance cleanup`)\n"


class Interrupts:
    """The process's SIGINT/SIGTERM handling (see the module docstring)."""

    def __init__(self) -> None:
        self.received = 0  # signals received since install()
        self._holding = 0
        self._pid = os.getpid()

    def install(self) -> None:
        self._pid = os.getpid()
        self.received = 0
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A library that forks a copy of this process (pyroute2 does, to enter namespaces) must not unwind the
        # copy through our clean-up code, which would tear the run down under the real process's feet.
        if os.getpid() != self._pid:
            os._exit(128 + signum)
        self.received += 1
        if self._holding or self.received > 1:
            os.write(2, _WAIT)
            return
        raise KeyboardInterrupt

    def ignore_from_now(self) -> None:
        """The process is ending: a late signal must not kill it with another exit status (the interpreter puts
        the default handlers back while it shuts down)."""
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    @property
    def interrupted(self) -> bool:
        return self.received > 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Clean-up runs here: a signal meanwhile is noted, not raised (the run ends when clean-up is done)."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1


#: The one instance: signal dispositions are per process.
INTERRUPTS = Interrupts()
