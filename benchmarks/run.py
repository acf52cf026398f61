#!/usr/bin/env python3
"""Run every benchmark of the project in one go; write benchmarks/results.json and benchmarks/BENCHMARKS.md.

Each figure is measured side by side with its baseline in this one run, and reported as a ratio where a
baseline exists. `--only prep,train,...` runs a subset and keeps the other figures from the previous results.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "skill_src"))
sys.path.insert(0, str(HERE))

from llmops_ft.io import atomic_write_text  # noqa: E402  (after the path set-up above)

RESULTS = HERE / "results.json"
REUSE = {"train": False}  # --reuse-train
REPORT = HERE / "BENCHMARKS.md"


def _figure(name: str, ours: float | None, unit: str, *, baseline: float | None = None, baseline_what: str = "",
            higher_is_better: bool = True, target: str = "", met: bool | None = None, note: str = "") -> dict:
    ratio = None
    if baseline:
        ratio = round(ours / baseline if higher_is_better else baseline / ours, 2)
    return {"figure": name, "ours": ours, "unit": unit, "baseline": baseline, "baseline_what": baseline_what,
            "ratio": ratio, "target": target, "met": met, "note": note}


def bench_prep() -> list[dict]:
    """prep rows/s vs naive datasets.map(apply_chat_template), 100k alpaca rows."""
    import bench_prep

    r = bench_prep.run()
    seconds = r["ours"]["seconds"]
    return [_figure(f"prep {r['rows']} rows with token stats", r["ours"]["rows_per_s"], "rows/s",
                    baseline=r["baseline"]["rows_per_s"], baseline_what=r["baseline"]["what"],
                    target="<= 30 s and faster than naive", met=seconds <= 30 and r["ratio"] > 1,
                    note=f"{seconds} s for ours; same token stats: {r['same_token_stats']}")]


def bench_train() -> list[dict]:
    """train.py tokens/s vs a plain TRL script; padding-free vs padded; MFU; bf16 vs fp32 (benchmarks/bench_train.py).

    Measured on this machine's kind of CPU (with or without bf16 instructions) unless ``--reuse-train``: that
    benchmark takes about fifteen minutes on two cores. The figures of the other kind, measured on another
    machine, are kept from its results file, each figure named with the kind it was measured on.
    """
    import bench_train

    if not REUSE["train"]:
        bench_train.run()
    figures = []
    for kind, path in bench_train.RESULTS.items():
        if path.exists():
            raw = json.loads(path.read_text())["figures"]
            figures += _figures([{**f, "figure": f"[{kind}] {f['figure']}"} for f in raw])
    return figures


def _figures(raw: list[dict]) -> list[dict]:
    """A benchmark module's figure dicts (figure, ours, unit, baseline, ...) as this runner's figures."""
    return [_figure(f["figure"], f["ours"], f["unit"], baseline=f.get("baseline"),
                    baseline_what=f.get("baseline_what", ""), higher_is_better=f.get("higher_is_better", True),
                    target=f.get("target", ""), met=f.get("met"), note=f.get("note", "")) for f in raw]


def bench_smoke() -> list[dict]:
    """Wall time of the smoke test (whole chain on a tiny model)."""
    from llmops_ft.smoke import run_chain

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        verdicts = run_chain(Path(tmp))
    seconds = round(time.perf_counter() - started, 1)
    ok = all(v["ok"] for v in verdicts)
    return [_figure("smoke test, whole chain on a tiny model", seconds, "s", higher_is_better=False,
                    target="<= 60 s, every stage passes", met=ok and seconds <= 60,
                    note=", ".join(f"{v['stage']} {v['seconds']}s" for v in verdicts))]


def bench_skill() -> list[dict]:
    """render_skill --check + check_skill wall time, as `make test` runs them (fresh processes)."""
    started = time.perf_counter()
    for script in ("render_skill.py", "check_skill.py"):
        cmd = [sys.executable, str(REPO / "scripts" / script)] + (["--check"] if script == "render_skill.py" else [])
        subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    seconds = round(time.perf_counter() - started, 2)
    return [_figure("render --check + check_skill (offline)", seconds, "s", higher_is_better=False,
                    target="< 5 s", met=seconds < 5)]


def bench_plan() -> list[dict]:
    """plan.py's estimate against the Unsloth VRAM table, per model size."""
    from llmops_ft.plan.calibration import calibration_report

    rows = calibration_report()
    figures = []
    for method in ("qlora", "lora"):
        errors = [abs(r[f"{method}_error"]) for r in rows]
        inside = sum(e <= 0.20 for e in errors)
        worst = max(rows, key=lambda r: abs(r[f"{method}_error"]))
        figures.append(_figure(
            f"plan.py vs Unsloth VRAM table, {method.upper()} 3B-70B: worst abs. error", round(max(errors), 3),
            "fraction", higher_is_better=False, target="<= 0.20 at every size",
            met=inside == len(errors),
            note=f"{inside}/{len(errors)} (source, size) rows within 20%; worst {worst['size_b']}B "
                 f"({worst['source']}): {worst[f'{method}_error']:+.0%}; per size: "
                 + ", ".join(f"{r['size_b']}B {r[f'{method}_error']:+.0%}"
                             for r in rows if r["source"] == rows[0]["source"])))
    return figures


def bench_gpu() -> list[dict]:
    """On a CUDA machine: unsloth vs hf tokens/s and peak VRAM on a 4-bit model, plan vs measured peak."""
    import torch

    if not torch.cuda.is_available():
        return [_figure("GPU figures (unsloth vs hf, VRAM, plan vs measured)", None, "", met=None,
                        note="not measured: no CUDA GPU on this machine")]
    import bench_gpu

    return _figures(bench_gpu.run())


def faults() -> list[dict]:
    """The fault campaigns' counts (inputs tried, faults injected, failures)."""
    import faults as campaigns

    return campaigns.run_all()


BENCHES: dict[str, Callable[[], list[dict]]] = {
    "prep": bench_prep, "train": bench_train, "smoke": bench_smoke, "skill": bench_skill, "plan": bench_plan,
    "gpu": bench_gpu,
}


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    import torch

    return {"cores": os.cpu_count(), "platform": platform.platform(terse=True), "python": platform.python_version(),
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def render_markdown(results: dict[str, Any]) -> str:
    """BENCHMARKS.md from the results."""
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `benchmarks/run.py` on {results['date']}: {m['cores']} cores, {m['platform']}, Python "
        f"{m['python']}, torch {m['torch']}, GPU: {m['cuda'] or 'none'}. Each ratio compares ours and the "
        "baseline measured side by side in the same run (ratio > 1: ours is better). Timings on a shared 2-core "
        "machine are noisy; the ratios are what to read.",
        "",
        "| figure | ours | baseline | ratio | target | met | notes |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in results["figures"]:
        baseline = f"{f['baseline']} ({f['baseline_what']})" if f["baseline"] else "-"
        met = {True: "yes", False: "**no**", None: "-"}[f["met"]]
        ours = "-" if f["ours"] is None else f"{f['ours']} {f['unit']}"
        lines.append(f"| {f['figure']} | {ours} | {baseline} | {f['ratio'] or '-'} | "
                     f"{f['target'] or '-'} | {met} | {f['note']} |")
    import bench_train

    for kind, path in bench_train.RESULTS.items():
        lines += training_section(path, kind)
    lines += ["", "## Faults, measured", "", "| campaign | inputs tried | faults injected | failures |",
              "| --- | --- | --- | --- |"]
    for c in results["faults"]:
        lines.append(f"| {c['campaign']} | {c['inputs']} | {c['faults']} | {c['failures']} |")
    lines.append("")
    return "\n".join(lines)


def training_section(path: Path, kind: str) -> list[str]:
    """The training details behind the train figures of one kind of CPU (bench_train.py's results), if measured."""
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    lines = ["", f"## Training, measured on a {kind}", "",
             f"`benchmarks/bench_train.py` on {r['date']} ({r['model']}; {r['seconds']} s; load average "
             f"{r['load_average_1min']['start']} -> {r['load_average_1min']['end']} on {r['machine']['cores']} "
             "cores). Best run of each variant, steady state (steps 2 to the end); final loss is the mean of the "
             "last 3 logged losses:", "",
             "| variant | dtype | tokens/s | tokens/CPU-s | final loss | MFU (wall) | MFU (CPU time) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, runs in r["runs"].items():
        best = max(runs, key=lambda run: run["tokens_per_cpu_s"])
        mfu = [f"{100 * best[key]:.1f}%" if best.get(key) is not None else "-" for key in ("mfu", "mfu_cpu_time")]
        loss = f"{best['final_loss']:.4f}" if "final_loss" in best else "-"
        lines.append(f"| {name} | {best.get('dtype', '-')} | {best['tokens_per_s']} | {best['tokens_per_cpu_s']} | "
                     f"{loss} | {mfu[0]} | {mfu[1]} |")
    dtype = r["dtype"]
    probe = dtype["matmul_gflops_1_thread"]
    lines += ["", "MFU = 4 x parameters x tokens/s over the peak train.py measures when it starts (here "
                  f"{r['runs']['ours'][0].get('peak_source', 'measured')}; `LLMOPS_FT_PEAK_FLOPS` overrides it); "
                  "train.py writes it to every metrics.jsonl row, the progress line and run.json. On a shared "
                  "machine the wall-clock MFU counts the neighbours' time; the CPU-time MFU is the work's.", "",
              f"bf16 on that CPU: flags {', '.join(dtype['cpu_bf16_flags']) or 'none (no avx512_bf16/amx_bf16)'}; a "
              f"256x256 matmul on one thread runs at {probe['bfloat16']} GFLOP/s in bf16 and {probe['float32']} in "
              "fp32."]
    if dtype["measured"]:
        q = dtype["quality"]
        lines += ["", f"Quality rule, fixed before measuring: {dtype['rule']}. Result: allowed drop "
                      f"{q['allowed_drop']:.3f}; accuracy held: {q['accuracy_held']}; loss held: {q['loss_held']}."]
    else:
        lines += ["", "So train.py keeps fp32 there (dtype auto), and the bf16-vs-fp32 runs (speed, final loss, eval "
                      "accuracy, judged by a rule fixed in bench_train.py) run only on a CPU with bf16 instructions."]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHES)}, faults")
    parser.add_argument("--reuse-train", action="store_true",
                        help="train figures from benchmarks/results/train.json (the last bench_train.py run)")
    args = parser.parse_args(argv)
    REUSE["train"] = args.reuse_train
    chosen = args.only.split(",") if args.only else [*BENCHES, "faults"]
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"figures": [], "faults": [], "sections": {}}
    sections = dict(previous.get("sections", {}))
    for name in chosen:
        print(f"benchmark: {name} ...", flush=True)
        sections[name] = faults() if name == "faults" else BENCHES[name]()
    results = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "sections": sections,
        "figures": [f for name in BENCHES for f in sections.get(name, [])],
        "faults": sections.get("faults", []),
    }
    atomic_write_text(RESULTS, json.dumps(results, indent=2, sort_keys=True) + "\n")
    atomic_write_text(REPORT, render_markdown(results))
    print(REPORT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
