"""The HTML report, offline: results come from the engine driven with scripted segments.

The structure is checked with :mod:`html.parser`; a real browser (Debian's
``chromium``, installed by ``.ci/setup``) renders the file to a PNG, which a
small decoder below reads back to check that the page is not blank and that the
failing case is drawn in red.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance.core.loader import load_case
from conformance.core.model import Case
from conformance.core.params import resolve
from conformance.core.results import CaseResult, TargetInfo
from conformance.reporters import write_html
from conformance.reporters.html import schedule_checks

from .helpers import ISN, PEER_ISN, ROOT, TARGET_IP, FakeWire

CASES = ROOT / "cases"
T0 = 1_700_000_000.0
ESCAPED_TITLE = "<script>alert('x')</script> & \"quoted\" <b>bold</b>"


# ----------------------------------------------------------------- results
def _result(case: Case, wire: FakeWire, sysctls: dict[str, int] | None = None) -> CaseResult:
    v = wire.verdict()
    params = resolve(sysctls or {})
    target = TargetInfo("netns", f"Linux test kernel in namespace cft-test ({TARGET_IP})", TARGET_IP, params)
    message = v.failure.render() if v.failure is not None else ""
    return CaseResult(case, v.status, message, v.end - v.start, target, v, wire.ports, wire.isns)


def handshake(case: Case, ack: int) -> CaseResult:
    """A SYN answered by a SYN-ACK acknowledging `ack` (ISN+1 passes the handshake cases)."""
    w = FakeWire(case)
    w.advance(T0)
    w.reply(T0 + 0.0019, "SA", seq=PEER_ISN, ack=ack)
    w.advance(T0 + 0.0025)
    return _result(case, w)


def closed_port() -> CaseResult:
    case = load_case(CASES / "closed" / "syn.yaml", CASES)
    w = FakeWire(case)
    w.advance(T0)
    w.reply(T0 + 0.0004, "RA", seq=0, ack=ISN + 1)
    return _result(case, w)


def synack_withhold() -> CaseResult:
    """synack-retransmit-ci (tcp_synack_retries=2): retransmissions late but within tolerance; passes."""
    case = load_case(CASES / "handshake" / "synack-retransmit-ci.yaml", CASES)
    sysctls = {"tcp_synack_retries": 2, "tcp_rto_min_us": 200_000}  # as read from a target
    w = FakeWire(case, sysctls)
    w.advance(T0)
    t = T0 + 0.001
    w.reply(t, "SA", seq=PEER_ISN, ack=ISN + 1)
    for gap in (1.08, 2.12):
        t += gap
        w.reply(t, "SA", seq=PEER_ISN, ack=ISN + 1)
    w.run_until(t + 2 * 2.12 * 1.15 + 0.1)  # the give-up silence: twice the last gap, plus tolerance
    (ack,) = w.sent_with("A")
    w.reply(ack.time + 0.0007, "R", seq=PEER_ISN + 1, ack=0)
    r = _result(case, w, sysctls)
    assert r.status == "passed", r.message
    return r


def data_withhold_late() -> CaseResult:
    """data-retransmit-backoff: the third retransmission comes far too late; fails."""
    case = load_case(CASES / "data" / "retransmit-backoff.yaml", CASES)
    w = FakeWire(case)
    w.advance(T0)
    w.reply(T0 + 0.001, "SA", seq=PEER_ISN, ack=ISN + 1)  # we ACK at once
    banner = b"hello from the target\n"
    t = T0 + 0.003
    w.reply(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=banner)
    first = w.verdict().schedules[0].intervals[0]
    for gap in (first * 1.02, first * 2.05, first * 8):
        t += gap
        w.reply(t, "PA", seq=PEER_ISN + 1, ack=ISN + 1, payload=banner)
    r = _result(case, w)
    assert r.status == "failed" and r.verdict is not None and r.verdict.failure is not None
    assert r.verdict.failure.kind == "timing", r.message
    return r


def escaped_case(tmp_path: Path) -> CaseResult:
    group = tmp_path / "odd"
    group.mkdir(exist_ok=True)
    path = group / "escape.yaml"
    path.write_text(
        "id: escape-me\n"
        "title: '<script>alert(''x'')</script> & \"quoted\" <b>bold</b>'\n"
        "refs:\n"
        "  - id: EP-5\n"
        "    doc: RFC 9293 §3.10.7.2\n"
        "    level: MUST\n"
        '    says: "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> & more"\n'
        "service: listen\n"
        "steps:\n"
        "  - send: {flags: S, seq: isn}\n"
        "  - expect: {flags: SA, ack: isn+1, within: 1s}\n",
        encoding="utf-8",
    )
    case = load_case(path, tmp_path)
    assert case.title == ESCAPED_TITLE
    return handshake(case, ISN + 1)


def harness_error() -> CaseResult:
    case = load_case(CASES / "closed" / "ack.yaml", CASES)
    return CaseResult(case, "error", "cannot create namespace: permission <denied>", 0.0, None)


def all_results(tmp_path: Path) -> list[CaseResult]:
    synack_ack = load_case(CASES / "handshake" / "synack-ack.yaml", CASES)
    failed = handshake(synack_ack, ISN + 2)
    assert failed.status == "failed"
    return [failed, closed_port(), synack_withhold(), data_withhold_late(), escaped_case(tmp_path), harness_error()]


# ------------------------------------------------------------------ parser
@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def iter(self, tag: str | None = None) -> Iterator[Element]:
        for child in self.children:
            if tag is None or child.tag == tag:
                yield child
            yield from child.iter(tag)

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)


_VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}


class Tree(HTMLParser):
    """A minimal DOM: elements with attributes, children and text; checks that tags are balanced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {}, None)
        self.current = self.root
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(el)
        if tag not in _VOID:
            self.current = el

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self.current.tag != tag:
            self.errors.append(f"</{tag}> closes <{self.current.tag}>")
            return
        assert self.current.parent is not None
        self.current = self.current.parent

    def handle_data(self, data: str) -> None:
        self.current.text.append(data)


def parse(text: str) -> Element:
    tree = Tree()
    tree.feed(text)
    tree.close()
    assert tree.errors == [], tree.errors[:5]
    assert tree.current is tree.root, "unclosed elements"
    return tree.root


def sections(root: Element) -> list[Element]:
    return [s for s in root.iter("section") if "case" in s.classes()]


def table_rows(table: Element) -> dict[str, list[str]]:
    """Body rows of a table by their <th> text: the texts of their <td> cells."""
    out = {}
    for tr in table.iter("tr"):
        th, tds = list(tr.iter("th")), list(tr.iter("td"))
        if th and tds:
            out[th[0].all_text()] = [td.all_text() for td in tds]
    return out


# ------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[CaseResult]]:
    tmp = tmp_path_factory.mktemp("html")
    results = all_results(tmp)
    reports = tmp / "reports"
    (reports / "pcap").mkdir(parents=True)
    (reports / "pcap" / "synack-ack.pcap").write_bytes(b"\xd4\xc3\xb2\xa1")  # only this case has a pcap
    path = reports / "index.html"
    write_html(results, path, reports / "pcap")
    return path, results


def test_summary_tables(report: tuple[Path, list[CaseResult]]) -> None:
    path, results = report
    root = parse(path.read_text(encoding="utf-8"))
    tables = {t.attrs.get("class", ""): t for t in root.iter("table")}
    by_group = tables["summary by-group"]
    rows = table_rows(by_group)
    # columns: passed, warning, failed, error, total
    assert rows["handshake"] == ["1", "0", "1", "0", "2"]
    assert rows["closed"] == ["1", "0", "0", "1", "2"]
    assert rows["data"] == ["0", "0", "1", "0", "1"]
    assert rows["odd"] == ["1", "0", "0", "0", "1"]
    assert rows["all"] == ["3", "0", "2", "1", "6"]
    failed_cells = [td for td in by_group.iter("td") if "count-failed" in td.classes()]
    assert failed_cells and all(td.all_text() != "0" for td in failed_cells)

    by_level = tables["summary by-level"]
    levels = table_rows(by_level)
    # synack-ack fails on EP-5 (MUST); data-retransmit-backoff on RFC6298-5.5 (MUST).
    assert levels["MUST"][1] == "2"
    assert levels["SHOULD"] == ["1", "0"]  # synack-retransmit-ci cites RFC 6298 §2.1 (SHOULD)
    assert levels["default"] == ["1", "0"]

    cases = tables["summary cases"]
    links = [a.attrs["href"] for a in cases.iter("a")]
    ids = [s.attrs["id"] for s in sections(root)]
    assert links == [f"#{i}" for i in ids] and len(ids) == len(results)


def test_every_case_has_its_parts(report: tuple[Path, list[CaseResult]]) -> None:
    path, results = report
    root = parse(path.read_text(encoding="utf-8"))
    secs = sections(root)
    assert len(secs) == len(results)
    for sec, r in zip(secs, results, strict=True):
        text = sec.all_text()
        assert r.case.id in text and r.status.upper() in text
        for ref in r.case.refs:
            assert ref.doc in text and ref.says in text
        ladders = [s for s in sec.iter("svg") if "ladder" in s.classes()]
        if r.verdict is None:
            assert ladders == [] and "(no packets exchanged)" in text and "permission <denied>" in text
            continue
        assert len(ladders) == 1
        ladder = ladders[0]
        assert len(list(ladder.iter("line"))) >= 2 + len(r.verdict.trace) - 1  # two lifelines, one line per arrow
        labels = [t.all_text() for t in ladder.iter("text")]
        assert "us" in labels and "target" in labels
        assert r.target is not None
        assert "Linux test kernel" in text and "documented default" in text
    failed = secs[0]
    ladder = next(s for s in failed.iter("svg") if "ladder" in s.classes())
    red = [t.all_text() for t in ladder.iter("text") if t.attrs.get("fill") == "#d00000"]
    assert "SA seq=0 ack=2" in red  # the failing SYN-ACK, relative numbers
    assert any(line.attrs.get("stroke") == "#d00000" for line in ladder.iter("line"))
    labels = [t.all_text() for t in ladder.iter("text")]
    assert "S seq=0" in labels and "1.400 ms" in labels  # the SYN-ACK, 1.4 ms after our SYN
    diff = next(t for t in failed.iter("table") if "diff" in t.classes())
    bad = [tr.all_text() for tr in diff.iter("tr") if "bad" in tr.classes()]
    assert bad == ["✗ackisn+1 (1001)isn+2 (1002)"]
    pre = next(failed.iter("pre")).all_text()
    assert pre.startswith("line 18: expect SA ack=isn+1") and "RFC 9293 §3.10.7.2 (MUST, EP-5)" in pre
    cited = [tr.all_text() for tr in failed.iter("tr") if "cited" in tr.classes()]
    assert len(cited) == 1 and cited[0].startswith("EP-5")
    params = next(t for t in secs[2].iter("table") if "params" in t.classes()).all_text()
    assert "target sysctl net.ipv4.tcp_synack_retries" in params and "schedule synack" in params
    assert "0.2 s" in params and "0.1999" not in params  # tcp_rto_min_us, scaled to seconds


def test_schedule_plot_of_withhold_cases(report: tuple[Path, list[CaseResult]]) -> None:
    path, results = report
    secs = sections(parse(path.read_text(encoding="utf-8")))
    plots = [[s for s in sec.iter("svg") if "schedule-plot" in s.classes()] for sec in secs]
    assert [len(p) for p in plots] == [0, 0, 1, 1, 0, 0]

    ok_plot = plots[2][0]
    bands = [r for r in ok_plot.iter("rect") if r.attrs.get("fill") == "#dafbe1"]
    assert len(bands) == 2 + 1  # one per expected retransmission, one in the legend
    dots = list(ok_plot.iter("circle"))
    measured = [c for c in dots if list(c.iter("title"))]
    assert len(measured) == 2 and all(c.attrs["fill"] == "#1f5fa8" for c in measured)
    table = next(t for t in secs[2].iter("table") if "retransmissions" in t.classes()).all_text()
    assert "1.000 s" in table and "2.000 s" in table and "1.080 s" in table and "2.120 s" in table
    # the tolerance the judge used: 15 % widened by the timer granularity of the linux profile (4 ms)
    assert "± 154.0 ms" in table and "± 304.0 ms" in table

    checks = schedule_checks(results[2])
    assert len(checks) == 1
    assert [p.expected for p in checks[0].points] == [1.0, 2.0]
    assert [round(p.measured or 0, 3) for p in checks[0].points] == [1.08, 2.12]
    assert all(p.ok for p in checks[0].points) and checks[0].silence == pytest.approx(4.604)  # 4 s + 15 % + 4 ms

    late = schedule_checks(results[3])[0]
    assert [p.ok for p in late.points] == [True, True, False, None, None]
    assert late.points[2].measured is not None and late.points[2].expected is not None
    assert late.points[2].measured > late.points[2].expected + late.points[2].tolerance
    late_plot = plots[3][0]
    assert any(c.attrs.get("fill") == "#d00000" for c in late_plot.iter("circle") if list(c.iter("title")))


def test_text_is_escaped(report: tuple[Path, list[CaseResult]]) -> None:
    path, _ = report
    raw = path.read_text(encoding="utf-8")
    assert "<script>" not in raw and "<b>bold</b>" not in raw
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;quoted&#34;" in raw  # as jinja2 escapes
    root = parse(raw)
    assert not list(root.iter("script")) and not list(root.iter("b"))
    sec = sections(root)[4]
    assert ESCAPED_TITLE in sec.all_text()
    assert "<SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK> & more" in sec.all_text()
    assert "cannot create namespace: permission <denied>" in sections(root)[5].all_text()


def test_hostile_text_in_attributes_and_messages(tmp_path: Path) -> None:
    """An id, a title or a message cannot close an attribute or open an element, wherever it is shown."""
    hostile = "x\"><script>alert(1)</script><b a='"
    base = escaped_case(tmp_path)
    case = replace(base.case, id=hostile, expect_failure=hostile, description=hostile)
    assert base.verdict is not None and base.verdict.failure is None
    failed = replace(base, case=case, status="failed", message=hostile)
    error = CaseResult(replace(case, title=hostile), "error", hostile, 0.0, None)
    path = tmp_path / "hostile.html"
    write_html([failed, error], path, None)
    root = parse(path.read_text(encoding="utf-8"))
    assert not list(root.iter("script")) and not list(root.iter("b"))
    secs = sections(root)
    assert [s.attrs["id"] for s in secs] == ["case-1-x-script-alert-1-script-b-a", "case-2-x-script-alert-1-script-b-a"]
    ladder = next(s for s in secs[0].iter("svg") if "ladder" in s.classes())
    assert ladder.attrs["aria-label"].startswith(f"ladder of {hostile}: ")
    assert [c.all_text() for c in secs[0].iter("code")][0] == hostile
    assert [p.all_text() for p in secs[0].iter("pre")] == [hostile]  # the failure, with no details
    assert hostile in [c.all_text() for c in secs[0].iter("code")]  # the self-test's expected text
    assert [p.all_text() for p in secs[1].iter("pre")] == [hostile]  # the harness error
    summary = next(t for t in root.iter("table") if t.attrs.get("class") == "summary cases")
    assert [a.all_text() for a in summary.iter("a")] == [hostile, hostile]


def test_pcap_link_and_self_containment(report: tuple[Path, list[CaseResult]]) -> None:
    path, _ = report
    root = parse(path.read_text(encoding="utf-8"))
    links = [a for a in root.iter("a") if "pcap" in a.classes()]
    assert [a.attrs["href"] for a in links] == ["pcap/synack-ack.pcap"]
    assert (path.parent / links[0].attrs["href"]).is_file()
    holder = links[0].parent
    while holder is not None and "case" not in holder.classes():
        holder = holder.parent
    assert holder is sections(root)[0]
    # nothing to fetch: no scripts, no external style sheets, images or links
    assert not list(root.iter("script")) and not list(root.iter("link")) and not list(root.iter("img"))
    hrefs = [a.attrs.get("href", "") for a in root.iter("a")]
    assert all(h.startswith("#") or h == "pcap/synack-ack.pcap" for h in hrefs)
    assert "http://" not in path.read_text().replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_no_pcap_folder(tmp_path: Path) -> None:
    synack_ack = load_case(CASES / "handshake" / "synack-ack.yaml", CASES)
    path = tmp_path / "deep" / "report.html"
    write_html([handshake(synack_ack, ISN + 1)], path, None)
    root = parse(path.read_text(encoding="utf-8"))
    assert [a for a in root.iter("a") if "pcap" in a.classes()] == []
    assert len(sections(root)) == 1


# ---------------------------------------------------------------- browser
def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return width, height, rows


def screenshot(html: Path, out: Path) -> Path:
    chromium = shutil.which("chromium")
    assert chromium is not None
    shot = out / "shot.png"
    proc = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={out / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return shot


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (bash .ci/setup installs it)")
def test_a_browser_renders_the_report(tmp_path: Path) -> None:
    results = all_results(tmp_path)
    html = tmp_path / "reports" / "index.html"
    write_html(results, html, None)
    shot = screenshot(html, tmp_path)
    assert shot.is_file()
    width, height, rows = read_png(shot)
    assert (width, height) == (1280, 2000)
    total = width * height
    non_white = red = 0
    for row in rows:
        for i in range(0, len(row), 3):
            r, g, b = row[i], row[i + 1], row[i + 2]
            if r < 245 or g < 245 or b < 245:
                non_white += 1
                if r > 180 and g < 60 and b < 60:
                    red += 1
    assert non_white / total > 0.03, f"only {non_white / total:.1%} of the page is not white"
    assert red > 200, f"{red} red pixels: the failing case is not drawn in red"
