"""Read GitBook markdown as the Unsloth site serves it into sections of plain lines, code blocks and tables.

Block structure (headings, fenced code, pipe tables) comes from markdown-it-py, the CommonMark parser, through its
token line maps; the same layer serves the skill's own parser (``skill/markdown.py``). What CommonMark does not
know is GitBook's and stays here: Liquid-like blocks (``{% hint %}``, ``{% columns %}``, ``{% stepper %}``,
``{% tabs %}``, ``{% code %}``), ``$$`` display math, HTML ``<table>``s inside markdown, inline HTML
(``<mark>``/``<strong>``/``<code>``, ``<br>``, ``<figure>``), emoji shortcodes (``:sloth:``), markdown escapes
(``\\_``) and HTML entities (``&#x73;``). :func:`parse` turns a page into :class:`Section` objects whose text lines
keep inline code as backtick spans (that is where values live).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from markdown_it import MarkdownIt, rules_inline
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

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
# a fence line, list-item fences included (docs/sync.py cuts llms-full.txt with it)
FENCE = re.compile(r"^(\s*(?:(?:\d+\.|[*+-])\s+)?)(`{3,}|~{3,})\s*([\w+.-]*)")
_TABLE_ROW = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.IGNORECASE | re.DOTALL)
_TABLE_CELL = re.compile(r"<(t[hd])\b[^>]*>(.*?)</\1>", re.IGNORECASE | re.DOTALL)


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


def heading_text(raw: str) -> str:
    """A heading as plain text: emoji, emphasis and backticks removed."""
    return plain(inline(raw, list_markers=False)).replace("\n", " ").strip()




# --- the markdown-it layer (skill/markdown.py reads the rendered skill through it too) --------------------------


def _recording_newlines(rule: Callable[[StateInline, bool], bool]) -> Callable[[StateInline, bool], bool]:
    """An inline rule whose one token can hold line breaks (a code span, raw HTML), recording how many in
    ``token.meta["newlines"]``: inline tokens have no line map, so a reader counts breaks to place the next one."""

    def rule_recording_newlines(state: StateInline, silent: bool) -> bool:
        start, pushed = state.pos, len(state.tokens)
        matched = rule(state, silent)
        if matched and len(state.tokens) > pushed:
            state.tokens[-1].meta["newlines"] = state.src.count("\n", start, state.pos)
        return matched

    return rule_recording_newlines


@functools.cache
def commonmark() -> MarkdownIt:
    """The CommonMark parser (markdown-it-py) with GFM pipe tables; block tokens carry 0-based line maps."""
    parser = MarkdownIt("commonmark").enable("table")
    parser.inline.ruler.at("backticks", _recording_newlines(rules_inline.backtick))
    parser.inline.ruler.at("html_inline", _recording_newlines(rules_inline.html_inline))
    return parser


def body_start(lines: list[str]) -> int:
    """Index of the first line after the YAML front matter (``---`` ... ``---``); 0 when there is none."""
    if lines and lines[0].strip() == "---":
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), None)
        if end is not None:
            return end + 1
    return 0


def fence_lang(token: Token) -> str:
    """A fence's language: the first word of its info string, lower case ('' when it has none)."""
    words = token.info.split(maxsplit=1)
    return words[0].lower() if words else ""


@dataclass
class TableRows:
    """A pipe table's cells as markdown-it ``inline`` tokens: the header row, then (0-based line, cells) per row."""

    header: list[Token]
    rows: list[tuple[int, list[Token]]]


def read_table(tokens: list[Token], start: int) -> tuple[TableRows, int]:
    """The table opened at ``tokens[start]``, and the index just past its ``table_close``."""
    table, cells, line, in_head = TableRows([], []), [], 0, False
    i = start + 1
    while tokens[i].type != "table_close":
        token = tokens[i]
        if token.type in ("thead_open", "thead_close"):
            in_head = token.type == "thead_open"
        elif token.type == "tr_open":
            cells, line = [], token.map[0] if token.map else 0
        elif token.type == "inline":
            cells.append(token)
        elif token.type == "tr_close":
            if in_head:
                table.header = cells
            else:
                table.rows.append((line, cells))
        i += 1
    return table, i + 1


# --- GitBook pages ----------------------------------------------------------------------------------------------


Block = Section | CodeBlock | Table


def _pipe_table(tokens: list[Token], start: int, lines: list[str]) -> tuple[Table | None, int, int]:
    """The table markdown-it opened at ``tokens[start]`` as GitBook writes one: every line between pipes.

    CommonMark (GFM) lets a table run on over lines without a pipe; here the table ends before the first line
    that does not start with ``|``, and those lines are text again. Returns the table (None when its header or
    separator line has no pipe), the line it ends before, and the token index past it.
    """
    rows, after = read_table(tokens, start)
    first, end = tokens[start].map or (0, 0)
    end = next((n for n in range(first, end) if not lines[n].lstrip().startswith("|")), end)
    if end < first + 2:
        return None, first, after
    body = [[inline(cell.content) for cell in cells] for line, cells in rows.rows if line < end]
    return Table([inline(cell.content) for cell in rows.header], body), end, after


def _markdown_blocks(tokens: list[Token], lines: list[str]) -> Iterator[tuple[int, int, Block]]:
    """Headings (as new sections), fences and pipe tables, each with its 0-based line range [first, end)."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.type == "table_open":
            table, end, i = _pipe_table(tokens, i, lines)
            if table is not None:
                yield token.map[0], end, table
            continue
        if token.type == "heading_open":
            section = Section(title=heading_text(tokens[i + 1].content), level=int(token.tag[1:]))
            yield token.map[0], token.map[1], section
        elif token.type == "fence":
            yield token.map[0], token.map[1], CodeBlock(fence_lang(token), token.content.removesuffix("\n"))
        i += 1


@dataclass
class _Page:
    """The sections read so far, and the GitBook blocks (``$$`` math, an HTML table) that span text lines."""

    sections: list[Section]
    math: bool = False
    html_table: list[str] | None = None

    @property
    def inside_block(self) -> bool:
        """True inside ``$$`` math or an HTML table, which hold whatever CommonMark would make of their lines."""
        return self.math or self.html_table is not None

    def add_block(self, block: Block) -> None:
        """A heading starts a section; a code block or table goes to the current one."""
        if isinstance(block, Section):
            self.sections.append(block)
        elif isinstance(block, CodeBlock):
            self.sections[-1].code.append(block)
        else:
            self.sections[-1].tables.append(block)

    def text_lines(self, lines: list[str]) -> None:
        """Lines outside headings, fences and pipe tables: GitBook math and HTML tables, else normalised text."""
        for line in lines:
            stripped = line.strip()
            if self.html_table is None and (stripped == "$$" or self.math):  # display math: no values we read
                self.math = self.math != (stripped == "$$")
            elif self.html_table is not None or "<table" in stripped.lower():
                self.html_table = [] if self.html_table is None else self.html_table
                self.html_table.append(line)
                if "</table>" in stripped.lower():
                    self.close_html_table()
            elif normalised := inline(_LIQUID.sub("", line)):
                self.sections[-1].lines.extend(normalised.split("\n"))

    def close_html_table(self) -> None:
        """Read the pending HTML table, if any, into the current section."""
        table = _html_table("\n".join(self.html_table)) if self.html_table is not None else None
        if table:
            self.sections[-1].tables.append(table)
        self.html_table = None


def parse(text: str) -> list[Section]:
    """Split a GitBook markdown page into sections (the first is the page title's, level 1)."""
    lines = text.replace("\r\n", "\n").split("\n")
    lines = lines[body_start(lines):]
    page = _Page([Section(title="", level=1)])
    done = 0
    for first, end, block in _markdown_blocks(commonmark().parse("\n".join(lines)), lines):
        page.text_lines(lines[done:first])
        if page.inside_block:
            page.text_lines(lines[first:end])
        else:
            page.add_block(block)
        done = end
    page.text_lines(lines[done:])
    page.close_html_table()
    sections = page.sections
    if not sections[0].title and not (sections[0].lines or sections[0].code or sections[0].tables):
        sections.pop(0)
    return sections
