"""Training metrics: one ``metrics.jsonl`` row per log step, a plain progress line, ``loss.png``, and MFU.

Each row: step, epoch, loss, lr, grad_norm, tokens (non-pad, all ranks, this session) and tokens/s since the
previous row, wall and CPU seconds since this session's training began, peak memory, and MFU: a LoRA step costs
about 4 x parameters x tokens FLOPs (forward, and backward through the activations but not into the frozen
weights), divided by the device's peak. The peak is measured when the run starts: the fastest of half a second of
square matmuls at the dtype the matmuls run in, with the threads torch uses (``LLMOPS_FT_PEAK_FLOPS`` overrides it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_write_bytes, atomic_write_jsonl, read_jsonl

FLOPS_PER_PARAM_TOKEN = 4
PEAK_ENV = "LLMOPS_FT_PEAK_FLOPS"
MATMUL_SIZE = {"cpu": 1024, "cuda": 4096}  # big enough to reach the kernels' peak, small enough to take < 1 s
MATMUL_REPEATS = 5
# Five products alone read up to a third low when a neighbour takes a core for those milliseconds, and MFU then
# passed 100%; products for half a second give the best reading time to turn up.
MATMUL_SECONDS = 0.5
MATMUL_MAX_PRODUCTS = 500


def measure_matmul_flops(device: str, dtype: str, size: int | None = None, repeats: int = MATMUL_REPEATS,
                         min_seconds: float = 0.0) -> float:
    """FLOP/s of a ``size`` x ``size`` matmul in ``dtype`` on ``device``: the best wall-clock time of at least
    ``repeats`` products after a warm-up, going on until ``min_seconds`` have passed (at most MATMUL_MAX_PRODUCTS).

    The wall clock, not CPU time over threads: a kernel that keeps only some of its threads busy would read as
    faster than it is. Neighbours on a shared machine only slow some products, and the best one counts.
    """
    import torch

    size = size or MATMUL_SIZE.get(device, 1024)
    kind = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    a = torch.randn(size, size, device=device).to(kind)
    b = torch.randn(size, size, device=device).to(kind)
    best, started, done = float("inf"), time.perf_counter(), -1  # product 0 pays one-off costs (kernels, faults)
    while done < repeats or (time.perf_counter() - started < min_seconds and done < MATMUL_MAX_PRODUCTS):
        if device == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        if done >= 0:
            best = min(best, time.perf_counter() - wall)
        done += 1
    return 2 * size**3 / best


def peak_flops(device: str, dtype: str) -> tuple[float, str]:
    """(peak FLOP/s MFU is measured against, where it comes from): ``LLMOPS_FT_PEAK_FLOPS``, else measured."""
    if os.environ.get(PEAK_ENV):
        try:
            value = float(os.environ[PEAK_ENV])
        except ValueError:
            value = 0.0
        if not value > 0:
            raise UserError(f"expected a positive number of FLOP/s, e.g. 3.9e11 (got {os.environ[PEAK_ENV]!r})",
                            field=PEAK_ENV)
        return value, PEAK_ENV
    import torch

    size = MATMUL_SIZE.get(device, 1024)
    threads = f", {torch.get_num_threads()} thread(s)" if device == "cpu" else ""
    return (measure_matmul_flops(device, dtype, size, min_seconds=MATMUL_SECONDS),
            f"measured: {size}x{size} {dtype} matmul{threads}, best over {MATMUL_SECONDS} s")


def mfu(n_params: int, tokens_per_s: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: 4 x parameters x tokens/s over the peak (4 significant digits)."""
    if not peak:
        return None
    return float(f"{FLOPS_PER_PARAM_TOKEN * n_params * tokens_per_s / peak:.4g}")


def log_row(state: Any, logs: dict[str, Any], *, tokens: int, tokens_per_s: float, time_s: float, cpu_s: float,
            device: str, n_params: int, peak: float | None) -> dict[str, Any]:
    """The metrics.jsonl row of one training log (or, for an eval log, its step and eval_loss)."""
    if "eval_loss" in logs:
        return {"step": state.global_step, "eval_loss": logs["eval_loss"]}
    return {
        "step": state.global_step,
        "epoch": round(state.epoch or 0.0, 4),
        "loss": logs.get("loss"),
        "lr": logs.get("learning_rate"),
        "grad_norm": logs.get("grad_norm"),
        "tokens": tokens,
        "tokens_per_s": round(tokens_per_s, 1),
        "time_s": round(time_s, 3),  # since this session's training began
        "cpu_s": round(cpu_s, 3),  # this process's CPU time, same span
        "memory_mib": round(peak_memory_mib(device), 1),
        "mfu": mfu(n_params, tokens_per_s, peak),
    }


def peak_memory_mib(device: str) -> float:
    """Peak memory of this process so far: CUDA allocations on a GPU, resident set size on CPU."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def keep_rows_up_to(path: Path, step: int) -> int:
    """On resume: drop rows logged after the checkpoint's ``step`` (they are trained again); return rows kept."""
    if not path.is_file():
        return 0
    rows = [row for row in read_jsonl(path) if row.get("step", 0) <= step]
    return atomic_write_jsonl(path, rows)


def progress_line(row: dict[str, Any], max_steps: int) -> str:
    """One plain line per log step (non-terminal output: CI logs, agents)."""
    if "eval_loss" in row:
        return f"step {row['step']}/{max_steps} eval_loss {row['eval_loss']:.4f}"
    grad = f" grad_norm {row['grad_norm']:.3f}" if row.get("grad_norm") is not None else ""
    mfu_text = f" mfu {100 * row['mfu']:.1f}%" if row.get("mfu") is not None else ""
    return (f"step {row['step']}/{max_steps} loss {row['loss']:.4f} lr {row['lr']:.3e}{grad} "
            f"{row['tokens_per_s']:.0f} tok/s{mfu_text} mem {row['memory_mib']:.0f} MiB")


def plot_loss(metrics_path: Path, png_path: Path) -> Path | None:
    """``loss.png``: training (and eval) loss against step, learning rate on a second axis."""
    rows = list(read_jsonl(metrics_path)) if metrics_path.is_file() else []
    train = [r for r in rows if r.get("loss") is not None]
    if not train:
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot([r["step"] for r in train], [r["loss"] for r in train], label="train loss", color="tab:blue")
    evals = [r for r in rows if r.get("eval_loss") is not None]
    if evals:
        ax.plot([r["step"] for r in evals], [r["eval_loss"] for r in evals], "o-", label="eval loss",
                color="tab:orange")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot([r["step"] for r in train], [r["lr"] for r in train], ":", color="gray", label="learning rate")
    lr_ax.set_ylabel("learning rate")
    handles = ax.get_legend_handles_labels()[0] + lr_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return atomic_write_bytes(png_path, buffer.getvalue())


def is_terminal() -> bool:
    """A progress bar on a terminal, plain lines otherwise."""
    return sys.stdout.isatty()


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """First/last loss (mean of up to 3 log rows at each end), mean throughput and mean MFU of a run's rows
    (the first row, which pays one-off costs, counts only when it is the only one)."""
    train = [r for r in rows if r.get("loss") is not None]
    if not train:
        return {"first_loss": None, "final_loss": None, "tokens_per_s": None, "mfu": None}
    k = min(3, max(1, len(train) // 2))
    steady = train[1:] or train[:1]
    mfus = [r["mfu"] for r in steady if r.get("mfu") is not None]
    return {
        "first_loss": sum(r["loss"] for r in train[:k]) / k,
        "final_loss": sum(r["loss"] for r in train[-k:]) / k,
        "tokens_per_s": round(sum(r["tokens_per_s"] for r in steady) / len(steady), 1),
        "mfu": float(f"{sum(mfus) / len(mfus):.4g}") if mfus else None,
    }

