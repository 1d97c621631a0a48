"""The sans-IO core: case files in, dialogues that take segments and time as arguments, verdicts out.

Case model and loader (``model``, ``loader``, ``values``), documented values and profiles (``params``,
``profiles``, ``schedules``), segments and field matching (``segment``, ``matching``, ``timing``), the dialogue
engine, what its judges see of it and the judges of its steps (``engine``, ``context``, ``steps``, ``judges``) and
what it concludes (``verdict``, ``results``). Nothing here opens a socket, starts a process or a thread, sleeps
or reads a clock: every entry point is given ``now``. Tested offline with a fake clock.

May import: the standard library's pure modules, PyYAML and jsonschema, and this package. Never ``socket``,
``subprocess``, ``threading``, ``select``, ``time`` or Scapy (``tests/test_architecture.py`` checks it).
"""
