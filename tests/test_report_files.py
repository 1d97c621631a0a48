"""Writing reports safely (issue 11): never through a symbolic link, whole or not at all, paths checked first."""

from __future__ import annotations

import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from conformance.core.errors import HarnessError
from conformance.core.results import CaseResult
from conformance.reporters import (
    ReportPaths,
    check_output_paths,
    render_ladder,
    write_html,
    write_junit,
    write_pcap,
    write_reports,
)
from conformance.run import cli

from .test_reporters import ISN, SPORT, T0, TARGET, TPORT, US, _case, _run

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
VICTIM_TEXT = "precious: must survive the run\n"


@pytest.fixture(scope="module")
def result() -> CaseResult:
    """A passed case with three captured frames (so that it has a pcap)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    r = _run(_case(), ISN + 1)
    frames = [
        (T0 + i / 1000, bytes(Ether() / IP(src=US, dst=TARGET) / TCP(sport=SPORT, dport=TPORT, flags=f)))
        for i, f in enumerate("SAR")
    ]
    return replace(r, frames=frames)


def _victims(tmp_path: Path, names: list[str]) -> dict[str, Path]:
    outside = tmp_path / "outside"
    outside.mkdir()
    victims = {}
    for name in names:
        victims[name] = outside / name.replace("/", "_")
        victims[name].write_text(VICTIM_TEXT)
    return victims


def _no_temporaries(folder: Path) -> None:
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------- symbolic links
def test_every_report_replaces_a_symbolic_link_instead_of_writing_through_it(
    tmp_path: Path, result: CaseResult
) -> None:
    reports = tmp_path / "reports"
    names = ["junit.xml", "index.html", "ladders/synack-ack.txt", "pcap/synack-ack.pcap"]
    victims = _victims(tmp_path, names)
    for name in names:
        (reports / name).parent.mkdir(parents=True, exist_ok=True)
        (reports / name).symlink_to(victims[name])
    write_reports([result], ReportPaths.of(reports), "all")
    for name in names:
        assert victims[name].read_text() == VICTIM_TEXT, f"{name} was written through its link"
        assert not (reports / name).is_symlink() and (reports / name).is_file()
        assert (reports / name).stat().st_mode & 0o777 == 0o644
    assert ET.parse(reports / "junit.xml").getroot().tag == "testsuites"
    assert (reports / "ladders" / "synack-ack.txt").read_text() == render_ladder(result) + "\n"
    for folder in (reports, reports / "ladders", reports / "pcap"):
        _no_temporaries(folder)


def test_each_writer_replaces_a_symbolic_link(tmp_path: Path, result: CaseResult) -> None:
    victims = _victims(tmp_path, ["junit", "html", "pcap"])
    (tmp_path / "junit.xml").symlink_to(victims["junit"])
    (tmp_path / "index.html").symlink_to(victims["html"])
    (tmp_path / "pcaps").mkdir()
    (tmp_path / "pcaps" / "synack-ack.pcap").symlink_to(victims["pcap"])
    write_junit([result], tmp_path / "junit.xml")
    write_html([result], tmp_path / "index.html", None)
    write_pcap(result, tmp_path / "pcaps")
    assert [v.read_text() for v in victims.values()] == [VICTIM_TEXT] * 3
    assert not any(p.is_symlink() for p in (tmp_path / "junit.xml", tmp_path / "index.html"))
    assert not (tmp_path / "pcaps" / "synack-ack.pcap").is_symlink()


@pytest.mark.parametrize("sub", ["ladders", "pcap"])
def test_a_report_folder_that_is_a_symbolic_link_is_refused(tmp_path: Path, result: CaseResult, sub: str) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (reports / sub).symlink_to(elsewhere)
    with pytest.raises(HarnessError, match=f"{sub} is a symbolic link .*never written through one"):
        check_output_paths(reports, reports / "junit.xml", reports / "index.html")
    with pytest.raises(HarnessError, match="is a symbolic link"):
        write_reports([result], ReportPaths.of(reports), "all")
    assert list(elsewhere.iterdir()) == []


def test_reports_folder_that_is_a_symbolic_link_is_refused(tmp_path: Path, result: CaseResult) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "reports"
    link.symlink_to(elsewhere)
    with pytest.raises(HarnessError, match=r"--reports: .*reports is a symbolic link") as info:
        check_output_paths(link, link / "junit.xml", link / "index.html")
    assert str(elsewhere) in info.value.hint
    with pytest.raises(HarnessError, match="is a symbolic link"):
        write_junit([result], link / "junit.xml")
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------ atomicity
@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 64 KiB tmpfs, unmounted afterwards whatever happens."""
    where = Path(tempfile.mkdtemp(prefix="cft-tmpfs-"))
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(where)], check=True)
        try:
            yield where
        finally:
            subprocess.run(["umount", str(where)], check=True)
    finally:
        where.rmdir()


@ROOT_ONLY
def test_a_full_disk_keeps_the_previous_report(small_disk: Path, result: CaseResult) -> None:
    junit = small_disk / "reports" / "junit.xml"
    write_junit([result], junit)
    before = junit.read_bytes()
    filler = small_disk / "filler"
    with filler.open("wb") as f:  # what the previous report leaves of the disk, less a few pages
        f.write(b"\0" * (os.statvfs(small_disk).f_bavail - 2) * os.statvfs(small_disk).f_bsize)
    many = [replace(result, case=replace(result.case, id=f"case-{i}")) for i in range(100)]
    with pytest.raises(HarnessError) as info:
        write_junit(many, junit)
    message = str(info.value)
    assert f"the disk holding {junit.parent} is full: could not write {junit}" in message
    assert "the previous report is kept" in message
    assert "what to do: free some space on that disk, or write the reports elsewhere" in message
    assert junit.read_bytes() == before
    ET.fromstring(before)  # still a whole document
    _no_temporaries(junit.parent)


@ROOT_ONLY
def test_a_full_disk_without_a_previous_report(small_disk: Path, result: CaseResult) -> None:
    (small_disk / "filler").write_bytes(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_bsize))
    with pytest.raises(HarnessError, match="is full: .*; no report was written there"):
        write_html([result], small_disk / "index.html", None)
    assert not (small_disk / "index.html").exists()
    _no_temporaries(small_disk)


# --------------------------------------------------------- paths checked first
def test_good_paths_are_created_before_the_run(tmp_path: Path) -> None:
    reports = tmp_path / "a" / "reports"
    junit = tmp_path / "ci" / "junit.xml"
    check_output_paths(reports, junit, reports / "index.html")
    assert reports.is_dir() and junit.parent.is_dir()
    assert list(reports.iterdir()) == []  # the probe file is gone


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        ("FILE", r"--reports: .*/file is a file, not a folder: reports cannot be written into it"),
        ("/dev/null", r"--reports: /dev/null is a character device, not a folder"),
        ("/proc/x", r"--reports: cannot use /proc/x as a report folder: No such file or directory"),
        ("/proc/self/fdinfo", r"--reports: cannot write into /proc/self/fdinfo"),
    ],
)
def test_a_reports_path_that_is_not_a_usable_folder(tmp_path: Path, reports: str, expected: str) -> None:
    if reports == "FILE":
        reports = str(tmp_path / "file")
        Path(reports).write_text("not a folder")
    folder = Path(reports)
    with pytest.raises(HarnessError, match=expected):
        check_output_paths(folder, folder / "junit.xml", folder / "index.html")


@pytest.mark.parametrize("option", ["--junit", "--html"])
def test_a_report_file_that_is_a_folder_or_a_device(tmp_path: Path, option: str) -> None:
    reports = tmp_path / "reports"
    for bad, kind in ((tmp_path, "a folder"), (Path("/dev/null"), "a character device")):
        junit, html = (bad, reports / "index.html") if option == "--junit" else (reports / "junit.xml", bad)
        with pytest.raises(HarnessError, match=f"{option}: {bad} is {kind}: a report can only replace a file"):
            check_output_paths(reports, junit, html)


def test_the_cli_checks_the_paths_before_the_first_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import conformance.run.runner as runner
    import conformance.targets.netns as netns

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the run started")

    monkeypatch.setattr(netns, "check_privileges", lambda: None)
    monkeypatch.setattr(runner, "run", no_run)
    (tmp_path / "file").write_text("")
    closed = str(Path(__file__).resolve().parent.parent / "cases" / "closed")
    assert cli.main(["run", closed, "--reports", str(tmp_path / "file")]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "internal error" not in err
    assert f"conformance: error: --reports: {tmp_path / 'file'} is a file, not a folder" in err
    assert cli.main(["run", closed, "--reports", str(tmp_path / "r"), "--junit", str(tmp_path)]) == cli.EXIT_ERROR
    assert f"--junit: {tmp_path} is a folder: a report can only replace a file" in capsys.readouterr().err
