"""Read rendered markdown the way the harness needs it: headings, fenced code blocks, tables, inline code.

Deliberately small: the harness checks what the file says, so it parses the file, not the templates.
Line numbers are 1-based and count the front matter, so they point into the file an editor opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .values import normalize

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_NUM = r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
_SCALAR_CELL = re.compile(rf"^(?:~|≈|about\s+)?\s*({_NUM})\s*(?:gb|%|rows|steps|x)?$", re.I)
_RANGE_CELL = re.compile(rf"^(?:~|≈|about\s+)?\s*({_NUM})\s*(?:-|–|to)\s*({_NUM})\s*(?:gb|%|rows|steps)?$", re.I)
_NUMBER_LIST = re.compile(rf"^{_NUM}(\s*,\s*{_NUM})+$")
_IDENT_LIST = re.compile(r"^[A-Za-z_][\w.-]*(\s*,\s*[A-Za-z_][\w.-]*)*$")


@dataclass
class CodeBlock:
    """A fenced block: ``lang`` as written after the fence, ``line`` of its first code line."""

    lang: str
    text: str
    line: int
    headings: list[str]


@dataclass
class Table:
    """A pipe table: header cells, body rows (cells), the line of each row."""

    header: list[str]
    rows: list[list[str]]
    row_lines: list[int]
    headings: list[str]


@dataclass
class Inline:
    """An inline code span outside fenced blocks."""

    text: str
    line: int
    headings: list[str]


@dataclass
class Doc:
    """One markdown file, parsed."""

    path: Path
    text: str
    body_start: int = 1
    code_blocks: list[CodeBlock] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    inline: list[Inline] = field(default_factory=list)
    links: list[tuple[str, int]] = field(default_factory=list)

    @property
    def body_lines(self) -> int:
        """Lines after the front matter."""
        return len(self.text.splitlines()) - self.body_start + 1


def split_cells(line: str) -> list[str]:
    """Cells of a table row; ``\\|`` stays inside a cell."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.replace("\\|", "|").strip() for cell in re.split(r"(?<!\\)\|", inner)]


def plain(cell: str) -> str:
    """A cell without markdown emphasis, backticks, links or HTML entities for ``<``/``>``."""
    text = _LINK.sub(lambda m: m.group(0)[1:].split("](")[0], cell)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"(?<![A-Za-z0-9])_{1,2}(?=\S)|(?<=\S)_{1,2}(?![A-Za-z0-9])", "", text).strip()


def cell_value(cell: str) -> Any:
    """The value a table cell states (number, range, list, identifier), or ``...`` (Ellipsis) when it is prose."""
    text = plain(cell).strip()
    if not text or text in ("-", "—"):
        return ...
    if m := _RANGE_CELL.match(text):
        return {"min": float(m.group(1)), "max": float(m.group(2))}
    if m := _SCALAR_CELL.match(text):
        return float(m.group(1))
    if _NUMBER_LIST.match(text):
        return [float(x) for x in re.split(r"\s*,\s*", text)]
    if _IDENT_LIST.match(text):
        items = re.split(r"\s*,\s*", text)
        return normalize(items[0]) if len(items) == 1 else items
    return ...


def parse(path: str | Path, text: str | None = None) -> Doc:
    """Parse a markdown file (or ``text`` given for it)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if text is None else text
    lines = text.splitlines()
    doc = Doc(path=path, text=text)
    i = 0
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            i = end + 1
            doc.body_start = end + 2
    headings: list[tuple[int, str]] = []
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            marker = fence.group(2)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith(marker):
                j += 1
            code = "\n".join(lines[i + 1 : j])
            doc.code_blocks.append(CodeBlock(fence.group(3).lower(), code, i + 2, [h for _, h in headings]))
            i = j + 1
            continue
        heading = _HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            headings = [(lvl, h) for lvl, h in headings if lvl < level] + [(level, plain(heading.group(2)))]
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[i + 1]):
            table = Table(split_cells(line), [], [], [h for _, h in headings])
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                table.rows.append(split_cells(lines[j]))
                table.row_lines.append(j + 1)
                _collect_inline(doc, lines[j], j + 1, headings)
                j += 1
            doc.tables.append(table)
            i = j
            continue
        _collect_inline(doc, line, i + 1, headings)
        i += 1
    return doc


def _collect_inline(doc: Doc, line: str, number: int, headings: list[tuple[int, str]]) -> None:
    names = [h for _, h in headings]
    doc.inline.extend(Inline(m.group(2).strip(), number, names) for m in _INLINE_CODE.finditer(line))
    doc.links.extend((m.group(1), number) for m in _LINK.finditer(line))
