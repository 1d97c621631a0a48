"""A scoped nftables rule that keeps the prober's own kernel from resetting our connections.

Against a remote host the prober's interface has an address, so its kernel sees
the target's answers to the segments we craft (a SYN-ACK for a connection it
never opened) and would answer them with RSTs, which would end every dialogue.
:class:`RstFilter` installs, for the time of a run, a table of its own::

    table inet conformance_PID {
        chain output {
            type filter hook output priority filter; policy accept;
            ip saddr OUR_IP ip daddr TARGET_IP tcp sport LO-HI tcp dport { PORTS } tcp flags & rst == rst counter drop
            ip6 saddr OUR_IP6 ip6 daddr TARGET_IP6 tcp sport LO-HI tcp dport { PORTS } (the same)
        }
    }

(one rule for each address family the target is reached over; an ``inet``
table sees both). It drops only RSTs the kernel sends from our address to the
target's address and ports, from the source-port window this run allocates (the run's
:class:`~conformance.run.session.Ports`). When the target's application connects
to us (a case whose first step is ``app: {do: connect}``, played through an agent),
its SYN comes from a port the target's kernel picks and goes to a port of our
window, where this kernel has no listener: the RST it would answer with goes to a
port nobody knows before the run. For such a run the target's ports are ``None``
and the ``tcp dport`` match is left out: the rule still matches only our address,
the target's address and a source port of the run's window. Our own segments, RSTs included, are
written to a packet socket and never pass the output hook, so they are not
affected. The table is removed on exit, on exceptions, on Ctrl-C and SIGTERM
(which the CLI turns into KeyboardInterrupt); ``conformance cleanup`` removes
the tables of runs whose process is gone (SIGKILL) that those runs recorded
(:mod:`conformance.targets.records`: the target that installs a table records it), and only those.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType

from ..core.errors import HarnessError

FAMILY = "inet"
TABLE_PREFIX = "conformance_"
_TABLE = re.compile(rf"^{TABLE_PREFIX}(\d+)$")
NFT_TIMEOUT = 10.0


def table_name(pid: int | None = None) -> str:
    return f"{TABLE_PREFIX}{os.getpid() if pid is None else pid}"


def ruleset(table: str, pairs: Iterable[tuple[str, str]], target_ports: Iterable[int] | None, sports: range) -> str:
    """The ``nft -f`` script that (re)creates the table, with a rule for each (our address, the target's) pair
    (one IPv4, one IPv6 pair at most); every value is checked, so none can inject syntax. `target_ports` None:
    any port of the target (its application connects to us from ports its kernel picks)."""
    if not _TABLE.match(table):
        raise ValueError(f"table name {table!r} is not {TABLE_PREFIX}PID")
    matches = []
    for ours, theirs in pairs:
        src, dst = ipaddress.ip_address(ours), ipaddress.ip_address(theirs)
        if src.version != dst.version:
            raise ValueError(f"addresses {src} and {dst} are of two families")
        family = "ip" if src.version == 4 else "ip6"
        matches.append(f"{family} saddr {src.compressed} {family} daddr {dst.compressed}")
    if not matches or len(matches) != len({m.split()[0] for m in matches}):
        raise ValueError(f"address pairs {matches}: one or two, of different families")
    if len(sports) == 0 or sports.step != 1 or not 1 <= sports.start <= sports[-1] <= 65535:
        raise ValueError(f"source ports {sports} must be a non-empty window within 1-65535")
    sport = str(sports.start) if len(sports) == 1 else f"{sports.start}-{sports[-1]}"
    ports = f" tcp dport {_dport(target_ports)}" if target_ports is not None else ""
    rules = "".join(f"\t\t{match} tcp sport {sport}{ports} tcp flags & rst == rst counter drop\n" for match in matches)
    return (
        # `table` + `delete table` first: a stale table of the same name (a recycled PID) is replaced,
        # and the whole file is one transaction.
        f"table {FAMILY} {table}\n"
        f"delete table {FAMILY} {table}\n"
        f"table {FAMILY} {table} {{\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        f"{rules}"
        "\t}\n"
        "}\n"
    )


def _dport(target_ports: Iterable[int]) -> str:
    """The ``tcp dport`` value: one port, or a set of them."""
    ports = sorted({int(p) for p in target_ports})
    if not ports or not all(1 <= p <= 65535 for p in ports):
        raise ValueError(f"target ports {ports} must be 1-65535 and at least one")
    return str(ports[0]) if len(ports) == 1 else "{ " + ", ".join(map(str, ports)) + " }"


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("nft") is None:
        raise HarnessError("the program 'nft' is missing", "install it: apt-get install nftables (or run .ci/setup)")
    return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT)


def list_tables() -> list[tuple[str, str]]:
    """(family, name) of every nftables table in this network namespace."""
    proc = _nft(["-j", "list", "tables"])
    if proc.returncode != 0:
        raise HarnessError(f"nft list tables failed: {proc.stderr.strip()}", "run as root (CAP_NET_ADMIN)")
    out = []
    for item in json.loads(proc.stdout or "{}").get("nftables", []):
        table = item.get("table")
        if table:
            out.append((str(table["family"]), str(table["name"])))
    return out


def delete_table(name: str, family: str = FAMILY) -> bool:
    """Delete one table; False when it was not there."""
    proc = _nft(["delete", "table", family, name])
    if proc.returncode == 0:
        return True
    if "No such file or directory" in proc.stderr:
        return False
    raise HarnessError(f"nft delete table {family} {name} failed: {proc.stderr.strip()}")


def tables_named_like_ours() -> list[tuple[str, str]]:
    """(family, name) of the ``conformance_PID`` tables of this namespace (none when nft is not installed).

    The name proves nothing: only a run's record says a table is a run's."""
    if shutil.which("nft") is None:
        return []
    return [(family, name) for family, name in list_tables() if _TABLE.match(name)]


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a removal runs, then deliver them: a second Ctrl-C does not strand the table."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    old = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


class RstFilter:
    """Context manager: the ``conformance_PID`` table for one run; see the module docstring."""

    def __init__(self, pairs: Iterable[tuple[str, str]], target_ports: Iterable[int] | None, sports: range) -> None:
        """`pairs`: (our address, the target's), one for each address family the run uses; `target_ports` None:
        any of the target's ports (see :func:`ruleset`)."""
        self.table = table_name()
        self.script = ruleset(self.table, pairs, target_ports, sports)
        self._owner = os.getpid()
        self._installed = False

    def __enter__(self) -> RstFilter:
        try:
            self.install()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()

    @property
    def installed(self) -> bool:
        """Whether the table may be there (from the install's start to a removal that went through)."""
        return self._installed

    def install(self) -> None:
        self._installed = True  # from here on, remove() tries (the transaction may have gone through)
        proc = _nft(["-f", "-"], stdin=self.script)
        if proc.returncode != 0:
            raise HarnessError(
                f"cannot install the nftables table {self.table}: {proc.stderr.strip()}",
                "run as root (CAP_NET_ADMIN) with nftables available (nft list tables must work)",
            )

    def remove(self) -> None:
        """Delete the table; safe to call twice, a no-op in a forked copy of the process."""
        if not self._installed or os.getpid() != self._owner:
            return
        with _signals_deferred():
            delete_table(self.table)
            self._installed = False
