"""examples/docker-compose.yml, brought up with Debian's ``docker-compose`` and played by the tool.

The docker daemon is the one tests/test_targets_docker.py starts (its ``dockerhost`` fixture: a daemon of the
test's own in a network namespace of the test, data in a temporary folder), with docker0 on ``DOCKER_BIP`` so
that the example's own network, 198.19.10.0/24, is free. No registry is reached: the example's ``TARGET_IMAGE``
names an image the test imports, this machine's Python with its standard library and the libraries it links.
The example's file is used as it is; the project name is the test's own. ``docker-compose down --rmi all`` removes
its container, network and image, also on failure, and the test checks that nothing of them is left; the fixture
then stops the daemon and removes its folder.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import sysconfig
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .lab import ROOT, missing_tools
from .test_targets_docker import PREFIX, DockerHost, dockerhost
from .tool_runs import junit_cases, properties, status

__all__ = ["dockerhost"]  # the fixture, imported so that this module's daemon is its own

#: docker0's range: the example's network (198.19.10.0/24) must not overlap it.
DOCKER_BIP = "198.19.0.1/24"
COMPOSE = ROOT / "examples" / "docker-compose.yml"
PROJECT = f"{PREFIX}-compose"
IMAGE = f"{PREFIX}-python:test"
#: What the example names the container, and where its server listens.
CONTAINER, PORT = "conformance-target", 7000
#: The part of the standard library the example's server never needs.
UNUSED = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data", "site-packages"}
HEALTHY_WITHIN = 60.0

_skip = missing_tools("ip", "nsenter", "dockerd", "docker", "docker-compose", "nft", "ethtool", "ss")
pytestmark = [pytest.mark.integration, pytest.mark.skipif(_skip is not None, reason=_skip or "")]


def _linked_libraries(program: str) -> list[str]:
    """The shared libraries `program` loads (ldd's absolute paths), the dynamic loader included."""
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True, timeout=30).stdout
    return [word for line in out.splitlines() for word in line.split() if word.startswith("/")]


def _python_image_tar() -> bytes:
    """A root file system holding this machine's python3 at its own paths: enough for the example's server."""
    python = os.path.realpath(sys.executable)
    stdlib = sysconfig.get_paths()["stdlib"]

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        unused = set(parts) & UNUSED or "__pycache__" in parts or any(p.startswith("config-") for p in parts)
        return None if unused or "-packages" in info.name else info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for lib in _linked_libraries(python):
            tar.add(os.path.realpath(lib), arcname=lib.lstrip("/"))
        tar.add(python, arcname="usr/bin/python3")
        tar.add(stdlib, arcname=stdlib.lstrip("/"), filter=keep)
        info = tarfile.TarInfo("tmp")
        info.type, info.mode = tarfile.DIRTYPE, 0o1777
        tar.addfile(info)
    return buf.getvalue()


def _compose(host: DockerHost, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = dict(host.env, TARGET_IMAGE=IMAGE)
    cmd = ["docker-compose", "--ansi", "never", "-f", str(COMPOSE), "-p", PROJECT, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _health(host: DockerHost) -> str:
    return host.docker("inspect", "-f", "{{.State.Health.Status}}", CONTAINER, check=False).strip()


def _left(host: DockerHost) -> list[str]:
    """What of the example is still in the daemon: containers, networks, the image."""
    left = host.docker("ps", "-a", "--format", "{{.Names}}", "--filter", f"name={CONTAINER}", check=False).split()
    left += host.docker("network", "ls", "--format", "{{.Name}}", "--filter", f"name={PROJECT}", check=False).split()
    left += [IMAGE] if host.docker("images", "-q", IMAGE, check=False).strip() else []
    return left


@pytest.fixture
def example(dockerhost: DockerHost) -> Iterator[DockerHost]:
    """The example, up and healthy; down, with its network and image, after the test, whatever happened."""
    dockerhost.docker("import", "-c", 'CMD ["/usr/bin/python3"]', "-", IMAGE, stdin=_python_image_tar())
    try:
        up = _compose(dockerhost, "up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        end = time.monotonic() + HEALTHY_WITHIN
        while (health := _health(dockerhost)) != "healthy":
            logs = dockerhost.docker("logs", CONTAINER, check=False)
            assert time.monotonic() < end, f"not healthy within {HEALTHY_WITHIN:g} s ({health}): {logs}"
            time.sleep(0.5)
        yield dockerhost
    finally:
        down = _compose(dockerhost, "down", "--rmi", "all", "--volumes", "--remove-orphans")
        dockerhost.docker("rmi", "-f", IMAGE, check=False)  # compose removes it; this is for a failed `up`
        left = _left(dockerhost)
        assert not left, f"left behind: {left}; docker-compose down said: {down.stdout}{down.stderr}"


def test_the_compose_example_runs_the_suite(example: DockerHost, tmp_path: Path) -> None:
    started = time.monotonic()
    reports = tmp_path / "reports"
    args = ["run", "--target", f"docker:{CONTAINER}:{PORT}", "-k", "not slow", "--ip", "4", "--reports", str(reports)]
    played = example.conformance(*args, timeout=170)
    assert played.returncode == 0, played.stdout + played.stderr
    junit = junit_cases(reports / "junit.xml")
    statuses = {name: status(tc) for name, tc in junit.items()}
    assert {"closed-syn", "synack-ack", "passive-close", "data-retransmit-backoff"} <= set(statuses)
    assert statuses["passive-close"] == statuses["synack-ack"] == "passed"  # the agent and the listener
    assert "failure" not in statuses.values() and "error" not in statuses.values(), statuses
    target = properties(junit["synack-ack"])["target"]  # what the example's comments say of its addresses
    assert "198.19.10.2 on eth0" in target and "prober 198.19.10.254 " in target, target
    print(f"played {len(statuses)} in {time.monotonic() - started:.1f} s: {statuses}")
