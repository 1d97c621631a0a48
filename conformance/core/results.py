"""What a run produces for each case: the data every reporter reads."""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import Verdict
from .model import Case
from .params import Params


@dataclass(frozen=True)
class TargetInfo:
    """Which target a case ran against and the parameters the run used."""

    kind: str  # "netns" ...
    description: str  # e.g. "Linux 6.18.44 in namespace cft-1234 (198.18.0.2)"
    address: str
    params: Params
    profile: str = ""  # the profile the verdicts were made under


@dataclass
class CaseResult:
    case: Case
    status: str  # passed | warning | failed | error | skipped (a case the target cannot play; message = the reason)
    #: The failure (a deviation), or the harness error, as text for people.
    message: str
    duration: float
    target: TargetInfo | None
    verdict: Verdict | None = None
    #: Our source port and ISN for each connection of the case.
    ports: dict[str, int] = field(default_factory=dict)
    isns: dict[str, int] = field(default_factory=dict)
    #: Raw Ethernet frames of the case's flows with their capture times, for the pcap.
    frames: list[tuple[float, bytes]] = field(default_factory=list)
    #: Set for self-test cases (expect_failure): the case's raw verdict before inversion.
    raw_status: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def self_test(expected: str, verdict: Verdict, message: str) -> tuple[str, str]:
    """The status and message of a self-test case (``expect_failure: TEXT``): it passes only when the case
    failed and TEXT is in the failure itself, not in a warning or a note beside it."""
    failure = verdict.failure.render() if verdict.failure is not None else ""
    if verdict.status == "failed" and expected in failure:
        return "passed", f"failed as expected:\n{message}"
    if verdict.status == "failed":
        return "failed", f"self-test: expected a failure mentioning {expected!r}, got:\n{message}"
    mentioned = " (the text is only in a warning or note)" if expected in message else ""
    return "failed", f"self-test: expected a failure mentioning {expected!r}, but the case passed{mentioned}"
