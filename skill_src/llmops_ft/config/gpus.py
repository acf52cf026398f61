"""The hardware a run targets: a table of common GPUs, auto-detection, and the precision rules.

VRAM is what the driver reports as usable (nvidia-smi's total), in GiB; bf16 needs compute capability >= 8.0
(Ampere). The table holds public spec-sheet facts. On CPU, bf16 needs the instructions (avx512_bf16 or amx_bf16):
without them torch emulates bf16 matmuls, tens of times slower than float32 (benchmarks/results/train.json).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from .problems import ConfigError

GPUS: dict[str, dict[str, Any]] = {
    # name: label, usable memory in GiB, bf16 support, CUDA compute capability
    "t4": {"label": "NVIDIA T4 16 GB", "vram_gib": 15.0, "bf16": False, "compute_capability": (7, 5)},
    "v100": {"label": "NVIDIA V100 16 GB", "vram_gib": 15.8, "bf16": False, "compute_capability": (7, 0)},
    "l4": {"label": "NVIDIA L4 24 GB", "vram_gib": 22.5, "bf16": True, "compute_capability": (8, 9)},
    "a10g": {"label": "NVIDIA A10G 24 GB", "vram_gib": 22.5, "bf16": True, "compute_capability": (8, 6)},
    "a100-40": {"label": "NVIDIA A100 40 GB", "vram_gib": 40.0, "bf16": True, "compute_capability": (8, 0)},
    "a100-80": {"label": "NVIDIA A100 80 GB", "vram_gib": 80.0, "bf16": True, "compute_capability": (8, 0)},
    "h100": {"label": "NVIDIA H100 80 GB", "vram_gib": 79.6, "bf16": True, "compute_capability": (9, 0)},
    "rtx3090": {"label": "NVIDIA RTX 3090 24 GB", "vram_gib": 24.0, "bf16": True, "compute_capability": (8, 6)},
    "rtx4090": {"label": "NVIDIA RTX 4090 24 GB", "vram_gib": 24.0, "bf16": True, "compute_capability": (8, 9)},
    # CPU: memory is the machine's RAM and bf16 its instruction set, both read when asked (see gpu_info).
    "cpu": {"label": "CPU", "vram_gib": None, "bf16": False, "compute_capability": None},
}

# CPU flags (Linux /proc/cpuinfo names) that give torch native bf16 matmuls through oneDNN.
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

HARDWARE_CHOICES = ("auto", *GPUS)

# Substrings of torch.cuda.get_device_name() -> table name; the A100's memory picks between its two sizes.
_DEVICE_NAME_HINTS = (("T4", "t4"), ("V100", "v100"), ("L4", "l4"), ("A10G", "a10g"), ("H100", "h100"),
                      ("3090", "rtx3090"), ("4090", "rtx4090"))


def system_ram_gib() -> float:
    """Physical memory of this machine in GiB."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


@functools.lru_cache(maxsize=1)
def detect_cuda() -> dict[str, Any] | None:
    """The first CUDA device as a table-like entry (name, label, vram_gib, bf16, compute_capability), or None.

    Imports torch, so it is called only when ``hardware: auto`` has to be resolved.
    """
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    vram = props.total_memory / 2**30
    capability = (props.major, props.minor)
    name = next((key for hint, key in _DEVICE_NAME_HINTS if hint in props.name), None)
    if "A100" in props.name:
        name = "a100-80" if vram > 50 else "a100-40"
    return {
        "name": name or "cuda",
        "label": props.name,
        "vram_gib": round(vram, 1),
        "bf16": capability >= (8, 0),
        "compute_capability": capability,
    }


def bf16_flags_in(cpuinfo: str) -> tuple[str, ...]:
    """The CPU_BF16_FLAGS listed on the first ``flags`` line of a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            present = set(value.split())
            return tuple(flag for flag in CPU_BF16_FLAGS if flag in present)
    return ()


@functools.lru_cache(maxsize=1)
def cpu_bf16_flags() -> tuple[str, ...]:
    """This machine's bf16 CPU flags (empty when it has none, or when /proc/cpuinfo is not there to say)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return bf16_flags_in(fh.read())
    except OSError:
        return ()


def gpu_info(name: str) -> dict[str, Any]:
    """The hardware entry for ``name`` (a table key, ``auto`` or ``cpu``), with ``name`` and a concrete memory size.

    ``auto`` is the CUDA device torch sees (its real memory, even when it is not in the table), else ``cpu``.
    """
    if name == "auto":
        found = detect_cuda()
        if found is not None:
            return dict(found)
        name = "cpu"
    if name not in GPUS:
        raise ConfigError.single("hardware", f"unknown hardware {name!r}; choose one of: {', '.join(HARDWARE_CHOICES)}")
    entry = {"name": name, **GPUS[name]}
    if name == "cpu":
        flags = cpu_bf16_flags()
        entry.update(vram_gib=round(system_ram_gib(), 1), bf16=bool(flags), bf16_flags=list(flags))
    return entry


def default_load_in_4bit(hardware: str, recommended_value: bool, recommended_on: list[str]) -> bool:
    """The 4-bit default for ``hardware``: the recommendation on the GPUs it lists, else False (CPU: always False)."""
    if hardware == "auto":
        hardware = gpu_info("auto")["name"]
    if hardware == "cpu":
        return False
    if hardware not in GPUS:  # a CUDA GPU outside the table: follow the recommendation
        return bool(recommended_value)
    return bool(recommended_value) and (hardware in recommended_on or "all" in recommended_on)


def resolve_precision(config: dict[str, Any], gpu: str | dict[str, Any] = "auto") -> dict[str, Any]:
    """The training precision for ``config`` on ``gpu``: {"dtype", "fp16", "bf16"}.

    ``dtype: auto`` is float16 on GPUs without bf16 (T4, V100), bfloat16 on Ampere and newer; on CPU bfloat16
    (autocast, see train.backends) when the CPU has bf16 instructions, else float32.
    Asking bfloat16 where the hardware has no bf16 (a T4, a CPU without avx512_bf16/amx_bf16), or float16 on CPU
    (fp16 mixed precision needs CUDA), is a ConfigError naming ``model.dtype``. ``gpu`` is a table name, ``auto``
    (use the config's ``hardware``) or a gpu_info() entry.
    """
    if isinstance(gpu, str):
        gpu = gpu_info(config.get("hardware", "auto") if gpu == "auto" else gpu)
    asked = config["model"].get("dtype", "auto")
    is_cpu = gpu["name"] == "cpu"
    if asked == "auto":
        dtype = "bfloat16" if gpu["bf16"] else ("float32" if is_cpu else "float16")
    else:
        dtype = asked
    if dtype == "bfloat16" and not gpu["bf16"]:
        why = ("this CPU (no avx512_bf16 or amx_bf16 instructions: torch would emulate bf16, far slower than "
               "float32); use float32 or auto") if is_cpu else f"{gpu['label']} (no bf16 units); use float16 or auto"
        raise ConfigError.single("model.dtype", f"bfloat16 is not supported on {why}")
    if dtype == "float16" and is_cpu:
        raise ConfigError.single("model.dtype", "float16 mixed precision needs a CUDA GPU; use float32 or auto on CPU")
    return {"dtype": dtype, "fp16": dtype == "float16", "bf16": dtype == "bfloat16"}


def precision_note(gpu: dict[str, Any], precision: dict[str, Any]) -> str | None:
    """How the CPU dtype rule decided, for the plan's notes (None on a GPU)."""
    if gpu["name"] != "cpu":
        return None
    flags = gpu.get("bf16_flags") or []
    if precision["bf16"]:
        return (f"bf16 autocast on CPU ({', '.join(flags)}): LoRA, norms and embeddings in float32, the frozen linear "
                "layers stored in bfloat16, matmuls in bfloat16")
    return ("float32 on CPU: " + ("the config asks for it" if flags else
                                  "no bf16 instructions here (avx512_bf16 or amx_bf16), so bf16 would be emulated"))
