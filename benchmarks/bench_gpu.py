#!/usr/bin/env python3
"""GPU figures, on a CUDA machine only: Unsloth vs the plain hf backend (transformers + peft + trl), tokens/s and
peak VRAM, and plan.py's estimate against the measured peak. Writes benchmarks/results/gpu.json.

Both sides run ``scripts/train.py`` in their own process on the embedded SmolLM2-135M-Instruct (no download) and
the Task API rows, QLoRA (4-bit base weights through bitsandbytes), LoRA r 16 on all projections, the dtype plan
picks for the GPU, batch 8, gradient checkpointing on; runs alternate between the sides and each keeps its best.
Peak VRAM is torch.cuda.max_memory_allocated of the training process (the CUDA context, ~0.3-0.5 GiB, is not
in it). Throughput is steady-state, from the end of step 1 to the end of the last step (see bench_train).
"""

from __future__ import annotations

import datetime
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_train import REPO, TASK_API, alternate, config_dict, ours

RESULTS = REPO / "benchmarks" / "results" / "gpu.json"
STEPS = 30


def gpu_config(out: Path, backend: str) -> dict[str, Any]:
    """The shared QLoRA config with ``backend`` on the detected GPU."""
    config = config_dict(TASK_API, out, max_steps=STEPS, batch_size=8, max_seq_length=512,
                         gradient_checkpointing=True, optim="adamw_8bit")
    config["model"].update(load_in_4bit=True, dtype="auto")
    config.update(hardware="auto", backend=backend)
    return config


def peak_mib(output_dir: Path) -> float:
    """The largest memory_mib logged by the run (CUDA peak allocation)."""
    rows = [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]
    return max(r["memory_mib"] for r in rows if "memory_mib" in r)


def planned_gib(config: dict[str, Any]) -> float:
    """plan.py's peak estimate for ``config`` on the detected GPU."""
    from llmops_ft.config import load_config
    from llmops_ft.plan import make_plan

    return float(make_plan(load_config(None, base=config), gpu="auto")["memory_gib"]["total"])


def run(results: Path | None = RESULTS) -> list[dict[str, Any]]:
    """Unsloth vs hf on this GPU; returns the figures (and writes the raw runs to ``results``)."""
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("bench_gpu needs a CUDA GPU")
    started = time.perf_counter()
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        configs = {b: gpu_config(tmp / b, b) for b in ("unsloth", "hf")}

        def measured(backend: str) -> dict[str, Any]:
            result = ours(configs[backend], tmp)
            return result | {"peak_mib": round(peak_mib(Path(configs[backend]["output_dir"])), 1)}

        runs["unsloth"], runs["hf"] = alternate(lambda: measured("unsloth"), lambda: measured("hf"))
        plans = {b: planned_gib(configs[b]) for b in configs}
    gpu = torch.cuda.get_device_name(0)
    setup = f"SmolLM2-135M QLoRA r16, batch 8, seq <= 512, {STEPS} steps, {gpu}"
    best = {b: max(runs[b], key=lambda r: r["tokens_per_s"]) for b in runs}
    peak = {b: min(r["peak_mib"] for r in runs[b]) / 1024 for b in runs}
    figures = [  # the fields of benchmarks/run.py's figures; run.py adds the ratio
        {"figure": "unsloth vs hf backend, training tokens/s (GPU)", "ours": best["unsloth"]["tokens_per_s"],
         "unit": "tokens/s", "baseline": best["hf"]["tokens_per_s"],
         "baseline_what": "hf backend (transformers + peft + trl), same config", "target": ">= 1.0x", "note": setup,
         "met": best["unsloth"]["tokens_per_s"] >= best["hf"]["tokens_per_s"]},
        {"figure": "unsloth vs hf backend, peak VRAM (GPU)", "ours": round(peak["unsloth"], 3), "unit": "GiB",
         "baseline": round(peak["hf"], 3), "baseline_what": "hf backend, same config", "higher_is_better": False,
         "target": ">= 1.0x", "note": setup, "met": peak["unsloth"] <= peak["hf"]},
    ]
    for backend in ("unsloth", "hf"):
        error = (plans[backend] - peak[backend]) / peak[backend]
        figures.append({"figure": f"plan.py estimate vs measured peak VRAM, {backend} backend (GPU)",
                        "ours": round(plans[backend], 3), "unit": "GiB", "baseline": round(peak[backend], 3),
                        "baseline_what": "measured torch.cuda.max_memory_allocated",
                        "target": "plan >= measured (no OOM surprise)", "met": error >= 0,
                        "note": f"{setup}; plan error {error:+.0%}"})
    if results is not None:
        from llmops_ft.io import atomic_write_json

        atomic_write_json(results, {"date": datetime.date.today().isoformat(), "gpu": gpu, "runs": runs,
                                    "plan_gib": plans, "seconds": round(time.perf_counter() - started, 1),
                                    "figures": figures})
    return figures


if __name__ == "__main__":
    for figure in run():
        print(f"{figure['figure']}: {figure['ours']} vs {figure['baseline']} {figure['unit']} ({figure['note']})")
