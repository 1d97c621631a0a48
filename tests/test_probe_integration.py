"""A remote target's wrong listen port stops the run before its cases (issue 11), in namespaces of the test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import Lab, missing_tools, nft_tables, remote_lab
from .tool_runs import play_in

LISTEN, BANNER, WRONG = 7000, 7001, 7999
HOST, HOST6 = "198.18.2.2", "2001:2:0:2::2"

_skip = missing_tools("ip", "nft", "ethtool")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


@pytest.fixture
def remote() -> Iterator[dict[str, str]]:
    with Lab() as lab:
        yield remote_lab(lab, LISTEN, BANNER)


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
