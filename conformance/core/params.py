"""Documented values in one place, each with its source, and the target's own.

A :class:`Documented` entry says what a value is, what the documents say it is,
and which sysctl (if any) holds the target's actual value. :func:`resolve`
combines the documented defaults with what was read from the target, keeping
where each value came from so the report can say so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .model import Reference
from .outcomes import Level


@dataclass(frozen=True)
class ProfileValue:
    value: float
    level: Level
    source: str


@dataclass(frozen=True)
class Profile:
    """A stack profile's values (loaded by :mod:`conformance.core.profiles`), over the documented defaults."""

    name: str
    title: str
    stack: str | None
    read_sysctls: bool
    values: dict[str, ProfileValue] = field(default_factory=dict)
    path: str = ""


@dataclass(frozen=True)
class Documented:
    name: str
    value: float
    unit: str
    source: str
    #: sysctl under /proc/sys/net/ipv4 holding the target's value, if any.
    sysctl: str | None = None
    #: multiply the sysctl's integer by this to get `unit` (e.g. µs -> s).
    scale: float = 1.0


DOCUMENTED: dict[str, Documented] = {
    d.name: d
    for d in (
        Documented(
            "rto_initial",
            1.0,
            "s",
            "RFC 6298 §2.1: initial RTO SHOULD be 1 s; Linux TCP_TIMEOUT_INIT = 1 s (include/net/tcp.h)",
        ),
        Documented(
            "rto_min",
            0.2,
            "s",
            "Linux TCP_RTO_MIN = 200 ms (include/net/tcp.h), sysctl tcp_rto_min_us; "
            "RFC 6298 §2.4 would round up to 1 s (SHOULD)",
            sysctl="tcp_rto_min_us",
            scale=1e-6,
        ),
        Documented(
            "tcp_synack_retries",
            5,
            "count",
            "Linux ip-sysctl.rst tcp_synack_retries: default 5 (63 s until the last retransmission times out)",
            sysctl="tcp_synack_retries",
        ),
        Documented(
            "tcp_syn_retries",
            6,
            "count",
            "Linux ip-sysctl.rst tcp_syn_retries: default 6",
            sysctl="tcp_syn_retries",
        ),
        Documented(
            "tcp_syn_linear_timeouts",
            4,
            "count",
            "Linux ip-sysctl.rst tcp_syn_linear_timeouts: default 4 (first SYN retransmissions 1 s apart)",
            sysctl="tcp_syn_linear_timeouts",
        ),
        Documented(
            "tcp_retries2",
            15,
            "count",
            "Linux ip-sysctl.rst tcp_retries2: default 15 (about 924.6 s of data retransmissions with TCP_RTO_MIN "
            "200 ms, tcp_model_timeout in net/ipv4/tcp_timer.c); RFC 9293 §3.8.3 R2 at least 100 s (SHLD-11)",
            sysctl="tcp_retries2",
        ),
        Documented(
            "tcp_fin_timeout",
            60,
            "s",
            "Linux ip-sysctl.rst tcp_fin_timeout: default 60 s (orphaned FIN-WAIT-2)",
            sysctl="tcp_fin_timeout",
        ),
        Documented(
            "time_wait",
            60,
            "s",
            "Linux TCP_TIMEWAIT_LEN = 60 s, not tunable (include/net/tcp.h); RFC 9293 §3.4.2 MSL 2 min gives 240 s",
        ),
        Documented(
            "tcp_syncookies",
            1,
            "mode",
            "Linux ip-sysctl.rst tcp_syncookies: default 1 (cookies on SYN queue overflow)",
            sysctl="tcp_syncookies",
        ),
        Documented(
            "tcp_abort_on_overflow",
            0,
            "bool",
            "Linux ip-sysctl.rst tcp_abort_on_overflow: default 0",
            sysctl="tcp_abort_on_overflow",
        ),
        Documented(
            "timer_granularity",
            0.004,
            "s",
            "Linux: retransmission timers run on jiffies (CONFIG_HZ=250 on Debian's kernel: 4 ms); the timer "
            "wheel's slack, up to 1/8 of a timer's length, is within the 15 % tolerance",
        ),
        Documented(
            "retransmit_floor",
            0.2,
            "s",
            "the shortest retransmission timeout a stack is documented to use: Linux TCP_RTO_MIN = 200 ms "
            "(include/net/tcp.h; RFC 6298 §2.4 recommends 1 s). A repeat sooner than this after the previous copy "
            "is not a retransmission our late ACK caused, and is judged",
        ),
        Documented(
            "persistence_synack",
            0,
            "s",
            "no minimum: Linux documents a retry count (tcp_synack_retries), not a duration; the count is checked",
        ),
        Documented(
            "persistence_syn",
            0,
            "s",
            "no minimum: Linux documents a retry count (tcp_syn_retries), not a duration; the count is checked",
        ),
        Documented(
            "mms_r_ipv4",
            65515,
            "octets",
            "RFC 9293 §3.7.1 MMS_R: the largest transport-layer message the host can receive and reassemble "
            "(EMTU_R less the IP header, RFC 1122 §3.3.2), not the link MTU: an IPv4 datagram is at most 65535 "
            "octets (RFC 791 Total Length), so 65515, and an MSS up to 65495 keeps MUST-67 (RFC 1191 §3.1: 'the "
            "architectural limit of 65495'; an MSS from the link MTU is a MAY). Linux reassembles that much "
            "(ip_frag_reasm, net/ipv4/ip_fragment.c). A stack that reassembles less has a smaller MMS_R: its "
            "profile says so",
        ),
        Documented(
            "mms_r_ipv6",
            65535,
            "octets",
            "RFC 9293 §3.7.1 MMS_R over IPv6: the IPv6 Payload Length is at most 65535 (RFC 8200 §3), so 65535, "
            "and an MSS up to 65515; Linux reassembles that much (IPV6_MAXPLEN, net/ipv6/reassembly.c). "
            "Jumbograms (RFC 2675) need a link MTU above 65575, which no Ethernet link (veth included) has",
        ),
        Documented(
            "tcp_invalid_ratelimit",
            500,
            "ms",
            "Linux ip-sysctl.rst tcp_invalid_ratelimit: default 500 ms between replies to invalid segments",
            sysctl="tcp_invalid_ratelimit",
        ),
    )
}

#: Every sysctl the tool reads from a target, by its name under net/ipv4.
SYSCTLS = tuple(sorted({d.sysctl for d in DOCUMENTED.values() if d.sysctl}))
#: Sysctls a case may set that are no run value: kept per interface (net/ipv4/conf/IF/NAME), written to conf/all,
#: conf/default and the target's interfaces (conformance.inside.services.CONF_SYSCTLS), with the values allowed.
#: accept_source_route: hosts drop source-routed datagrams by default (RFC 7126 §4.3), before TCP sees them.
CONF_SYSCTLS: dict[str, tuple[int, ...]] = {"accept_source_route": (0, 1)}


@dataclass(frozen=True)
class Param:
    name: str
    value: float
    unit: str
    origin: str  # "target sysctl net.ipv4.X", "profile NAME" or "documented default"
    source: str
    #: How binding the value is: MUST/SHOULD from a standard, "default" for a stack's documented value.
    level: Level = Level.DEFAULT
    stack: str | None = "linux"

    def reference(self) -> Reference:
        """The document a check against this value cites, at the value's level."""
        return Reference(id=self.name, doc=self.source, level=self.level, stack=self.stack)

    def __str__(self) -> str:
        v = int(self.value) if float(self.value).is_integer() else self.value
        return f"{self.name}={v}{'' if self.unit in ('count', 'mode', 'bool') else ' ' + self.unit} ({self.origin})"


class Params(Mapping[str, Param]):
    """The values a run uses, by name, each with where it came from."""

    def __init__(self, values: dict[str, Param]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> Param:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def value(self, name: str) -> float:
        return self._values[name].value


def resolve(sysctls: Mapping[str, int], profile: Profile | None = None) -> Params:
    """The values a run uses: documented defaults, then the profile's values, then
    the target's own sysctls (over every value when the profile reads them, else only
    over the values the profile leaves open)."""
    out: dict[str, Param] = {}
    read = profile is None or profile.read_sysctls
    stack = profile.stack if profile is not None else "linux"
    for d in DOCUMENTED.values():
        pv = profile.values.get(d.name) if profile is not None else None
        if (read or pv is None) and d.sysctl and d.sysctl in sysctls:
            out[d.name] = Param(
                d.name,
                sysctls[d.sysctl] * d.scale,
                d.unit,
                f"target sysctl net.ipv4.{d.sysctl}",
                pv.source if pv else d.source,
                Level.DEFAULT,
                "linux",  # a sysctl is Linux's own configuration, documented in ip-sysctl
            )
        elif pv is not None:
            out[d.name] = Param(
                d.name,
                pv.value,
                d.unit,
                f"profile {profile.name if profile else ''}",
                pv.source,
                pv.level,
                stack if pv.level == Level.DEFAULT else None,
            )
        else:
            out[d.name] = Param(d.name, d.value, d.unit, "documented default", d.source, Level.DEFAULT, "linux")
    return Params(out)
