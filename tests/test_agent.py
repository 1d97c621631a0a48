"""The target agent on its own: JSON lines in, answers out, never dying on bad input.

Runs the agent as a subprocess on this machine's loopback (no namespace needed).
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.inside import agent as inside
from conformance.targets.agent_client import AgentClient


class Client:
    def __init__(self, *args: str) -> None:
        self.agent = AgentClient([sys.executable, "-m", "conformance.inside.agent", *args])

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


@pytest.fixture
def bound_client() -> Iterator[Client]:
    """An agent told its addresses, as a netns target starts it: 127.0.0.1 and ::1 stand for the target's."""
    c = Client("--addr=127.0.0.1", "--addr=::1")
    yield c
    c.agent.close()


def refused(addr: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET) as s:
        s.settimeout(2)
        return s.connect_ex((addr, port)) != 0


@pytest.mark.parametrize(("wildcard", "own", "other"), [("0.0.0.0", "127.0.0.1", "127.0.0.2"), ("::", "::1", None)])
def test_listen_binds_to_the_targets_address_only(
    bound_client: Client, wildcard: str, own: str, other: str | None
) -> None:
    """Issue 11: a netns target's agent listened on every address; now on the target's, in both families, and
    its state query still sees the connections."""
    port = free_port()
    listener = bound_client.ask("listen", addr=wildcard, port=port)
    assert listener["ok"], listener
    assert bound_client.ask("state", local=[own, port], remote=["::" if ":" in own else "0.0.0.0", 0])["state"] == (
        "LISTEN"
    )
    if other is not None:
        assert refused(other, port)  # another address of the same host: nobody listens there
    conn = bound_client.ask("connect", addr=own, port=port)
    assert conn["ok"], conn
    accepted = bound_client.ask("accept", sock=listener["sock"], timeout=2)
    assert accepted["ok"]
    state = bound_client.ask("state", local=[own, port], remote=conn["local"])
    assert state["state"] == "ESTABLISHED", state
    for sock in (conn["sock"], accepted["sock"], listener["sock"]):
        bound_client.ask("close", sock=sock)


def test_an_address_not_the_targets_is_refused(bound_client: Client) -> None:
    answer = bound_client.ask("listen", addr="127.0.0.2", port=free_port())
    assert answer["ok"] is False and "not the target's address" in answer["detail"]


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


def test_state_of_an_ipv4_connection_on_a_dual_stack_listener(client: Client) -> None:
    """Issue 12 item 8: the `listen` service listens on ``::`` without IPV6_V6ONLY, so an IPv4 connection is an
    AF_INET6 socket with v4-mapped addresses; the agent asked only AF_INET and read CLOSED."""
    import socket

    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        listener.bind(("::", 0))
        listener.listen(1)
        port = int(listener.getsockname()[1])
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            accepted, _ = listener.accept()
            with accepted:
                local = list(conn.getsockname()[:2])
                state = client.ask("state", local=["127.0.0.1", port], remote=local)
                assert state["state"] == "ESTABLISHED", state
                # the client's side is a plain AF_INET socket: still found first
                assert client.ask("state", local=local, remote=["127.0.0.1", port])["state"] == "ESTABLISHED"
    assert client.ask("state", local=["127.0.0.1", port], remote=local)["state"] in ("CLOSED", "TIME-WAIT")


def test_getsockopt_reads_back_and_urgent_data_is_seen(client: Client) -> None:
    port = free_port()
    listener = client.ask("listen", addr="127.0.0.1", port=port)
    conn = client.ask("connect", addr="127.0.0.1", port=port, local_addr="127.0.0.1")
    assert conn["local"][0] == "127.0.0.1"
    accepted = client.ask("accept", sock=listener["sock"], timeout=3)
    defaults = client.ask("getsockopt", sock=accepted["sock"], names=["SO_KEEPALIVE", "TCP_NODELAY"])
    assert defaults["options"] == {"SO_KEEPALIVE": 0, "TCP_NODELAY": 0}
    opts = {"IP_TTL": 7, "IP_TOS": 0x20, "TCP_NODELAY": 1, "SO_LINGER": [1, 3]}
    assert client.ask("setsockopt", sock=conn["sock"], options=opts)["ok"]
    assert client.ask("getsockopt", sock=conn["sock"], names=list(opts))["options"] == opts
    bad = client.ask("setsockopt", sock=conn["sock"], options={"IP_TTL": "7"})
    assert bad["error"] == "bad request" and "an integer" in bad["detail"]
    assert client.ask("recv", sock=accepted["sock"], urgent=True)["error"] == "EINVAL"  # none yet
    assert client.ask("send", sock=conn["sock"], data="xy!", urgent=True)["sent"] == 3
    polled = client.ask("poll", sock=accepted["sock"], timeout=3)
    assert polled["urgent"] is True and polled["readable"] is True
    assert client.ask("sockatmark", sock=accepted["sock"])["at_mark"] is False
    assert client.ask("recv", sock=accepted["sock"], urgent=True)["data"] == "!"
    normal = client.ask("recv", sock=accepted["sock"], timeout=3)
    assert normal["data"] == "xy" and normal["at_mark"] is True
    for sock in (accepted["sock"], conn["sock"], listener["sock"]):
        client.ask("close", sock=sock)


def test_poll_with_nothing_to_read_times_out() -> None:
    agent = inside.Agent(io.StringIO())
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()[:2]) as near:
        far, _ = listener.accept()
        sid = agent.register(far)
        agent.handle({"id": 1, "cmd": "poll", "sock": sid, "timeout": 0.1})
        near.send(b"x", socket.MSG_OOB)
        agent.handle({"id": 2, "cmd": "poll", "sock": sid, "timeout": 1})
        agent.close_all()
    out = [json.loads(line) for line in agent.out.getvalue().splitlines()]
    assert out[0]["error"] == "TimeoutError" and out[0]["ok"] is False
    assert out[1]["urgent"] is True and out[1]["ok"] is True


def test_a_timeout_out_of_bounds_is_a_bad_request_not_a_hang() -> None:
    """A request is untrusted input: a negative, NaN or huge timeout is refused, never waited on forever."""
    agent = inside.Agent(io.StringIO())
    listener = socket.create_server(("127.0.0.1", 0))
    with listener, socket.create_connection(listener.getsockname()[:2]):
        far, _ = listener.accept()
        sid = agent.register(far)
        for rid, timeout in enumerate((-1, "nan", 1e9)):
            agent.handle({"id": rid, "cmd": "poll", "sock": sid, "timeout": timeout})
        agent.handle({"id": 9, "cmd": "recv", "sock": sid, "timeout": -5})
        agent.close_all()
    out = [json.loads(line) for line in agent.out.getvalue().splitlines()]
    assert [o["error"] for o in out] == ["bad request"] * 4, out
    assert all("timeout must be between 0 and 3600" in o["detail"] for o in out)
