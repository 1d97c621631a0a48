"""The agent protocol as a contract (docs/agent-protocol.md): version 1, the TCP transport, ``agent-check``.

The offline tests use only the commands that need no network. The integration ones make namespaces of their own
with addresses in 198.18.0.0/15 (the agent over TCP with its token and --peer, agent-check over it, and a remote
host whose agent plays an app-step case), all removed by the Lab.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.core.errors import HarnessError
from conformance.inside import agent as inside
from conformance.run.agent_check import REQUIRED_COMMANDS, play, run_agent_check
from conformance.run.cli import main
from conformance.targets.agent_client import AgentClient, parse_agent_address, read_token

from .lab import ROOT, Lab, missing_tools, remote_lab, run
from .tool_runs import junit_cases, outcome, play_in, tool_in

AGENT = [sys.executable, "-m", "conformance.inside.agent"]


def test_the_hello_and_version_say_protocol_2_and_every_command() -> None:
    client = AgentClient(AGENT)
    try:
        assert client.hello["protocol"] == client.protocol == inside.PROTOCOL == 2
        out = io.StringIO()
        outcomes = play(client, None, out)
    finally:
        client.close()
    by_name = {o.name: o.status for o in outcomes}
    assert by_name == {
        "hello": "PASS",
        "version": "PASS",
        "bad requests": "PASS",
        "state of no connection": "PASS",
        "listen, accept with timeout": "SKIP",
        "a connection and its states": "SKIP",
        "socket options, urgent data": "SKIP",
        "errors as errno names": "SKIP",
        "still alive": "PASS",
    }, out.getvalue()
    assert "PASS version: protocol 2, conformance.inside.agent, 16 commands" in out.getvalue()


def test_the_spec_names_every_command_and_error() -> None:
    spec = (ROOT / "docs" / "agent-protocol.md").read_text()
    commands = sorted(n[4:] for n in dir(inside.Agent) if n.startswith("cmd_"))
    assert commands == sorted(REQUIRED_COMMANDS)
    for name in commands:
        assert f"### `{name}`" in spec, name
    for error in ("bad request", "TimeoutError", "ECONNREFUSED", "ETIMEDOUT", "EADDRINUSE", "agent gone"):
        assert f"`{error}`" in spec, error


FAKE = """
import json, sys
print(json.dumps({"id": None, "ok": True, "ready": True, "protocol": 2}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"id": req["id"], "ok": True, "time": 0.0}), flush=True)
"""


def test_agent_check_fails_an_agent_that_answers_ok_to_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake_agent.py"
    fake.write_text(FAKE)
    assert run_agent_check([sys.executable, str(fake)], None, None, None) == 1
    out = capsys.readouterr().out
    assert "FAIL version: version answers protocol None" in out
    assert "FAIL bad requests: no-such-command: expected ok false, error 'bad request'" in out
    assert "PASS still alive" in out and "4 skipped" in out


def test_an_agent_of_another_protocol_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "fake_agent.py"
    fake.write_text(FAKE.replace('"protocol": 2', '"protocol": 1'))
    with pytest.raises(HarnessError, match="speaks protocol 1; this tool speaks 2"):
        AgentClient([sys.executable, str(fake)])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.0.0.0:7700", "is every address"),
        ("[::]:7700", "is every address"),
        ("10.0.0.1:7700", "outside 198.18.0.0/15"),
        ("198.18.2.2", "expected ADDR:PORT"),
        ("198.18.2.2:0", "expected ADDR:PORT"),
    ],
)
def test_listen_binds_one_test_address_only(text: str, message: str) -> None:
    with pytest.raises(inside.UsageError, match=message):
        inside.parse_listen(text)


def test_listen_address_forms() -> None:
    assert inside.parse_listen("198.18.2.2:7700") == ("198.18.2.2", 7700)
    assert inside.parse_listen("[2001:2:0:2::2]:7700") == ("2001:2:0:2::2", 7700)


def test_the_token_file_must_be_private_and_not_empty(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    token.chmod(0o644)
    with pytest.raises(inside.UsageError, match="chmod 600"):
        inside.read_token(str(token))
    with pytest.raises(HarnessError, match="--agent-token .* can be read by others"):
        read_token(str(token))
    token.chmod(0o600)
    assert inside.read_token(str(token)) == read_token(str(token)) == b"s3cret"
    token.write_text("\n")
    with pytest.raises(inside.UsageError, match="is empty"):
        inside.read_token(str(token))


def test_agent_addresses(tmp_path: Path) -> None:
    assert str(parse_agent_address("tcp:198.18.2.2:7700", "F")) == "tcp:198.18.2.2:7700"
    assert str(parse_agent_address("tcp:[2001:2:0:2::2]:7700", "F")) == "tcp:[2001:2:0:2::2]:7700"
    for text, message in (
        ("198.18.2.2:7700", "expected tcp:ADDR:PORT"),
        ("tcp:198.18.2.2", "expected tcp:ADDR:PORT"),
        ("tcp:0.0.0.0:7700", "is every address"),
        ("tcp:10.1.1.1:7700", "outside 198.18.0.0/15"),
        ("tcp:host:7700", "not an IP address"),
    ):
        with pytest.raises(HarnessError, match=message):
            parse_agent_address(text, "F")
    with pytest.raises(HarnessError, match="needs --agent-token"):
        parse_agent_address("tcp:198.18.2.2:7700", None)


def test_agent_is_for_a_remote_target(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["list", "--target", "embedded", "--agent", "tcp:198.18.2.2:7700", "--agent-token", "F"])
    assert code == 2
    assert "--agent and --agent-token are for a remote target" in capsys.readouterr().err


# ---------------------------------------------------------------- integration: namespaces of the test's own
_skip = missing_tools("ip", "nft", "ethtool")
AGENT_ADDR, OTHER_ADDR, AGENT_PORT = "198.18.250.2", "198.18.250.3", 7700


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("a-shared-secret-of-the-test\n")
    path.chmod(0o600)
    return path


def start_agent(lab: Lab, ns: str, token: Path, *extra: str) -> subprocess.Popen[str]:
    """The agent in `ns` listening on ADDR:PORT; returns once it listens (its first stderr line)."""
    cmd = ["ip", "netns", "exec", ns, *AGENT, "--listen", f"{extra[0]}:{AGENT_PORT}", "--token-file", str(token)]
    proc = subprocess.Popen(
        [*cmd, *extra[1:]], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    lab.procs.append(proc)
    assert proc.stderr is not None
    assert "listening on" in proc.stderr.readline()
    return proc


def talk(ns: str, source: str, first_line: bytes) -> bytes:
    """Connect from `source` in `ns`, send a first line, return what came back before the agent closed."""
    code = (
        "import socket, sys\n"
        f"s = socket.create_connection(({AGENT_ADDR!r}, {AGENT_PORT}), timeout=5, source_address=({source!r}, 0))\n"
        f"s.sendall({first_line!r})\n"
        "data = b''\n"
        "while chunk := s.recv(4096):\n"
        "    data += chunk\n"
        "    if b'ready' in data: break\n"
        "sys.stdout.buffer.write(data)\n"
    )
    return run("ip", "netns", "exec", ns, sys.executable, "-c", code).stdout.encode()


@pytest.fixture
def host_ns() -> Iterator[tuple[Lab, str]]:
    with Lab() as lab:
        ns = lab.netns("agenthost")
        for addr in (AGENT_ADDR, OTHER_ADDR):
            lab.ip(ns, "addr", "add", f"{addr}/32", "dev", "lo")
        yield lab, ns


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_over_tcp_the_token_and_the_peer_are_required(host_ns: tuple[Lab, str], token: Path) -> None:
    lab, ns = host_ns
    start_agent(lab, ns, token, AGENT_ADDR, "--peer", AGENT_ADDR)
    assert talk(ns, AGENT_ADDR, b"wrong token\n") == b""  # closed without a word
    assert talk(ns, OTHER_ADDR, token.read_bytes()) == b""  # not the peer
    hello = json.loads(talk(ns, AGENT_ADDR, token.read_bytes()).splitlines()[0])
    assert hello["ready"] is True and hello["protocol"] == 2


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_agent_check_passes_our_agent_over_tcp_and_over_a_pipe(host_ns: tuple[Lab, str], token: Path) -> None:
    lab, ns = host_ns
    start_agent(lab, ns, token, AGENT_ADDR)
    proc = tool_in(ns, "agent-check", "--agent", f"tcp:{AGENT_ADDR}:{AGENT_PORT}", "--agent-token", str(token))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9 passed, 0 failed, 0 skipped" in proc.stdout
    # a second client after the first has gone: one at a time, each served
    proc = tool_in(ns, "agent-check", "--agent", f"tcp:{AGENT_ADDR}:{AGENT_PORT}", "--agent-token", str(token))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = tool_in(ns, "agent-check", "--addr", AGENT_ADDR)
    assert proc.returncode == 0 and "9 passed" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.integration
@pytest.mark.skipif(_skip is not None, reason=_skip or "")
def test_a_remote_host_with_an_agent_plays_app_steps_white_box(token: Path, tmp_path: Path) -> None:
    with Lab() as lab:
        remote = remote_lab(lab, 7000, 7001)
        start_agent(lab, remote["host"], token, "198.18.2.2", "--peer", "198.18.1.2")
        time.sleep(0.1)
        agent = ["--agent", f"tcp:198.18.2.2:{AGENT_PORT}", "--agent-token", str(token)]
        proc = play_in(remote["prober"], "198.18.2.2:7000", ["close/passive-close.yaml"], tmp_path, *agent)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        junit = junit_cases(tmp_path / "junit.xml")
        assert not outcome(junit["passive-close"])
        assert "white box" in (tmp_path / "junit.xml").read_text()
