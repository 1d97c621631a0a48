"""--service KIND=PORT, the skips it decides before a run (list --target), and the echo and http services."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from conformance.core.errors import HarnessError
from conformance.core.loader import discover
from conformance.inside.services import HANDLERS, HTTP_BODY, HTTP_HEAD
from conformance.run.runner import plan_of
from conformance.targets.base import TargetOptions, parse_service
from conformance.targets.grammar import parse_target

CASES = discover([Path(__file__).resolve().parent.parent / "cases"])


def test_parse_service() -> None:
    assert parse_service("http=80") == ("http", 80)
    assert parse_service("ECHO = 7") == ("echo", 7)
    for wrong in ("smtp=25", "http", "http=0", "http=x"):
        with pytest.raises(HarnessError):
            parse_service(wrong)


def test_a_remote_host_has_the_services_named() -> None:
    spec = parse_target("198.18.2.2:80", TargetOptions(services=(("http", 80), ("echo", 7))))
    assert spec.services() == {"listen": 80, "closed": 9, "http": 80, "echo": 7}
    assert set(spec.unavailable()) == {"banner"}
    assert "--service banner=PORT" in spec.unavailable()["banner"]


def test_service_refused_where_the_tool_owns_the_services_or_on_the_closed_port() -> None:
    with pytest.raises(HarnessError, match="--service do"):
        parse_target("embedded", TargetOptions(services=(("http", 80),)))
    with pytest.raises(HarnessError, match="the closed port"):
        parse_target("198.18.2.2:80", TargetOptions(services=(("echo", 9),)))


def test_plan_of_an_http_only_host() -> None:
    plan = dict(
        (c.id, why) for c, why in plan_of(CASES, "198.18.2.2:80", TargetOptions(services=(("http", 80),)), "both")
    )
    assert plan["active-close-http"] is None and plan["data-retransmit-backoff-http"] is None
    assert "'echo' service" in (plan["passive-close-echo"] or "")
    assert "needs the target agent" in (plan["active-close"] or "")
    assert "no IPv6 address" in (plan["active-close-http.ipv6"] or "")


def test_the_embedded_target_plays_every_service() -> None:
    plan = plan_of(CASES, "embedded", TargetOptions(), ip="4")
    assert [c.id for c, why in plan if why is not None] == []


def _served(service: str, request: bytes) -> bytes:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    threading.Thread(target=lambda: HANDLERS[service](server.accept()[0]), daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(request)
        if service == "echo":
            c.shutdown(socket.SHUT_WR)
        got = b""
        while data := c.recv(65536):
            got += data
            if service == "http" and len(got) >= len(HTTP_HEAD + HTTP_BODY):
                break
    server.close()
    return got


def test_echo_and_http_services() -> None:
    assert _served("echo", b"conformance") == b"conformance"
    assert _served("http", b"GET / HTTP/1.0\r\n\r\n") == HTTP_HEAD + HTTP_BODY
