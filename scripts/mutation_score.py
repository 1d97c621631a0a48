"""The suite's mutation score against the RFC 9293 model: deviations caught / deviations of what a run fails.

Two suites are played: the shipped cases the model can play, and the generated state x event matrix
(``conformance.core.rfc9293.matrix``), whose expectations are predicted by the unmutated model. Each is first played
against the model with the unmutated profile (a case that fails there is left out, and said so); then, for each
deviation of ``conformance.core.rfc9293.profile.DEVIATIONS``, against the mutated model, judged as a run judges
(``reference.policy_for``: a MUST fails, a SHOULD fails unless the profile lists it as the stack's departure, a MAY is
information). A deviation is caught when at least one case that passed now fails: a deviation that changes a reply
the matrix predicted fails that dialogue. A deviation no case fails but that a shipped case reports as a new INFO
finding citing a MAY is noted (MAY: information, not a failure): a run never fails it, so the noted deviations are
left out of every score's denominator and counted apart. The scores judge as ``--strict`` does (a SHOULD that does
not hold fails); the shipped cases' score is also given as a default run judges (a SHOULD warns), where a deviation
of a SHOULD is reported but fails nothing. Prints the cases each deviation failed (or noted), the scores of the
shipped cases, of the matrix and of both, the noted deviations, and the deviations no case catches.
Offline, no root: the model runs on a fake clock (about 0.4 ms a dialogue).

    .venv/bin/python scripts/mutation_score.py [--no-matrix] [--all] [--profile linux|rfc] [--cases DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from conformance.core.engine import Verdict
from conformance.core.loader import discover
from conformance.core.model import Case
from conformance.core.outcomes import Level, Outcome, Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX, RFC, ModelProfile
from conformance.core.rfc9293.deviations import Deviation
from conformance.core.rfc9293.matrix import checked_matrix
from conformance.core.rfc9293.reference import play, policy_for, unsupported

ROOT = Path(__file__).resolve().parent.parent
#: How many failed case ids a line shows (``--all``: every one).
SHOWN = 6


#: A note a verdict holds: (the step's line, the MAY it cites).
Note = tuple[int, str]


def may_notes(verdict: Verdict) -> set[Note]:
    """The INFO findings of `verdict` that cite a MAY."""
    refs = [(f.failure.line, f.failure.reference) for f in verdict.findings if f.outcome is Outcome.INFO]
    return {(line, ref.id) for line, ref in refs if ref is not None and ref.level is Level.MAY}


@dataclass
class Suite:
    """Cases that pass against the unmutated model, with the MAY notes each holds there."""

    cases: list[Case]
    notes: dict[str, set[Note]]

    def judge(self, profile: ModelProfile) -> tuple[list[str], list[str]]:
        """The cases `profile` fails, and those it does not fail that hold a MAY note the unmutated model's did not."""
        failed, noted = [], []
        for case in self.cases:
            verdict = play(case, profile).verdict
            if verdict.status is Status.FAILED:
                failed.append(case.id)
            elif may_notes(verdict) - self.notes[case.id]:
                noted.append(case.id)
        return failed, noted


def passing(name: str, cases: Sequence[Case], base: ModelProfile) -> Suite:
    """The cases that pass against the unmutated model (the others are left out, and said so)."""
    verdicts = {c.id: play(c, base).verdict for c in cases}
    broken = sorted(i for i, v in verdicts.items() if v.status is Status.FAILED)
    if broken:
        print(f"{name}: failing already under {base.name} (left out): {', '.join(broken)}")
    kept = [c for c in cases if c.id not in broken]
    return Suite(kept, {c.id: may_notes(verdicts[c.id]) for c in kept})


def shown(ids: list[str], everything: bool) -> str:
    if everything or len(ids) <= SHOWN:
        return ", ".join(ids) or "-"
    return ", ".join(ids[:SHOWN]) + f" ... (+{len(ids) - SHOWN})"


def score(label: str, caught: Sequence[Deviation], scored: int) -> str:
    return f"{label}: {len(caught)}/{scored} ({100 * len(caught) / scored:.0f} %)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=str(ROOT / "cases"), help="folder of case files (default: the shipped ones)")
    ap.add_argument("--no-matrix", action="store_true", help="play the shipped cases only, not the matrix")
    ap.add_argument("--all", action="store_true", help="list every case a deviation fails, not the first few")
    ap.add_argument("--profile", choices=("linux", "rfc"), default="linux", help="the unmutated model")
    args = ap.parse_args(argv)
    start = time.monotonic()
    base = LINUX if args.profile == "linux" else RFC
    loaded = discover([args.cases])
    for c in loaded:
        if unsupported(c) is not None:
            print(f"not played: {c.id}: {unsupported(c)}")
    shipped = passing("shipped", [c for c in loaded if unsupported(c) is None], base)
    matrix = passing("matrix", [] if args.no_matrix else checked_matrix(base), base)
    print(
        f"\n{len(shipped.cases)} shipped cases and {len(matrix.cases)} matrix dialogues against the {base.name} model,"
    )
    print(f"{len(DEVIATIONS)} deviations (shipped cases failed | matrix dialogues failed)\n")
    by_shipped: list[Deviation] = []
    by_default_run: list[Deviation] = []  # the shipped cases fail it without --strict too
    by_matrix: list[Deviation] = []
    by_id = {c.id: c for c in shipped.cases}
    noted: list[Deviation] = []
    for deviation in DEVIATIONS:
        profile = deviation.apply(base)
        (failed, notes), (failed_matrix, _) = shipped.judge(profile), matrix.judge(profile)
        by_shipped += [deviation] if failed else []
        default = policy_for(profile, strict=False)
        if any(play(by_id[i], profile, policy=default).verdict.status is Status.FAILED for i in failed):
            by_default_run.append(deviation)
        by_matrix += [deviation] if failed_matrix else []
        noted += [deviation] if notes and not (failed or failed_matrix) else []
        verdict = "caught" if failed or failed_matrix else "noted" if deviation in noted else "MISSED"
        print(f"{verdict:6} {deviation.name:24} {len(failed):3} | {len(failed_matrix):3}  {shown(failed, args.all)}")
        if failed_matrix:
            print(f"{'':36}matrix: {shown(failed_matrix, args.all)}")
        if deviation in noted:
            print(f"{'':36}noted (MAY: information, not a failure): {shown(notes, args.all)}")
    either = [d for d in DEVIATIONS if d in by_shipped or d in by_matrix]
    scored = len(DEVIATIONS) - len(noted)
    print()
    print(score("mutation score (--strict), shipped cases", by_shipped, scored))
    print(score("mutation score (a default run: a SHOULD warns), shipped cases", by_default_run, scored))
    if not args.no_matrix:
        print(score("mutation score (--strict), matrix", by_matrix, scored))
        print(score("mutation score (--strict), both", either, scored))
    print(f"noted (MAY: information, not a failure), outside the scores: {len(noted)}")
    for deviation in noted:
        print(f"noted: {deviation.name} ({deviation.breaks})")
    for deviation in DEVIATIONS:
        if deviation not in by_shipped and deviation not in noted:
            also = " (caught by the matrix only)" if deviation in by_matrix else ""
            print(f"uncaught by the shipped cases: {deviation.name} ({deviation.breaks}){also}")
    for deviation in DEVIATIONS:
        if deviation not in either and deviation not in noted and not args.no_matrix:
            print(f"uncaught: {deviation.name} ({deviation.breaks})")
    print(f"\n{time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
