"""make_plan: will this run fit? The memory estimate, a verdict, the dtype, and the largest batch/seq that fit."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from ..config import detect_cuda, gpu_info, resolve_precision
from ..config.gpus import precision_note
from .architectures import Architecture, resolve_architecture
from .backend import choose_backend
from .memory import EIGHT_BIT_OPTIMIZERS, GIB, Settings, activation_bytes, estimate, largest, lora_params

FITS_BELOW = 0.85  # above this share of memory the run is "tight": fragmentation and spikes may still OOM it
MAX_BATCH = 4096
MAX_SEQ = 131072
SEQ_STEP = 64


def resolve_backend(config: dict[str, Any], hardware: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """(backend, note) as training will choose it: plan.backend.choose_backend, which imports unsloth to see
    whether it works (on ``hardware`` that is not this machine the import cannot tell, see there)."""
    return choose_backend(config["backend"], here=hardware is None or _is_this_machine(config, hardware))


def _is_this_machine(config: dict[str, Any], hardware: dict[str, Any]) -> bool:
    """Whether the run is planned for the machine this runs on: the CPU, hardware auto, or the GPU torch sees."""
    if hardware["name"] == "cpu" or config.get("hardware", "auto") == "auto":
        return True
    found = detect_cuda()
    return found is not None and found["name"] == hardware["name"]


def settings_for(config: dict[str, Any], gpu: dict[str, Any], dtype: str, backend: str) -> Settings:
    """The memory-relevant settings of ``config`` on ``gpu``, with notes on what was adjusted."""
    notes = []
    device = "cpu" if gpu["name"] == "cpu" else "cuda"
    width = 4 if dtype == "float32" else 2
    weight_width = 4 if device == "cpu" else width  # CPU weights load in float32 (bf16 casts come after loading)
    optim = config["training"]["optim"]
    if device == "cpu" and optim in EIGHT_BIT_OPTIMIZERS:
        notes.append(f"{optim} needs CUDA bitsandbytes: on CPU training falls back to adamw_torch (fp32 states)")
        optim = "adamw_torch"
    mode = config["training"]["gradient_checkpointing"]
    if mode is False:
        checkpointing = "none"
    elif mode == "unsloth" and backend == "unsloth" and device == "cuda":
        checkpointing = "offload"
    else:
        checkpointing = "standard"
    return Settings(
        batch=config["training"]["batch_size"],
        seq=config["model"]["max_seq_length"],
        load_in_4bit=config["model"]["load_in_4bit"],
        weight_bytes=weight_width,
        activation_bytes=width,
        lora_r=config["lora"]["r"],
        target_modules=tuple(config["lora"]["target_modules"]),
        optim=optim,
        checkpointing=checkpointing,
        fused_cross_entropy=backend == "unsloth",
        device=device,
        notes=notes,
    )


def make_plan(config: dict[str, Any], gpu: str = "auto") -> dict[str, Any]:
    """Plan a resolved run config on ``gpu`` (a hardware name; ``auto``: the config's ``hardware``, else detected).

    Returns plain data: model, architecture, hardware, precision, backend, memory_gib (term by term and total),
    usage (share of memory), verdict (fits | tight | oom), largest_batch, largest_seq_length and notes.
    Raises ConfigError (a UserError) for a dtype the hardware lacks, UserError for an unknown architecture.
    """
    hardware = gpu_info(config["hardware"] if gpu == "auto" else gpu)
    precision = resolve_precision(config, hardware)
    backend, backend_note = resolve_backend({**config, "hardware": config["hardware"] if gpu == "auto" else gpu},
                                            hardware)
    arch = resolve_architecture(config["model"]["name"])
    settings = settings_for(config, hardware, precision["dtype"], backend)
    trainable, missing = lora_params(arch, settings.lora_r, settings.target_modules)
    notes = list(settings.notes) + ([backend_note] if backend_note else [])
    notes += [note for note in [precision_note(hardware, precision)] if note]
    if missing:
        notes.append(f"lora.target_modules not in this architecture ({arch.family}): {', '.join(missing)}; "
                     f"its linear layers are {', '.join(arch.linears())}")
    if arch.source != "table" and "read as llama" in arch.source:
        notes.append(f"architecture {arch.source}: the estimate assumes a llama-style block")
    capacity = hardware["vram_gib"] * GIB
    terms = estimate(arch, settings)
    usage = terms["total"] / capacity
    verdict = "fits" if usage <= FITS_BELOW else "tight" if usage <= 1.0 else "oom"
    plan = {
        "model": config["model"]["name"],
        "architecture": arch.as_dict(),
        "trainable_params": trainable,
        "hardware": {"name": hardware["name"], "label": hardware["label"], "memory_gib": hardware["vram_gib"],
                     "kind": "RAM" if settings.device == "cpu" else "VRAM"},
        "precision": precision,
        "backend": backend,
        "settings": {"batch_size": settings.batch, "grad_accum": config["training"]["grad_accum"],
                     "max_seq_length": settings.seq, "load_in_4bit": settings.load_in_4bit, "lora_r": settings.lora_r,
                     "optim": settings.optim, "checkpointing": settings.checkpointing},
        "memory_gib": {key: round(value / GIB, 3) for key, value in terms.items()},
        "activations_gib": {mode: round(activation_bytes(arch, settings, mode) / GIB, 3)
                            for mode in ("none", "standard", "offload")},
        "usage": round(usage, 3),
        "verdict": verdict,
        "largest_batch": _largest_batch(arch, settings, config["training"]["grad_accum"], capacity),
        "largest_seq_length": _largest_seq(arch, settings, capacity),
        "notes": notes,
    }
    if verdict != "fits":
        plan["notes"].extend(_advice(config, settings))
    return plan


def _fits(arch: Architecture, settings: Settings, capacity: float) -> bool:
    return estimate(arch, settings)["total"] <= FITS_BELOW * capacity


def _largest_batch(arch: Architecture, settings: Settings, grad_accum: int, capacity: float) -> dict[str, Any] | None:
    """The largest per-device batch that fits at the configured length, and the accumulation that keeps the
    effective batch (batch x accumulation) at least what the config asks."""
    best = largest(lambda b: _fits(arch, replace(settings, batch=b), capacity), 1, MAX_BATCH)
    if best is None:
        return None
    effective = settings.batch * grad_accum
    batch = min(best, effective)  # no point in a batch larger than the effective batch
    return {"batch_size": best, "grad_accum": max(1, math.ceil(effective / batch)), "effective_batch": effective,
            "suggested_batch_size": batch}


def _largest_seq(arch: Architecture, settings: Settings, capacity: float) -> int | None:
    """The largest sequence length (a multiple of 64) that fits at the configured batch size."""
    return largest(lambda s: _fits(arch, replace(settings, seq=s), capacity), SEQ_STEP, MAX_SEQ, SEQ_STEP)


def _advice(config: dict[str, Any], settings: Settings) -> list[str]:
    """What would lower the peak, cheapest first, skipping what the config already does."""
    advice = []
    if settings.batch > 1:
        advice.append("lower training.batch_size (raise training.grad_accum to keep the effective batch)")
    if settings.checkpointing == "none":
        advice.append('turn on training.gradient_checkpointing ("unsloth" offloads activations to CPU RAM)')
    if not settings.load_in_4bit and settings.device == "cuda":
        advice.append("set model.load_in_4bit: true (QLoRA: about 1/4 of the 16-bit weight memory)")
    if settings.optim not in EIGHT_BIT_OPTIMIZERS and settings.device == "cuda":
        advice.append("use training.optim: adamw_8bit")
    advice.append("lower model.max_seq_length (see largest_seq_length), or use a smaller model or a larger GPU")
    return advice
