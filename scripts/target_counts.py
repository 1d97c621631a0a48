#!/usr/bin/env python3
"""How many of the shipped cases each kind of target plays, as ``conformance list --target`` plans it.

Usage (from anywhere; no root, nothing is opened or sent)::

    .venv/bin/python scripts/target_counts.py [--ip 4|6|both] [--format markdown|json] [PATHS...]

For each kind of target of the README's Targets section, it runs ``conformance
list --format json --target T [options] PATHS`` (default PATHS: ``cases/``) and
counts the cases that play and, for the others, why they are skipped (the
runner's own plan: a service the target lacks, the agent, sysctls it cannot set,
an address family). ``list`` opens no target: the addresses, interfaces,
namespaces and containers below need not exist, and the counts are what a run
plays on a target that has exactly the services named. The token file that
``--agent`` needs is a temporary one of this script's, removed on exit.

What ``list`` cannot tell (whether a case passes, or whether the stack really
serves what its options name) comes from real runs: the integration tests
(``tests/test_pytcp.py``, ``tests/test_http_only_target.py``,
``tests/test_targets_remote.py``, ``tests/test_targets_docker.py``) and the
README's notes.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LIST_TIMEOUT = 120.0


@dataclass(frozen=True)
class Kind:
    name: str
    options: tuple[str, ...]  # the `list` options after --target
    needs: str


def kinds(token: Path) -> list[Kind]:
    agent = ("--agent", "tcp:198.18.2.2:7700", "--agent-token", str(token))
    pytcp = "link:tap1:198.18.3.2,[2001:2:0:3::2]:7000"
    return [
        Kind("embedded", ("--target", "embedded"), "root, `ip`, `ethtool`"),
        Kind("a namespace you made", ("--target", "netns:NAME"), "root; the namespace"),
        Kind(
            "a remote host, black box (a plain listener)",
            ("--target", "198.18.2.2:7000"),
            "root, `nft`; an address in 198.18.0.0/15 on the prober's side",
        ),
        Kind(
            "a remote host with only a web server",
            ("--target", "198.18.5.2:8080", "--service", "http=8080"),
            "as above",
        ),
        Kind(
            "a remote host with the agent over TCP",
            ("--target", "198.18.2.2:7000", *agent),
            "as above; `python -m conformance.inside.agent --listen ADDR:PORT --token-file F` on the host",
        ),
        Kind("a stack behind a TAP device of the tool's", ("--target", "tap:tap1:198.18.3.2:7000"), "root"),
        Kind(
            "PyTCP on a TAP device it holds (its harness: a plain listener)",
            ("--target", pytcp),
            "root; the stack on the device",
        ),
        Kind(
            "a stack over a link, with listen, echo, http and banner services",
            ("--target", pytcp, "--service", "echo=7007", "--service", "http=7080", "--service", "banner=7001"),
            "root; the stack serving them",
        ),
        Kind("a docker container", ("--target", "docker:web:7000"), "root, docker; a running container"),
    ]


def plan(kind: Kind, ip: str, paths: list[str]) -> list[dict[str, object]]:
    """``conformance list --format json``'s entries for `kind`."""
    cmd = [sys.executable, "-m", "conformance", "list", "--format", "json", "--ip", ip, *kind.options, *paths]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=LIST_TIMEOUT)
    if proc.returncode != 0:
        raise SystemExit(f"target_counts: {' '.join(cmd)} failed:\n{proc.stderr.strip()}")
    entries: list[dict[str, object]] = json.loads(proc.stdout)
    return entries


def why(message: str) -> str:
    """A skip reason without its advice: the first clause, without the values in parentheses."""
    first = re.split(r"[;:(]", message, maxsplit=1)[0].strip()
    return first.removeprefix("the case ")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    ap.add_argument("paths", nargs="*", help="case files or folders (default: cases/)")
    ap.add_argument("--ip", choices=("4", "6", "both"), default="4", help="address families (default 4)")
    ap.add_argument("--format", choices=("markdown", "json"), default="markdown")
    args = ap.parse_args(argv)
    paths = args.paths or [str(ROOT / "cases")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cf-counts-") as folder:
        token = Path(folder) / "token"
        token.write_text("not-used-list-opens-no-target\n")
        token.chmod(0o600)
        for kind in kinds(token):
            entries = plan(kind, args.ip, paths)
            skipped = Counter(why(str(e["skipped"])) for e in entries if not e["plays"])
            rows.append(
                {
                    "target": kind.name,
                    "command": "conformance run " + " ".join(kind.options).replace(str(token), "F"),
                    "needs": kind.needs,
                    "plays": sum(1 for e in entries if e["plays"]),
                    "cases": len(entries),
                    "skipped": dict(skipped.most_common()),
                }
            )
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    total = rows[0]["cases"] if rows else 0
    print(f"| target | command | needs | cases played of {total} (`--ip {args.ip}`) | skipped, why |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        reasons = "; ".join(f"{n}: {reason}" for reason, n in r["skipped"].items()) or "none"
        print(f"| {r['target']} | `{r['command']}` | {r['needs']} | **{r['plays']}** | {reasons} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
