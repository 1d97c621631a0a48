"""What the runs on this host made: a record per run, so that ``conformance cleanup`` removes only that.

A name that starts like ours (``cft-``, ``cfp-``, ``cfd-``, ``conformance_``) proves nothing: a user may call a
namespace ``cft-99999-mylab``. So a run writes down what it makes, *before* it makes it, in a file of its own::

    /run/conformance/PID-START    {"pid": PID, "start": START, "made": [["netns", "cft-PID-0"], ...]}

START is the process's start time (field 22 of ``/proc/PID/stat``, clock ticks since boot): with the PID it names
one process, even once the PID is reused. An entry goes when its thing has been removed, the file with the last
entry, so a run that ends clean leaves no record. A record whose process is gone (no such PID, or a PID with another
start time) is a killed run's: ``conformance cleanup`` removes what it names
(:func:`conformance.targets.netns.cleanup`).

The kinds of entries: ``netns`` (a namespace name: made, or a container's attached), ``nft`` (``FAMILY TABLE``),
``link`` (``IFNAME NETNS-INODE disable_ipv6=V arp=on|off``: an interface's settings a link target changed, to put
back; :mod:`conformance.targets.link`).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

#: Where the records live: /run is a tmpfs, emptied at boot, as the namespaces and tables are.
RECORD_DIR = Path("/run/conformance")

Entry = tuple[str, str]  # (kind, name)


def start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count the fields after its ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


@dataclass
class Record:
    """One run's record, as read from its file."""

    path: Path
    pid: int
    start: int
    made: list[Entry] = field(default_factory=list)

    def alive(self) -> bool:
        """Whether the run that wrote this record is still running (same PID, same start time)."""
        return start_time(self.pid) == self.start

    def save(self) -> None:
        """Write the record (atomically: a reader sees the old one or the new one), or remove it when empty."""
        if not self.made:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{threading.get_ident()}")
        tmp.write_text(json.dumps({"pid": self.pid, "start": self.start, "made": self.made}) + "\n")
        os.replace(tmp, self.path)


def read_all(directory: Path | None = None) -> list[Record]:
    """Every run's record (a file that is not one is skipped)."""
    where = directory or RECORD_DIR
    out = []
    for path in sorted(where.glob("[0-9]*-[0-9]*")) if where.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            made = [(str(kind), str(name)) for kind, name in data["made"]]
            out.append(Record(path, int(data["pid"]), int(data["start"]), made))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def owner_of(entry: Entry, directory: Path | None = None) -> Record | None:
    """The record that names `entry`, if any."""
    return next((r for r in read_all(directory) if entry in r.made), None)


class RunRecord:
    """This process's record: :meth:`add` before making a thing, :meth:`forget` once it is removed.

    Thread-safe (a run sets targets up two at a time); a no-op in a forked copy of the process (pyroute2 forks),
    which made nothing of its own.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.pid = os.getpid()
        start = start_time(self.pid)
        assert start is not None, "this process has a /proc entry"
        self._record = Record((directory or RECORD_DIR) / f"{self.pid}-{start}", self.pid, start)
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._record.path

    def add(self, kind: str, name: str) -> None:
        if os.getpid() != self.pid:
            return
        with self._lock:
            if (kind, name) not in self._record.made:
                self._record.made.append((kind, name))
                self._record.save()

    def forget(self, kind: str, name: str) -> None:
        if os.getpid() != self.pid:
            return
        with self._lock:
            if (kind, name) in self._record.made:
                self._record.made.remove((kind, name))
                self._record.save()


_registry_lock = threading.Lock()
_registry: dict[tuple[int, Path], RunRecord] = {}


def this_run(directory: Path | None = None) -> RunRecord:
    """The record of this process (one per process, as its PID is: every target of a run writes to it)."""
    key = (os.getpid(), directory or RECORD_DIR)
    with _registry_lock:
        if key not in _registry:
            _registry[key] = RunRecord(key[1])
        return _registry[key]
