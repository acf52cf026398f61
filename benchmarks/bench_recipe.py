#!/usr/bin/env python3
"""Recipe changes for the Task API Assistant, one at a time, each measured on examples/task_api/eval.jsonl.

Every variant trains SmolLM2-135M-Instruct with the demo's config (examples/configs/cpu_smoke.yaml on the demo's
backend) and changes exactly one thing; the tuned model then answers the 150 eval rows greedily, as the demo does,
and the Task API scorer scores it. The hand-written held-out set is never read here: it stays untouched by
tuning. Variants run one after the other in one invocation, so they share the machine and the code:

Every variant names its rows, learning rate and steps outright, so its meaning does not move when the committed
recipe does. ``demo-600`` is the committed recipe since stop 18 (the generator's 1400 rows, lr 2e-3, 600 steps),
``demo`` was the committed recipe at stop 17 (300 steps), and ``lr-1e-3`` the committed recipe up to stop 16:

- ``lr-1e-3``: the generator's first 800 rows, learning rate 1e-3, 300 steps (the demo up to stop 16).
- ``rows-1400``: the first 1400 rows instead of 800 (a superset; eval.jsonl is drawn first and is the same
  file), so the same 300 steps see about every row once instead of 1.7 times; lr 1e-3.
- ``steps-600``: 800 rows, lr 1e-3, 600 steps (twice the training time).
- ``lr-2e-3``: 800 rows, 300 steps at twice the learning rate (the same training time).
- ``demo``: ``lr-2e-3`` on the 1400 rows (one change from ``lr-2e-3``), the committed recipe at stop 17.
- ``lr-4e-3``: ``demo`` at twice its learning rate (the same training time).
- ``demo-600``: ``demo`` for 600 steps (twice the training time), the committed recipe since stop 18.

Writes benchmarks/results/recipe.json (each variant's latest measurement, with its commit) and
benchmarks/RECIPE.md. ``python benchmarks/bench_recipe.py demo rows-1400``; ``--seed N`` trains at another
seed (kept as ``NAME@seedN`` and compared seed by seed), for differences within one seed's noise. A variant
trains at the config's ``dtype: auto``: on a CPU with bf16 instructions that is bf16 autocast, and the entry is
kept as ``NAME@bf16``, compared only with other bf16 entries.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "skill_src"))

from llmops_ft.io import atomic_write_json, atomic_write_jsonl, atomic_write_text  # noqa: E402  (after sys.path)

RESULTS = HERE / "results" / "recipe.json"
REPORT = HERE / "RECIPE.md"
EVAL = REPO / "examples" / "task_api" / "eval.jsonl"
# name -> (train rows from the generator, config overrides, what changed); each states rows, lr and steps
VARIANTS: dict[str, tuple[int, list[str], str]] = {
    "lr-1e-3": (800, ["training.learning_rate=1e-3"],
                "the recipe up to stop 16: 800 generated rows, 300 steps, learning rate 1e-3"),
    "rows-1400": (1400, ["training.learning_rate=1e-3"],
                  "1400 generated rows (a superset of the 800), 300 steps, lr 1e-3"),
    "steps-600": (800, ["training.learning_rate=1e-3", "training.max_steps=600"],
                  "800 generated rows, 600 steps, lr 1e-3"),
    "lr-2e-3": (800, ["training.learning_rate=2e-3"], "800 generated rows, 300 steps, learning rate 2e-3"),
    "demo": (1400, ["training.learning_rate=2e-3", "training.max_steps=300"],
             "the committed recipe at stop 17: 1400 generated rows, 300 steps, learning rate 2e-3"),
    "lr-4e-3": (1400, ["training.learning_rate=4e-3", "training.max_steps=300"],
                "1400 generated rows, 300 steps, learning rate 4e-3"),
    "demo-600": (1400, ["training.learning_rate=2e-3", "training.max_steps=600"],
                 "the committed recipe since stop 18: 1400 generated rows, 600 steps, learning rate 2e-3"),
}
# (variant, the variant it changes one thing from) for the row-by-row comparisons
COMPARISONS = [("rows-1400", "lr-1e-3"), ("steps-600", "lr-1e-3"), ("lr-2e-3", "lr-1e-3"), ("demo", "lr-2e-3"),
               ("demo", "lr-1e-3"),
               ("lr-4e-3", "demo"), ("demo-600", "demo")]
SCORES = ("exact_match_rate", "action_accuracy", "schema_valid_rate", "field_f1")


def train_rows(n_train: int, work: Path) -> Path:
    """The variant's training file: the generator's first ``n_train`` conversations."""
    from llmops_ft.io import read_jsonl
    from llmops_ft.taskapi.generate import generate

    rows, eval_rows = generate(n_train=n_train)
    if eval_rows != list(read_jsonl(EVAL)):
        raise SystemExit("the generator's eval rows differ from eval.jsonl: regenerate the example first")
    path = work / "train.jsonl"
    atomic_write_jsonl(path, rows)
    return path


def train_variant(name: str, work: Path, seed: int | None) -> dict[str, Any]:
    """Prep and train one variant (at ``seed``, else the config's); its run.json (``train_rows`` added)."""
    from llmops_ft.config import load_config
    from llmops_ft.data import prepare
    from llmops_ft.demo.job import BACKEND, CONFIG
    from llmops_ft.train import train

    n_train, overrides, _ = VARIANTS[name]
    if seed is not None:
        overrides = [*overrides, f"training.seed={seed}"]
    work.mkdir(parents=True, exist_ok=True)
    prep = prepare([train_rows(n_train, work)], work / "prep", model="smollm2-135m", max_seq_length=256,
                   force=True)
    config = load_config(str(CONFIG), [f"dataset.path={work / 'prep'}", f"output_dir={work / 'run'}",
                                       f"backend={BACKEND}", *overrides])
    train(config, resume="never", force=True)
    return {**json.loads((work / "run" / "run.json").read_text()), "train_rows": prep["train"]}


def measure(name: str, work: Path, score_only: bool, seed: int | None = None) -> dict[str, Any]:
    """Train one variant (or take its earlier run with ``score_only``) and score it on the eval set."""
    from llmops_ft.data.examples import read_examples
    from llmops_ft.evaluate.command import answer_and_score
    from llmops_ft.scoring import scorer_for

    if score_only:
        run = json.loads((work / "run" / "run.json").read_text())
        run["train_rows"] = sum(1 for _ in open(work / "prep" / "train.jsonl"))
    else:
        run = train_variant(name, work, seed)
    examples, _ = read_examples(str(EVAL), None)
    result = answer_and_score(str(work / "run"), examples, 64, 32, scorer_for([e.target for e in examples]))
    change = VARIANTS[name][2] + (f", seed {seed}" if seed is not None else "")
    return {"change": change, "train_rows": run["train_rows"], "steps": run["steps"],
            "train_seconds": run["train_runtime_s"], "final_loss": run["final_loss"],
            "scores": {k: result["scores"][k] for k in SCORES}, "field_errors": result["scores"].get("field_errors"),
            "eval_rows": len(examples), "exact_rows": exact_rows(result["answers"], examples),
            "dtype": run["precision"]["dtype"]}


def exact_rows(answers: list[str], examples: list) -> list[int]:
    """Line numbers of the eval rows answered with exactly the expected call (for paired comparisons)."""
    from llmops_ft.taskapi.score import score_example

    return [e.line for a, e in zip(answers, examples, strict=True) if score_example(a, e.target)["exact_match"]]


def paired(results: dict[str, Any]) -> list[str]:
    """Per comparison (and per extra seed measured for both sides): eval rows the variant gets exactly right that
    its base gets wrong, and the reverse."""
    lines = []
    suffixes = [""] + sorted({k[k.index("@"):] for k in results["variants"] if "@" in k})
    for suffix in suffixes:
        for name, base in COMPARISONS:
            name, base = name + suffix, base + suffix
            rows = [results["variants"].get(n, {}).get("exact_rows") for n in (name, base)]
            if None not in rows:
                gained, lost = set(rows[0]) - set(rows[1]), set(rows[1]) - set(rows[0])
                lines.append(f"- `{name}` against `{base}`: {len(gained)} rows right that `{base}` gets wrong, "
                             f"{len(lost)} the other way.")
    for name in [k for k in results["variants"] if k.endswith("@bf16")]:
        base = name.removesuffix("@bf16")
        if base in results["variants"]:
            gained, lost = (set(results["variants"][a]["exact_rows"]) - set(results["variants"][b]["exact_rows"])
                            for a, b in ((name, base), (base, name)))
            lines.append(f"- `{name}` (bf16 autocast) against `{base}` (float32): {len(gained)} rows right that "
                         f"`{base}` gets wrong, {len(lost)} the other way.")
    return lines


def commit() -> str:
    """The checkout's commit (with ``+dirty`` when it has uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "skill_src", "examples"], cwd=REPO,
                           capture_output=True, text=True).stdout
    return head.strip() + ("+dirty" if dirty.strip() else "")


def report(results: dict[str, Any]) -> str:
    """RECIPE.md: one row per variant, scores on the eval set."""
    lines = ["# Recipe changes, measured on the eval set", "",
             "Generated by `benchmarks/bench_recipe.py` (see its docstring). Each variant changes one thing from "
             "`lr-1e-3` (the demo's recipe up to stop 16) or from another variant, and is scored on the 150 rows "
             "of examples/task_api/eval.jsonl, greedy, as the demo scores. The hand-written held-out set is never "
             "used here.", "",
             "| variant | change | precision | train rows | steps | train s | final loss | exact call | exact action | "
             "schema valid | field F1 | measured |", "|" + " --- |" * 12]
    for name, r in results["variants"].items():
        s = r["scores"]
        # entries from before the dtype was recorded all ran on a CPU without bf16 instructions, in float32
        lines.append(f"| `{name}` | {r['change']} | {r.get('dtype', 'float32')} | {r['train_rows']} | {r['steps']} | "
                     f"{r['train_seconds']:.0f} | "
                     f"{r['final_loss']:.3f} | {s['exact_match_rate']:.1%} | {s['action_accuracy']:.1%} | "
                     f"{s['schema_valid_rate']:.1%} | {s['field_f1']:.1%} | {r['date']} at {r['commit']} |")
    lines += ["", "With 150 rows, one row is 0.7 points and the standard error of a rate near 50% is about 4 points: "
              "a difference under 8 points is within noise of one seed. Paired, row by row:", "",
              *paired(results), ""]
    return "\n".join(lines)


def main() -> int:
    """Measure the named variants in order; keep the earlier measurements of the others."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS))
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "bench_recipe")
    parser.add_argument("--score-only", action="store_true", help="score the variants' earlier runs in --work")
    parser.add_argument("--seed", type=int, help="train at this seed instead of the config's (kept as NAME@seedN)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"variants": {}}
    for variant in args.variants:
        name = variant + (f"@seed{args.seed}" if args.seed is not None else "")
        entry = measure(variant, args.work / name, args.score_only, args.seed)
        name += "@bf16" if entry["dtype"] == "bfloat16" else ""  # a run in another precision is another entry
        entry.update(date=datetime.date.today().isoformat(), commit=commit(), load_avg=round(os.getloadavg()[0], 2))
        results["variants"][name] = entry
        atomic_write_json(RESULTS, results)
        atomic_write_text(REPORT, report(results))
        print(f"{name}: exact call {entry['scores']['exact_match_rate']:.1%}, "
              f"exact action {entry['scores']['action_accuracy']:.1%}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
