"""The suite's mutation score against the RFC 9293 model: deviations caught / deviations tried.

Every playable shipped case (and, with --matrix, every matrix case) is first played against the model with the
unmutated profile; then, for each deviation of conformance.core.rfc9293.profile.DEVIATIONS, against the mutated
model. A deviation is caught when at least one case that passed now fails. Prints the cases each deviation
failed, and lists the deviations no case catches. Offline, no root: the model runs on a fake clock.

    .venv/bin/python scripts/mutation_score.py [--matrix] [--profile linux|rfc] [--cases DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.core.loader import discover
from conformance.core.model import Case
from conformance.core.outcomes import Status
from conformance.core.rfc9293 import DEVIATIONS, LINUX, RFC, ModelProfile
from conformance.core.rfc9293.matrix import matrix_cases
from conformance.core.rfc9293.reference import play, unsupported

ROOT = Path(__file__).resolve().parent.parent


def failing(cases: list[Case], profile: ModelProfile) -> list[str]:
    return [c.id for c in cases if play(c, profile).verdict.status is Status.FAILED]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=str(ROOT / "cases"), help="folder of case files (default: the shipped ones)")
    ap.add_argument("--matrix", action="store_true", help="add the generated state x event matrix")
    ap.add_argument("--profile", choices=("linux", "rfc"), default="linux", help="the unmutated model")
    args = ap.parse_args(argv)
    base = LINUX if args.profile == "linux" else RFC
    loaded = discover([args.cases])
    cases = [c for c in loaded if unsupported(c) is None]
    for c in loaded:
        if unsupported(c) is not None:
            print(f"not played: {c.id}: {unsupported(c)}")
    if args.matrix:
        cases += matrix_cases(base)
    broken = set(failing(cases, base))
    if broken:
        print(f"failing already under {base.name} (left out): {', '.join(sorted(broken))}")
    cases = [c for c in cases if c.id not in broken]
    print(f"{len(cases)} cases against the {base.name} model, {len(DEVIATIONS)} deviations\n")
    uncaught = []
    for deviation in DEVIATIONS:
        failed = failing(cases, deviation.apply(base))
        if not failed:
            uncaught.append(deviation)
        shown = ", ".join(failed[:8]) + (f" ... (+{len(failed) - 8})" if len(failed) > 8 else "")
        print(f"{'caught' if failed else 'MISSED':6} {deviation.name:22} {len(failed):4} case(s)  {shown or '-'}")
    caught = len(DEVIATIONS) - len(uncaught)
    print(f"\nmutation score: {caught}/{len(DEVIATIONS)} ({100 * caught / len(DEVIATIONS):.0f} %)")
    for deviation in uncaught:
        print(f"uncaught: {deviation.name} ({deviation.breaks})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
