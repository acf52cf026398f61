"""Read GitBook markdown as the Unsloth site serves it into sections of plain lines, code blocks and tables.

GitBook pages mix markdown with HTML (``<table>`` inside markdown, ``<mark>``/``<strong>``/``<code>``, ``<br>``,
``<figure>``), Liquid-like blocks (``{% hint %}``, ``{% columns %}``, ``{% stepper %}``, ``{% tabs %}``), emoji
shortcodes (``:sloth:``), markdown escapes (``\\_``) and HTML entities (``&#x73;``). :func:`parse` turns a page
into :class:`Section` objects whose text lines keep inline code as backtick spans (that is where values live).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field

_HTML_TAGS = (
    "p|br|strong|em|b|i|u|s|del|mark|code|span|div|a|figure|figcaption|img|sup|sub|pre|details|summary|"
    "table|thead|tbody|tr|th|td|ul|ol|li|h[1-6]"
)
_TAG = re.compile(rf"</?(?:{_HTML_TAGS})\b[^>]*>", re.IGNORECASE)
_FIGURE = re.compile(r"<figure\b.*?</figure>", re.IGNORECASE | re.DOTALL)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_BREAK = re.compile(r"<br\s*/?>|</?p\b[^>]*>|</li>", re.IGNORECASE)
_CODE_TAG = re.compile(r"</?code\b[^>]*>", re.IGNORECASE)
_LIQUID = re.compile(r"\{%-?\s*[\w-]+(?:[^%]|%(?!\}))*%\}")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!&|~<>$:'\"])")
_EMOJI_CODE = re.compile(r"(?<![\w:/\\]):[a-z0-9_+\\-]+:")
_PROTECTED = re.compile(r"\x00(\d+)\x01")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^)]*\))*\)")
_AUTOLINK = re.compile(r"<(https?://[^>\s]+)>")
_EMPHASIS = re.compile(r"\*{1,3}|~~")
FENCE = re.compile(r"^(\s*(?:(?:\d+\.|[*+-])\s+)?)(`{3,}|~{3,})\s*([\w+.-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_TABLE_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.IGNORECASE | re.DOTALL)
_TABLE_CELL = re.compile(r"<(t[hd])\b[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)
_SEPARATOR_ROW = re.compile(r"^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


@dataclass
class CodeBlock:
    """A fenced code block: its language tag (may be empty) and its dedented text."""

    lang: str
    code: str


@dataclass
class Table:
    """A table (HTML or markdown): header cells and body rows, each cell normalised by :func:`inline`."""

    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """The content under one heading: normalised text lines, code blocks and tables, in page order."""

    title: str
    level: int
    lines: list[str] = field(default_factory=list)
    code: list[CodeBlock] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)

    def text(self) -> str:
        """All text lines, code and table cells of the section as one string (for anchors and searching)."""
        parts = list(self.lines) + [block.code for block in self.code]
        for table in self.tables:
            parts += [" | ".join(row) for row in [table.header, *table.rows]]
        return "\n".join(parts)


def _outside_code(line: str, fn) -> str:
    """Apply ``fn`` to the parts of ``line`` that are not backtick code spans."""
    out, last = [], 0
    for match in _CODE_SPAN.finditer(line):
        out.append(fn(line[last:match.start()]))
        out.append("`" + match.group(2).strip() + "`")
        last = match.end()
    out.append(fn(line[last:]))
    return "".join(out)


def _strip_symbols(text: str) -> str:
    """Drop emoji and other pictographic symbols (category So), variation selectors and zero-width characters."""
    return "".join(
        ch for ch in text
        if unicodedata.category(ch) not in ("So", "Cf", "Mn") or ch in "\t"
    ).replace("\xa0", " ")


def _markdown_inline(text: str) -> str:
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    return _EMPHASIS.sub("", text)


def inline(raw: str, list_markers: bool = True) -> str:
    """Normalise inline GitBook markdown/HTML to plain text lines; inline code stays as `backtick` spans.

    ``<br>`` and paragraph tags become newlines; every other known HTML tag is dropped (text kept), figures and
    images are dropped whole, entities are decoded, markdown escapes and emphasis removed, links keep their text.
    """
    text = _FIGURE.sub("", raw)
    text = _IMG.sub("", text)
    text = _BREAK.sub("\n", text)
    text = _CODE_TAG.sub("`", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    lines = []
    for line in text.split("\n"):
        line = re.sub(r"\\+\s*$", "", line)  # a trailing backslash is GitBook's hard line break
        line = _EMOJI_CODE.sub("", line)
        # escaped characters are held aside so emphasis removal cannot eat a literal `\*`
        line = _ESCAPE.sub(lambda m: f"\x00{ord(m.group(1))}\x01", line)
        line = _strip_symbols(line)
        line = _outside_code(line, _markdown_inline)
        line = _PROTECTED.sub(lambda m: chr(int(m.group(1))), line)
        line = re.sub(r"\s+", " ", line).strip()
        if list_markers:
            line = re.sub(r"^(?:[*+-]|\d+\.)\s+", "", line)
        if line:
            lines.append(line)
    return "\n".join(lines)


def plain(text: str) -> str:
    """``text`` without the backticks of its code spans."""
    return _CODE_SPAN.sub(lambda m: m.group(2).strip(), text)


def code_spans(text: str) -> list[str]:
    """The contents of the backtick code spans of ``text``, in order."""
    return [m.group(2).strip() for m in _CODE_SPAN.finditer(text)]


def _html_table(raw: str) -> Table | None:
    rows, header = [], []
    for row in _TABLE_ROW.findall(raw):
        cells = _TABLE_CELL.findall(row)
        values = [inline(body) for _tag, body in cells]
        if not header and cells and all(tag.lower() == "th" for tag, _ in cells):
            header = values
        else:
            rows.append(values)
    return Table(header, rows) if header or rows else None


def _split_pipe_row(line: str) -> list[str]:
    cells, current, in_code, i = [], [], False, 0
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            current.append("|")
            i += 2
            continue
        if ch == "`":
            in_code = not in_code
        if ch == "|" and not in_code:
            cells.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    cells.append("".join(current))
    return [inline(cell) for cell in cells]


def _pipe_table(lines: list[str]) -> Table | None:
    if len(lines) < 2 or not _SEPARATOR_ROW.match(lines[1].strip()):
        return None
    return Table(_split_pipe_row(lines[0]), [_split_pipe_row(line) for line in lines[2:]])


def heading_text(raw: str) -> str:
    """A heading as plain text: emoji, emphasis and backticks removed."""
    return plain(inline(raw, list_markers=False)).replace("\n", " ").strip()


def parse(text: str) -> list[Section]:
    """Split a GitBook markdown page into sections (the first is the page title's, level 1)."""
    text = _FRONT_MATTER.sub("", text.replace("\r\n", "\n"), count=1)
    sections = [Section(title="", level=1)]
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        current = sections[-1]
        fence = FENCE.match(line)
        if fence:
            indent = len(fence.group(1))
            marker = fence.group(2)
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip())
                i += 1
            current.code.append(CodeBlock(fence.group(3).lower(), "\n".join(body)))
            i += 1
            continue
        stripped = line.strip()
        if stripped == "$$":  # display math: no values we read
            i += 1
            while i < len(lines) and lines[i].strip() != "$$":
                i += 1
            i += 1
            continue
        if "<table" in stripped.lower():
            chunk = [line]
            while "</table>" not in chunk[-1].lower() and i + 1 < len(lines):
                i += 1
                chunk.append(lines[i])
            table = _html_table("\n".join(chunk))
            if table:
                current.tables.append(table)
            i += 1
            continue
        if stripped.startswith("|"):
            chunk = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                chunk.append(lines[i])
                i += 1
            table = _pipe_table(chunk)
            if table:
                current.tables.append(table)
            else:
                current.lines.extend(text for text in (inline(row) for row in chunk) if text)
            continue
        heading = _HEADING.match(stripped)
        if heading:
            sections.append(Section(title=heading_text(heading.group(2)), level=len(heading.group(1))))
            i += 1
            continue
        rest = _LIQUID.sub("", line)
        normalised = inline(rest)
        if normalised:
            current.lines.extend(normalised.split("\n"))
        i += 1
    if not sections[0].title and not (sections[0].lines or sections[0].code or sections[0].tables):
        sections.pop(0)
    return sections
