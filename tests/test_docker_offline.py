"""Offline: the docker target's spec, and its discovery logic on fake inputs (docker inspect, netlink, sock_diag).

Nothing here runs docker, opens a socket or needs root (except the one setns test, skipped without it).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest

from conformance.core.errors import HarnessError
from conformance.core.loader import load_case
from conformance.targets import docker_discovery
from conformance.targets.base import TargetOptions
from conformance.targets.docker import DockerSpec, DockerTarget, choose_services
from conformance.targets.docker_discovery import (
    Container,
    Link,
    Network,
    container_facts,
    container_link,
    host_peer,
    link_of,
    listening_ports,
    network_addresses,
    pick_network,
)
from conformance.targets.docker_plumbing import bridge_ruleset, choose_prober_ip, choose_prober_ip6, tx_checksumming
from conformance.targets.grammar import parse_target

from .helpers import ROOT

CASES = ROOT / "cases"


# ------------------------------------------------------------------ spec
def test_docker_spec_forms() -> None:
    spec = parse_target("docker:web:8080")
    assert isinstance(spec, DockerSpec)
    assert (spec.container, spec.port, spec.closed_port, spec.prober_ip) == ("web", 8080, 9, None)
    spec = parse_target("docker:3f2a9c1b7d4e")
    assert isinstance(spec, DockerSpec) and spec.container == "3f2a9c1b7d4e" and spec.port is None
    spec = parse_target("docker:my_app.1-x:80", TargetOptions(closed_port=7, prober_ip="198.19.0.200"))
    assert isinstance(spec, DockerSpec)
    assert (spec.container, spec.port, spec.closed_port, spec.prober_ip) == ("my_app.1-x", 80, 7, "198.19.0.200")
    assert spec.kind == "docker" and set(spec.unavailable()) == {"echo", "http"}  # its own: listen, banner, closed


@pytest.mark.parametrize(
    ("text", "options", "problem"),
    [
        ("docker:", TargetOptions(), "expected docker:CONTAINER"),
        ("docker:a:1:2", TargetOptions(), "expected docker:CONTAINER"),
        ("docker:-rm:80", TargetOptions(), "not a container name"),
        ("docker:we b", TargetOptions(), "not a container name"),
        ("docker:web:0", TargetOptions(), "not a TCP port"),
        ("docker:web:", TargetOptions(), "not a TCP port"),
        ("docker:web:http", TargetOptions(), "not a TCP port"),
        ("docker:web:80", TargetOptions(closed_port=80), "listening port"),
        ("docker:web:80", TargetOptions(closed_port=0), "not a TCP port"),
        ("docker:web:80", TargetOptions(prober_ip="172.17.0.9"), r"outside 198\.18\.0\.0/15"),
        ("docker:web:80", TargetOptions(iface="eth0"), "--iface does not apply to a docker target"),
    ],
)
def test_bad_docker_specs(text: str, options: TargetOptions, problem: str) -> None:
    with pytest.raises(HarnessError, match=problem):
        parse_target(text, options)


def test_docker_skips_only_cases_that_set_sysctls() -> None:
    spec = parse_target("docker:web:80")
    sysctl = load_case(CASES / "handshake" / "synack-retransmit-ci.yaml")
    reason = spec.skip_reason(sysctl)
    assert reason is not None and "tcp_synack_retries=2" in reason and "docker container" in reason
    for path in ("data/retransmit-backoff.yaml", "closed/syn.yaml", "handshake/synack-ack.yaml"):
        assert spec.skip_reason(load_case(CASES / path)) is None, path  # banner, closed and listen all exist


# ------------------------------------------------------------------ docker inspect
def inspect(**over: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "Id": "f44e9fd86ecd273e2acc3d684ad5f610df3b7cdded0b01cf30035af156b00626",
        "Name": "/web",
        "State": {"Status": "running", "Running": True, "Paused": False, "Restarting": False, "Pid": 9006},
        "HostConfig": {"NetworkMode": "default"},
        "Config": {"Image": "busybox:test"},
        "NetworkSettings": {
            "Networks": {
                "bridge": {
                    "NetworkID": "ada2",
                    "IPAddress": "198.19.0.2",
                    "IPPrefixLen": 16,
                    "Gateway": "198.19.0.1",
                    "GlobalIPv6Address": "",
                    "GlobalIPv6PrefixLen": 0,
                    "IPv6Gateway": "",
                }
            }
        },
    }
    info.update(over)
    return info


def test_container_facts() -> None:
    c = container_facts(inspect(), "web")
    assert (c.name, c.pid, c.image, c.id[:12]) == ("web", 9006, "busybox:test", "f44e9fd86ecd")
    assert c.networks == (Network("bridge", "ada2", "198.19.0.2", 16, "198.19.0.1"),)
    assert pick_network(c).ip == "198.19.0.2"


@pytest.mark.parametrize(
    ("over", "problem"),
    [
        ({"State": {"Status": "exited", "Running": False, "Pid": 0}}, r"not running \(status: exited\)"),
        ({"State": {"Status": "paused", "Running": True, "Paused": True, "Pid": 5}}, "is paused"),
        ({"State": {"Status": "running", "Running": True, "Pid": 0}}, "no process"),
        ({"HostConfig": {"NetworkMode": "host"}}, "host's network namespace"),
        ({"HostConfig": {"NetworkMode": "container:db"}}, "shares the network namespace of container db"),
    ],
)
def test_containers_that_cannot_be_targets(over: dict[str, Any], problem: str) -> None:
    with pytest.raises(HarnessError, match=problem):
        container_facts(inspect(**over), "web")


def test_a_container_outside_the_benchmark_range_is_refused() -> None:
    c = Container("id", "web", "img", 1, (Network("bridge", "n", "172.17.0.2", 16, "172.17.0.1"),))
    with pytest.raises(HarnessError, match=r"no address in 198\.18\.0\.0/15 \(it has: 172\.17\.0\.2 on bridge\)"):
        pick_network(c)


def test_pick_network_takes_the_benchmark_one() -> None:
    c = Container(
        "id",
        "web",
        "img",
        1,
        (Network("a", "n1", "172.18.0.2", 16, ""), Network("lab", "n2", "198.18.250.2", 24, "198.18.250.1")),
    )
    assert pick_network(c).name == "lab"


def test_network_addresses() -> None:
    info = {
        "IPAM": {
            "Config": [
                {"Subnet": "198.18.250.0/24", "Gateway": "198.18.250.1", "AuxiliaryAddresses": {"r": "198.18.250.9"}}
            ]
        },
        "Containers": {
            "a": {"IPv4Address": "198.18.250.2/24", "IPv6Address": "2001:2:0:d1::2/64"},
            "b": {"IPv4Address": "198.18.250.3/24", "IPv6Address": ""},
        },
    }
    assert network_addresses(info) == {"198.18.250.1", "198.18.250.9", "198.18.250.2", "198.18.250.3", "2001:2:0:d1::2"}


# ------------------------------------------------------------------ links
class FakeMsg(dict[str, Any]):
    """Enough of a pyroute2 message: items and get_attr."""

    def __init__(self, attrs: dict[str, Any], **fields: Any) -> None:
        super().__init__(fields)
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


def test_link_of_reads_netlink_attributes() -> None:
    info = FakeMsg({"IFLA_INFO_KIND": "veth"})
    msg = FakeMsg(
        {"IFLA_IFNAME": "eth0", "IFLA_LINKINFO": info, "IFLA_LINK": 4, "IFLA_ADDRESS": "02:42:c6:13:00:02"}, index=3
    )
    addrs = [
        FakeMsg({"IFA_ADDRESS": "198.19.0.2"}, index=3, prefixlen=16),
        FakeMsg({"IFA_ADDRESS": "127.0.0.1"}, index=1, prefixlen=8),
    ]
    assert link_of(msg, addrs) == Link(3, "eth0", "veth", 4, "02:42:c6:13:00:02", 0, (("198.19.0.2", 16),))
    bare = link_of(FakeMsg({"IFLA_IFNAME": "lo"}, index=1))
    assert (bare.kind, bare.peer, bare.master) == ("", 0, 0)


INNER = Link(3, "eth0", "veth", 9, "02:42:c6:13:00:02", 0, (("198.19.0.2", 16),))


def test_container_link_and_its_host_peer() -> None:
    lo = Link(1, "lo", "", 0, "00:00:00:00:00:00", 0, (("127.0.0.1", 8),))
    assert container_link([lo, INNER], "198.19.0.2", "container web") == INNER
    host = [
        Link(2, "docker0", "bridge", 0, "02:42:9f:fe:72:41", 0, (("198.19.0.1", 16),)),
        Link(3, "vethother", "veth", 5, "aa:aa:aa:aa:aa:aa", 2),  # index 3 = inner's index: not the peer
        Link(9, "vethabc", "veth", 3, "fa:3b:d9:15:ee:00", 2),
    ]
    assert host_peer(host, INNER, "container web").name == "vethabc"


def test_host_peer_checks_both_directions() -> None:
    wrong_back = [Link(9, "veth9", "veth", 7, "fa:3b:d9:15:ee:00", 2)]  # index matches, its peer is another
    not_veth = [Link(9, "eth9", "", 0, "fa:3b:d9:15:ee:00")]
    for links in (wrong_back, not_veth, []):
        with pytest.raises(HarnessError, match="not in this network namespace") as err:
            host_peer(links, INNER, "container web")
        assert "where dockerd runs" in (err.value.hint or "")


def test_container_link_must_be_a_veth() -> None:
    macvlan = Link(5, "eth0", "macvlan", 2, "02:42:c6:13:00:02", 0, (("198.19.0.2", 16),))
    with pytest.raises(HarnessError, match="macvlan interface, not a veth"):
        container_link([macvlan], "198.19.0.2", "container web")
    with pytest.raises(HarnessError, match="no interface of container web holds 198.19.0.3"):
        container_link([INNER], "198.19.0.3", "container web")


# ------------------------------------------------------------------ services
def sock(addr: str, port: int, state: int = 10) -> dict[str, Any]:
    return {"local": [addr, port], "remote": ["0.0.0.0", 0], "state_num": state}


def test_listening_ports() -> None:
    sockets = [
        sock("::", 7000),  # busybox nc: a dual-stack IPv6 listener
        sock("0.0.0.0", 80),
        sock("198.19.0.2", 443),
        sock("::ffff:198.19.0.2", 8443),
        sock("127.0.0.1", 5432),  # loopback only: not reachable from the prober
        sock("198.19.0.2", 7000, state=1),  # an established connection, not a listener
        sock("198.19.0.3", 25),
    ]
    assert listening_ports(sockets, "198.19.0.2") == {7000, 80, 443, 8443}


def spec(port: int | None = None, closed: int = 9) -> DockerSpec:
    return DockerSpec(f"docker:web{'' if port is None else f':{port}'}", container="web", port=port, closed_port=closed)


def test_choose_services() -> None:
    assert choose_services(spec(), {7000}, "container web") == {"listen": 7000, "banner": 7001, "closed": 9}
    assert choose_services(spec(80), {80, 7001, 7002}, "container web") == {"listen": 80, "banner": 7003, "closed": 9}
    assert choose_services(spec(7001, closed=7002), {7001}, "c")["banner"] == 7003


@pytest.mark.parametrize(
    ("the_spec", "listening", "problem"),
    [
        (spec(), set(), "nothing listens in container web"),
        (spec(), {80, 443}, r"listens on several ports \(80, 443\)"),
        (spec(8080), {80}, r"nothing listens on port 8080 in container web \(listening: 80\)"),
        (spec(80), {80, 9}, "--closed-port 9: container web listens on it"),
    ],
)
def test_choose_services_errors(the_spec: DockerSpec, listening: set[int], problem: str) -> None:
    with pytest.raises(HarnessError, match=problem):
        choose_services(the_spec, listening, "container web")


# ------------------------------------------------------------------ prober address
NET16 = ipaddress.IPv4Network("198.19.0.0/16")


def test_prober_is_the_highest_free_address() -> None:
    assert choose_prober_ip(NET16, {"198.19.0.1", "198.19.0.2"}) == "198.19.255.254"
    assert choose_prober_ip(NET16, {"198.19.255.254", "198.19.255.253"}) == "198.19.255.252"
    assert choose_prober_ip(ipaddress.IPv4Network("198.18.250.0/24"), set()) == "198.18.250.254"


def test_prober_option_is_checked() -> None:
    assert choose_prober_ip(NET16, {"198.19.0.2"}, "198.19.0.77") == "198.19.0.77"
    with pytest.raises(HarnessError, match="not a host address of the container's subnet"):
        choose_prober_ip(NET16, set(), "198.18.0.77")
    with pytest.raises(HarnessError, match="not a host address"):
        choose_prober_ip(NET16, set(), "198.19.255.255")
    with pytest.raises(HarnessError, match="in use"):
        choose_prober_ip(NET16, {"198.19.0.1"}, "198.19.0.1")


def test_prober_never_leaves_the_benchmark_range() -> None:
    # a subnet whose top lies outside 198.18.0.0/15: no candidate near the top qualifies
    with pytest.raises(HarnessError, match="no free address"):
        choose_prober_ip(ipaddress.IPv4Network("198.16.0.0/13"), set())
    with pytest.raises(HarnessError, match="no room"):
        choose_prober_ip(ipaddress.IPv4Network("198.19.0.2/31"), set())


def test_prober_ip6() -> None:
    net = ipaddress.IPv6Network("2001:2:0:d1::/64")
    assert choose_prober_ip6(net, set()) == "2001:2:0:d1:ffff:ffff:ffff:fffe"
    assert choose_prober_ip6(net, {"2001:2:0:d1:ffff:ffff:ffff:fffe"}) == "2001:2:0:d1:ffff:ffff:ffff:fffd"
    assert choose_prober_ip6(ipaddress.IPv6Network("2001:db8::/64"), set()) is None  # outside 2001:2::/48


# ------------------------------------------------------------------ host plumbing
def test_bridge_ruleset_text() -> None:
    assert bridge_ruleset("conformance_4242", "vethec02c5e", "02:CF:C6:13:FF:FE") == (
        "table bridge conformance_4242\n"
        "delete table bridge conformance_4242\n"
        "table bridge conformance_4242 {\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        '\t\tiifname "vethec02c5e" ether daddr 02:cf:c6:13:ff:fe counter drop\n'
        "\t}\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        '\t\tiifname "vethec02c5e" ether daddr 02:cf:c6:13:ff:fe counter drop\n'
        "\t}\n"
        "}\n"
    )


@pytest.mark.parametrize(
    ("table", "port", "mac"),
    [
        ("evil; flush ruleset", "veth0", "02:cf:00:00:00:01"),
        ("conformance_1", 'veth0" accept', "02:cf:00:00:00:01"),
        ("conformance_1", "a-very-long-ifname0", "02:cf:00:00:00:01"),
        ("conformance_1", "veth0", "02:cf:00:00:00"),
    ],
)
def test_bridge_ruleset_refuses_anything_but_plain_values(table: str, port: str, mac: str) -> None:
    with pytest.raises(ValueError):
        bridge_ruleset(table, port, mac)


def test_tx_checksumming() -> None:
    on = "Features for eth0:\nrx-checksumming: on\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n"
    assert tx_checksumming(on) is True
    assert tx_checksumming("tx-checksumming: off [fixed]\n") is False
    assert tx_checksumming("Features for eth0:\n") is None


@pytest.mark.skipif(os.geteuid() != 0, reason="setns needs CAP_SYS_ADMIN")
def test_in_netns_runs_on_a_thread_of_its_own() -> None:
    import threading

    main = threading.get_ident()
    assert docker_discovery.in_netns("/proc/self/ns/net", threading.get_ident) != main
    with pytest.raises(FileNotFoundError):
        docker_discovery.in_netns("/nonexistent/ns", lambda: 1)


# ------------------------------------------------------------------ undo
def test_undo_runs_newest_first_and_reports_what_failed(capsys: pytest.CaptureFixture[str]) -> None:
    """A step that fails does not stop the others, and is said, not raised (the run's reports are still due)."""
    target = DockerTarget(spec(80), 0)
    done: list[str] = []

    def boom() -> None:
        raise OSError("gone")

    target.undo.later("first", lambda: done.append("first"))
    target.undo.later("second", boom)
    target.undo.later("third", lambda: done.append("third"))
    target.__exit__(None, None, None)
    assert done == ["third", "first"]
    assert "warning: could not undo everything on the docker target: second: gone" in capsys.readouterr().err
    assert target.close() == []  # nothing left to undo


def test_one_docker_target_per_run() -> None:
    with pytest.raises(HarnessError, match="opens a docker target once"):
        DockerTarget(spec(80), 1)
    with pytest.raises(HarnessError, match="opens a docker target once"):
        DockerTarget(spec(80), 0, {"tcp_synack_retries": 2})


def test_cleanup_knows_attached_container_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import json

    from pyroute2 import netns as pr_netns

    from conformance.targets import netns, records
    from conformance.wire import firewall

    dead = 999_999_999  # no such pid
    names = [f"cfd-{dead}-0", "cfd-31999-keepme", "cfdockh-1", "lab1"]
    monkeypatch.setattr(pr_netns, "listnetns", lambda: list(names))
    monkeypatch.setattr(pr_netns, "remove", names.remove)
    monkeypatch.setattr(records, "RECORD_DIR", tmp_path)
    (tmp_path / f"{dead}-1").write_text(json.dumps({"pid": dead, "start": 1, "made": [["netns", f"cfd-{dead}-0"]]}))
    monkeypatch.setattr(firewall, "tables_named_like_ours", lambda: [])
    done = netns.cleanup()
    assert done.removed == [f"cfd-{dead}-0"]  # recorded by a dead run
    assert done.left == ["cfd-31999-keepme: not ours, left in place"]


# ------------------------------------------------------------------ examples
def test_examples_agree_with_each_other_and_the_address_rules() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "examples" / "docker-compose.yml").read_text())
    workflow = (ROOT / "examples" / "github-actions.yml").read_text()
    yaml.safe_load(workflow)
    (subnet,) = [c["subnet"] for c in compose["networks"]["lab"]["ipam"]["config"]]
    assert ipaddress.IPv4Network(subnet).subnet_of(ipaddress.IPv4Network("198.19.0.0/16"))
    target = compose["services"]["target"]
    assert ipaddress.IPv4Address(target["networks"]["lab"]["ipv4_address"]) in ipaddress.IPv4Network(subnet)
    assert "7000" in target["command"][-1]
    spec = parse_target(f"docker:{target['container_name']}:7000")  # what the workflow runs
    assert f"--target {spec.text}" in workflow
    assert "examples/docker-compose.yml" in workflow and "junit.xml" in workflow
