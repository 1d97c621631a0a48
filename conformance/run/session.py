"""What the runner and the player share: a run's settings, its source ports and each opened target.

A module of its own so that the player does not import the runner (which
starts players): both import this one.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from ..core.errors import HarnessError
from ..core.model import Case
from ..core.profiles import Profile
from ..core.results import TargetInfo
from ..core.timing import Tolerance
from ..targets.base import Endpoint, TargetOptions
from ..wire.capture import Wire


@dataclass
class RunSettings:
    target: str = "embedded"  # see conformance.targets.grammar
    target_options: TargetOptions = field(default_factory=TargetOptions)  # --iface, --closed-port, --prober-ip
    jobs: int = 0  # 0: every case at once, up to DEFAULT_MAX_JOBS (waiting on a timer costs no CPU)
    tolerance: Tolerance | None = None  # overrides every case's tolerance
    case_timeout: float = 900.0
    seed: int | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    #: Entered once each target is up, exited before it is removed: a place for
    #: tools such as the benchmark to attach an independent capture.
    around_target: Callable[[Endpoint], AbstractContextManager[object]] | None = None
    #: A profile name or file (None: linux for a Linux namespace target, rfc for any other).
    profile: str | None = None
    strict: bool = False  # SHOULD deviations fail instead of warning
    ip: str = "4"  # 4 | 6 | both: the address families each case is played over


#: Source ports a run may use: a window of this many from a random base in 20000-40000. Ports are never reused
#: within a run (a reused 4-tuple could meet the target's TIME-WAIT), so the window must hold the largest run we
#: ship: the default suite with the RFC 9293 matrix over both families takes about 3,900 (880 matrix dialogues x 2
#: families x 2 ports, and the suite's cases).
PORT_WINDOW = 10000


class Ports:
    """Source ports unique within a run (so no two dialogues share a 4-tuple).

    They come from a fixed window, :attr:`window`, known before the first is
    taken: a remote target's RST filter covers exactly these ports. A case's
    ports are reserved when the run is planned, at a place in the window drawn
    from the seed and the case's id (:meth:`reserve`): with the same ``--seed`` a
    case gets the same ports in every run, whatever else the run plays (unless
    another case of the run drew the same place first: the next free port is
    taken then).
    """

    def __init__(self, rng: random.Random, salt: str = "") -> None:
        base = rng.randrange(20000, 40000)
        self.window = range(base, base + PORT_WINDOW)
        self._salt = salt
        self._used: set[int] = set()
        self._lock = threading.Lock()

    def _free_from(self, offset: int) -> int:
        size = len(self.window)
        for k in range(size):
            port = self.window[(offset + k) % size]
            if port not in self._used:
                self._used.add(port)
                return port
        raise HarnessError(
            f"the run used every source port of its window {self.window.start}-{self.window[-1]}",
            "run fewer cases at once (each connection of each case takes one)",
        )

    def take(self) -> int:
        """The next free port (for a dialogue without reserved ports)."""
        with self._lock:
            return self._free_from(0)

    def reserve(self, key: str, n: int) -> list[int]:
        """`n` ports for the case `key`, at a place in the window drawn from the run's seed and the key."""
        offset = random.Random(f"{self._salt}:{key}").randrange(len(self.window))
        with self._lock:
            return [self._free_from(offset) for _ in range(n)]


def ports_needed(case: Case) -> int:
    """How many source ports a case takes: one per connection, and one for its own agent port."""
    return len(case.connections()) + (1 if case.service == "agent" else 0)


@dataclass
class OpenedTarget:
    """A target that is up: where to reach it, the wire to it, and the profile its cases are judged by."""

    endpoint: Endpoint
    wire: Wire
    profile: Profile | None = None

    @property
    def info(self) -> TargetInfo:
        e = self.endpoint
        return TargetInfo(
            kind=e.kind,
            description=e.description,
            address=", ".join(a for a in (e.target_ip, e.target_ip6) if a),
            params=e.params,
            profile=self.profile.name if self.profile else "",
        )
