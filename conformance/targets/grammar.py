"""The ``--target`` grammar: which kind of target a ``--target`` names, with the options that kind takes.

Each kind parses its own form (:func:`~conformance.targets.tap.parse_tap`, ...); this module picks the kind.
"""

from __future__ import annotations

import dataclasses
import re

from ..core.errors import HarnessError
from .base import TargetOptions, TargetSpec
from .docker import parse_docker
from .link import parse_link
from .netns import NamespaceSpec
from .remote import parse_remote
from .tap import parse_tap

FORMS = (
    "embedded, netns:NAME, HOST:PORT (a remote host: 198.18.2.2:80, [2001:2:0:2::2]:80 or both, "
    "198.18.2.2,[2001:2:0:2::2]:80), tap:IFNAME:ADDR[:PORT] (ADDR like HOST), link:IFNAME:ADDR[:PORT] (a stack "
    "on IFNAME's other side) or docker:CONTAINER[:PORT]"
)
#: A name `ip netns add` makes: a file under /var/run/netns, so no "/" and not "." or "..".
_NETNS = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def _refuse_options(options: TargetOptions, allowed: set[str], kind: str) -> None:
    given = {
        "--iface": options.iface is not None,
        "--closed-port": options.closed_port is not None,
        "--prober-ip": options.prober_ip is not None,
        "--service": bool(options.services),
    }
    wrong = [name for name, on in given.items() if on and name not in allowed]
    if wrong:
        raise HarnessError(
            f"{', '.join(wrong)} do{'es' if len(wrong) == 1 else ''} not apply to "
            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} target",
            "--iface goes with --target HOST:PORT, --prober-ip with tap:..., link:... and docker:..., --closed-port "
            "and --service with any of these four (the embedded target and netns: have the tool's own services)",
        )


def parse_target(text: str, options: TargetOptions | None = None) -> TargetSpec:
    """Parse ``--target`` with its options; HarnessError (saying what is valid) when it is wrong."""
    options = options or TargetOptions()
    spec = _parse_kind(text, options)
    if not options.services:
        return spec
    closed = spec.services().get("closed")
    for kind, port in options.services:
        if port == closed:
            raise HarnessError(
                f"--service {kind}={port}: port {port} is the closed port, which must be closed",
                "give the closed one with --service closed=PORT (default 9)",
            )
    kinds = [kind for kind, _ in options.services]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise HarnessError(f"--service {twice[0]} given twice", "give one port of each kind")
    return dataclasses.replace(spec, given_services=options.services)


def _parse_kind(text: str, options: TargetOptions) -> TargetSpec:
    if text == "embedded":
        _refuse_options(options, set(), "embedded")
        return NamespaceSpec(text)
    if text.startswith("netns:"):
        if not text[6:]:
            raise HarnessError("--target netns: needs a namespace name", f"use one of: {FORMS}")
        if not _NETNS.fullmatch(text[6:]):
            raise HarnessError(
                f"--target {text[:80]!r}: {text[6:][:70]!r} is not a namespace name",
                "give a name as `ip netns list` shows it: letters, digits, '_', '.', '-', at most 64",
            )
        _refuse_options(options, set(), "netns")
        return NamespaceSpec(text, existing=text[6:])
    if text.startswith("tap:"):
        _refuse_options(options, {"--closed-port", "--prober-ip", "--service"}, "tap")
        return parse_tap(text, options)
    if text.startswith("link:"):
        _refuse_options(options, {"--closed-port", "--prober-ip", "--service"}, "link")
        return parse_link(text, options)
    if text.startswith("docker:"):
        _refuse_options(options, {"--closed-port", "--prober-ip", "--service"}, "docker")
        return parse_docker(text, options)
    if ":" in text:
        _refuse_options(options, {"--iface", "--closed-port", "--service"}, "remote")
        return parse_remote(text, options)
    raise HarnessError(f"unknown target {text[:80]!r}", f"use one of: {FORMS}")
