"""What a run records about itself: ``run.json`` (export, evaluate and the demo read it) and a model card."""

from __future__ import annotations

import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import UserError

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes")
# What marks a folder as a run of ours (finished, or stopped with checkpoints or a metrics log to resume from).
RUN_MARKERS = ("run.json", "checkpoints", "metrics.jsonl")


def check_run_dir(run_dir: Path, config: dict[str, Any], run_files: tuple[str, ...]) -> None:
    """Before anything else: may train write ``run_dir``? One line (UserError) when not.

    Refused whatever the flags: the working directory or a folder above it, a folder holding the dataset or the
    base model, and a folder that is not a run of ours (no RUN_MARKERS) but holds a file with one of the names
    train writes (``run_files``: README.md, loss.png, ...), since writing or --force would replace it. Other
    files beside a run are never touched.
    """
    from ..io import refuse_unsafe_output

    dataset = config.get("dataset") or {}
    model = (config.get("model") or {}).get("name")
    inputs = [dataset.get("path"), dataset.get("val"), model if model and Path(model).is_dir() else None]
    refuse_unsafe_output(run_dir, inputs, field="output_dir")
    if not run_dir.is_dir() or any((run_dir / name).exists() for name in RUN_MARKERS):
        return
    taken = [name for name in run_files if (run_dir / name).exists()]
    if taken:
        raise UserError(f"holds {', '.join(taken)}, which train did not write (this folder is not a run: no "
                        f"{', '.join(RUN_MARKERS)}); set output_dir to a new folder or move them out",
                        file=str(run_dir), field="output_dir")


def versions(backend: str) -> dict[str, str | None]:
    """Installed versions of the training stack (unsloth and unsloth_zoo when that backend ran)."""
    names = [*PACKAGES, *(("unsloth", "unsloth_zoo") if backend == "unsloth" else ())]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    """The commit of the checkout this package runs from (suffix ``-dirty`` with local changes), else None."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def hardware(env: Any, gpu: dict[str, Any]) -> dict[str, Any]:
    """The hardware the run used."""
    import torch

    info = {"device": env.device, "name": gpu.get("name"), "label": gpu.get("label"), "world_size": env.world_size,
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if env.device == "cuda":
        info["cuda_device"] = torch.cuda.get_device_name(env.local_rank)
    return info


def model_card(run: dict[str, Any]) -> str:
    """A short README.md for the run dir: what was trained, on what, how, and how to load it."""
    cfg = run["config"]
    lora, training = cfg["lora"], cfg["training"]
    rows = run["dataset"]["rows"]
    loss = run.get("final_loss")
    lines = [
        f"# LoRA adapter for {cfg['model']['name']}",
        "",
        f"Trained by llmops-fine-tuner (`scripts/train.py`, backend `{run['backend']}`) on {rows} conversations "
        f"from `{Path(run['dataset']['train']).name}` (sha256 `{run['dataset']['train_sha256'][:12]}...`).",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| LoRA | r {lora['r']}, alpha {lora['alpha']}, dropout {lora['dropout']}, rslora {lora['use_rslora']} |",
        f"| target modules | {', '.join(lora['target_modules'])} |",
        f"| quantization | {'4-bit NF4 (QLoRA)' if cfg['model']['load_in_4bit'] else '16/32-bit weights'} |",
        f"| precision | {run['precision']['dtype']} |",
        f"| steps | {run['steps']} (batch {training['batch_size']} x accumulation {training['grad_accum']} x "
        f"{run['hardware']['world_size']} process(es)) |",
        f"| learning rate | {training['learning_rate']} ({training['lr_scheduler']}) |",
        f"| max sequence length | {cfg['model']['max_seq_length']} |",
        f"| loss only on assistant tokens | {cfg['dataset']['completion_only_loss']} |",
        f"| final training loss | {loss:.4f} |" if loss is not None else "| final training loss | n/a |",
        f"| hardware | {run['hardware']['label'] or run['hardware']['device']} |",
        "",
        "Load it:",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        "base = AutoModelForCausalLM.from_pretrained(BASE_MODEL)  # run.json: base_model",
        'model = PeftModel.from_pretrained(base, "RUN_DIR/adapter")',
        'tokenizer = AutoTokenizer.from_pretrained("RUN_DIR/adapter")',
        "```",
        "",
        "Files: `adapter/` (adapter + tokenizer with its chat template), `run.json` (resolved config, versions, "
        "dataset hash, git commit), `metrics.jsonl` and `loss.png`, `checkpoints/` (resume with "
        "`train.py --config ... --resume auto`).",
        "",
    ]
    if run.get("system_prompt"):
        lines[3:3] = [f"System prompt used in training: `{run['system_prompt']}`", ""]
    return "\n".join(lines)
