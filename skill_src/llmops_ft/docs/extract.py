"""Extract facts (parameter, value/range/enum, unit, condition, section) from one parsed Unsloth docs page.

Four kinds of evidence, all read from the page as it is:
- code: ``name = literal`` assignments and keyword arguments in code blocks and inline code spans (``code.py``);
- tables: settings tables (a label column and a "Recommended" column) and the VRAM-by-model-size table;
- prose: a short list of sentence patterns the docs use for numbers that appear nowhere else;
- curated: the few values the docs state only in images or newer pages, from ``curated.yaml``; each names an
  anchor text that must still be in its section, so a curated fact disappears (and shows as drift) with it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from ..knowledge.pages import PAGES_BY_KEY
from . import markdown
from .code import LITERAL_ERRORS, Assignment, assignments, rank_ratio
from .factset import PageFacts, number

EXTRACTOR_VERSION = "1"
CURATED_PATH = Path(__file__).with_name("curated.yaml")

# Code names -> canonical parameter names. Names not listed here are not facts.
CODE_PARAMS: dict[str, str] = {
    "r": "lora_rank",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
    "use_rslora": "use_rslora",
    "bias": "lora_bias",
    "random_state": "random_state",
    "use_gradient_checkpointing": "use_gradient_checkpointing",
    "max_seq_length": "max_seq_length",
    "dtype": "dtype",
    "load_in_4bit": "load_in_4bit",
    "per_device_train_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "max_steps": "max_steps",
    "num_train_epochs": "num_train_epochs",
    "learning_rate": "learning_rate",
    "embedding_learning_rate": "embedding_learning_rate",
    "warmup_steps": "warmup_steps",
    "warmup_ratio": "warmup_fraction",
    "weight_decay": "weight_decay",
    "optim": "optim",
    "lr_scheduler_type": "lr_scheduler_type",
    "quantization_method": "quantization_method",
    "save_method": "save_method",
    "maximum_memory_usage": "maximum_memory_usage",
    "map_eos_token": "map_eos_token",
    "test_size": "eval_test_size",
    "fp16_full_eval": "fp16_full_eval",
    "per_device_eval_batch_size": "per_device_eval_batch_size",
    "eval_accumulation_steps": "eval_accumulation_steps",
    "eval_steps": "eval_steps",
    "save_steps": "save_steps",
    "early_stopping_patience": "early_stopping_patience",
    "resume_from_checkpoint": "resume_from_checkpoint",
}

# Row labels of settings tables (lower case, matched as prefixes) -> canonical parameter names.
TABLE_LABELS: dict[str, str] = {
    "lora rank": "lora_rank",
    "lora alpha": "lora_alpha_ratio",
    "lora dropout": "lora_dropout",
    "weight decay": "weight_decay",
    "warmup steps": "warmup_fraction",
    "scheduler type": "lr_scheduler_type",
    "seed": "random_state",
    "target modules": "target_modules",
    "batch size": "per_device_train_batch_size",
    "gradient accumulation": "gradient_accumulation_steps",
    "effective batch size": "effective_batch_size",
    "learning rate": "learning_rate",
    "epochs": "num_train_epochs",
}
# Section titles (lower case, substring) whose prose numbers belong to one parameter.
SECTION_PARAMS: dict[str, str] = {"learning rate": "learning_rate", "epochs": "num_train_epochs"}

NUM = r"\d+(?:\.\d+)?(?:e-?\d+)?"
_NUM_ONLY = re.compile(rf"^({NUM})$")
_NUM_LIST = re.compile(rf"^{NUM}(?:\s*,\s*{NUM})+$")
_SCI = re.compile(r"(?<![\w.])\d+(?:\.\d+)?e-\d+\b")
_QUANT_NAME = re.compile(r"^(?:i?q\d_\w+|f16|bf16|f32)$", re.IGNORECASE)


# --- code facts -----------------------------------------------------------------------------------------------


def _code_value_facts(out: PageFacts, section: str, found: list[Assignment]) -> None:
    for item in found:
        if item.name == "lora_alpha" and (ratio := rank_ratio(item.node)) is not None:
            out.add("lora_alpha_ratio", None, section, {"value": ratio})
            continue
        if item.name == "ALLOWED_QUANTS":
            _allowed_quants(out, section, item)
            continue
        param = CODE_PARAMS.get(item.name)
        if param is None:
            continue
        try:
            value = item.literal()
        except LITERAL_ERRORS:
            continue
        if isinstance(value, (list, tuple)):
            out.add(param, None, section, {"values": list(value)})
        elif isinstance(value, (int, float, str, bool)) or value is None:
            out.add(param, None, section, {"value": value})
        suggested = re.search(rf"suggested\s+({NUM}(?:\s*,\s*{NUM})+)", item.comment, re.IGNORECASE)
        if suggested:
            out.add(param, "suggested", section, {"enum": [number(n) for n in suggested.group(1).split(",")]})


def _allowed_quants(out: PageFacts, section: str, item: Assignment) -> None:
    try:
        table = item.literal()
    except LITERAL_ERRORS:
        return
    if not isinstance(table, dict):
        return
    out.add("quantization_method", "allowed", section, {"enum": list(table)})
    recommended = [k for k, v in table.items() if str(v).lower().startswith("recommended")]
    if recommended:
        out.add("quantization_method", "recommended", section, {"enum": recommended})


def _list_literal_facts(out: PageFacts, section: markdown.Section, code: str) -> None:
    """A bare list of names printed under a chat-templates heading is the list of supported templates."""
    try:
        tree = ast.parse(code.strip())
    except LITERAL_ERRORS:
        return
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr):
        return
    try:
        value = ast.literal_eval(tree.body[0].value)
    except LITERAL_ERRORS:
        return
    if isinstance(value, list) and len(value) >= 5 and all(isinstance(v, str) for v in value):
        if "chat template" in section.title.lower() or "template" in " ".join(section.lines).lower():
            out.add("chat_template", "supported", section.title, {"values": value})


def _code_block_facts(out: PageFacts, section: markdown.Section) -> None:
    for block in section.code:
        if block.lang in ("bash", "shell", "sh", "json"):
            continue
        _code_value_facts(out, section.title, assignments(block.code))
        _list_literal_facts(out, section, block.code)


def _inline_code_facts(out: PageFacts, section: markdown.Section, in_blocks: set[str]) -> None:
    """Assignments in inline code spans, for names the page's code blocks do not set.

    Code blocks are the page's configuration; a span such as "set `use_rslora = True` to enable it" beside a
    block with ``use_rslora = False`` names an option, not a second default.
    """
    for line in section.lines:
        for span in markdown.code_spans(line):
            found = assignments(span)
            if len(found) != 1:
                continue  # several assignments are an example combination (b1/g16, b2/g8, ...), not a setting
            # `lora_alpha = 2 * lora_rank` states the alpha/rank ratio, which no code block sets
            if found[0].name not in in_blocks or rank_ratio(found[0].node) is not None:
                _code_value_facts(out, section.title, found)


# --- tables ---------------------------------------------------------------------------------------------------


def _table_facts(out: PageFacts, section: markdown.Section) -> None:
    for table in section.tables:
        header = [markdown.plain(h).lower() for h in table.header]
        if header and "model param" in header[0] and any("vram" in h for h in header[1:]):
            _vram_table(out, section.title, table)
            continue
        value_col = next((i for i, h in enumerate(header) if "recommended" in h), None)
        if value_col is None or not header or "parameter" not in header[0]:
            out.skipped.append(f"{section.title}: table ({' | '.join(table.header)[:60]}) is not a settings table")
            continue
        for row in table.rows:
            if len(row) <= value_col:
                out.skipped.append(f"{section.title}: short table row {row[:1]}")
                continue
            label = markdown.plain(row[0]).lower()
            param = next((p for prefix, p in TABLE_LABELS.items() if label.startswith(prefix)), None)
            if param is None:
                out.skipped.append(f"{section.title}: no parameter for table row {row[0]!r}")
                continue
            if not _setting_facts(out, section.title, param, row[value_col]):
                out.skipped.append(f"{section.title}: no value in {row[0]!r} cell {row[value_col][:60]!r}")


def _setting_facts(out: PageFacts, section: str, param: str, cell: str) -> bool:
    """Facts from one "Recommended" cell; True when the cell gave at least one."""
    before = len(out.facts)
    for line in cell.split("\n"):
        text = markdown.plain(line).strip().rstrip(".")
        spans = markdown.code_spans(line)
        if param == "target_modules" and spans:
            modules = [m.strip() for span in spans for m in span.split(",") if m.strip()]
            out.add(param, "recommended", section, {"values": modules})
        elif param == "lora_alpha_ratio" and spans:
            ratios = [r for span in spans if (r := _span_ratio(span)) is not None]
            if ratios:
                out.add(param, "choices", section, {"enum": ratios})
        elif m := re.search(rf"({NUM})\s*(?:-|–|to)\s*({NUM})\s*%", text):
            out.add(param, "range", section, {"range": {"min": number(m[1]) / 100, "max": number(m[2]) / 100}},
                    unit="fraction of total steps" if param == "warmup_fraction" else "fraction")
        elif m := re.match(rf"^recommended:\s*({NUM})", text, re.IGNORECASE):
            out.add(param, "recommended", section, {"value": number(m[1])})
        elif m := re.match(rf"^choose\s+({NUM})\s+or\s+({NUM})", text, re.IGNORECASE):
            out.add(param, "recommended", section, {"enum": [number(m[1]), number(m[2])]})
        elif m := re.match(rf"^({NUM})\s*(?:\((\w+)\))?\s*(?:-|–|to)\s*({NUM})\b", text):
            out.add(param, "range", section, {"range": {"min": number(m[1]), "max": number(m[3])}})
            if m[2]:
                out.add(param, m[2].lower(), section, {"value": number(m[1])})
        elif "e.g." in text and spans:
            out.add(param, "examples", section, {"values": [_span_value(s) for s in spans]})
        elif len(spans) >= 2:
            out.add(param, "choices", section, {"enum": [_span_value(s) for s in spans]})
        elif _NUM_LIST.match(text):
            out.add(param, "choices", section, {"enum": [number(n) for n in text.split(",")]})
        elif m := _NUM_ONLY.match(text):
            out.add(param, "recommended", section, {"value": number(m[1])})
    return len(out.facts) > before


def _span_value(span: str) -> Any:
    return number(span) if _NUM_ONLY.match(span) else span


def _span_ratio(span: str) -> float | None:
    try:
        return rank_ratio(ast.parse(span, mode="eval").body)
    except LITERAL_ERRORS:
        return None


def _vram_table(out: PageFacts, section: str, table: markdown.Table) -> None:
    methods = ["qlora" if "qlora" in h.lower() else "lora" if "lora" in h.lower() else None for h in table.header]
    for row in table.rows:
        size = markdown.plain(row[0]).strip().replace(" ", "")
        if not re.fullmatch(r"\d+(?:\.\d+)?[BM]", size):
            out.skipped.append(f"{section}: VRAM row {row[0]!r} names no model size")
            continue
        for cell, method in zip(row[1:], methods[1:], strict=False):
            m = re.fullmatch(rf"({NUM})\s*GB", markdown.plain(cell).strip(), re.IGNORECASE)
            if method is None or m is None:
                out.skipped.append(f"{section}: VRAM cell {cell!r} for {size} is not 'N GB'")
                continue
            out.add("vram_min_gb", f"{size.lower()}_{method}", section, {"value": number(m[1])},
                    unit="GB", condition=f"model:{size},method:{method}")


# --- prose ----------------------------------------------------------------------------------------------------


def _prose_facts(out: PageFacts, section: markdown.Section) -> None:
    title = section.title
    section_param = next((p for key, p in SECTION_PARAMS.items() if key in title.lower()), None)
    mentions_memory_usage = "maximum_memory_usage" in section.text()
    for line in section.lines:
        text = markdown.plain(line)
        low = text.lower()
        if section_param and (m := re.search(rf"typical range:?\s*({NUM})\s*(?:\([^)]*\))?\s*to\s*({NUM})", low)):
            out.add(section_param, "range", title, {"range": {"min": number(m[1]), "max": number(m[2])}})
        if section_param and (m := re.search(rf"we recommend\s+({NUM})", low)):
            if "reinforcement learning" in low:
                out.add(section_param, "rl", title, {"value": number(m[1])}, condition="method:rl")
            else:
                out.add(section_param, "recommended", title, {"value": number(m[1])})
        if m := re.search(r"(\d+)\s*(?:-|–|to)\s*(\d+)\s*(?:epochs|passes)", low):
            out.add("num_train_epochs", "range", title, {"range": {"min": number(m[1]), "max": number(m[2])}})
        if "try" in low and len(rates := _SCI.findall(low)) >= 2:
            out.add("learning_rate", "to_try", title, {"enum": [number(r) for r in rates]})
        if m := re.search(rf"loss around ({NUM}) to ({NUM})", low):
            out.add("training_loss_target", "range", title, {"range": {"min": number(m[1]), "max": number(m[2])}})
        if m := re.search(rf"loss drops below ({NUM})", low):
            out.add("training_loss_overfit_below", None, title, {"value": number(m[1])})
        if m := re.search(r"at least (\d[\d,]*) rows", low):
            out.add("dataset_min_rows", None, title, {"value": number(m[1])}, unit="rows")
        if m := re.search(r"over (\d[\d,]*) rows", low):
            out.add("dataset_preferred_rows", None, title, {"value": number(m[1])}, unit="rows")
        if m := re.search(r"batch size too high\. set it to ((?:\d+,?\s*)+or\s+\d+)", low):
            out.add("per_device_train_batch_size", "oom", title,
                    {"enum": [number(n) for n in re.findall(r"\d+", m[1])]}, condition="scenario:oom")
        if m := re.search(r"minimum cuda capability (\d+(?:\.\d+)?)", low):
            out.add("cuda_capability_min", None, title, {"value": float(m[1])})
        if mentions_memory_usage and (m := re.search(rf"reduce it to (?:say )?({NUM})", low)):
            out.add("maximum_memory_usage", "on_oom", title, {"value": number(m[1])}, condition="scenario:oom")
        if m := re.search(r"(\d+)\s*-\s*(\d+)x smaller", low):
            out.add("embedding_learning_rate_divisor", None, title,
                    {"range": {"min": number(m[1]), "max": number(m[2])}})
        if m := re.search(r"(\d+)\s*-\s*(\d+)% accuracy", low):
            out.add("qlora_accuracy_loss_pct", None, title, {"range": {"min": number(m[1]), "max": number(m[2])}},
                    unit="%", condition="method:qlora")
        if "overfitting" in title.lower() and (m := re.match(r"increase\s+`(\w+)`", line, re.IGNORECASE)):
            remedy = [number(s) for s in markdown.code_spans(line)[1:] if _NUM_ONLY.match(s)]
            if m[1] in CODE_PARAMS and remedy:
                out.add(CODE_PARAMS[m[1]], "overfitting", title, {"enum": remedy}, condition="scenario:overfitting")
        if "quantiz" in low:
            quants = [s.lower() for s in markdown.code_spans(line) if _QUANT_NAME.match(s)]
            if quants:
                out.add("quantization_method", "mentioned", title, {"enum": quants})


# --- curated --------------------------------------------------------------------------------------------------


def load_curated(path: Path = CURATED_PATH) -> list[dict[str, Any]]:
    """The curated facts (our own small YAML): each with page, section, anchor, parameter and payload."""
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))["facts"]


def _curated_facts(out: PageFacts, sections: list[markdown.Section], curated: list[dict[str, Any]]) -> None:
    by_title = {s.title: s for s in sections}
    for entry in curated:
        if entry["page"] != out.page.key:
            continue
        section = by_title.get(entry["section"])
        label = f"curated {entry['parameter']}.{entry.get('qualifier') or ''}"
        if section is None:
            out.skipped.append(f"{label}: section {entry['section']!r} is gone")
            continue
        if entry["anchor"] not in markdown.plain(section.text()):
            out.skipped.append(f"{label}: anchor {entry['anchor']!r} no longer in {entry['section']!r}")
            continue
        payload = {k: entry[k] for k in ("value", "range", "enum", "values") if k in entry}
        out.add(entry["parameter"], entry.get("qualifier"), section.title, payload,
                unit=entry.get("unit"), condition=entry.get("condition"), origin="curated")


# --- page -----------------------------------------------------------------------------------------------------


def extract_page(key: str, text: str, curated: list[dict[str, Any]] | None = None) -> PageFacts:
    """All facts of page ``key`` from its raw GitBook markdown ``text``."""
    out = PageFacts(PAGES_BY_KEY[key])
    sections = markdown.parse(text)
    in_blocks = {a.name for s in sections for b in s.code for a in assignments(b.code)}
    for section in sections:
        _code_block_facts(out, section)
        _inline_code_facts(out, section, in_blocks)
        _table_facts(out, section)
        _prose_facts(out, section)
    _curated_facts(out, sections, load_curated() if curated is None else curated)
    out.facts = dict(sorted(out.facts.items()))
    return out
