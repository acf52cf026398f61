#!/usr/bin/env python3
"""Benchmark prep: 100k alpaca rows with --model token stats, against the naive datasets.map(apply_chat_template).

Both sides do the same token-stat work on the same rows, in one run: the chat-template length of every row and
its trainable (assistant) token count, then min/p50/p95/max. Ours is the full pipeline (read, schema-check,
normalise, dedupe, split, write); the baseline only reads and tokenizes, one apply_chat_template call per row
for the chat and one for its prompt. Writes benchmarks/results/prep.json.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "skill_src"))
SHARED_ALPACA = REPO.parent / "shared" / "datasets" / "alpaca_en_demo.json"
RESULTS = REPO / "benchmarks" / "results" / "prep.json"
MODEL = "smollm2-135m"


def build_rows(path: Path, rows: int) -> None:
    """``rows`` alpaca rows cycling through the shared file, each made unique by a row-number suffix."""
    source = json.loads(SHARED_ALPACA.read_text(encoding="utf-8"))
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            row = dict(source[i % len(source)])
            row["instruction"] = f"{row['instruction']} (#{i})"
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def nearest_rank(ordered: list[int], p: float) -> int:
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def naive(path: Path) -> dict[str, int]:
    """datasets.Dataset.from_list(rows).map(apply_chat_template): lengths and trainable counts, per row."""
    import datasets
    from llmops_ft.engines.models import resolve_model
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL))
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]

    def measure(row: dict) -> dict:
        user = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
        full = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
        prompt = tokenizer.apply_chat_template(messages[:1], tokenize=True, add_generation_prompt=True,
                                               return_dict=False)
        return {"tokens": len(full), "trainable": len(full) - len(prompt)}

    measured = datasets.Dataset.from_list(rows).map(measure, remove_columns=["instruction", "input", "output"])
    lengths = sorted(measured["tokens"])
    return {"min": lengths[0], "p50": nearest_rank(lengths, 0.5), "p95": nearest_rank(lengths, 0.95),
            "max": lengths[-1], "total": sum(lengths), "trainable_total": sum(measured["trainable"])}


def ours(path: Path, out: Path) -> dict:
    from llmops_ft.data import prepare

    return prepare(path, out, model=MODEL, dedupe=True)


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def run(rows: int = 100_000, results: Path | None = RESULTS) -> dict:
    """Time both on ``rows`` rows; write the result JSON to ``results`` (None: do not write); return it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpaca.jsonl"
        build_rows(path, rows)
        report, ours_s = timed(ours, path, Path(tmp) / "out")
        baseline, naive_s = timed(naive, path)
    ours_stats = {k: report["tokens"][k] for k in ("min", "p50", "p95", "max", "total")}
    result = {
        "figure": f"prep of {rows} alpaca rows with --model {MODEL} token stats: rows per second",
        "rows": rows,
        "ours": {"seconds": round(ours_s, 2), "rows_per_s": round(rows / ours_s), "kept": report["kept"],
                 "tokens": report["tokens"]},
        "baseline": {"what": "datasets.Dataset.from_list(rows).map(apply_chat_template) for chat and prompt",
                     "seconds": round(naive_s, 2), "rows_per_s": round(rows / naive_s), "tokens": baseline},
        "ratio": round(naive_s / ours_s, 2),
        # Trainable totals differ by design: the naive count (chat minus prompt) also counts the template's "\n"
        # after <|im_end|>, one token a row, which prep does not train on.
        "same_token_stats": ours_stats == {k: baseline[k] for k in ours_stats},
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(terse=True),
                    "python": platform.python_version(),
                    "TOKENIZERS_PARALLELISM": os.environ.get("TOKENIZERS_PARALLELISM", "(unset)")},
        "date": datetime.date.today().isoformat(),
    }
    if results is not None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return result


def main() -> int:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = run(rows)
    print(f"ours:     {result['ours']['rows_per_s']:>8} rows/s ({result['ours']['seconds']} s for {rows} rows)")
    print(f"baseline: {result['baseline']['rows_per_s']:>8} rows/s ({result['baseline']['seconds']} s)")
    print(f"ratio:    {result['ratio']}x faster; same token stats: {result['same_token_stats']}")
    return 0 if result["same_token_stats"] else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
