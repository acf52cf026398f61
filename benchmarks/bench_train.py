#!/usr/bin/env python3
"""Benchmark train.py on CPU, every comparison side by side in one run. Writes benchmarks/results/train.json.

All runs use the embedded SmolLM2-135M-Instruct (the demo's model), the hf backend, LoRA r 16 on all projections,
AdamW, no gradient checkpointing, dtype auto (bf16 autocast where the CPU has avx512_bf16/amx_bf16, else fp32).

1. train.py with the demo's settings (padding-free) against the plain TRL script a user would write: SFTTrainer
   on the same model, tokenized rows (input_ids + assistant-only labels), seed and hyperparameters, on its best
   settings for a CPU: padded batches (trl warns that padding-free needs FlashAttention, which CPUs lack), no
   gradient checkpointing, bf16 where the CPU has it (trl's own default), and the one fix stock trl 1.15 needs to
   train on CPU at all (its loss kernel is Triton, CUDA/XPU only): the model's own loss. Target >= 1.5x.
2. Padding-free against padded batches, through train.py: on the demo's Task API rows (what the demo trains on)
   and on Task API conversations joined into chats of 1 to 4 exchanges (about 60 to 400 tokens); and the hf
   backend against Unsloth's CPU mode (which the demo's ``backend: auto`` picks wherever unsloth imports).
3. MFU of train.py: 4 x parameters x tokens/s over the peak train.py measured at start (a square matmul at the
   dtype in use, with the threads the run uses).
4. bf16 autocast against fp32 (only where the CPU has bf16 instructions; elsewhere bf16 is emulated, and a matmul
   probe shows by how much): tokens/s, final loss, and exact action / exact call on the eval set after a short
   demo-recipe run of each. Quality is judged by QUALITY_RULE, fixed before measuring.

Throughput is steady-state: non-pad tokens from the end of step 1 to the end of the last step (step 1 pays
one-off costs), per wall-clock second and per CPU second of the training process. Every run is its own process,
runs alternate between the variants, and each variant keeps its best run: two rounds for the main comparisons,
one for the secondary ones (unsloth, chats), to keep the whole benchmark near ten minutes on two cores. Each
training process runs one thread (see THREADS). On a shared machine wall-clock time mostly measures the
neighbours, CPU time the work: when the load average exceeded the core count during the run, only the CPU-time
ratios are judged against targets.
``python benchmarks/bench_train.py --baseline CONFIG OUT`` is the baseline script.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "skill_src"))
# one file per kind of CPU: the bf16 comparison and the dtype the other runs train in depend on it
RESULTS = {"fp32 CPU": REPO / "benchmarks" / "results" / "train.json",
           "bf16 CPU": REPO / "benchmarks" / "results" / "train_bf16.json"}
TASK_API = REPO / "examples" / "task_api" / "train.jsonl"
EVAL = REPO / "examples" / "task_api" / "eval.jsonl"
DEMO_CONFIG = REPO / "examples" / "configs" / "cpu_smoke.yaml"
MODEL = "smollm2-135m"
REPEATS = 2
# One thread per training process: with the cores shared, two OpenMP threads spin-wait for each other and CPU time
# stops measuring work. Both sides run alike, so the ratios hold; absolute figures are single-thread figures.
THREADS = "1"
TARGET_VS_TRL = 1.5
DTYPE_STEPS = 100  # per dtype run: long enough for the accuracy to mean something, short enough to run twice
QUALITY_RULE = ("bf16 keeps quality when its exact-action accuracy on the eval rows is at least fp32's minus two "
                "standard errors of a difference of two proportions, 2 x sqrt(2 p (1 - p) / n) with p fp32's "
                "accuracy (never less than one row), and its final training loss is at most 5% above fp32's")


def config_dict(data: Path, out: Path, **training: Any) -> dict[str, Any]:
    """The run config every train.py variant shares (hf backend, CPU, dtype auto)."""
    model = {"name": MODEL, "max_seq_length": training.pop("max_seq_length", 256),
             "dtype": training.pop("dtype", "auto")}
    return {
        "model": model,
        "dataset": {"path": str(data)},
        "training": {"batch_size": 4, "grad_accum": 1, "learning_rate": 2e-4, "lr_scheduler": "linear",
                     "warmup_steps": 1, "optim": "adamw_torch", "gradient_checkpointing": False,
                     "save_steps": 10_000, "logging_steps": 1, **training},
        "hardware": "cpu", "backend": "hf", "output_dir": str(out),
    }


def thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS, "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1"}


def steady(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens per wall second and per CPU second from the end of step 1 to the end of the last step.

    ``rows`` hold cumulative tokens, time_s and cpu_s. CPU time barely moves when other processes share the
    cores, wall time does: on a busy machine the CPU-time ratio is the one to trust.
    """
    first, last = rows[0], rows[-1]
    tokens = last["tokens"] - first["tokens"]
    seconds, cpu = last["time_s"] - first["time_s"], last["cpu_s"] - first["cpu_s"]
    return {"tokens_per_s": round(tokens / seconds, 1), "tokens_per_cpu_s": round(tokens / cpu, 1),
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "tokens": tokens, "steps": len(rows) - 1}


def ours(config: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """scripts/train.py in a fresh process; steady-state throughput from its metrics.jsonl, MFU from run.json."""
    path = tmp / "ours.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), "--config", str(path), "--force",
                           "--json"], capture_output=True, text=True, cwd=REPO, env=thread_env())
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    out = Path(config["output_dir"])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    run = json.loads((out / "run.json").read_text())
    result = steady(rows) | {"final_loss": run["final_loss"], "dtype": run["precision"]["dtype"],
                             "peak_flops": run["peak"]["flops"], "peak_source": run["peak"]["source"]}
    flops = 4 * run["total_parameters"]
    return result | {"mfu": round(flops * result["tokens_per_s"] / result["peak_flops"], 4),
                     "mfu_cpu_time": round(flops * result["tokens_per_cpu_s"] / result["peak_flops"], 4)}


def baseline(config: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """The plain TRL script (``--baseline``) in a fresh process."""
    cfg, out = tmp / "baseline.json", tmp / "baseline-result.json"
    cfg.write_text(json.dumps(config), encoding="utf-8")
    done = subprocess.run([sys.executable, __file__, "--baseline", str(cfg), str(out)], capture_output=True,
                          text=True, cwd=REPO, env=thread_env())
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(out.read_text())


def plain_trl(config_path: Path, out: Path) -> None:
    """A plain TRL SFTTrainer script on the same model, rows and hyperparameters (run as ``--baseline``)."""
    import torch
    from llmops_ft.config import load_config
    from llmops_ft.config.gpus import cpu_bf16_flags
    from llmops_ft.engines.models import resolve_model
    from llmops_ft.train.data import load_train_data, to_dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    config = load_config(config_path)
    t, lora = config["training"], config["lora"]
    path = resolve_model(config["model"]["name"])
    tokenizer = AutoTokenizer.from_pretrained(path)
    dataset = to_dataset(load_train_data(tokenizer, config).train)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    torch.manual_seed(t["seed"])
    model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                             target_modules=lora["target_modules"], task_type="CAUSAL_LM"))

    class CpuSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    rows: list[dict[str, Any]] = []
    losses: list[float] = []

    class Clock(TrainerCallback):  # measurement only: non-pad tokens (the Trainer's own count), time, losses
        def on_train_begin(self, args, state, control, **kwargs):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kwargs):
            rows.append({"tokens": state.num_input_tokens_seen, "time_s": time.perf_counter() - self.started,
                         "cpu_s": time.process_time() - self.cpu_started})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    bf16 = bool(cpu_bf16_flags())  # trl's default is bf16=True; on a CPU without bf16 a user turns it off
    with tempfile.TemporaryDirectory() as tmp:
        trainer = CpuSFTTrainer(
            model=model, processing_class=tokenizer, train_dataset=dataset, callbacks=[Clock()],
            args=SFTConfig(output_dir=tmp, max_steps=t["max_steps"], per_device_train_batch_size=t["batch_size"],
                           gradient_accumulation_steps=t["grad_accum"], learning_rate=t["learning_rate"],
                           lr_scheduler_type=t["lr_scheduler"], warmup_steps=t["warmup_steps"],
                           weight_decay=t["weight_decay"], optim=t["optim"], seed=t["seed"], data_seed=t["seed"],
                           bf16=bf16, fp16=False, gradient_checkpointing=False, use_cpu=True,
                           max_length=config["model"]["max_seq_length"], logging_steps=t["logging_steps"],
                           save_strategy="no", report_to="none", disable_tqdm=True,
                           include_num_input_tokens_seen="non_padding",
                           dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False),
        )
        output = trainer.train()
    last = losses[-min(3, max(1, len(losses) // 2)):]  # train.py's final_loss: the mean of the last 3 logs
    result = steady(rows) | {"final_loss": sum(last) / len(last), "train_loss_mean": output.training_loss,
                             "dtype": "bfloat16" if bf16 else "float32"}
    out.write_text(json.dumps(result), encoding="utf-8")


def variable_length_rows(path: Path, rows: int, seed: int = 0) -> None:
    """Task API conversations joined into chats of 1 to 4 exchanges (one system prompt): lengths vary ~5x."""
    from llmops_ft.io import atomic_write_jsonl, read_jsonl

    source = list(read_jsonl(TASK_API))
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        picked = rng.sample(source, rng.randint(1, 4))
        messages = [picked[0]["messages"][0]]
        for row in picked:
            messages += [m for m in row["messages"] if m["role"] != "system"]
        out.append({"messages": messages})
    atomic_write_jsonl(path, out)


def alternate(variants: dict[str, Any], repeats: int = REPEATS) -> dict[str, list[dict]]:
    """Run each variant (a no-argument function) in turn, ``repeats`` rounds; each variant's runs."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, run in variants.items():
            runs[name].append(run())
    return runs


def figure_pair(name: str, ours_runs: list[dict], base_runs: list[dict], base_what: str, target: float,
                busy: bool, load: float, setup: str) -> list[dict[str, Any]]:
    """Two figures for one comparison: per CPU-second (judged) and per wall second (judged on a quiet machine)."""
    figures = []
    for key, unit in (("tokens_per_cpu_s", "tokens/CPU-s"), ("tokens_per_s", "tokens/s")):
        best, base = max(r[key] for r in ours_runs), max(r[key] for r in base_runs)
        wall = key == "tokens_per_s"
        figures.append({
            "figure": f"{name}, {'wall clock' if wall else 'CPU time'}", "ours": best, "unit": unit,
            "baseline": base, "baseline_what": base_what, "target": f">= {target}x",
            "met": None if wall and busy else best / base >= target,
            "note": f"{setup}; best of {len(ours_runs)} alternating runs, each in its own process"
                    + (f"; not judged: load average {load} on {os.cpu_count()} cores" if wall and busy else ""),
        })
    return figures


def mfu_figure(runs: list[dict], base_runs: list[dict]) -> dict[str, Any]:
    """train.py's MFU in its best run against the peak it measured (by CPU time: on a shared machine the wall
    clock counts the neighbours' time too); the wall-clock MFU and the baseline's at the same peak in the note."""
    best = max(runs, key=lambda r: r["tokens_per_cpu_s"])
    base = max(r["tokens_per_cpu_s"] for r in base_runs) / best["tokens_per_cpu_s"] * best["mfu_cpu_time"]
    return {"figure": f"MFU of train.py ({best['dtype']}, demo settings, 4 x params x tokens/CPU-s over the peak)",
            "ours": round(100 * best["mfu_cpu_time"], 2), "unit": "% of peak", "target": "", "met": None,
            "note": f"peak {best['peak_flops'] / 1e9:.1f} GFLOP/s ({best['peak_source']}), measured by train.py in "
                    f"the same process; by wall clock {100 * best['mfu']:.2f}%; plain TRL at the same peak "
                    f"{100 * base:.2f}%"}


def bf16_matmul_probe(size: int = 256) -> dict[str, float]:
    """GFLOP/s of a size x size matmul in fp32 and in bf16 on one thread: how far bf16 is emulated here."""
    import torch
    from llmops_ft.train.metrics import measure_matmul_flops

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return {dtype: round(measure_matmul_flops("cpu", dtype, size, repeats=2) / 1e9, 2)
                for dtype in ("float32", "bfloat16")}
    finally:
        torch.set_num_threads(threads)


def demo_recipe(out: Path, dtype: str, steps: int) -> dict[str, Any]:
    """The demo's run config (examples/configs/cpu_smoke.yaml) on the Task API rows, shortened to ``steps``."""
    from llmops_ft.config import load_config

    return load_config(DEMO_CONFIG, [f"model.dtype={dtype}", f"training.max_steps={steps}", "backend=hf",
                                     f"dataset.path={TASK_API}", f"output_dir={out}", "training.save_steps=100000"])


def eval_scores(run_dir: Path) -> dict[str, Any]:
    """Exact action and exact call of a run's adapter on the eval set (greedy, as the demo evaluates)."""
    from llmops_ft.data.examples import read_examples
    from llmops_ft.evaluate.command import answer_and_score
    from llmops_ft.scoring import scorer_for

    examples, _ = read_examples(EVAL)
    scorer = scorer_for([e.target for e in examples])
    scores = answer_and_score(str(run_dir), examples, 64, 8, scorer)["scores"]
    return {"n": scores["n"], "exact_action": scores["action_accuracy"], "exact_call": scores["exact_match_rate"]}


def judge_quality(fp32: dict[str, Any], bf16: dict[str, Any]) -> dict[str, Any]:
    """QUALITY_RULE applied: the allowed accuracy drop, and whether accuracy and loss held."""
    n, p = fp32["eval"]["n"], fp32["eval"]["exact_action"]
    allowed = max(2 * math.sqrt(2 * p * (1 - p) / n), 1 / n)  # never below one row
    accuracy_held = bf16["eval"]["exact_action"] >= p - allowed
    loss_held = bf16["final_loss"] <= 1.05 * fp32["final_loss"]
    return {"allowed_drop": round(allowed, 4), "accuracy_held": accuracy_held, "loss_held": loss_held,
            "held": accuracy_held and loss_held}


def dtype_comparison(tmp: Path, steps: int) -> dict[str, Any]:
    """fp32 against bf16 autocast on the demo recipe: throughput, final loss, eval accuracy; or, on a CPU without
    bf16 instructions, the matmul probe that shows why the rule keeps fp32 there."""
    from llmops_ft.config.gpus import cpu_bf16_flags

    probe = bf16_matmul_probe()
    flags = list(cpu_bf16_flags())
    if not flags:
        return {"measured": False, "cpu_bf16_flags": flags, "matmul_gflops_1_thread": probe}
    runs = {}
    for dtype in ("float32", "bfloat16"):
        out = tmp / f"dtype-{dtype}"
        runs[dtype] = ours(demo_recipe(out, dtype, steps), tmp) | {"eval": eval_scores(out)}
    return {"measured": True, "cpu_bf16_flags": flags, "matmul_gflops_1_thread": probe, "steps": steps,
            "runs": runs, "quality": judge_quality(runs["float32"], runs["bfloat16"]), "rule": QUALITY_RULE}


def dtype_figures(result: dict[str, Any], busy: bool, load: float) -> list[dict[str, Any]]:
    """bf16 against fp32: speed (two figures) and quality, or one figure saying why it was not measured."""
    probe = result["matmul_gflops_1_thread"]
    if not result["measured"]:
        return [{"figure": "bf16 autocast vs fp32 on this CPU (tokens/s, final loss, eval accuracy)", "ours": None,
                 "unit": "", "target": "", "met": None,
                 "note": f"not measured: no avx512_bf16/amx_bf16 here, so train.py keeps fp32; a 256x256 matmul "
                         f"runs at {probe['bfloat16']} GFLOP/s in bf16 vs {probe['float32']} in fp32 (1 thread)"}]
    runs, quality = result["runs"], result["quality"]
    setup = f"demo recipe, {result['steps']} steps, {', '.join(result['cpu_bf16_flags'])}"
    figures = figure_pair("bf16 autocast vs fp32 (train.py, SmolLM2-135M)", [runs["bfloat16"]], [runs["float32"]],
                          "fp32, same recipe and rows", 1.2, busy, load, setup)
    bf16, fp32 = runs["bfloat16"], runs["float32"]
    figures.append({
        "figure": "bf16 vs fp32 exact action on the eval set (quality must not drop)",
        "ours": round(bf16["eval"]["exact_action"], 3), "unit": "fraction", "baseline": round(
            fp32["eval"]["exact_action"], 3), "baseline_what": "fp32", "target": "no drop (see rule)",
        "met": quality["held"],
        "note": f"{setup}; exact call {bf16['eval']['exact_call']:.3f} vs {fp32['eval']['exact_call']:.3f}; final "
                f"loss {bf16['final_loss']:.4f} vs {fp32['final_loss']:.4f}; allowed drop "
                f"{quality['allowed_drop']:.3f}; rule: {QUALITY_RULE}"})
    return figures


def all_figures(runs: dict[str, list[dict]], dtype: dict[str, Any], busy: bool, load: float) -> list[dict]:
    """Every figure of this benchmark, from its runs."""
    return [
        *figure_pair("train.py (demo settings) vs a plain TRL SFTTrainer script (SmolLM2-135M, CPU)", runs["ours"],
                     runs["plain_trl"], "plain trl SFTTrainer on its best CPU settings, same model/rows/"
                     "hyperparameters", TARGET_VS_TRL, busy, load, "Task API rows, batch 4, steps 2-10 of 10"),
        *figure_pair("padding-free vs padded batches, demo data (Task API rows)", runs["ours"], runs["ours_padded"],
                     "padded batches, same rows and steps", 1.05, busy, load, "batch 4, steps 2-10 of 10"),
        *figure_pair("padding-free vs padded batches, chats of 1-4 exchanges (SmolLM2-135M, CPU)",
                     runs["chats_padding_free"], runs["chats_padded"], "padded batches, same rows and steps", 1.3,
                     busy, load, "batch 8, max_seq_length 1024, steps 2-5 of 5"),
        *(figure_pair("train.py backend hf vs unsloth on CPU (demo settings)", runs["ours"][:1], runs["ours_unsloth"],
                      "backend unsloth (its CPU mode turns padding-free off)", 1.0, busy, load,
                      "Task API rows, batch 4, steps 2-10 of 10; one run each")
          if "ours_unsloth" in runs else []),
        mfu_figure(runs["ours"], runs["plain_trl"]),
        *dtype_figures(dtype, busy, load),
    ]


def cpu_kind() -> str:
    """This machine's key in RESULTS: whether its CPU has bf16 instructions."""
    from llmops_ft.config.gpus import cpu_bf16_flags

    return "bf16 CPU" if cpu_bf16_flags() else "fp32 CPU"


def run(results: Path | None = None, dtype_steps: int = DTYPE_STEPS) -> dict[str, Any]:
    """Every comparison; returns (and writes, to ``results`` or this CPU kind's file) the figures."""
    started, load_before = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        demo = {free: config_dict(TASK_API, tmp / f"demo-{free}", max_steps=10, padding_free=free)
                for free in (True, False)}
        variable = tmp / "variable.jsonl"
        variable_length_rows(variable, 200)
        chats = {free: config_dict(variable, tmp / f"pf-{free}", max_steps=5, batch_size=8, max_seq_length=1024,
                                   padding_free=free) for free in (True, False)}
        runs = alternate({"ours": lambda: ours(demo[True], tmp), "plain_trl": lambda: baseline(demo[False], tmp),
                          "ours_padded": lambda: ours(demo[False], tmp)})
        secondary = {"chats_padded": lambda: ours(chats[False], tmp),
                     "chats_padding_free": lambda: ours(chats[True], tmp)}
        if importlib.util.find_spec("unsloth") is not None:
            secondary["ours_unsloth"] = lambda: ours({**demo[True], "backend": "unsloth"}, tmp)
        runs |= alternate(secondary, repeats=1)
        dtype = dtype_comparison(tmp, dtype_steps)

    load = round(max(load_before[0], os.getloadavg()[0]), 2)
    busy = load > (os.cpu_count() or 1)  # other work competed for the cores: wall-clock ratios are noise
    figures = all_figures(runs, dtype, busy, load)
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(terse=True),
                    "python": platform.python_version()},
        "model": f"{MODEL} (SmolLM2-135M-Instruct), hf backend, dtype auto on CPU, {THREADS} thread per process",
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
        "runs": runs,
        "setup": {"demo": "Task API train.jsonl, batch 4, max_seq_length 256, 10 steps, lr 2e-4",
                  "chats": "200 chats of 1-4 Task API exchanges, batch 8, max_seq_length 1024, 5 steps"},
        "dtype": dtype,
        "figures": figures,
    }
    from llmops_ft.io import atomic_write_json

    atomic_write_json(results or RESULTS[cpu_kind()], result)
    return result


def main(argv: list[str] | None = None) -> int:
    """``--baseline CONFIG OUT`` runs the plain TRL script; otherwise every comparison."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--baseline"]:
        plain_trl(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype-steps", type=int, default=DTYPE_STEPS, help="steps of each bf16/fp32 run")
    args = parser.parse_args(argv)
    outcome = run(dtype_steps=args.dtype_steps)
    for figure in outcome["figures"]:
        ratio = f" = {figure['ours'] / figure['baseline']:.2f}x" if figure.get("baseline") else ""
        print(f"{figure['figure']}: {figure['ours']} {figure['unit']}{ratio} (target {figure['target'] or '-'}, "
              f"met: {figure['met']})")
    print(f"total {outcome['seconds']} s -> {RESULTS[cpu_kind()].relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
