"""Target specifications: what ``--target`` (and its options) names, parsed before anything is made.

=====================  ==============================================  =========================
``--target``           what                                            module
=====================  ==============================================  =========================
``embedded``           a fresh Linux namespace (the default)           :mod:`conformance.netns`
``netns:NAME``         a namespace you made                            :mod:`conformance.netns`
``HOST:PORT``          a remote host, black box                        :mod:`conformance.remote`
``tap:IF:ADDR[:PORT]`` a stack on the other side of a TAP device       :mod:`conformance.tap`
``docker:NAME[:PORT]`` a running docker container, from its host       :mod:`conformance.docker`
=====================  ==============================================  =========================

A spec knows, before the target is opened, which services it has and whether
cases may set sysctls on it, so the runner can skip the cases a target cannot
play (with the reason) instead of opening targets for them.

Every address the tool sends to must be in 198.18.0.0/15, the range RFC 2544
reserves for benchmarking network devices: :func:`benchmark_address` refuses
anything else.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .errors import HarnessError

if TYPE_CHECKING:
    from .model import Case

#: RFC 2544 §C.2.2 / RFC 6890: the benchmarking range, the only one the tool sends to.
BENCHMARK_NET = ipaddress.IPv4Network("198.18.0.0/15")
#: The port the `closed` service uses on targets we do not set up: discard (RFC 863), which must be closed there.
DEFAULT_CLOSED_PORT = 9
FORMS = (
    "embedded, netns:NAME, HOST:PORT (a remote IPv4 host in 198.18.0.0/15), tap:IFNAME:ADDR[:PORT] or "
    "docker:CONTAINER[:PORT]"
)


@dataclass(frozen=True)
class TargetOptions:
    """The ``run`` options that belong to a target kind (None: not given)."""

    iface: str | None = None  # remote: the prober's interface
    closed_port: int | None = None  # remote, tap, docker: the port of the `closed` service
    prober_ip: str | None = None  # tap, docker: the prober's address


def benchmark_address(text: str, what: str) -> str:
    """`text` as a dotted IPv4 address, which must lie in 198.18.0.0/15; HarnessError otherwise."""
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        raise HarnessError(
            f"{what} {text!r} is not an IPv4 address",
            "give a dotted IPv4 address in 198.18.0.0/15 (names are not resolved; IPv6 is not supported)",
        ) from None
    if ip not in BENCHMARK_NET:
        raise HarnessError(
            f"{what} {ip} is outside 198.18.0.0/15: refused",
            "the tool only sends to the benchmarking range 198.18.0.0/15 (RFC 2544); put the target in a lab "
            "network addressed from it",
        )
    return str(ip)


def parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise HarnessError(f"{what} {text!r} is not a TCP port (1-65535)")
    return int(text)


@dataclass(frozen=True)
class TargetSpec:
    """A parsed ``--target``; subclasses add what their kind needs."""

    text: str
    kind: ClassVar[str] = "?"
    #: Why cases cannot set sysctls on this kind of target (None: they can).
    no_sysctls: ClassVar[str | None] = None

    def unavailable(self) -> dict[str, str]:
        """Services this target does not have, each with the reason."""
        return {}

    def skip_reason(self, case: Case) -> str | None:
        """Why `case` cannot be played on this target (it is then reported as skipped), or None."""
        if case.sysctls and self.no_sysctls:
            names = ", ".join(f"{k}={v}" for k, v in sorted(case.sysctls.items()))
            return f"the case sets target sysctls ({names}); {self.no_sysctls}"
        why = self.unavailable().get(case.service)
        if why:
            return f"the case needs the {case.service!r} service: {why}"
        return None


@dataclass(frozen=True)
class NamespaceSpec(TargetSpec):
    """``embedded`` (existing None) or ``netns:NAME``."""

    existing: str | None = None
    kind: ClassVar[str] = "netns"


def _refuse_options(options: TargetOptions, allowed: set[str], kind: str) -> None:
    given = {
        "--iface": options.iface is not None,
        "--closed-port": options.closed_port is not None,
        "--prober-ip": options.prober_ip is not None,
    }
    wrong = [name for name, on in given.items() if on and name not in allowed]
    if wrong:
        raise HarnessError(
            f"{', '.join(wrong)} do{'es' if len(wrong) == 1 else ''} not apply to "
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} target",
            "--iface goes with --target HOST:PORT, --prober-ip with tap:... and docker:..., --closed-port with "
            "any of these three",
        )


def parse_target(text: str, options: TargetOptions | None = None) -> TargetSpec:
    """Parse ``--target`` with its options; HarnessError (saying what is valid) when it is wrong."""
    from .docker import parse_docker
    from .remote import parse_remote
    from .tap import parse_tap

    options = options or TargetOptions()
    if text == "embedded":
        _refuse_options(options, set(), "embedded")
        return NamespaceSpec(text)
    if text.startswith("netns:"):
        if not text[6:]:
            raise HarnessError("--target netns: needs a namespace name", f"use one of: {FORMS}")
        _refuse_options(options, set(), "netns")
        return NamespaceSpec(text, existing=text[6:])
    if text.startswith("tap:"):
        _refuse_options(options, {"--closed-port", "--prober-ip"}, "tap")
        return parse_tap(text, options)
    if text.startswith("docker:"):
        _refuse_options(options, {"--closed-port", "--prober-ip"}, "docker")
        return parse_docker(text, options)
    if ":" in text:
        _refuse_options(options, {"--iface", "--closed-port"}, "remote")
        return parse_remote(text, options)
    raise HarnessError(f"unknown target {text!r}", f"use one of: {FORMS}")
