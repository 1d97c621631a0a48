"""Offline: the run records, what ``conformance cleanup`` removes (only what dead runs recorded), and what a
``netns:NAME`` target may do to the user's namespace (issue 11).

Namespaces and nft tables are faked (pyroute2's listing, nft); the records go to a temporary directory.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conformance.core.errors import HarnessError
from conformance.core.loader import load_case
from conformance.targets import netns, records
from conformance.targets.grammar import parse_target
from conformance.wire import firewall

from .helpers import ROOT

CASES = ROOT / "cases"
DEAD = 4194304 + 1  # above the kernel's largest PID: never a live process


@pytest.fixture
def record_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "records"
    monkeypatch.setattr(records, "RECORD_DIR", where)
    return where


def write_record(where: Path, pid: int, start: int, made: list[tuple[str, str]]) -> Path:
    path = where / f"{pid}-{start}"
    where.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "start": start, "made": made}))
    return path


class FakeHost:
    """The namespaces and nft tables of a pretend host."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, namespaces: list[str], tables: list[tuple[str, str]]) -> None:
        from pyroute2 import netns as pr_netns

        self.namespaces = list(namespaces)
        self.tables = list(tables)
        monkeypatch.setattr(pr_netns, "listnetns", lambda: list(self.namespaces))
        monkeypatch.setattr(pr_netns, "remove", self.namespaces.remove)
        monkeypatch.setattr(firewall, "tables_named_like_ours", lambda: list(self.tables))
        monkeypatch.setattr(firewall, "delete_table", self.delete_table)

    def delete_table(self, name: str, family: str = "inet") -> bool:
        if (family, name) not in self.tables:
            return False
        self.tables.remove((family, name))
        return True


# ------------------------------------------------------------------ the record of a run
def test_a_record_lists_what_is_made_and_goes_with_the_last_thing(record_dir: Path) -> None:
    record = records.this_run()
    assert record is records.this_run()  # one per process
    start = records.start_time(os.getpid())
    assert record.path == record_dir / f"{os.getpid()}-{start}"
    assert not record.path.exists()
    record.add("netns", "cft-1-0")
    record.add("nft", "inet conformance_1")
    record.add("netns", "cft-1-0")  # twice: once
    (found,) = records.read_all()
    assert (found.pid, found.start, found.made) == (
        os.getpid(),
        start,
        [("netns", "cft-1-0"), ("nft", "inet conformance_1")],
    )
    assert found.alive()
    record.forget("netns", "cft-1-0")
    assert records.read_all()[0].made == [("nft", "inet conformance_1")]
    record.forget("nft", "inet conformance_1")
    assert not record.path.exists()  # a clean run leaves no record


def test_a_record_of_a_reused_pid_is_not_alive() -> None:
    start = records.start_time(os.getpid())
    assert start is not None
    assert records.Record(Path("x"), os.getpid(), start).alive()
    assert not records.Record(Path("x"), os.getpid(), start + 1).alive()  # same PID, another process
    assert not records.Record(Path("x"), DEAD, start).alive()
    assert records.start_time(DEAD) is None


def test_files_that_are_not_records_are_skipped(record_dir: Path) -> None:
    record_dir.mkdir()
    (record_dir / "12-34").write_text("not json")
    (record_dir / "notes").write_text("{}")
    write_record(record_dir, DEAD, 1, [("netns", "cft-1-0")])
    assert [r.pid for r in records.read_all()] == [DEAD]


# ------------------------------------------------------------------ cleanup
def test_cleanup_removes_only_what_dead_runs_recorded(record_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    me, start = os.getpid(), records.start_time(os.getpid())
    assert start is not None
    host = FakeHost(
        monkeypatch,
        [
            "cft-99999-mylab",  # the user's, named like ours
            "cfd-31999-keepme",
            f"cft-{DEAD}-0",  # a killed run's
            f"cfp-{DEAD}-0",
            f"cfd-{DEAD}-0",
            f"cft-{me}-7",  # a run whose PID this process has reused
            f"cft-{me}-0",  # a live run's (ours)
            "lab1",
        ],
        [("inet", f"conformance_{DEAD}"), ("bridge", f"conformance_{DEAD}"), ("inet", "conformance_31999")],
    )
    dead = write_record(
        record_dir,
        DEAD,
        5,
        [
            ("netns", f"cfp-{DEAD}-0"),
            ("netns", f"cft-{DEAD}-0"),
            ("netns", f"cft-{DEAD}-1"),  # recorded, never made (killed in between)
            ("netns", f"cfd-{DEAD}-0"),
            ("nft", f"inet conformance_{DEAD}"),
            ("nft", f"bridge conformance_{DEAD}"),
        ],
    )
    reused = write_record(record_dir, me, start + 1, [("netns", f"cft-{me}-7")])
    live = write_record(record_dir, me, start, [("netns", f"cft-{me}-0")])

    done = netns.cleanup()

    assert sorted(done.removed) == sorted(
        [
            f"cfp-{DEAD}-0",
            f"cft-{DEAD}-0",
            f"cfd-{DEAD}-0",
            f"nft table inet conformance_{DEAD}",
            f"nft table bridge conformance_{DEAD}",
            f"cft-{me}-7",
        ]
    )
    assert done.left == [
        "cfd-31999-keepme: not ours, left in place",
        "cft-99999-mylab: not ours, left in place",
        "nft table inet conformance_31999: not ours, left in place",
    ]
    assert sorted(host.namespaces) == sorted(["cfd-31999-keepme", "cft-99999-mylab", f"cft-{me}-0", "lab1"])
    assert host.tables == [("inet", "conformance_31999")]
    assert not dead.exists() and not reused.exists() and live.exists()


def test_cleanup_keeps_the_record_of_what_it_could_not_remove(
    record_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = FakeHost(monkeypatch, [f"cft-{DEAD}-0"], [("inet", f"conformance_{DEAD}")])

    def refuse(name: str, family: str = "inet") -> bool:
        raise HarnessError("nft delete table failed: busy")

    monkeypatch.setattr(firewall, "delete_table", refuse)
    path = write_record(record_dir, DEAD, 5, [("netns", f"cft-{DEAD}-0"), ("nft", f"inet conformance_{DEAD}")])
    done = netns.cleanup()
    assert done.removed == [f"cft-{DEAD}-0"] and host.namespaces == []
    assert done.left == [f"nft table inet conformance_{DEAD}: could not remove it (nft delete table failed: busy)"]
    assert records.read_all()[0].made == [("nft", f"inet conformance_{DEAD}")] and path.exists()


def test_cleanup_command_says_what_it_left(
    record_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from conformance.run import cli

    FakeHost(monkeypatch, ["cft-99999-mylab", f"cft-{DEAD}-0"], [])
    write_record(record_dir, DEAD, 5, [("netns", f"cft-{DEAD}-0")])
    monkeypatch.setattr(netns, "check_privileges", lambda: None)
    assert cli.main(["cleanup"]) == 0
    out = capsys.readouterr().out
    assert f"removed 1 leftover(s): cft-{DEAD}-0" in out
    assert "cft-99999-mylab: not ours, left in place" in out


# ------------------------------------------------------------------ netns:NAME
def test_netns_name_of_another_run_is_refused(record_dir: Path) -> None:
    me, start = os.getpid(), records.start_time(os.getpid())
    assert start is not None
    write_record(record_dir, me, start, [("netns", "cft-1-0")])
    write_record(record_dir, DEAD, 5, [("netns", "cft-2-0")])
    present = {"cft-1-0", "cft-2-0", "cft-99999-mylab"}
    with pytest.raises(HarnessError, match=f"belongs to the conformance run of process {me}, which is still running"):
        netns.refuse_foreign("cft-1-0", present)
    with pytest.raises(HarnessError, match="made by a conformance run that has ended") as info:
        netns.refuse_foreign("cft-2-0", present)
    assert "conformance cleanup" in info.value.hint
    netns.refuse_foreign("cft-99999-mylab", present)  # named like ours, but the user's
    with pytest.raises(HarnessError, match="does not exist"):
        netns.refuse_foreign("lab9", present)


def test_netns_name_keeps_its_sysctls() -> None:
    sysctl = load_case(CASES / "handshake" / "synack-retransmit-ci.yaml")
    plain = load_case(CASES / "handshake" / "synack-ack.yaml")
    yours = parse_target("netns:lab1")
    reason = yours.skip_reason(sysctl)
    assert reason is not None
    assert reason.startswith("the case sets target sysctls (tcp_synack_retries=2); namespace lab1 is yours")
    assert "keeps its sysctls" in reason
    assert yours.skip_reason(plain) is None
    assert parse_target("embedded").skip_reason(sysctl) is None


def test_a_netns_name_target_never_sets_sysctls() -> None:
    with pytest.raises(HarnessError, match="skipped on a netns:NAME target"):
        netns.NamespaceTarget(1, {"tcp_synack_retries": 2}, existing="lab1")
