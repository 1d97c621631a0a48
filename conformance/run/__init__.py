"""The run itself, on top of every layer: ``cli`` (arguments, exit codes), ``commands`` (what each subcommand
does), ``runner`` (opens the targets and starts the cases), ``player`` (plays every dialogue on one thread, the
one place that waits), ``explain``.

May import: every layer below (:mod:`conformance.core`, :mod:`conformance.wire`, :mod:`conformance.targets`,
:mod:`conformance.inside`, :mod:`conformance.reporters`) and this package.
"""
