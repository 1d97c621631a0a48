"""A remote target's wrong listen port stops the run before its cases (issue 11), in namespaces of the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .lab import nft_tables
from .test_targets_remote import HOST, HOST6, LISTEN, pytestmark, remote  # the same lab as the remote tests
from .tool_runs import play_in

__all__ = ["pytestmark", "remote"]
WRONG = 7999


@pytest.mark.parametrize(
    ("target", "where"), [(f"{HOST}:{WRONG}", f"{HOST}:{WRONG}"), (f"[{HOST6}]:{WRONG}", f"[{HOST6}]:{WRONG}")]
)
def test_a_wrong_listen_port_is_a_setup_error(remote: dict[str, str], tmp_path: Path, target: str, where: str) -> None:
    proc = play_in(remote["prober"], target, ["handshake/synack-ack.yaml"], tmp_path, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"nothing listens on {where}" in proc.stderr
    assert "give the port it listens on" in proc.stderr and "Traceback" not in proc.stderr
    assert "conformance" not in nft_tables(remote["prober"])


def test_the_right_listen_port_passes_the_check(remote: dict[str, str], tmp_path: Path) -> None:
    proc = play_in(
        remote["prober"], f"{HOST}:{LISTEN}", ["handshake/synack-ack.yaml"], tmp_path, "--ip", "4", timeout=60
    )
    assert "nothing listens" not in proc.stderr and proc.returncode == 0, proc.stdout + proc.stderr
