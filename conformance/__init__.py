"""conformance: a Scapy-based TCP conformance tester.

The package is split in two halves (see README, "Architecture"):

* a sans-IO core that does no I/O and takes time as an argument:
  :mod:`segment`, :mod:`values`, :mod:`model`, :mod:`loader`, :mod:`params`,
  :mod:`schedules`, :mod:`matching`, :mod:`timing`, :mod:`engine`, :mod:`ladder`;
* thin edges that touch the world: :mod:`wire` (the only user of Scapy sockets),
  :mod:`netns` (the embedded target), :mod:`services` (listeners inside the target),
  :mod:`runner` (the one place that waits), :mod:`reporters` and :mod:`cli`.
"""

__version__ = "0.1.0"
