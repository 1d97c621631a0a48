"""An executable model of one RFC 9293 endpoint (§3.10 Event Processing), sans-IO, and what is built on it.

* :mod:`.rules` — the paragraphs the model follows, and the acceptability table (§3.10.7.4 Table 6);
* :mod:`.profile` — the knobs where documents and stacks differ, the ``rfc`` and ``linux`` profiles;
* :mod:`.deviations` — the mutations of a profile used for mutation testing;
* :mod:`.tcb` — states, the TCB, the RFC 6298 estimator;
* :mod:`.arrive` — SEGMENT ARRIVES (§3.10.7), state by state;
* :mod:`.host` — listeners, connections, user calls and timeouts: ``receive(segment, now)``, ``advance(now)``,
  ``deadline()``;
* :mod:`.reference` — the model as a target: plays a case's dialogue against it on a fake clock;
* :mod:`.matrix` — the generated state x event matrix of cases.

May import: the rest of :mod:`conformance.core` (sans-IO like it).
"""

from __future__ import annotations

from .deviations import DEVIATIONS, Deviation
from .host import Host
from .profile import LINUX, RFC, ModelProfile
from .rules import RULES, Rule, acceptable
from .tcb import Decision, Emitted, State

__all__ = [
    "DEVIATIONS",
    "LINUX",
    "RFC",
    "RULES",
    "Decision",
    "Deviation",
    "Emitted",
    "Host",
    "ModelProfile",
    "Rule",
    "State",
    "acceptable",
]
