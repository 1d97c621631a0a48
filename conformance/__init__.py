"""conformance: a Scapy-based TCP conformance tester.

The layers, from the bottom (see README, "Architecture, and why"); each package's docstring says what it may
import, and ``tests/test_architecture.py`` checks that imports only go downwards:

* :mod:`conformance.core`: the sans-IO core (case model, loader, profiles, engine, verdicts); no I/O, no clock;
* :mod:`conformance.inside`: what runs inside a target (agent, services); standard library only;
* :mod:`conformance.wire`: frames on an interface or a TAP descriptor, ARP, ND, the nftables RST filter;
* :mod:`conformance.targets`: the kinds of target (netns, remote, tap, docker) and the ``--target`` grammar;
* :mod:`conformance.reporters`: terminal, JUnit, HTML, ladders, pcaps;
* :mod:`conformance.run`: the runner, the player and the command line, on top.
"""

__version__ = "0.1.0"
