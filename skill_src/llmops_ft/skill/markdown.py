"""Read rendered markdown the way the harness needs it: headings, fenced code blocks, tables, inline code.

markdown-it-py parses the file (CommonMark with GFM pipe tables, through the token layer ``docs/markdown.py``
shares) and its token line maps give the line numbers. The harness checks what the file says, so it parses the
file, not the templates. Line numbers are 1-based and count the front matter, so they point into the file an
editor opens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markdown_it.token import Token

from ..docs.markdown import body_start, commonmark, fence_lang, read_table
from .values import normalize

_NUM = r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
_SCALAR_CELL = re.compile(rf"^(?:~|≈|about\s+)?\s*({_NUM})\s*(?:gb|%|rows|steps|x)?$", re.I)
_RANGE_CELL = re.compile(rf"^(?:~|≈|about\s+)?\s*({_NUM})\s*(?:-|–|to)\s*({_NUM})\s*(?:gb|%|rows|steps)?$", re.I)
_NUMBER_LIST = re.compile(rf"^{_NUM}(\s*,\s*{_NUM})+$")
_IDENT_LIST = re.compile(r"^[A-Za-z_][\w.-]*(\s*,\s*[A-Za-z_][\w.-]*)*$")
# inline tokens whose content is text a reader sees (an image shows its alt text)
_TEXT_TOKENS = ("text", "code_inline", "html_inline", "image")


@dataclass
class CodeBlock:
    """A fenced block: ``lang`` the first word after the fence (lower case), ``line`` of its first code line."""

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


def plain(cell: str) -> str:
    """Inline markdown as the text it shows: emphasis, backticks and link targets gone, entities and escapes decoded."""
    tokens = commonmark().parseInline(cell)[0].children or []
    return "".join(t.content if t.type in _TEXT_TOKENS else " " if t.type.endswith("break") else ""
                   for t in tokens).strip()


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
    start = body_start(lines)
    doc = Doc(path=path, text=text, body_start=start + 1)
    _read_blocks(doc, commonmark().parse("\n".join(lines[start:])))
    return doc


def _read_blocks(doc: Doc, tokens: list[Token]) -> None:
    """Fill ``doc`` from the body's tokens; a token's 0-based map line ``n`` is file line ``n + doc.body_start``."""
    offset = doc.body_start
    headings: list[tuple[int, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        names = [h for _, h in headings]
        if token.type == "table_open":
            rows, i = read_table(tokens, i)
            table = Table([cell.content for cell in rows.header], [], [], names)
            for line, cells in rows.rows:
                table.rows.append([cell.content for cell in cells])
                table.row_lines.append(line + offset)
                for cell in cells:
                    _collect_inline(doc, cell, line + offset, names)
            doc.tables.append(table)
            continue
        if token.type == "heading_open":  # its own inline token, next, already counts under it
            level = int(token.tag[1:])
            headings = [(lvl, h) for lvl, h in headings if lvl < level] + [(level, plain(tokens[i + 1].content))]
        elif token.type == "fence":
            text = token.content.removesuffix("\n")
            doc.code_blocks.append(CodeBlock(fence_lang(token), text, token.map[0] + offset + 1, names))
        elif token.type == "inline":
            _collect_inline(doc, token, token.map[0] + offset, names)
        i += 1


def _collect_inline(doc: Doc, token: Token, line: int, headings: list[str]) -> None:
    """Code spans and link targets of one inline token that starts on file line ``line``."""
    for child in token.children or []:
        if child.type in ("softbreak", "hardbreak"):
            line += 1
        elif child.type == "code_inline":
            doc.inline.append(Inline(child.content.strip(), line, headings))
        elif child.type == "link_open":
            doc.links.append((str(child.attrs["href"]), line))
        line += child.meta.get("newlines", 0)  # a code span or raw HTML that runs over a line break
