"""RFC 9293 quoted by section and requirement id, from a local copy of its text.

The text is the plain-text RFC (``rfc9293.txt``, as the RFC Editor publishes
it): section headings start at column 0 (``3.8.2.  TCP Congestion Control``),
body text is indented, paragraphs are separated by blank lines, and requirement
labels sit in the text in parentheses (``(MUST-19)``), sometimes broken across
a line (``(SHLD-`` / ``8)``). Pure functions on that text; reading the file is
:meth:`RfcText.load`'s only I/O. The copy shipped with the package,
``conformance/data/reference/rfc9293.txt``, is the default (``SOURCE.md`` beside it says where it comes from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

FILE_NAME = "rfc9293.txt"
#: "RFC 9293 §3.8.2", "RFC 9293 section 3.8.2", "RFC9293 §3.10.7.4 (eighth, FIN bit)".
_SECTION_REF = re.compile(r"RFC\s*9293\s*(?:§|[Ss]ection)\s*(\d+(?:\.\d+)*)")
_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.\s+(\S.*)$")
_REQUIREMENT = re.compile(r"^(MUST|SHLD|MAY|REC)-(\d+)$")
#: A quote shorter than this takes the next paragraph too (a section often opens with "Otherwise,").
_MIN_LINES = 5


def reference_dir() -> Path:
    """Where the reference texts live: the package data ``conformance/data/reference`` (see its SOURCE.md)."""
    return Path(str(resources.files("conformance").joinpath("data", "reference")))


def sections_cited(doc: str) -> list[str]:
    """The RFC 9293 section numbers a reference's ``doc`` names (``[]`` for other documents)."""
    return _SECTION_REF.findall(doc)


def is_requirement_id(ref_id: str) -> bool:
    """True for the labels of RFC 9293's requirement table: MUST-19, SHLD-1, MAY-3, REC-1."""
    return _REQUIREMENT.match(ref_id) is not None


@dataclass(frozen=True)
class Quote:
    section: str
    title: str
    first_line: int  # 1-based line number in the file
    last_line: int
    lines: tuple[str, ...]  # as in the RFC, the common indentation removed
    what: str  # "the paragraph with MUST-19", "the start of the section"


class RfcText:
    """The lines of RFC 9293, searchable by section number and requirement id."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    @classmethod
    def load(cls, folder: Path | None = None) -> RfcText | None:
        """The text from ``folder`` (default :func:`reference_dir`); None when it is not there."""
        path = (folder if folder is not None else reference_dir()) / FILE_NAME
        try:
            return cls(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def section(self, number: str) -> tuple[int, int, str] | None:
        """(heading index, end index, title) of section `number`, its subsections included."""
        start = title = None
        for i, line in enumerate(self.lines):
            m = _HEADING.match(line)
            if m and m.group(1) == number:
                start, title = i, m.group(2).strip()
                break
        if start is None or title is None:
            return None
        end = len(self.lines)
        for j in range(start + 1, len(self.lines)):
            line = self.lines[j]
            if line[:1].strip():  # column 0: a heading (or an appendix, the acknowledgments ...)
                m = _HEADING.match(line)
                if not (m and m.group(1).startswith(number + ".")):
                    end = j
                    break
        return start, end, title

    def _paragraphs(self, start: int, end: int) -> list[tuple[int, list[str]]]:
        """(index of the first line, lines) of each paragraph of the body between `start` and `end`."""
        out: list[tuple[int, list[str]]] = []
        current: list[str] = []
        first = start
        for i in range(start, end):
            line = self.lines[i]
            if not line.strip():
                if current:
                    out.append((first, current))
                    current = []
                continue
            if not current:
                first = i
            current.append(line.rstrip())
        if current:
            out.append((first, current))
        return out

    def quote(self, number: str, ref_id: str = "", max_lines: int = 15) -> Quote | None:
        """The paragraph(s) of section `number` with requirement `ref_id`, else the section's start.

        None when the section is not in the text.
        """
        found = self.section(number)
        if found is None:
            return None
        start, end, title = found
        chosen: list[tuple[int, list[str]]] = []
        what = "the start of the section"
        if is_requirement_id(ref_id):
            label = re.compile(rf"\b{re.escape(ref_id)}(?!\d)")
            paragraphs = self._paragraphs(start + 1, end)
            for k, (_, lines) in enumerate(paragraphs):
                text = re.sub(r"-\s+", "-", " ".join(s.strip() for s in lines))  # "(SHLD-" / "8)" -> SHLD-8
                if label.search(text):
                    j = k  # with the paragraphs its sentence continues ("... the expression:", "where M is ...")
                    while j > 0 and (
                        paragraphs[j][1][0].lstrip()[:1].islower() or paragraphs[j - 1][1][-1].endswith(":")
                    ):
                        j -= 1
                    chosen.extend(p for p in paragraphs[j : k + 1] if p not in chosen)
            if chosen:
                what = f"the paragraph with {ref_id}" if len(chosen) == 1 else f"the paragraphs with {ref_id}"
            else:
                what = f"the start of the section ({ref_id} is not in it)"
        if not chosen:
            own_end = next(
                (j for j in range(start + 1, end) if self.lines[j][:1].strip()), end
            )  # before the first subsection
            for paragraph in self._paragraphs(start + 1, own_end):
                chosen.append(paragraph)
                if sum(len(lines) + 1 for _, lines in chosen) - 1 >= _MIN_LINES:
                    break
        if not chosen:
            return Quote(number, title, start + 1, start + 1, (), what)
        numbered: list[tuple[int | None, str]] = []  # (1-based line number, text); None: a gap between paragraphs
        for first, lines in chosen:
            if numbered:
                numbered.append((None, ""))
            numbered.extend((first + 1 + k, s) for k, s in enumerate(lines))
        truncated = len(numbered) > max_lines
        numbered = numbered[:max_lines]
        indent = min(len(s) - len(s.lstrip()) for _, s in numbered if s.strip())
        body = [s[indent:] for _, s in numbered]
        if truncated:
            body.append("[...]")
        numbers = [n for n, _ in numbered if n is not None]
        return Quote(number, title, numbers[0], numbers[-1], tuple(body), what)
