"""What every target kind shares: the options, the spec a ``--target`` parses to, the addresses the tool may
send to, and the :class:`Endpoint` an opened target gives the wire and the runner.

May import: :mod:`conformance.core`, :mod:`conformance.wire`, and this package's :mod:`agent_client`.

Target specifications: what ``--target`` (and its options) names, parsed before anything is made.

=====================  ==============================================  =========================
``--target``           what                                            module
=====================  ==============================================  =========================
``embedded``           a fresh Linux namespace (the default)           :mod:`conformance.targets.netns`
``netns:NAME``         a namespace you made                            :mod:`conformance.targets.netns`
``HOST:PORT``          a remote host, black box                        :mod:`conformance.targets.remote`
``tap:IF:ADDR[:PORT]`` a stack on the other side of a TAP device       :mod:`conformance.targets.tap`
``link:IF:ADDR...``    a stack on the other side of interface IF       :mod:`conformance.targets.link`
``docker:NAME[:PORT]`` a running docker container, from its host       :mod:`conformance.targets.docker`
=====================  ==============================================  =========================

HOST and ADDR are an IPv4 address, an IPv6 address in brackets, or one of each
joined by a comma: ``198.18.2.2``, ``[2001:2:0:2::2]``, ``198.18.2.2,[2001:2:0:2::2]``
(:func:`parse_addresses`); the cases are played over the families given.

A spec knows, before the target is opened, which services it has and whether
cases may set sysctls on it, so the runner can skip the cases a target cannot
play (with the reason) instead of opening targets for them.

Every address the tool sends to must be in 198.18.0.0/15, the range RFC 2544
reserves for benchmarking network devices, or in 2001:2::/48, its IPv6
counterpart (RFC 5180): :func:`benchmark_address` and :func:`benchmark_address6`
refuse anything else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar, runtime_checkable

from ..core.errors import HarnessError
from ..core.params import Params, resolve
from .agent_client import AgentClient

if TYPE_CHECKING:
    from ..core.model import Case

#: RFC 2544 §C.2.2 / RFC 6890: the benchmarking range, the only IPv4 one the tool sends to.
BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")
#: RFC 5180 §5 / RFC 6890: the IPv6 benchmarking range, the only IPv6 one the tool sends to.
BENCHMARK_NET6 = ipaddress.IPv6Network("2001:2::/48")
#: The port the `closed` service uses on targets we do not set up: discard (RFC 863), which must be closed there.
DEFAULT_CLOSED_PORT = 9
#: The services a case can ask for by name (its ``service:``), each with what a server of it does. The user names
#: a target's ones with ``--service KIND=PORT``; a case of a kind is played against the target's port of it.
#: (``agent``, a port of the case's own driven by app steps, needs the target agent: no --service gives it.)
SERVICES = {
    "listen": "accepts and reads what we send (any server)",
    "banner": "sends a greeting on accept, then reads (SMTP, FTP, SSH servers)",
    "echo": "sends back what it reads (RFC 862, port 7)",
    "http": "answers an HTTP/1.0 request and closes first (any web server)",
    "closed": "a port nobody listens on (default 9, discard)",
}


@dataclass(frozen=True)
class TargetOptions:
    """The ``run`` options that belong to a target kind (None: not given)."""

    iface: str | None = None  # remote: the prober's interface
    closed_port: int | None = None  # remote, tap, docker: the port of the `closed` service
    prober_ip: str | None = None  # tap, docker: the prober's address (tap: one of each family, comma-separated)
    #: remote, tap, link, docker: ``--service KIND=PORT``, the target's services beyond its own (kind, port)
    services: tuple[tuple[str, int], ...] = ()
    #: remote: ``--agent tcp:ADDR:PORT``, an agent the user started there with --listen, and its ``--agent-token``
    agent: str | None = None
    agent_token: str | None = None


def parse_service(text: str) -> tuple[str, int]:
    """``--service KIND=PORT`` (KIND one of :data:`SERVICES`) as (kind, port)."""
    kind, eq, port = text.partition("=")
    kind = kind.strip().lower()
    if not eq or kind not in SERVICES:
        kinds = ", ".join(SERVICES)
        raise HarnessError(
            f"--service {text[:40]!r}: expected KIND=PORT with KIND one of {kinds}",
            "e.g. --service http=80 --service echo=7 --service closed=9",
        )
    return kind, parse_port(port.strip(), f"--service {kind}: port")


def benchmark_address(text: str, what: str) -> str:
    """`text` as a dotted IPv4 address, which must lie in 198.18.0.0/15; HarnessError otherwise."""
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        raise HarnessError(
            f"{what} {text!r} is not an IPv4 address",
            "give a dotted IPv4 address in 198.18.0.0/15 (names are not resolved)",
        ) from None
    if ip not in BENCHMARK_NET:
        raise HarnessError(
            f"{what} {ip} is outside 198.18.0.0/15: refused",
            "the tool only sends to the benchmarking range 198.18.0.0/15 (RFC 2544); put the target in a lab "
            "network addressed from it",
        )
    return str(ip)


def benchmark_address6(text: str, what: str) -> str:
    """`text` as an IPv6 address (compressed), which must lie in 2001:2::/48; HarnessError otherwise."""
    if "%" in text:  # ipaddress takes a zone (fe80::1%eth0); the tool picks the interface itself
        raise HarnessError(
            f"{what} {text!r}: an address with a zone (%NAME) is not allowed",
            "give the address alone, e.g. [2001:2:0:2::2]; the interface is the route's (or --iface for a remote host)",
        )
    try:
        ip = ipaddress.IPv6Address(text)
    except ValueError:
        raise HarnessError(
            f"{what} {text!r} is not an IPv6 address", "give an IPv6 address in 2001:2::/48 (names are not resolved)"
        ) from None
    if ip not in BENCHMARK_NET6:
        raise HarnessError(
            f"{what} {ip.compressed} is outside 2001:2::/48: refused",
            "the tool only sends to the IPv6 benchmarking range 2001:2::/48 (RFC 5180); put the target in a lab "
            "network addressed from it",
        )
    return ip.compressed


def split_addresses(text: str, what: str) -> tuple[list[str], str]:
    """The comma-separated addresses at the start of `text` (an IPv6 one in brackets, which stay on it) and what
    follows them (``:PORT``, or nothing): ``198.18.2.2,[2001:2::2]:80`` -> (["198.18.2.2", "[2001:2::2]"], ":80")."""
    found: list[str] = []
    at = 0
    while True:
        if text.startswith("[", at):
            end = text.find("]", at)
            if end < 0:
                raise HarnessError(f"{what}: a '[' without its ']'", "write an IPv6 address as [2001:2:0:2::2]")
            end += 1
        else:
            end = at
            while end < len(text) and text[end] not in ",:":
                end += 1
        found.append(text[at:end])
        at = end
        if not text.startswith(",", at):
            return found, text[at:]
        at += 1


def parse_addresses(items: list[str], what: str) -> tuple[str | None, str | None]:
    """(IPv4, IPv6) from addresses as :func:`split_addresses` found them: at most one of each family, at least
    one, each in its benchmarking range; HarnessError otherwise."""
    ip4: str | None = None
    ip6: str | None = None
    for item in items:
        if item.startswith("[") and item.endswith("]"):
            if ip6 is not None:
                raise HarnessError(f"{what}: two IPv6 addresses", "give at most one of each family")
            ip6 = benchmark_address6(item[1:-1], what)
        elif item:
            if ip4 is not None:
                raise HarnessError(f"{what}: two IPv4 addresses", "give at most one of each family")
            if not _is_ipv4(item):
                raise HarnessError(
                    f"{what} {item!r} is not an IPv4 address",
                    "give an IPv4 address in 198.18.0.0/15, an IPv6 one in 2001:2::/48 in brackets, or one of each "
                    "(198.18.2.2,[2001:2:0:2::2]); names are not resolved",
                )
            ip4 = benchmark_address(item, what)
    if ip4 is None and ip6 is None:
        raise HarnessError(f"{what}: no address")
    return ip4, ip6


def parse_hosts_port(
    text: str, what: str, role: str, form: str, example: str
) -> tuple[str | None, str | None, str | None]:
    """``ADDRS[:PORT]`` (ADDRS as in :func:`split_addresses`): (IPv4, IPv6, the port's text or None).

    `what` names the whole option in errors about its form, `role` the addresses in errors about one of them."""
    items, rest = split_addresses(text, what)
    if not items or "" in items:
        raise HarnessError(f"{what}: expected {form}", f"e.g. {example}")
    if rest and (not rest.startswith(":") or ":" in rest[1:]):
        unbracketed = items[-1] + rest
        if any(_is_ipv6(t) for t in (unbracketed, unbracketed.rpartition(":")[0])):
            raise HarnessError(
                f"{what}: an IPv6 address goes in brackets", "e.g. [2001:2:0:2::2]:80 or 198.18.2.2,[2001:2:0:2::2]:80"
            )
        raise HarnessError(f"{what}: expected {form}", f"e.g. {example}")
    ip4, ip6 = parse_addresses(items, role)
    return ip4, ip6, (rest[1:] if rest else None)


def _is_ipv4(text: str) -> bool:
    return _is_address(ipaddress.IPv4Address, text)


def _is_ipv6(text: str) -> bool:
    return _is_address(ipaddress.IPv6Address, text)


def _is_address(family: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address], text: str) -> bool:
    try:
        family(text)
    except ValueError:
        return False
    return True


def parse_port(text: str, what: str) -> int:
    """A TCP port written in ASCII digits (``str.isdigit`` and ``int`` take other scripts' digits, and ``²``)."""
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise HarnessError(f"{what} {text[:20]!r} is not a TCP port", "give a number from 1 to 65535")
    return int(text)


_PORT = re.compile(r"[0-9]{1,5}")


def closed_port(options: TargetOptions, listen: int | None, where: str = "") -> int:
    """``--closed-port`` (default 9, discard): a TCP port other than the listening one; `where` (e.g. "on the
    target") says in the hint where the port must be closed."""
    closed = DEFAULT_CLOSED_PORT if options.closed_port is None else options.closed_port
    if not 1 <= closed <= 65535:
        raise HarnessError(f"--closed-port {closed} is not a TCP port (1-65535)")
    if closed == listen:
        raise HarnessError(
            f"--closed-port {closed} is the listening port of the target",
            f"give a port that is closed {where} (default 9, discard)" if where else "",
        )
    return closed


@dataclass(frozen=True)
class TargetSpec:
    """A parsed ``--target``; subclasses add what their kind needs."""

    text: str
    #: ``--service KIND=PORT``: services the user says the target has, beyond the kind's own (:meth:`own_services`).
    given_services: tuple[tuple[str, int], ...] = ()
    kind: ClassVar[str] = "?"
    #: Why cases cannot set sysctls on this kind of target (None: they can).
    no_sysctls: ClassVar[str | None] = None
    #: Whether the tool runs its agent on this kind of target (app steps and white-box states need it).
    has_agent: ClassVar[bool] = False

    def families(self) -> frozenset[int]:
        """The address families the target is known to have before it is opened (4, 6)."""
        return frozenset((4, 6))

    def refuses_sysctls(self) -> str | None:
        """Why cases cannot set sysctls on this target (None: they can); :attr:`no_sysctls` unless a spec knows more."""
        return self.no_sysctls

    def own_services(self) -> dict[str, int]:
        """The services this kind knows by itself (its listening port, the closed one): kind -> port."""
        return {}

    def services(self) -> dict[str, int]:
        """Every service known before the target is opened, kind -> port: the kind's own, then ``--service``'s."""
        return {**self.own_services(), **dict(self.given_services)}

    def lacks(self, service: str) -> str:
        """Why this target has no `service` (when :meth:`services` has none)."""
        return f"none given (name the target's port of it: --service {service}=PORT)"

    def unavailable(self) -> dict[str, str]:
        """Services this target does not have, each with the reason."""
        have = self.services()
        return {kind: self.lacks(kind) for kind in SERVICES if kind not in have}

    def skip_reason(self, case: Case) -> str | None:
        """Why `case` cannot be played on this target (it is then reported as skipped), or None."""
        refused = self.refuses_sysctls()
        if case.sysctls and refused:
            names = ", ".join(f"{k}={v}" for k, v in sorted(case.sysctls.items()))
            return f"the case sets target sysctls ({names}); {refused}"
        if case.needs_agent and not self.has_agent:
            return "needs the target agent (app steps); this target has none"
        why = self.unavailable().get(case.service)
        if why:
            return f"the case needs the {case.service!r} service: {why}"
        return None


@dataclass
class Endpoint:
    """Everything the wire and the runner need to reach a target."""

    iface: str
    netns: str | None  # namespace the prober interface lives in (None: this one)
    our_mac: str
    target_mac: str
    #: IPv4 addresses (198.18.0.0/15); None when the target is reached over IPv6 only.
    our_ip: str | None
    target_ip: str | None
    ports: dict[str, int]
    params: Params
    description: str
    kind: str = "netns"
    sysctls: dict[str, int] = field(default_factory=dict)
    #: The agent in the target's namespace, when the target has one.
    agent: AgentClient | None = None
    #: IPv6 addresses (2001:2::/48), when the target has IPv6.
    our_ip6: str | None = None
    target_ip6: str | None = None
    #: The MAC IPv6 frames go to, when it differs from `target_mac`.
    target_mac6: str | None = None
    #: The prefix length of the target's IPv4 subnet, when the tool set it up (its directed broadcast).
    prefix: int | None = None
    #: The target's second address of each family, on the same link and subnet, when the tool set one up (the
    #: embedded target: ``secondary`` in a case, RFC 9293 §3.9.1.1); cases that name it are skipped elsewhere.
    secondary_ip: str | None = None
    secondary_ip6: str | None = None


def joined(*addresses: str | None) -> str:
    """The addresses given, comma-separated, for a description: ``198.18.2.2, 2001:2:0:2::2``."""
    return ", ".join(a for a in addresses if a is not None)


def black_box_endpoint(
    kind: str,
    iface: str,
    our_mac: str,
    *,
    macs: tuple[str, str | None],
    ours: tuple[str | None, str | None],
    theirs: tuple[str | None, str | None],
    ports: dict[str, int],
    description: str,
) -> Endpoint:
    """The Endpoint of a target reached from this namespace that the tool cannot look into (remote, tap): no
    namespace and no agent; its parameters are the documented defaults, its sysctls unknown.

    `macs` is (the target's MAC, the MAC of its IPv6 frames when it differs); `ours` and `theirs` are
    (IPv4, IPv6) addresses, None for a family the target lacks."""
    return Endpoint(
        iface=iface,
        netns=None,
        our_mac=our_mac,
        target_mac=macs[0],
        target_mac6=macs[1],
        our_ip=ours[0],
        target_ip=theirs[0],
        our_ip6=ours[1],
        target_ip6=theirs[1],
        ports=ports,
        params=resolve({}),
        description=description,
        kind=kind,
    )


Opened_co = TypeVar("Opened_co", covariant=True)


@runtime_checkable
class Target(Protocol[Opened_co]):
    """The interface every target kind has: a context manager that sets the target up and takes it down.

    The runner (:func:`conformance.run.runner.open_target`) does nothing else with a target: it constructs the
    kind's class from its parsed spec, enters it, plays the cases against what ``__enter__`` returned, and exits
    it. ``Opened_co`` is what ``__enter__`` returns: the :class:`Endpoint` (netns, remote and docker, for which the
    runner opens a :class:`~conformance.wire.capture.Wire` on ``Endpoint.iface``), or ``(Endpoint, wire)`` for a
    kind that brings its own wire (tap, whose frames go through a descriptor, not an interface).

    The contract:

    * ``__init__`` only records: it makes nothing, so a target can be built (and tested) without root.
    * ``__enter__`` makes everything and returns what the run needs; if it fails halfway it undoes what it made
      before raising (``__exit__`` is not called then), and raises
      :class:`~conformance.core.errors.HarnessError` with what to do for anything the user can fix.
    * ``__exit__`` removes everything ``__enter__`` made, also after an interrupted run; it does not raise for
      what it could not undo (the run's reports are still to be written): it says so on stderr.
    * ``endpoint`` is the Endpoint once entered (None before).

    To add a kind: a :class:`TargetSpec` subclass and a ``parse_KIND(text, options)`` in a new module of this
    package (see :mod:`conformance.targets.tap` for a small one), the form in :func:`grammar.parse_target`, a class
    satisfying this protocol, and its construction in ``open_target``. Every address it sends to must pass
    :func:`benchmark_address` or :func:`benchmark_address6`.
    """

    @property
    def endpoint(self) -> Endpoint | None: ...

    def __enter__(self) -> Opened_co: ...

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None: ...
