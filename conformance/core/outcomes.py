"""The closed vocabularies of a verdict: requirement levels, what a failed check means, statuses, failure kinds.

They are :class:`~enum.StrEnum` members: each compares equal to, and prints as, the word the reports have always
used (``MUST``, ``fail``, ``passed``, ``mismatch``), so a JUnit file or a profile written before stays valid.
"""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """How binding a documented behaviour is (RFC 2119 keywords, or a stack's documented default)."""

    MUST = "MUST"
    MUST_NOT = "MUST NOT"
    SHOULD = "SHOULD"
    SHOULD_NOT = "SHOULD NOT"
    MAY = "MAY"
    DEFAULT = "default"


class Outcome(StrEnum):
    """What a check that did not hold means under the run's profile (see :func:`conformance.core.profiles.outcome`)."""

    FAIL = "fail"  # the case fails
    WARN = "warn"  # a SHOULD: a warning (a failure with --strict)
    INFO = "info"  # a MAY, or another stack's documented default: a note


class Status(StrEnum):
    """The status of a step, of a dialogue's verdict, or of a case's result."""

    PASSED = "passed"
    WARNING = "warning"  # passed, with a finding at SHOULD level
    INFO = "info"  # a step whose check did not hold at a level that only notes it
    FAILED = "failed"
    SKIPPED = "skipped"  # not played, or a check that could not be made; the reason is given
    ERROR = "error"  # a harness error: the tool could not decide


class FailureKind(StrEnum):
    """What kind of check a failure comes from."""

    MISMATCH = "mismatch"  # a segment's fields differ from the expected ones
    TIMING = "timing"  # the right segment, too early or too late
    MISSING = "missing"  # nothing came in time
    UNEXPECTED = "unexpected"  # a segment came where none should, or a step could not be run
    ASSERTION = "assertion"  # an assert over bound values
    STATE = "state"  # the target's TCP state differs
    APP = "app"  # the target's application (through the agent) did otherwise
    AGENT = "agent"  # the agent did not answer or could not read: a harness problem, not the target's
    HARNESS = "harness"  # the tool could not see what it needs to judge (e.g. a blind capture): not the target's

    @property
    def is_harness(self) -> bool:
        """A failure of the tool, reported as a harness error, never as the target's deviation."""
        return self in (FailureKind.AGENT, FailureKind.HARNESS)
