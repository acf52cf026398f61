"""The GitBook markdown normaliser: each construct the Unsloth pages use, then the real pages from ../shared."""

from __future__ import annotations

import pytest
from llmops_ft.docs import markdown
from llmops_ft.knowledge.pages import PAGES, PAGES_BY_KEY


def _page(shared, key: str) -> str:
    return (shared / "unsloth-docs" / PAGES_BY_KEY[key].filename).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a <mark style=\"color:green;\">**marked**</mark> word", "a marked word"),
        ("<strong>Rank</strong> (<code>r</code>)", "Rank (`r`)"),
        ("trainin&#x67;**.** done", "training. done"),
        ("apply to `batch\\_size` and lm\\_head", "apply to `batch_size` and lm_head"),
        (":green\\_square: ***For LoRA***, use **`2e-4`**", "For LoRA, use `2e-4`"),
        ("## :1234: Key values", "## Key values"),
        ("[the guide](https://example.org/x_(1)) now", "the guide now"),
        ("see <https://example.org/a>", "see https://example.org/a"),
        ("first line\\", "first line"),
        ("keep `r * 2` as code, drop *emphasis*", "keep `r * 2` as code, drop emphasis"),
        ("Recommended: 16 (from 2 \\* 8)", "Recommended: 16 (from 2 * 8)"),
        ("set `<|im_end|>` as eos", "set `<|im_end|>` as eos"),
        ("\u200bDeepSeek \U0001f9a5 fast", "DeepSeek fast"),
    ],
)
def test_inline_normalises_gitbook_constructs(raw, expected):
    assert markdown.inline(raw) == expected


def test_inline_breaks_and_paragraphs_become_lines():
    assert markdown.inline("<p>8, 16<br><br>Choose 16</p>") == "8, 16\nChoose 16"


def test_figures_and_images_are_dropped_whole():
    raw = '<figure><img src="x.png" alt=""><figcaption><p>A caption</p></figcaption></figure>'
    assert markdown.inline(raw) == ""


def test_parse_sections_blocks_and_tables():
    text = "\n".join([
        "# Title",
        "intro",
        "{% hint style=\"info\" %}",
        "Set `r = 8` here",
        "{% endhint %}",
        "## 2. Second",
        "{% stepper %}",
        "{% step %} <mark>Step one</mark>",
        "1. ```python",
        "   lora_alpha = 16,",
        "   ```",
        "{% endstep %}",
        "{% endstepper %}",
        "| Param | Value |",
        "| ----- | ----- |",
        "| `a\\|b` | 1 |",
        "$$",
        "x = 1",
        "$$",
        "<table><thead><tr><th>H</th></tr></thead><tbody><tr><td><code>v</code></td></tr></tbody></table>",
    ])
    sections = markdown.parse(text)
    assert [s.title for s in sections] == ["Title", "2. Second"]
    assert sections[0].lines == ["intro", "Set `r = 8` here"]
    second = sections[1]
    assert second.lines == ["Step one"]
    assert [(c.lang, c.code) for c in second.code] == [("python", "lora_alpha = 16,")]
    assert [(t.header, t.rows) for t in second.tables] == [(["Param", "Value"], [["`a|b`", "1"]]), (["H"], [["`v`"]])]


def test_front_matter_is_skipped():
    sections = markdown.parse("---\ndescription: x\n---\n# Page\nbody\n")
    assert [(s.title, s.lines) for s in sections] == [("Page", ["body"])]


def test_real_hyperparameter_table_is_read(shared):
    sections = {s.title: s for s in markdown.parse(_page(shared, "lora-hyperparameters"))}
    table = sections["Hyperparameters & Recommendations:"].tables[0]
    assert table.header == ["Hyperparameter", "Function", "Recommended Settings"]
    rows = {markdown.plain(row[0]): row[2] for row in table.rows}
    assert rows["LoRA Rank (r)"] == "8, 16, 32, 64, 128\nChoose 16 or 32"
    assert rows["Weight Decay"] == "0.01 (recommended) - 0.1"
    assert rows["Warmup Steps"] == "5-10% of total steps"
    assert rows["Scheduler Type"] == "`linear` or `cosine`"
    # the escaped `2 \* 8` in the markdown table survives emphasis removal
    batch = sections["Effective Batch Size"].tables[0]
    assert batch.rows[-1][-1] == "4 to 16\nRecommended: 16 (from 2 * 8)"


def test_real_pages_parse_without_markup_left(shared):
    for page in PAGES:
        sections = markdown.parse(_page(shared, page.key))
        assert sections[0].title == page.title
        for section in sections:
            for line in section.lines:
                text = markdown.plain(line)
                assert "{%" not in text and "<mark" not in text and "<figure" not in text, (page.key, line)
                assert "&#x" not in text and "\\_" not in text, (page.key, line)
            assert ":sloth:" not in section.title and ":question:" not in section.title


def test_numbered_list_code_blocks_are_dedented(shared):
    sections = {s.title: s for s in markdown.parse(_page(shared, "tutorial-ollama"))}
    code = [c.code for c in sections["5. Parameters for finetuning"].code]
    assert code[0].startswith("r = 16,")
    assert code[1].split("\n")[1].startswith('                  "gate_proj"')


def test_commonmark_blocks_decide_what_is_a_heading_or_a_table():
    text = "\n".join([
        "# Page",
        '<pre class="language-python"><code>import torch',
        "",
        "# a comment in the HTML code block, not a section",
        "r = 16</code></pre>",
        "| A | B |",
        "| - | - |",
        "| 1 | 2 |",
        "no pipe: text again, where GFM would make it a row",
        "    ## indented four spaces: CommonMark code, read as text",
    ])
    sections = markdown.parse(text)
    assert [s.title for s in sections] == ["Page"]
    assert "# a comment in the HTML code block, not a section" in sections[0].lines
    assert [(t.header, t.rows) for t in sections[0].tables] == [(["A", "B"], [["1", "2"]])]
    assert sections[0].lines[-2:] == ["no pipe: text again, where GFM would make it a row",
                                      "## indented four spaces: CommonMark code, read as text"]
