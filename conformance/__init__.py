"""conformance: a Scapy-based TCP conformance tester.

The package is split in two halves (see README, "Architecture"):

* a sans-IO core that does no I/O and takes time as an argument:
  :mod:`segment`, :mod:`values`, :mod:`model`, :mod:`loader`, :mod:`params`,
  :mod:`profiles`, :mod:`schedules`, :mod:`matching`, :mod:`timing`, :mod:`steps`,
  :mod:`verdict`, :mod:`engine` with :mod:`retransmissions` and :mod:`appsteps`;
* thin edges that touch the world: :mod:`wire` (the only user of Scapy sockets),
  :mod:`netns`, :mod:`remote`, :mod:`tap`, :mod:`firewall`, :mod:`arp` (targets),
  :mod:`services` and :mod:`agent` (programs run inside the target),
  :mod:`agent_client`, :mod:`runner` (the one place that waits), :mod:`reporters`,
  :mod:`explain` and :mod:`cli`.
"""

__version__ = "0.1.0"
