"""Hardware rules: fp16 (never bf16, the 4-bit compute dtype included) on T4/V100; bf16 on Ampere and newer.

Applied to the recommendations (dtype entries by the hardware they list) and to the rendered skill: every code
line and table row that selects bf16 must sit in an Ampere+ context (its line, row, block or section says so) and
never in a T4/V100 one; one that selects fp16 must not sit in an Ampere-only context. A line that picks the dtype
at run time (``is_bfloat16_supported()``) is always fine.
"""

from __future__ import annotations

import re

from ...knowledge.recommendations import RecommendationSet
from ..markdown import Doc, cell_value, plain
from ..values import normalize
from . import Finding

PRE_AMPERE = {"t4", "v100"}
AMPERE_PLUS = {"l4", "a10g", "a100-40", "a100-80", "h100", "rtx3090", "rtx4090"}
_BF16 = re.compile(r"bfloat16|\bbf16\b\s*[=:]\s*true\b|--bf16\b", re.I)
_FP16 = re.compile(r"(?<!b)float16|\bfp16\b\s*[=:]\s*true\b|--fp16\b", re.I)
_RUNTIME_CHOICE = re.compile(r"is_bf(?:loat)?16_supported|dtype\s*=\s*None", re.I)


def _mentions_any(text: str, words: list[str]) -> bool:
    return any(re.search(rf"(?<![A-Za-z0-9]){re.escape(w)}(?![A-Za-z0-9])", text, re.I) for w in words)


def recommendation_findings(recs: RecommendationSet, label: str) -> list[Finding]:
    """dtype entries: float16 (or auto) where they cover T4/V100, bfloat16 (or auto) where they cover only Ampere+."""
    out = []
    for rec_id, entry in recs.entries.items():
        value = normalize(entry["value"])
        hardware = set(entry["hardware"])
        covers_pre_ampere = bool(hardware & PRE_AMPERE) or "gpu:pre-ampere" in (entry["condition"] or "")
        line = recs.lines.get(rec_id)
        if value in ("bfloat16", "bf16") and (covers_pre_ampere or "all" in hardware):
            out.append(Finding("hardware", label, line, f"{rec_id}: bfloat16 on T4/V100 (no bf16 units); "
                                                        "use float16 there, the 4-bit compute dtype included"))
        if entry["param"] == "dtype" and value is not None:
            if covers_pre_ampere and value != "float16":
                out.append(Finding("hardware", label, line, f"{rec_id}: T4/V100 need float16, not {value}"))
            if hardware and hardware <= AMPERE_PLUS and value != "bfloat16":
                out.append(Finding("hardware", label, line, f"{rec_id}: Ampere and newer should use bfloat16, "
                                                            f"not {value}"))
    return out


def doc_findings(recs: RecommendationSet, doc: Doc, label: str) -> list[Finding]:
    """bf16/fp16 in code lines and table rows, judged by the context they sit in."""
    pre_words = recs.contexts.get("gpu:pre-ampere", [])
    ampere_words = recs.contexts.get("gpu:ampere+", [])
    cpu_bf16_words = recs.contexts.get("cpu:bf16", [])  # a CPU with bf16 instructions: bf16 is its rule too
    out = []

    def judge(text: str, line: int, near: str, wider: str) -> None:
        if _RUNTIME_CHOICE.search(text):
            return
        pre = _mentions_any(near, pre_words) or (not _mentions_any(near, ampere_words)
                                                  and _mentions_any(wider, pre_words))
        ampere = (_mentions_any(near, ampere_words) or _mentions_any(wider, ampere_words)
                  or _mentions_any(near, cpu_bf16_words))
        if _BF16.search(text):
            if pre:
                out.append(Finding("hardware", label, line, "bf16 in a T4/V100 context: they have no bf16 units; "
                                                            "use fp16 (compute dtype included) or dtype=None"))
            elif not ampere:
                out.append(Finding("hardware", label, line, "bf16 shown without saying it needs Ampere or newer "
                                                            "(on a T4/V100 it fails): mark the section or use "
                                                            "dtype=None"))
        elif _FP16.search(text) and ampere and not pre:
            out.append(Finding("hardware", label, line, "fp16 in an Ampere+ context: use bf16 there"))

    for block in doc.code_blocks:
        headings = " / ".join(block.headings)
        for i, text in enumerate(block.text.splitlines()):
            judge(text, block.line + i, text, block.text + " / " + headings)
    for table in doc.tables:
        headings = " / ".join(table.headings)
        for cells, line in zip(table.rows, table.row_lines, strict=True):
            row = " | ".join(plain(c) for c in cells)
            shown = " | ".join(plain(c) for c in cells[1:] if cell_value(c) is not ...)  # values, not prose
            judge(shown, line, row, " | ".join(table.header) + " / " + headings)
    return out
