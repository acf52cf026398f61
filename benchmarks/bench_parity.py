#!/usr/bin/env python3
"""GGUF parity per quant type: the measurement behind the ``export.parity.*`` bounds in recommendations.yaml.

For each setting, the embedded SmolLM2-135M-Instruct run is exported to every GGUF type the exporter writes
(f16, bf16, q8_0, q5_k_m, q4_k_m) and each file is measured in llama.cpp against the trained model in Python
(base + adapter, float32) by ``export --verify``'s own code: mean / 99th-percentile KL divergence, same top p,
identical greedy answers, and the task scorer's figures where one reads the data.

Settings:
1. ``task_api``: the demo's run (examples/configs/cpu_smoke.yaml: LoRA on the Task API train split, 300 steps),
   on the 150 held-out rows of examples/task_api/eval.jsonl. JSON answers of about 40 tokens.
2. ``chat``: the instruct model as shipped (a LoRA adapter at its initialisation, which adds exactly zero), on
   the val split of the alpaca_en_demo rows in ../shared/datasets (free-text answers, cut at 64 tokens).

Writes benchmarks/results/parity.json and benchmarks/PARITY.md. Runs one llama.cpp and one torch thread per
process (a shared machine: spinning threads cost more than they give). Train the Task API run first or pass it:
``python benchmarks/bench_parity.py --task-run runs/cpu_smoke``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LLMOPS_FT_LLAMA_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "skill_src"))

from llmops_ft.export.parity import NEAR_TIE  # noqa: E402  (after the path set-up above)
from llmops_ft.io import atomic_write_json, atomic_write_text  # noqa: E402

QUANTS = ["f16", "bf16", "q8_0", "q5_k_m", "q4_k_m"]
# The principle behind the bounds (references/grounding.md): the user gets the trained model's answers.
ANSWERS_KEPT_MIN = 0.95  # at most one held-out answer in twenty may change (near-ties of the model not counted)
KL_HEADROOM = 10  # a correct conversion stays within 10x of what its type measured here; broken ones land far above
RESULTS = HERE / "results" / "parity.json"
REPORT = HERE / "PARITY.md"
ALPACA = REPO.parent / "shared" / "datasets" / "alpaca_en_demo.json"
TASK_EVAL = REPO / "examples" / "task_api" / "eval.jsonl"


def train_task_api(work: Path) -> Path:
    """The demo's training run (cpu_smoke.yaml on the Task API train split), unless it is already there."""
    from llmops_ft.config import load_config
    from llmops_ft.data import prepare
    from llmops_ft.demo.job import BACKEND as DEMO_BACKEND
    from llmops_ft.train import train

    run = work / "task_api_run"
    if not (run / "run.json").is_file():
        prepare([REPO / "examples" / "task_api" / "train.jsonl"], work / "task_api_prep", model="smollm2-135m",
                max_seq_length=256, force=True)
        config = load_config(str(REPO / "examples" / "configs" / "cpu_smoke.yaml"),
                             [f"dataset.path={work / 'task_api_prep'}", f"output_dir={run}",
                              f"backend={DEMO_BACKEND}"])
        train(config, resume="auto")
    return run


def untrained_chat_run(work: Path) -> Path:
    """The instruct model as shipped, as a run dir: a LoRA adapter at PEFT's initialisation (B = 0, so base +
    adapter computes exactly the base model), the alpaca rows prepped for their val split. Nothing is trained."""
    from llmops_ft.data import prepare
    from llmops_ft.engines.models import resolve_model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = work / "chat_run"
    if not (run / "run.json").is_file():
        prep = work / "chat_prep"
        prepare([ALPACA], prep, model="smollm2-135m", max_seq_length=512, force=True)
        base = resolve_model("smollm2-135m")
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(base), LoraConfig(
            r=16, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj"], task_type="CAUSAL_LM"))
        model.save_pretrained(run / "adapter")
        AutoTokenizer.from_pretrained(base).save_pretrained(run / "adapter")
        info = {"base_model": base, "steps": 0, "backend": "hf", "system_prompt": None,
                "dataset": {"train": str(prep / "train.jsonl"), "val": str(prep / "val.jsonl")},
                "config": {"model": {"name": "smollm2-135m"}}}
        atomic_write_json(run / "run.json", info)
    return run


def measure(run: Path, eval_data: str | None, rows: int, out: Path) -> dict[str, Any]:
    """Export every quant with --verify and keep each file's parity entry (bounds applied as they stand now)."""
    from llmops_ft.export.pipeline import export

    started = time.time()
    summary = export(str(run), "gguf", str(out), quants=QUANTS, verify=True, force=True, name="parity",
                     eval_data=eval_data, verify_rows=rows)
    heldout = summary["verification"]["heldout"]
    return {"run": run.name, "steps": json.loads((run / "run.json").read_text())["steps"], "heldout": heldout,
            "seconds": round(time.time() - started, 1), "quants": summary["parity"],
            "advice": summary["advice"]}


def ceil_1sig(x: float) -> float:
    """``x`` rounded up to one significant digit (0.0234 -> 0.03)."""
    if x <= 0:
        return 0.0
    scale = 10 ** math.floor(math.log10(x))
    return float(f"{math.ceil(round(x / scale, 9)) * scale:.1g}")


def principle_bounds(settings: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each quant's bounds by the principle: KL_HEADROOM x the largest KL figure measured for the type over every
    setting (rounded up to one significant digit), and ANSWERS_KEPT_MIN for every type."""
    bounds = {}
    for quant in QUANTS:
        measured = [s["quants"][quant]["figures"] for s in settings.values() if quant in s["quants"]]
        bounds[quant] = {fig: ceil_1sig(KL_HEADROOM * max(m[fig] for m in measured)) for fig in ("kl_mean", "kl_p99")}
        bounds[quant]["answers_kept"] = ANSWERS_KEPT_MIN
    return bounds


def regate(results: dict[str, Any]) -> None:
    """Apply the principle's bounds to every measured entry (passes, failed) and redo each setting's advice."""
    from llmops_ft.export.parity import GATED, LABELS, advice

    for setting in results["settings"].values():
        for quant, entry in setting["quants"].items():
            failed = []
            for figure, bound in results["bounds"][quant].items():
                value = entry["figures"][figure]
                ok = value is not None and (value <= bound if GATED[figure][1] == "max" else value >= bound)
                if not ok:
                    failed.append(f"{LABELS[figure]} {value} vs {bound}")
            entry.update(bounds=results["bounds"][quant], failed=failed, passes=not failed)
        setting["advice"] = advice(setting["quants"])


def markdown(results: dict[str, Any]) -> str:
    """PARITY.md: one table per setting."""
    from llmops_ft.export.parity import comparison_rows, comparison_table

    lines = ["# GGUF parity per quant type", "",
             f"Measured by `benchmarks/bench_parity.py` on {results['date']}: {results['machine']}. Each GGUF in "
             "llama.cpp against the trained model in Python (base + adapter, float32), teacher-forced on the "
             "reference's greedy answer (KL over the full vocabulary), and greedy answers of at most 64 tokens. "
             "The last column applies the bounds the principle gives (last section).", ""]
    for name, setting in results["settings"].items():
        held = setting["heldout"]
        lines += [f"## {name}", "", f"{setting['description']} Run `{setting['run']}` ({setting['steps']} steps); "
                  f"{held['prompts']} held-out prompts from {held['source']}, {held['positions']} answer "
                  f"positions; {setting['seconds']} s for the export and its verification.", "",
                  comparison_table(comparison_rows({"parity": setting["quants"], "advice": setting["advice"]})), ""]
        forks = []
        for quant, entry in setting["quants"].items():
            margins = entry["figures"]["fork_margins"]
            if margins:
                forks.append(f"`{quant}` {len(margins)} (largest margin {max(margins):g}, "
                             f"{sum(m <= NEAR_TIE for m in margins)} within {NEAR_TIE:g})")
        lines += ["Answers that differ, and the trained model's own log-probability margin where each forks: "
                  + ("; ".join(forks) or "none") + ".", ""]
        if setting["advice"]["choice"]:
            lines += [f"The rule picks `{setting['advice']['choice']}`.", ""]
    lines += ["## Bounds by the principle", "",
              f"Answers kept >= {ANSWERS_KEPT_MIN:.0%} for every type (the user gets the trained model's answers: at "
              "most one in twenty changes); mean and 99th-percentile KL <= "
              f"{KL_HEADROOM}x the largest value measured for the type above, rounded up to one significant digit. "
              "recommendations.yaml records these (tests/test_export_parity.py compares them).", "",
              "| quant | mean KL bound | p99 KL bound | answers kept bound |", "| --- | --- | --- | --- |"]
    lines += [f"| `{q}` | {b['kl_mean']:g} | {b['kl_p99']:g} | {b['answers_kept']:.0%} |"
              for q, b in results["bounds"].items()]
    return "\n".join(lines)


def main() -> None:
    """Measure both settings, write the results and the report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task-run", help="a Task API run trained with cpu_smoke.yaml (default: train one)")
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_parity"), help="runs and exports go here")
    parser.add_argument("--task-rows", type=int, default=150, help="held-out Task API rows (default all 150)")
    parser.add_argument("--chat-rows", type=int, default=50, help="held-out alpaca rows (default 50)")
    parser.add_argument("--only", choices=("task_api", "chat"), help="measure one setting, keep the other's results")
    parser.add_argument("--report-only", action="store_true", help="rewrite the bounds and PARITY.md from results")
    args = parser.parse_args()
    if args.report_only:
        results = json.loads(RESULTS.read_text())
        results["bounds"] = principle_bounds(results["settings"])
        regate(results)
        atomic_write_json(RESULTS, results)
        atomic_write_text(REPORT, markdown(results) + "\n")
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    settings = {
        "task_api": (lambda: Path(args.task_run) if args.task_run else train_task_api(work), str(TASK_EVAL),
                     args.task_rows,
                     "SmolLM2-135M-Instruct after Task API training (the demo's config), Task API eval rows."),
        "chat": (lambda: untrained_chat_run(work), None, args.chat_rows,
                 "SmolLM2-135M-Instruct as shipped (a no-op adapter), free-text alpaca prompts."),
    }
    previous = json.loads(RESULTS.read_text()) if args.only and RESULTS.is_file() else {"settings": {}}
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}",
        "settings": previous["settings"],
    }
    for name, (make_run, eval_data, rows, description) in settings.items():
        if args.only and name != args.only:
            continue
        result = measure(make_run(), eval_data, rows, work / f"{name}_gguf")
        result["description"] = description
        result["heldout"]["source"] = _relative(result["heldout"]["source"], work)
        results["settings"][name] = result
        print(f"{name}: {result['seconds']} s", flush=True)
    results["bounds"] = principle_bounds(results["settings"])
    regate(results)
    atomic_write_json(RESULTS, results)
    atomic_write_text(REPORT, markdown(results) + "\n")
    print(f"wrote {RESULTS.relative_to(REPO)} and {REPORT.relative_to(REPO)}")


def _relative(source: str, work: Path) -> str:
    """The held-out source without this machine's paths."""
    for root, name in ((str(work), "the bench's work folder"), (str(REPO), "the repository")):
        source = source.replace(root + "/", "").replace(root, name)
    return source.replace(str(REPO.parent / "shared"), "../shared")


if __name__ == "__main__":
    main()
