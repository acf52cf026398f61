"""`plan.py`: will this run config fit on this GPU (or CPU)? Decide before loading a model."""

from __future__ import annotations

from typing import Any

from ..config import HARDWARE_CHOICES, load_config
from ..core.result import Result
from .planner import make_plan

HELP = """\
Estimate the peak memory of a LoRA/QLoRA run before loading anything, term by term (weights at 4 or 16 bit,
LoRA parameters, gradients, optimizer states, activations with and without gradient checkpointing, logits,
CUDA/runtime overhead), with a verdict: fits (<= 85% of memory), tight (85-100%: may still OOM), oom.
Also the dtype for the hardware (fp16 on T4/V100, bf16 on Ampere+; on CPU bf16 autocast where it has
avx512_bf16/amx_bf16, else fp32) and the largest batch and sequence length that fit, with the gradient
accumulation that keeps the effective batch.
Exit codes: 0 fits or tight, 3 will OOM, 2 bad config.
Example: scripts/plan.py --config examples/configs/colab_t4_qlora.yaml --gpu t4"""

EXIT_OOM = 3


def configure(parser: Any) -> None:
    """Add plan's arguments."""
    parser.add_argument("--config", required=True, help="run config YAML (see examples/configs/)")
    parser.add_argument("--gpu", default="auto", choices=HARDWARE_CHOICES,
                        help="hardware to plan for (default: the config's `hardware`; auto detects CUDA, else cpu)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.batch_size=4 (repeatable)")


def run(args: Any) -> Result:
    """Load the config (with --gpu as its hardware, so hardware-dependent defaults follow) and plan it."""
    overrides = list(args.overrides) + ([f"hardware={args.gpu}"] if args.gpu != "auto" else [])
    config = load_config(args.config, overrides)
    plan = make_plan(config)
    return Result(data={"ok": True, **plan}, text=render(plan), exit_code=EXIT_OOM if plan["verdict"] == "oom" else 0)


def render(plan: dict[str, Any]) -> str:
    """The plan as text an agent or a person can act on."""
    arch, hw, mem, st = plan["architecture"], plan["hardware"], plan["memory_gib"], plan["settings"]
    verdict = {"fits": "FITS", "tight": "TIGHT (may OOM)", "oom": "WILL OOM"}[plan["verdict"]]
    lines = [
        f"plan: {plan['model']} ({arch['params'] / 1e9:.2f}B params, {arch['source']}) on {hw['label']} "
        f"({hw['memory_gib']:.1f} GiB {hw['kind']})",
        f"  backend {plan['backend']}, dtype {plan['precision']['dtype']}, "
        f"{'4-bit QLoRA' if st['load_in_4bit'] else 'LoRA on unquantized weights'}, {plan['trainable_params']:,} "
        f"trainable LoRA params (r={st['lora_r']})",
        f"  batch {st['batch_size']} x accumulation {st['grad_accum']}, seq {st['max_seq_length']}, {st['optim']}, "
        f"checkpointing {st['checkpointing']}",
        "  estimated peak memory (GiB):",
    ]
    labels = {"weights": "weights", "lora_params": "LoRA parameters", "gradients": "gradients (LoRA)",
              "optimizer": f"optimizer states ({st['optim']})", "activations": f"activations ({st['checkpointing']})",
              "logits": "logits / loss", "runtime": "runtime overhead"}
    lines += [f"    {labels[key]:34} {mem[key]:9.2f}" for key in labels]
    lines.append(f"    {'total':34} {mem['total']:9.2f}  = {plan['usage']:.0%} of {hw['memory_gib']:.1f} GiB")
    alt = plan["activations_gib"]
    lines.append(f"  activations without checkpointing {alt['none']:.2f}, with checkpointing {alt['standard']:.2f}, "
                 f"offloaded (unsloth) {alt['offload']:.2f} GiB")
    lines.append(f"  verdict: {verdict}")
    batch, seq = plan["largest_batch"], plan["largest_seq_length"]
    if batch:
        lines.append(f"  largest batch that fits at seq {st['max_seq_length']}: {batch['batch_size']} "
                     f"(for effective batch {batch['effective_batch']}: batch {batch['suggested_batch_size']} x "
                     f"accumulation {batch['grad_accum']})")
    else:
        lines.append(f"  no batch fits at seq {st['max_seq_length']}")
    lines.append(f"  largest seq length that fits at batch {st['batch_size']}: {seq if seq else 'none'}")
    lines += [f"  note: {note}" for note in plan["notes"]]
    return "\n".join(lines)
