"""The suite's mutation score against the RFC 9293 model: deviations caught / deviations tried.

Two suites are played: the shipped cases the model can play, and the generated state x event matrix
(``conformance.core.rfc9293.matrix``), whose expectations are predicted by the unmutated model. Each is first played
against the model with the unmutated profile (a case that fails there is left out, and said so); then, for each
deviation of ``conformance.core.rfc9293.profile.DEVIATIONS``, against the mutated model. A deviation is caught when
at least one case that passed now fails: a deviation that changes a reply the matrix predicted fails that dialogue.
Prints the cases each deviation failed, the score of the shipped cases, of the matrix and of both, and the
deviations no case catches. Offline, no root: the model runs on a fake clock (about 0.4 ms a dialogue).

    .venv/bin/python scripts/mutation_score.py [--no-matrix] [--all] [--profile linux|rfc] [--cases DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from conformance.core.loader import discover
from conformance.core.model import Case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX, RFC, ModelProfile
from conformance.core.rfc9293.matrix import checked_matrix
from conformance.core.rfc9293.profile import Deviation
from conformance.core.rfc9293.reference import play, unsupported

ROOT = Path(__file__).resolve().parent.parent
#: How many failed case ids a line shows (``--all``: every one).
SHOWN = 6


def failing(cases: Sequence[Case], profile: ModelProfile) -> list[str]:
    return [c.id for c in cases if play(c, profile).verdict.status is Status.FAILED]


def passing(name: str, cases: Sequence[Case], base: ModelProfile) -> list[Case]:
    """The cases that pass against the unmutated model (the others are left out, and said so)."""
    broken = set(failing(cases, base))
    if broken:
        print(f"{name}: failing already under {base.name} (left out): {', '.join(sorted(broken))}")
    return [c for c in cases if c.id not in broken]


def shown(ids: list[str], everything: bool) -> str:
    if everything or len(ids) <= SHOWN:
        return ", ".join(ids) or "-"
    return ", ".join(ids[:SHOWN]) + f" ... (+{len(ids) - SHOWN})"


def score(label: str, caught: Sequence[Deviation]) -> str:
    return f"{label}: {len(caught)}/{len(DEVIATIONS)} ({100 * len(caught) / len(DEVIATIONS):.0f} %)"


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
    matrix = [] if args.no_matrix else passing("matrix", checked_matrix(base), base)
    print(f"\n{len(shipped)} shipped cases and {len(matrix)} matrix dialogues against the {base.name} model,")
    print(f"{len(DEVIATIONS)} deviations (shipped cases failed | matrix dialogues failed)\n")
    by_shipped: list[Deviation] = []
    by_matrix: list[Deviation] = []
    for deviation in DEVIATIONS:
        profile = deviation.apply(base)
        failed, failed_matrix = failing(shipped, profile), failing(matrix, profile)
        by_shipped += [deviation] if failed else []
        by_matrix += [deviation] if failed_matrix else []
        verdict = "caught" if failed or failed_matrix else "MISSED"
        print(f"{verdict:6} {deviation.name:24} {len(failed):3} | {len(failed_matrix):3}  {shown(failed, args.all)}")
        if failed_matrix:
            print(f"{'':36}matrix: {shown(failed_matrix, args.all)}")
    either = [d for d in DEVIATIONS if d in by_shipped or d in by_matrix]
    print()
    print(score("mutation score, shipped cases", by_shipped))
    if not args.no_matrix:
        print(score("mutation score, matrix", by_matrix))
        print(score("mutation score, both", either))
    for deviation in DEVIATIONS:
        if deviation not in by_shipped:
            also = " (caught by the matrix only)" if deviation in by_matrix else ""
            print(f"uncaught by the shipped cases: {deviation.name} ({deviation.breaks}){also}")
    for deviation in DEVIATIONS:
        if deviation not in either and not args.no_matrix:
            print(f"uncaught: {deviation.name} ({deviation.breaks})")
    print(f"\n{time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
