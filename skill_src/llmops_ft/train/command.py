"""`train.py`: the CLI of llmops_ft.train (the runner in cli.py adds --json)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from ..core.commands import add_force_flag, add_trust_flag

HELP = """Fine-tune a LoRA adapter as a run config says (Unsloth when it imports, else transformers + peft + trl).

Before loading the model it validates the config (every problem at once), runs the memory plan (stops when it
will not fit), tokenizes the dataset with the model's chat template and checks that every row has assistant
tokens to learn from (loss is on assistant tokens only). Then it trains, checkpointing every save_steps, and
writes output_dir: adapter/, checkpoints/, metrics.jsonl, loss.png, run.json, README.md.

examples:
  train.py --config examples/configs/cpu_smoke.yaml --dry-run
  train.py --config examples/configs/cpu_smoke.yaml --set training.max_steps=20
  train.py --config cfg.yaml --resume auto     # continue from the newest complete checkpoint
  torchrun --nproc_per_node 2 scripts/train.py --config cfg.yaml    # DDP, same script

SIGTERM/SIGINT save a checkpoint at the end of the current step before exiting (exit code 128 + signal).
Exit codes: 0 trained, 2 bad input (one line on stderr naming file, line and key), 128+N stopped by signal N."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add train.py's arguments."""
    parser.add_argument("--config", required=True, metavar="FILE", help="run config YAML (see examples/configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set training.max_steps=20 (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="plan, load the tokenizer and data, check labels, print what would run; no training")
    parser.add_argument("--resume", default="auto", metavar="auto|never|PATH",
                        help="auto: newest complete checkpoint in output_dir if any (default); never; or a "
                             "checkpoint folder")
    add_force_flag(parser, "start over: remove an earlier run's files in output_dir first")
    add_trust_flag(parser, never="a config that sets model.trust_remote_code needs this flag too")


def run(args: argparse.Namespace) -> Any:
    """Load the config, train (or dry-run), and return the summary."""
    from ..config import load_config
    from ..core.result import Result
    from . import train

    config = load_config(args.config, args.overrides)
    config["model"]["trust_remote_code"] = trusted(config, args)
    # With --json, stdout carries one JSON object: progress (ours, Unsloth's banner, the trainer's) goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        summary = train(config, resume=args.resume, dry_run=args.dry_run, force=args.force)
    return Result(data=summary, text=render(summary), exit_code=summary.get("exit_code", 0))


def trusted(config: dict[str, Any], args: argparse.Namespace) -> bool:
    """Model repository code runs only when this command line says so: a config (perhaps someone else's) that
    asks for it without --trust-remote-code is refused with one line."""
    if config["model"].get("trust_remote_code") and not args.trust_remote_code:
        from ..errors import UserError

        raise UserError("the config asks to run Python code from the model repository; pass --trust-remote-code "
                        "if you trust that code, or set it to false", file=args.config, field="model.trust_remote_code")
    return bool(args.trust_remote_code)


def render(summary: dict[str, Any]) -> str:
    """The human summary (progress lines were already printed while training)."""
    if summary.get("dry_run"):
        plan = summary.get("plan") or {}
        lines = [
            f"dry run: would train {summary['planned_steps']} steps on {summary['rows']} rows "
            f"({summary['tokens']} tokens, {summary['trainable_tokens']} trainable) into {summary['output_dir']}",
            f"  model {summary['base_model']} | backend {summary['backend']} | {summary['precision']['dtype']} on "
            f"{summary['hardware']} | plan: {plan.get('verdict', 'n/a')}",
            f"  resume from: {summary['resume_from'] or 'none (step 0)'}",
        ]
        if summary.get("response_markers"):
            lines.append(f"  unsloth response markers: {json.dumps(summary['response_markers'])}")
        lines += [f"  note: {note}" for note in summary["notes"]]
        lines.append("  label check: every row has trainable assistant tokens")
        return "\n".join(lines)
    if summary.get("rank", 0) != 0:
        return ""  # under torchrun only rank 0 reports
    if summary.get("stopped_by"):
        return f"stopped by {summary['stopped_by']} at step {summary['steps']}; resume with --resume auto"
    return f"trained {summary['steps']} steps; run dir: {summary['output_dir']}"
