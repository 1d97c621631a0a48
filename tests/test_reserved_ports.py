"""The embedded target keeps every port window a run can take out of its own ephemeral ports."""

from __future__ import annotations

import random

from conformance.run.session import Ports
from conformance.targets.netns import RESERVED_PORTS


def test_every_run_window_lies_in_the_embedded_targets_reserved_ports() -> None:
    low, high = (int(p) for p in RESERVED_PORTS.split("-"))
    for seed in range(2000):
        window = Ports(random.Random(seed)).window
        assert low <= window.start and window[-1] <= high, (seed, window)
