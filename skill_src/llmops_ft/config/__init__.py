"""The run config: one YAML file validated by schemas/run_config.json, defaults from recommendations.yaml.

Public API (train, export and demo build on it):
``load_config(path, overrides=(), *, base=None) -> dict``, ``ConfigError``, ``GPUS``, ``gpu_info(name)``,
``resolve_precision(config, gpu) -> {"dtype", "fp16", "bf16"}``.
"""

from .gpus import GPUS, HARDWARE_CHOICES, detect_cuda, gpu_info, resolve_precision, system_ram_gib
from .loader import SCHEMA_PATH, load_config, load_schema
from .problems import ConfigError, Problem

__all__ = [
    "GPUS",
    "HARDWARE_CHOICES",
    "SCHEMA_PATH",
    "ConfigError",
    "Problem",
    "detect_cuda",
    "gpu_info",
    "load_config",
    "load_schema",
    "resolve_precision",
    "system_ram_gib",
]
