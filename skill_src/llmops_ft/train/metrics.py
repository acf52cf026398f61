"""Training metrics: one ``metrics.jsonl`` row per log step, a plain progress line, ``loss.png``.

Each row: step, epoch, loss, lr, grad_norm, tokens (non-pad, all ranks, this session) and tokens/s since the
previous row, wall and CPU seconds since this session's training began, peak memory, and MFU: a LoRA step costs about
4 x parameters x tokens FLOPs (forward, and backward through the activations but not into the frozen weights),
divided by the device's peak. The CPU peak is the matmul throughput measured through torch on the project's
reference machine (2 cores, see the design guide); set ``LLMOPS_FT_PEAK_FLOPS`` to your device's peak to
compare elsewhere. GPU peaks are not tabulated: MFU is null there unless that variable is set.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from ..io import atomic_write_bytes, atomic_write_jsonl, dumps_jsonl_line, read_jsonl

# FLOP/s of a 2048x2048 matmul through torch on 2 threads of the reference CPU (measured; design guide).
CPU_PEAK_FLOPS = {"float32": 180e9, "bfloat16": 390e9}
FLOPS_PER_PARAM_TOKEN = 4


def peak_flops(device: str, dtype: str) -> float | None:
    """The peak FLOP/s MFU is measured against: ``LLMOPS_FT_PEAK_FLOPS``, else the reference CPU's, else None."""
    if os.environ.get("LLMOPS_FT_PEAK_FLOPS"):
        return float(os.environ["LLMOPS_FT_PEAK_FLOPS"])
    if device == "cpu":
        return CPU_PEAK_FLOPS["bfloat16" if dtype == "bfloat16" else "float32"]
    return None


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


def make_metrics_callback(path: Path, *, env: Any, n_params: int, precision: dict[str, Any],
                          show_progress: bool) -> Any:
    """A TrainerCallback writing ``path``; set its ``trainer`` attribute once the trainer exists."""
    from transformers import TrainerCallback

    peak = peak_flops(env.device, precision["dtype"])

    class MetricsCallback(TrainerCallback):
        trainer: Any = None

        def __init__(self) -> None:
            self.started = self.last_time = time.perf_counter()
            self.cpu_started = time.process_time()
            self.last_tokens = 0
            self.rows: list[dict[str, Any]] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = self.last_time = time.perf_counter()
            self.cpu_started = time.process_time()
            self.last_tokens = self.tokens_all_ranks()

        def tokens_all_ranks(self) -> int:
            local = self.trainer.tokens_seen if self.trainer is not None else 0
            if env.world_size == 1:
                return local
            import torch
            import torch.distributed as dist

            total = torch.tensor([local], dtype=torch.int64, device=self.trainer.args.device)
            dist.all_reduce(total)
            return int(total.item())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
            logs = logs or {}
            if "loss" not in logs and "eval_loss" not in logs:
                return  # the end-of-training summary goes to run.json instead
            now, tokens = time.perf_counter(), self.tokens_all_ranks()
            elapsed = max(now - self.last_time, 1e-9)
            tokens_per_s = (tokens - self.last_tokens) / elapsed
            self.last_time, self.last_tokens = now, tokens
            row = {
                "step": state.global_step,
                "epoch": round(state.epoch or 0.0, 4),
                "loss": logs.get("loss"),
                "lr": logs.get("learning_rate"),
                "grad_norm": logs.get("grad_norm"),
                "tokens": tokens,
                "tokens_per_s": round(tokens_per_s, 1),
                "time_s": round(now - self.started, 3),  # since this session's training began
                "cpu_s": round(time.process_time() - self.cpu_started, 3),  # this process's CPU time, same span
                "memory_mib": round(peak_memory_mib(env.device), 1),
                "mfu": float(f"{FLOPS_PER_PARAM_TOKEN * n_params * tokens_per_s / peak:.4g}") if peak else None,
            }
            if "eval_loss" in logs:
                row = {"step": state.global_step, "eval_loss": logs["eval_loss"]}
            if not env.is_main:
                return
            self.rows.append(row)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(dumps_jsonl_line(row) + "\n")
            if not show_progress:
                print(progress_line(row, state.max_steps), flush=True)

    return MetricsCallback()


def progress_line(row: dict[str, Any], max_steps: int) -> str:
    """One plain line per log step (non-terminal output: CI logs, agents)."""
    if "eval_loss" in row:
        return f"step {row['step']}/{max_steps} eval_loss {row['eval_loss']:.4f}"
    grad = f" grad_norm {row['grad_norm']:.3f}" if row.get("grad_norm") is not None else ""
    return (f"step {row['step']}/{max_steps} loss {row['loss']:.4f} lr {row['lr']:.3e}{grad} "
            f"{row['tokens_per_s']:.0f} tok/s mem {row['memory_mib']:.0f} MiB")


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
    """First/last loss (mean of up to 3 log rows at each end) and mean throughput of a run's rows."""
    train = [r for r in rows if r.get("loss") is not None]
    if not train:
        return {"first_loss": None, "final_loss": None, "tokens_per_s": None}
    k = min(3, max(1, len(train) // 2))
    speeds = [r["tokens_per_s"] for r in train[1:]] or [train[0]["tokens_per_s"]]
    return {
        "first_loss": sum(r["loss"] for r in train[:k]) / k,
        "final_loss": sum(r["loss"] for r in train[-k:]) / k,
        "tokens_per_s": round(sum(speeds) / len(speeds), 1),
    }

