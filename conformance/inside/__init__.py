"""What runs inside a target: the agent (the target's application, and its TCP states) and the services.

These modules are started as ``python -m conformance.inside.agent`` and ``python -m conformance.inside.services``
in the target's network namespace (a namespace of the tool's, a user's, a container's), with whatever Python is
there.

May import: Python's standard library only, nothing of :mod:`conformance` (``tests/test_architecture.py``).
"""
