"""Calibration of the memory model against Unsloth's published VRAM table (QLoRA 4-bit and LoRA 16-bit).

The figures are read, never hard-coded: from the committed docs facts (docs_cache/facts/requirements.json), and,
when ../shared sits beside the checkout, from the docs snapshot (the requirements page's table) and the newer
2026 figures listed in its PROVENANCE.md. What the table assumes is not stated; the settings below
are the ones we read it as (see CALIBRATION_SETTINGS), and each row is compared with a current model of that
size from the architecture table. "GB" in the table is read as 10^9 bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..knowledge.facts import DOCS_CACHE
from ..knowledge.resources import source_repo
from .architectures import KNOWN
from .memory import Settings, estimate

DOCS_DIR = (source_repo() or Path.cwd()).parent / "shared" / "unsloth-docs"  # the docs snapshot beside a checkout
FACTS_PATH = DOCS_CACHE / "facts" / "requirements.json"
REQUIREMENTS_PAGE = Path("get-started/fine-tuning-for-beginners/unsloth-requirements.md")

# The representative model of each size in the table (Unsloth's own model list at that size).
MODEL_OF_SIZE = {3: "llama-3.2-3b", 7: "mistral-7b", 8: "llama-3.1-8b", 9: "gemma-2-9b", 11: "solar-10.7b",
                 14: "qwen2.5-14b", 27: "gemma-2-27b", 32: "qwen2.5-32b", 40: "falcon-40b", 70: "llama-3.3-70b"}

# How we read the table: the smallest useful run, as the Unsloth notebooks set it up (one sequence of 2048
# tokens, use_gradient_checkpointing="unsloth", adamw_8bit, r=16 on all projections, the fused loss).
CALIBRATION_SETTINGS = {"batch": 1, "seq": 2048, "weight_bytes": 2, "activation_bytes": 2, "lora_r": 16,
                        "optim": "adamw_8bit", "checkpointing": "offload", "fused_cross_entropy": True,
                        "device": "cuda"}
GB = 1e9

_ROW = re.compile(r"(\d+)B\s+([\d.]+)\s*/\s*([\d.]+)")


def table_from_page(text: str) -> dict[int, tuple[float, float]]:
    """Size in B -> (QLoRA GB, LoRA GB) from the requirements page's markdown table."""
    rows = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"\d+B", cells[0]):
            numbers = [re.match(r"[\d.]+", cell) for cell in cells[1:]]
            if all(numbers):
                rows[int(cells[0][:-1])] = (float(numbers[0].group()), float(numbers[1].group()))
    return rows


def table_from_provenance(text: str) -> dict[int, tuple[float, float]]:
    """Size in B -> (QLoRA GB, LoRA GB) from PROVENANCE.md's "VRAM minimum" bullet (it may wrap lines)."""
    match = re.search(r"^- VRAM minimum.*?(?=^- |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    if not match:
        return {}
    bullet = match.group().split("An older copy")[0]  # the older, lower figures are not the table
    return {int(size): (float(q), float(lo)) for size, q, lo in _ROW.findall(bullet)}


def table_from_facts(facts: list[dict[str, Any]]) -> dict[int, tuple[float, float]]:
    """Size in B -> (QLoRA GB, LoRA GB) from the docs facts (``vram_min_gb`` with ``model:8B,method:qlora``)."""
    found: dict[int, dict[str, float]] = {}
    for fact in facts:
        match = re.fullmatch(r"model:(\d+)B,method:(qlora|lora)", str(fact.get("condition")))
        if fact.get("parameter") == "vram_min_gb" and match and "value" in fact:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = float(fact["value"])
    return {size: (pair["qlora"], pair["lora"]) for size, pair in found.items() if len(pair) == 2}


def published_tables(docs_dir: Path | None = None, facts_path: Path | None = None,
                     ) -> dict[str, dict[int, tuple[float, float]]]:
    """Each available source -> {size in B: (QLoRA GB, LoRA GB)}: "facts" (committed docs facts), "snapshot"
    (the requirements page in ../shared) and "2026" (PROVENANCE.md's newer figures)."""
    docs_dir, facts_path = Path(docs_dir or DOCS_DIR), Path(facts_path or FACTS_PATH)
    tables = {}
    if facts_path.is_file():
        tables["facts"] = table_from_facts(json.loads(facts_path.read_text(encoding="utf-8")))
    page, provenance = docs_dir / REQUIREMENTS_PAGE, docs_dir / "PROVENANCE.md"
    if page.is_file():
        tables["snapshot"] = table_from_page(page.read_text(encoding="utf-8"))
    if provenance.is_file():
        tables["2026"] = table_from_provenance(provenance.read_text(encoding="utf-8"))
    if not tables:
        raise UserError("no Unsloth VRAM table: neither docs_cache/facts/requirements.json nor ../shared/unsloth-docs")
    for name, table in tables.items():
        if not table:
            raise UserError(f"no VRAM table found in the {name} source")
    return tables


def estimate_gb(arch_name: str, load_in_4bit: bool) -> float:
    """The model's estimate for ``arch_name`` under CALIBRATION_SETTINGS, in GB (10^9 bytes)."""
    arch = KNOWN[arch_name]
    settings = Settings(load_in_4bit=load_in_4bit, target_modules=tuple(arch.linears()), **CALIBRATION_SETTINGS)
    return estimate(arch, settings)["total"] / GB


def calibration_report(docs_dir: Path | None = None, facts_path: Path | None = None) -> list[dict[str, Any]]:
    """One row per (source, size) of the published table from 3B to 70B: table GB, estimate GB, relative error."""
    rows = []
    for source, table in published_tables(docs_dir, facts_path).items():
        for size, (qlora, lora) in sorted(table.items()):
            if size not in MODEL_OF_SIZE:
                continue
            arch = MODEL_OF_SIZE[size]
            row = {"source": source, "size_b": size, "model": arch,
                   "params_b": round(KNOWN[arch].total_params() / 1e9, 2)}
            for method, published, four_bit in (("qlora", qlora, True), ("lora", lora, False)):
                estimated = estimate_gb(arch, four_bit)
                row[f"{method}_table_gb"] = published
                row[f"{method}_estimate_gb"] = round(estimated, 2)
                row[f"{method}_error"] = round(estimated / published - 1, 3)
            rows.append(row)
    return rows


def format_report(rows: list[dict[str, Any]]) -> str:
    """The calibration rows as a fixed-width table."""
    lines = [f"{'source':8} {'size':>5} {'model':14} {'QLoRA table':>11} {'estimate':>8} {'error':>6}   "
             f"{'LoRA table':>10} {'estimate':>8} {'error':>6}"]
    for r in rows:
        lines.append(
            f"{r['source']:8} {r['size_b']:>4}B {r['model']:14} {r['qlora_table_gb']:>11.1f} "
            f"{r['qlora_estimate_gb']:>8.1f} {r['qlora_error']:>+6.0%}   {r['lora_table_gb']:>10.1f} "
            f"{r['lora_estimate_gb']:>8.1f} {r['lora_error']:>+6.0%}"
        )
    return "\n".join(lines)
