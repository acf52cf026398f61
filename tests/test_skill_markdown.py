"""The harness's markdown reader (markdown-it-py tokens): headings, code blocks, tables, inline code, line numbers."""

from __future__ import annotations

import pytest
from llmops_ft.skill import markdown
from llmops_ft.skill.render import SKILL_DIR

PAGE = "\n".join([
    "---",                                   # 1
    "name: x",                               # 2
    "---",                                   # 3
    "# Title",                               # 4
    "",                                      # 5
    "Run `llmops-ft plan` first, then",      # 6
    "`llmops-ft train --config a.yaml`.",    # 7
    "",                                      # 8
    "## T4 settings",                        # 9
    "",                                      # 10
    "```Python title=x",                     # 11
    "r = 16",                                # 12
    "```",                                   # 13
    "",                                      # 14
    "| Setting | Value |",                   # 15
    "| --- | --- |",                         # 16
    "| `a\\|b` | **16** |",                  # 17
    "| rank | see [the guide](references/training.md) |",  # 18
    "",                                      # 19
    "### Deeper",                            # 20
    "## Back `up`",                          # 21
])


def test_line_numbers_count_the_front_matter():
    doc = markdown.parse("SKILL.md", PAGE)
    assert doc.body_start == 4 and doc.body_lines == 18
    assert [(s.text, s.line) for s in doc.inline] == [
        ("llmops-ft plan", 6), ("llmops-ft train --config a.yaml", 7), ("a|b", 17), ("up", 21)]
    [block] = doc.code_blocks
    assert (block.lang, block.text, block.line) == ("python", "r = 16", 12)
    [table] = doc.tables
    assert table.row_lines == [17, 18]
    assert doc.links == [("references/training.md", 18)]


def test_headings_nest_by_level_and_a_heading_counts_under_itself():
    doc = markdown.parse("SKILL.md", PAGE)
    assert doc.code_blocks[0].headings == ["Title", "T4 settings"]
    assert doc.tables[0].headings == ["Title", "T4 settings"]
    assert doc.inline[-1].headings == ["Title", "Back up"]


def test_table_cells_keep_their_markdown_and_escaped_pipes():
    table = markdown.parse("SKILL.md", PAGE).tables[0]
    assert table.header == ["Setting", "Value"]
    assert table.rows == [["`a|b`", "**16**"], ["rank", "see [the guide](references/training.md)"]]
    assert markdown.cell_value(table.rows[0][1]) == 16.0
    assert markdown.cell_value(table.rows[1][1]) is ...


def test_a_code_span_over_a_line_break_keeps_the_next_ones_on_their_lines():
    doc = markdown.parse("x.md", "Run `llmops-ft init-config --out\nmy.yaml` and then `llmops-ft --help`\nand `b`.\n")
    assert [(s.text, s.line) for s in doc.inline] == [
        ("llmops-ft init-config --out my.yaml", 1), ("llmops-ft --help", 2), ("b", 3)]


def test_a_fence_in_a_list_item_is_read_without_the_items_indent():
    doc = markdown.parse("x.md", "1. Plan:\n\n   ```bash\n   llmops-ft plan --config a.yaml\n   ```\n2. Train.\n")
    [block] = doc.code_blocks
    assert (block.lang, block.text, block.line) == ("bash", "llmops-ft plan --config a.yaml", 4)


def test_backticks_in_an_html_comment_are_not_code():
    doc = markdown.parse("x.md", "<!-- GENERATED: run `make skill` -->\n\nText with `llmops-ft plan`.\n")
    assert [(s.text, s.line) for s in doc.inline] == [("llmops-ft plan", 3)]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("[the guide](x.md) says **2e-4**", "the guide says 2e-4"),
        ("`r * 2` or *r*", "r * 2 or r"),
        ("`__main__`, _emphasis_", "__main__, emphasis"),
        ("&lt;|im_end|&gt; \\*", "<|im_end|> *"),
    ],
)
def test_plain_is_the_text_a_reader_sees(cell, expected):
    assert markdown.plain(cell) == expected


def test_the_rendered_skills_positions_point_at_what_they_name():
    """On the real files: a block's line follows its fence, a row's line is that row, a span is on its line."""
    seen = {"blocks": 0, "rows": 0, "spans": 0}
    for path in [SKILL_DIR / "SKILL.md", *sorted((SKILL_DIR / "references").glob("*.md"))]:
        doc = markdown.parse(path)
        lines = doc.text.splitlines()
        seen["blocks"] += len(doc.code_blocks)
        seen["rows"] += sum(len(t.rows) for t in doc.tables)
        seen["spans"] += len(doc.inline)
        for block in doc.code_blocks:
            assert lines[block.line - 2].lstrip().startswith(("```", "~~~")), (path.name, block.line)
            assert lines[block.line - 1].strip() == block.text.split("\n")[0].strip(), (path.name, block.line)
        for table in doc.tables:
            for cells, line in zip(table.rows, table.row_lines, strict=True):
                row = lines[line - 1]
                assert row.lstrip().startswith("|") and cells[0].replace("|", "\\|") in row, (path.name, line)
        for span in doc.inline:  # a span over a line break starts on its line
            assert span.text.split()[0] in lines[span.line - 1], (path.name, span.line, span.text)
    assert min(seen.values()) >= 10, seen
