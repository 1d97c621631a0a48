"""``conformance agent-check``: plays the agent protocol (``docs/agent-protocol.md``) against an agent.

The agent is ours by default (``python -m conformance.inside.agent``), any
program given after ``--`` that speaks the protocol on stdin/stdout (a
user-space stack's own harness), or one reached with ``--agent tcp:ADDR:PORT
--agent-token F``. Each check prints ``PASS`` or ``FAIL`` with what was seen; the
exit code is 0 when every check passed, 1 otherwise. The checks that need the
network (listen, accept, connect, state of a connection, errno names) run on
``--addr ADDR``, an address of the agent's host in 198.18.0.0/15 or
2001:2::/48 (over TCP: the agent's own address by default); without one they
are reported as skipped.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from ..core.errors import HarnessError
from ..targets.agent_client import PROTOCOL, AgentClient

if TYPE_CHECKING:
    from argparse import _SubParsersAction

#: The commands a version-1 agent answers (docs/agent-protocol.md §Commands).
REQUIRED_COMMANDS = (
    "accept connect close getsockopt listen ping poll recv send setsockopt shutdown sockatmark state sysctl tcp_info"
    " version".split()
)
ANSWER_TIMEOUT = 10.0


class CheckFailed(Exception):
    """A check saw something the contract does not allow; the message says what."""


@dataclass
class Outcome:
    name: str
    status: str  # PASS, FAIL, SKIP
    detail: str


class Probe:
    """Requests to the agent under test, each waited for."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def start(self, cmd: str, **args: Any) -> Callable[[float], dict[str, Any]]:
        """Send a request; the function returned waits (up to its timeout) for the answer, stamped with its
        arrival as ``_arrived``."""
        done = threading.Event()
        box: list[dict[str, Any]] = []

        def got(answer: dict[str, Any], when: float) -> None:
            box.append({**answer, "_arrived": when})
            done.set()

        self.client.request(cmd, args, got)

        def wait(timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
            if not done.wait(timeout):
                raise CheckFailed(f"no answer to {cmd} within {timeout:g} s")
            return box[0]

        return wait

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        """The answer to `cmd` (`args` go to the agent: a ``timeout`` among them is the command's own)."""
        answer = self.start(cmd, **args)(ANSWER_TIMEOUT + float(args.get("timeout", 0)))
        if not isinstance(answer.get("time"), int | float):
            raise CheckFailed(f"the answer to {cmd} has no number `time`: {_shown(answer)}")
        return answer

    def ok(self, cmd: str, **args: Any) -> dict[str, Any]:
        answer = self.ask(cmd, **args)
        if answer.get("ok") is not True:
            raise CheckFailed(f"{cmd} failed: {answer.get('error')} ({answer.get('detail', '')})")
        return answer

    def error(self, cmd: str, expected: str, **args: Any) -> dict[str, Any]:
        answer = self.ask(cmd, **args)
        if answer.get("ok") is not False or answer.get("error") != expected:
            raise CheckFailed(f"{cmd}: expected ok false, error {expected!r}; got {_shown(answer)}")
        return answer


def _shown(answer: dict[str, Any]) -> str:
    return str({k: v for k, v in answer.items() if k != "_arrived"})


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# ---------------------------------------------------------------- the checks that need no network
def check_hello(probe: Probe, addr: str | None) -> str:
    hello = probe.client.hello
    _expect(hello.get("protocol") == PROTOCOL, f"the hello line has no protocol {PROTOCOL}: {hello}")
    return f"ready, protocol {hello['protocol']}"


def check_version(probe: Probe, addr: str | None) -> str:
    answer = probe.ok("version")
    _expect(answer.get("protocol") == PROTOCOL, f"version answers protocol {answer.get('protocol')!r}")
    commands = answer.get("commands")
    _expect(isinstance(commands, list), f"version has no list of commands: {_shown(answer)}")
    missing = sorted(set(REQUIRED_COMMANDS) - set(commands or []))
    _expect(not missing, f"commands missing: {', '.join(missing)}")
    return f"protocol {answer['protocol']}, {answer.get('implementation', '?')}, {len(commands or [])} commands"


def check_bad_requests(probe: Probe, addr: str | None) -> str:
    probe.error("no-such-command", "bad request")
    probe.error("send", "bad request", sock=987654, data="x")
    probe.error("listen", "bad request")  # no port
    probe.ok("ping")
    return "unknown command, unknown socket, missing argument: 'bad request'; ping answered after them"


def check_state_of_nothing(probe: Probe, addr: str | None) -> str:
    here = addr or "198.18.0.2"
    there = "2001:2::1" if ":" in here else "198.18.0.1"
    answer = probe.ok("state", local=[here, 9], remote=[there, 9])
    _expect(answer.get("state") == "CLOSED", f"no such connection: expected CLOSED, got {answer.get('state')!r}")
    return "a connection that does not exist is CLOSED"


# ---------------------------------------------------------------- the checks that need --addr
def _port() -> int:
    return random.randrange(20000, 60000)


def check_listen_accept_timeout(probe: Probe, addr: str) -> str:
    listener = probe.ok("listen", addr=addr, port=_port(), backlog=4)
    _expect(isinstance(listener.get("sock"), int), f"listen: no integer sock: {_shown(listener)}")
    started = time.time()
    pending = probe.start("accept", sock=listener["sock"], timeout=1.0)
    ping = probe.ok("ping")  # answered while accept blocks: every command on its own thread
    answer = pending(ANSWER_TIMEOUT)
    took = answer["_arrived"] - started
    _expect(ping["_arrived"] < answer["_arrived"], "ping was answered after the blocked accept: commands must not wait")
    _expect(answer.get("ok") is False and answer.get("error") == "TimeoutError", f"accept: {_shown(answer)}")
    _expect(0.8 <= took <= 3.0, f"accept with timeout 1 s answered after {took:.2f} s")
    probe.ok("close", sock=listener["sock"])
    return f"accept timed out after {took:.2f} s with TimeoutError; ping answered meanwhile"


def check_connection(probe: Probe, addr: str) -> str:
    port = _port()
    wildcard = "::" if ":" in addr else "0.0.0.0"
    listener = probe.ok("listen", addr=addr, port=port)
    listening = probe.ok("state", local=[addr, port], remote=[wildcard, 0])
    _expect(listening.get("state") == "LISTEN", f"listener: state {listening.get('state')!r}, expected LISTEN")
    conn = probe.ok("connect", addr=addr, port=port)
    local = conn.get("local")
    _expect(isinstance(local, list) and len(local) == 2, f"connect: no local [addr, port]: {_shown(conn)}")
    accepted = probe.ok("accept", sock=listener["sock"], timeout=3)
    _expect(accepted.get("peer") == local, f"accept: peer {accepted.get('peer')}, the connector is {local}")
    state = probe.ok("state", local=[addr, port], remote=local)
    _expect(state.get("state") == "ESTABLISHED", f"state: {state.get('state')!r}, expected ESTABLISHED")
    _expect(probe.ok("send", sock=conn["sock"], data="hello").get("sent") == 5, "send did not say sent: 5")
    got = probe.ok("recv", sock=accepted["sock"], timeout=3)
    _expect(got.get("data") == "hello" and got.get("eof") is False, f"recv: {_shown(got)}")
    probe.ok("close", sock=accepted["sock"])
    time.sleep(0.1)
    waiting = probe.ok("state", local=local, remote=[addr, port])
    _expect(waiting.get("state") == "CLOSE-WAIT", f"after the peer's close: {waiting.get('state')!r}, not CLOSE-WAIT")
    _expect(probe.ok("recv", sock=conn["sock"], timeout=3).get("eof") is True, "recv after the peer's FIN: no eof")
    for sock in (conn["sock"], listener["sock"]):
        probe.ok("close", sock=sock)
    return "LISTEN, connect, accept (peer), ESTABLISHED, send/recv, CLOSE-WAIT, eof"


def check_options_and_urgent(probe: Probe, addr: str) -> str:
    port = _port()
    listener = probe.ok("listen", addr=addr, port=port)
    conn = probe.ok("connect", addr=addr, port=port, local_addr=addr)
    _expect(conn.get("local", [None])[0] == addr, f"connect with local_addr {addr}: local {conn.get('local')}")
    accepted = probe.ok("accept", sock=listener["sock"], timeout=3)
    probe.ok("setsockopt", sock=conn["sock"], options={"TCP_NODELAY": 1, "IP_TTL": 33, "IP_TOS": 32})
    got = probe.ok("getsockopt", sock=conn["sock"], names=["TCP_NODELAY", "IP_TTL", "IP_TOS", "SO_KEEPALIVE"])
    want = {"TCP_NODELAY": 1, "IP_TTL": 33, "IP_TOS": 32, "SO_KEEPALIVE": 0}
    _expect(got.get("options") == want, f"getsockopt after setsockopt {want}: {_shown(got)}")
    probe.error("getsockopt", "bad request", sock=conn["sock"], names=["NO_SUCH_OPTION"])
    probe.ok("send", sock=conn["sock"], data="ab!", urgent=True)
    polled = probe.ok("poll", sock=accepted["sock"], timeout=3)
    _expect(polled.get("urgent") is True, f"poll after urgent data: {_shown(polled)}")
    _expect(probe.ok("sockatmark", sock=accepted["sock"]).get("at_mark") is False, "at the mark before reading")
    urgent = probe.ok("recv", sock=accepted["sock"], urgent=True)
    _expect(urgent.get("data") == "!", f"recv urgent: {_shown(urgent)}, expected the last octet '!'")
    normal = probe.ok("recv", sock=accepted["sock"], timeout=3)
    _expect(normal.get("data") == "ab" and normal.get("at_mark") is True, f"recv after it: {_shown(normal)}")
    for sock in (accepted["sock"], conn["sock"], listener["sock"]):
        probe.ok("close", sock=sock)
    return "getsockopt reads what setsockopt set; urgent data: poll, sockatmark, recv urgent; connect local_addr"


def check_errno_names(probe: Probe, addr: str) -> str:
    probe.error("connect", "ECONNREFUSED", addr=addr, port=_port())
    port = _port()
    listener = probe.ok("listen", addr=addr, port=port)
    probe.error("listen", "EADDRINUSE", addr=addr, port=port)
    probe.ok("close", sock=listener["sock"])
    return "connect to a closed port: ECONNREFUSED; listen on a port listened on: EADDRINUSE"


def check_alive(probe: Probe, addr: str | None) -> str:
    probe.ok("ping")
    return "ping answered after every check"


Check = Callable[[Probe, Any], str]
CHECKS: tuple[tuple[str, Check, bool], ...] = (
    ("hello", check_hello, False),
    ("version", check_version, False),
    ("bad requests", check_bad_requests, False),
    ("state of no connection", check_state_of_nothing, False),
    ("listen, accept with timeout", check_listen_accept_timeout, True),
    ("a connection and its states", check_connection, True),
    ("socket options, urgent data", check_options_and_urgent, True),
    ("errors as errno names", check_errno_names, True),
    ("still alive", check_alive, False),
)


def play(client: AgentClient, addr: str | None, out: TextIO | None = None) -> list[Outcome]:
    """Every check against `client`, printed as it ends (on `out`, default standard output)."""
    probe, outcomes, out = Probe(client), [], out or sys.stdout
    for name, check, needs_addr in CHECKS:
        if needs_addr and addr is None:
            outcome = Outcome(name, "SKIP", "needs --addr ADDR (an address of the agent's host in 198.18.0.0/15)")
        else:
            try:
                outcome = Outcome(name, "PASS", check(probe, addr))
            except CheckFailed as exc:
                outcome = Outcome(name, "FAIL", str(exc))
        outcomes.append(outcome)
        print(f"{outcome.status} {name}: {outcome.detail}", file=out, flush=True)
    return outcomes


def checked_addr(text: str | None) -> str | None:
    """``--addr``: an address in the benchmarking ranges, the only ones the tool uses."""
    if text is None:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise HarnessError(f"--addr {text!r} is not an IP address") from None
    if not any(ip in ipaddress.ip_network(net) for net in ("198.18.0.0/15", "2001:2::/48")):
        raise HarnessError(f"--addr {text} is outside 198.18.0.0/15 and 2001:2::/48", "give the agent's test address")
    return ip.compressed


def run_agent_check(command: list[str], agent: str | None, token: str | None, addr: str | None) -> int:
    """The ``agent-check`` command: 0 when every check passed, 1 when one failed."""
    from ..targets.agent_client import parse_agent_address

    addr = checked_addr(addr)
    if agent is not None:
        if command:
            raise HarnessError("give --agent or a COMMAND, not both")
        address = parse_agent_address(agent, token)
        client = AgentClient.over_tcp(address)
        addr = addr or address.host
        what = str(address)
    else:
        command = command or [sys.executable, "-m", "conformance.inside.agent"]
        client = AgentClient(command)
        what = " ".join(command)
    print(f"agent-check: {what} (protocol {PROTOCOL}), kernel {client.kernel}", flush=True)
    try:
        outcomes = play(client, addr)
    finally:
        client.close()
    failed = [o.name for o in outcomes if o.status == "FAIL"]
    skipped = sum(1 for o in outcomes if o.status == "SKIP")
    passed = len(outcomes) - len(failed) - skipped
    print(f"{passed} passed, {len(failed)} failed, {skipped} skipped" + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def agent_arguments(p: argparse.ArgumentParser, prefix: str) -> None:
    """``--agent tcp:ADDR:PORT`` and ``--agent-token F`` (run, for a remote target; agent-check)."""
    p.add_argument(
        "--agent",
        metavar="tcp:ADDR:PORT",
        help=prefix + "an agent started there with python -m conformance.inside.agent --listen ADDR:PORT "
        "--token-file F (app steps, white-box states; docs/agent-protocol.md)",
    )
    p.add_argument("--agent-token", metavar="F", help="the file of the --agent's shared secret (its --token-file)")


def cmd_agent_check(args: argparse.Namespace) -> int:
    return run_agent_check(args.agent_command, args.agent, args.agent_token, args.addr)


def add_agent_check(sub: _SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``agent-check`` subcommand."""
    p_check = sub.add_parser(
        "agent-check", help="play the agent protocol (docs/agent-protocol.md) against an agent: PASS/FAIL per check"
    )
    p_check.add_argument(
        "agent_command",
        nargs="*",
        metavar="COMMAND",
        help="an agent speaking the protocol on stdin/stdout, after -- (default: python -m conformance.inside.agent)",
    )
    agent_arguments(p_check, "")
    p_check.add_argument(
        "--addr",
        metavar="ADDR",
        help="an address of the agent's host (198.18.0.0/15, 2001:2::/48) for the checks that listen and connect "
        "(default: --agent's; without one they are skipped)",
    )
    p_check.set_defaults(func=cmd_agent_check)
