"""The target agent on its own: JSON lines in, answers out, never dying on bad input.

Runs the agent as a subprocess on this machine's loopback (no namespace needed).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.targets.agent_client import AgentClient


class Client:
    def __init__(self) -> None:
        self.agent = AgentClient([sys.executable, "-m", "conformance.inside.agent"])

    def ask(self, cmd: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        box: list[dict[str, Any]] = []
        self.agent.request(cmd, args, lambda answer, t: box.append(answer))
        end = time.time() + timeout
        while not box and time.time() < end:
            time.sleep(0.005)
        assert box, f"no answer to {cmd}"
        return box[0]


@pytest.fixture
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.agent.close()


def free_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_listen_connect_accept_and_states(client: Client) -> None:
    port = free_port()
    listener = client.ask("listen", addr="127.0.0.1", port=port, backlog=4)
    assert listener["ok"] and isinstance(listener["time"], float)
    conn = client.ask("connect", addr="127.0.0.1", port=port)
    assert conn["ok"], conn
    local = conn["local"]
    accepted = client.ask("accept", sock=listener["sock"], timeout=2)
    assert accepted["ok"] and accepted["peer"] == local
    state = client.ask("state", local=["127.0.0.1", port], remote=local)
    assert state["state"] == "ESTABLISHED" and state["linux"] == "ESTABLISHED"
    assert client.ask("state", local=["127.0.0.1", port], remote=["0.0.0.0", 0])["state"] == "LISTEN"

    assert client.ask("send", sock=conn["sock"], data="hello")["sent"] == 5
    got = client.ask("recv", sock=accepted["sock"], timeout=2)
    assert got["data"] == "hello" and not got["eof"]

    # the server closes first: it goes FIN-WAIT-2 (the client kernel ACKs), the client CLOSE-WAIT
    assert client.ask("close", sock=accepted["sock"])["ok"]
    time.sleep(0.05)
    assert client.ask("state", local=local, remote=["127.0.0.1", port])["state"] == "CLOSE-WAIT"
    assert client.ask("recv", sock=conn["sock"], timeout=2)["eof"] is True
    assert client.ask("close", sock=conn["sock"])["ok"]
    time.sleep(0.05)
    tw = client.ask("state", local=["127.0.0.1", port], remote=local)
    assert tw["state"] == "TIME-WAIT" and tw["timer_ms"] > 50_000


def test_connect_refused_names_the_errno(client: Client) -> None:
    answer = client.ask("connect", addr="127.0.0.1", port=free_port())
    assert answer["ok"] is False and answer["error"] == "ECONNREFUSED"


def test_setsockopt_and_tcp_info(client: Client) -> None:
    port = free_port()
    listener = client.ask("listen", addr="127.0.0.1", port=port)
    conn = client.ask("connect", addr="127.0.0.1", port=port)
    opts = {
        "SO_KEEPALIVE": 1,
        "TCP_KEEPIDLE": 5,
        "TCP_KEEPINTVL": 2,
        "TCP_KEEPCNT": 4,
        "TCP_NODELAY": 1,
        "TCP_USER_TIMEOUT": 3000,
        "SO_LINGER": [1, 0],
        "SO_RCVBUF": 65536,
    }
    assert client.ask("setsockopt", sock=conn["sock"], options=opts)["ok"]
    info = client.ask("tcp_info", sock=conn["sock"])
    assert info["state"] == "ESTABLISHED" and info["rto_us"] > 0
    bad = client.ask("setsockopt", sock=conn["sock"], options={"SO_NOPE": 1})
    assert bad["ok"] is False and "SO_NOPE" in bad["detail"]
    client.ask("close", sock=conn["sock"])
    client.ask("close", sock=listener["sock"])


def test_sysctl_read(client: Client) -> None:
    answer = client.ask("sysctl", name="tcp_synack_retries")
    assert answer["ok"] and answer["value"].isdigit()
    assert client.ask("sysctl", name="../../etc/passwd")["ok"] is False


def test_bad_requests_get_error_answers_and_the_agent_lives_on() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "conformance.inside.agent"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        assert json.loads(proc.stdout.readline())["ready"] is True
        for line in (
            "not json",
            "[1, 2]",
            json.dumps({"id": 1, "cmd": "nope"}),
            json.dumps({"id": 2, "cmd": "send", "sock": 99, "data": "x"}),
            json.dumps({"id": 3, "cmd": "listen"}),
            json.dumps({"id": 4, "cmd": "ping"}),
        ):
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for _ in range(6)]
        by_id = {a["id"]: a for a in answers if a["id"] is not None}
        assert sum(1 for a in answers if a["id"] is None and not a["ok"]) == 2
        assert by_id[1]["ok"] is False and "unknown command" in by_id[1]["detail"]
        assert by_id[2]["ok"] is False and "no socket" in by_id[2]["detail"]
        assert by_id[3]["ok"] is False  # missing port
        assert by_id[4]["ok"] is True
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0  # exits when its stdin closes
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
