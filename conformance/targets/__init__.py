"""Targets: what the cases are played against, each kind behind the same small interface.

``grammar`` picks the kind a ``--target`` names; ``base`` holds what every kind shares (the options, the spec,
the benchmark address rules, the :class:`~conformance.targets.base.Endpoint` an opened target hands the run);
one module per kind: ``netns`` (the embedded target and ``netns:NAME``), ``remote``, ``tap``, ``docker`` (with
``docker_discovery``, what docker and the kernel say about the container, and ``docker_plumbing``, what the run
changes there and undoes). ``agent_client`` starts and talks to the programs of :mod:`conformance.inside` in a
target.

A kind is a context manager, :class:`~conformance.targets.base.Target`: entering it sets the target up and returns
its ``Endpoint`` (and, for a TAP device, the wire it brings), leaving it removes everything it made. Its docstring
says how to add a kind.

May import: :mod:`conformance.core`, :mod:`conformance.wire`, :mod:`conformance.inside` and this package.
"""
