"""`make demo`: the Task API Assistant end to end on the embedded defaults, with demo/report.md as its record."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..core.result import Result

HELP = """Run the whole job on the embedded defaults: prep the Task API example, plan, train SmolLM2-135M-Instruct
with LoRA on CPU, evaluate base vs tuned on the eval set and on the hand-written held-out set, export the adapter,
the merged model and GGUF f16 / q8_0 / q4_k_m (each measured against the trained model in llama.cpp; the parity
rule picks the one the Ollama Modelfile uses), and answer the held-out requests the way `ollama run` builds its
prompt. Writes demo/report.md and demo/loss.png.
Exit 0 when every stage ran (goals missed are reported, not hidden); non-zero when a stage failed."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of demo.py."""
    parser.add_argument("--out", default="demo", help="where report.md and loss.png go (default demo/ here)")
    parser.add_argument("--steps", type=int, help="override training.max_steps of the CPU config")
    parser.add_argument("--eval-limit", type=int, help="evaluate the first N rows of each set only (default: all)")


def run(args: argparse.Namespace) -> Result:
    """Run the stages, write the report, print the summary."""
    from .job import run_demo

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # weight-loading bars, read when transformers loads
    report = run_demo(Path(args.out), steps=args.steps, eval_limit=args.eval_limit)
    return Result(data=report, text=report["summary"], exit_code=0 if report["ok"] else 1)
