"""TRL's SFTTrainer with every argument set from the resolved config, atomic checkpoints and stop-on-signal.

trl 1.x defaults are not ours (bf16=True, gradient_checkpointing=True, learning_rate 2e-5, max_length 1024,
logging every 10 steps...): every argument below is set explicitly, from the config where it has a key and to
a stated value where it does not. The dataset arrives tokenized with its labels (data.py), so TRL's own
preparation (chat template, masking, truncation) is skipped: one masking implementation, checked before step 1.
The Trainer subclass and callbacks live in hooks.py (public hooks only).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .backends import Environment
from .checkpoints import StopOnSignal, staging_dir

# bitsandbytes' 8-bit and paged optimizers have CUDA kernels only.
CUDA_ONLY_OPTIMIZERS = ("adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
                        "paged_lion_8bit", "paged_lion_32bit")
# SFTConfig values that Unsloth's CPU mode may rewrite in __post_init__: a change is reported, not hidden.
WATCHED_ARGUMENTS = ("optim", "bf16", "fp16", "padding_free", "gradient_checkpointing")


def resolve_optim(name: str, device: str) -> tuple[str, str | None]:
    """(optimizer, note): an 8-bit/paged optimizer on CPU becomes adamw_torch, with a note saying so."""
    if device == "cpu" and name in CUDA_ONLY_OPTIMIZERS:
        return "adamw_torch", f"optim {name} needs CUDA (bitsandbytes 8-bit/paged states); using adamw_torch on CPU"
    return name, None


def warmup(training: dict[str, Any]) -> float:
    """transformers' ``warmup_steps``: a step count, or a fraction of the total steps when below 1."""
    if training["warmup_steps"] is not None:
        return int(training["warmup_steps"])
    return float(training["warmup_fraction"] or 0.0)


def schedule_arguments(t: dict[str, Any], optim: str) -> dict[str, Any]:
    """Steps, batch, learning rate, optimizer and seed."""
    return {
        "num_train_epochs": float(t["epochs"]),
        "max_steps": t["max_steps"] if t["max_steps"] is not None else -1,
        "per_device_train_batch_size": t["batch_size"],
        "per_device_eval_batch_size": t["batch_size"],
        "gradient_accumulation_steps": t["grad_accum"],
        "learning_rate": t["learning_rate"],
        "lr_scheduler_type": t["lr_scheduler"],
        "warmup_steps": warmup(t),
        "weight_decay": t["weight_decay"],
        "optim": optim,
        "adam_beta1": 0.9,
        "adam_beta2": 0.999,
        "adam_epsilon": 1e-8,
        "max_grad_norm": 1.0,
        "seed": t["seed"],
        "data_seed": t["seed"],
    }


def precision_arguments(precision: dict[str, Any], env: Environment, checkpointing: bool) -> dict[str, Any]:
    """Mixed precision (bf16 on CPU is autocast, see backends.frozen_linears_to_bf16) and memory savers."""
    return {
        "bf16": precision["bf16"],
        "fp16": precision["fp16"],
        "tf32": None,
        "gradient_checkpointing": checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if checkpointing else None,
        "torch_compile": False,
        "use_liger_kernel": False,
        "use_cpu": env.device == "cpu",
    }


def data_arguments(config: dict[str, Any], env: Environment) -> dict[str, Any]:
    """The dataset is already tokenized, truncated and labelled by data.py: trl only batches it."""
    padding_free = bool(config["training"]["padding_free"])
    return {
        "dataset_kwargs": {"skip_prepare_dataset": True},
        "remove_unused_columns": False,
        "max_length": None if padding_free else config["model"]["max_seq_length"],
        "padding_free": padding_free,
        "packing": False,
        "completion_only_loss": None,
        "assistant_only_loss": False,
        "loss_type": "nll",
        "label_smoothing_factor": 0.0,
        "average_tokens_across_devices": True,
        "train_sampling_strategy": "random",
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": env.device == "cuda",
        "dataloader_drop_last": False,
    }


def logging_arguments(t: dict[str, Any], *, staging: Path, evaluate: bool, show_progress: bool) -> dict[str, Any]:
    """Logging, evaluation and checkpoints: the Trainer saves into ``staging``; hooks.PublishCheckpoints moves
    each finished checkpoint out and keeps save_total_limit (the Trainer's own rotation stays off)."""
    return {
        "output_dir": str(staging),
        "logging_strategy": "steps",
        "logging_steps": t["logging_steps"],
        "logging_first_step": True,
        "logging_nan_inf_filter": False,
        "include_num_input_tokens_seen": "no",
        "report_to": "none",
        "disable_tqdm": not show_progress,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": t["eval_steps"] if evaluate else None,
        "prediction_loss_only": True,  # only eval_loss is logged: no eval logits are kept
        "save_strategy": "steps",
        "save_steps": t["save_steps"],
        "save_total_limit": None,
        "save_only_model": False,
        "load_best_model_at_end": False,
        "push_to_hub": False,
        "ignore_data_skip": False,
    }


def sft_arguments(config: dict[str, Any], *, precision: dict[str, Any], env: Environment, backend: str,
                  checkpoints_dir: Path, has_val: bool, show_progress: bool) -> tuple[dict[str, Any], list[str]]:
    """(SFTConfig keyword arguments, notes) for ``config``; every argument a default could decide is here."""
    t = config["training"]
    optim, note = resolve_optim(t["optim"], env.device)
    # Unsloth sets up its own (offloaded) gradient checkpointing in get_peft_model: the Trainer must not add HF's.
    checkpointing = bool(t["gradient_checkpointing"]) and backend == "hf"
    kwargs = {
        **schedule_arguments(t, optim),
        **precision_arguments(precision, env, checkpointing),
        **data_arguments(config, env),
        **logging_arguments(t, staging=staging_dir(checkpoints_dir), evaluate=has_val and t["eval_steps"] is not None,
                            show_progress=show_progress),
        # distributed (torchrun / accelerate launch): gloo on CPU; LoRA leaves no parameter unused
        "ddp_backend": "gloo" if env.device == "cpu" and env.world_size > 1 else None,
        "ddp_find_unused_parameters": False,
    }
    return kwargs, [note] if note else []


def changed_arguments(args: Any, kwargs: dict[str, Any], backend: str) -> list[str]:
    """Notes for the WATCHED_ARGUMENTS that SFTConfig (patched by Unsloth) changed from what we asked."""
    notes = []
    for key in WATCHED_ARGUMENTS:
        got = getattr(args, key)
        got = getattr(got, "value", got)
        if got != kwargs[key]:
            notes.append(f"{backend} changed {key}: {kwargs[key]} -> {got}")
    return notes


def build_trainer(model: Any, tokenizer: Any, train_dataset: Any, eval_dataset: Any, config: dict[str, Any], *,
                  precision: dict[str, Any], env: Environment, backend: str, run_dir: Path, stop: StopOnSignal,
                  callbacks: list[Any], counter: Any, show_progress: bool) -> tuple[Any, list[str]]:
    """(trainer, notes): hooks.RunTrainer for this run; notes say what the backend changed."""
    from trl import SFTConfig

    from .hooks import PublishCheckpoints, RunTrainer, StopAtStepEnd

    checkpoints_dir = run_dir / "checkpoints"
    kwargs, notes = sft_arguments(config, precision=precision, env=env, backend=backend,
                                  checkpoints_dir=checkpoints_dir, has_val=eval_dataset is not None,
                                  show_progress=show_progress)
    args = SFTConfig(**kwargs)
    notes += changed_arguments(args, kwargs, backend)
    trainer = RunTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        callbacks=[StopAtStepEnd(stop, env.world_size),
                   PublishCheckpoints(checkpoints_dir, config["training"]["save_total_limit"]), *callbacks],
        counter=counter,
        # Unsloth's CPU mode routes trl's fused-loss kernel itself; stock trl needs CUDA/XPU for it.
        own_loss=backend == "hf" and env.device not in ("cuda", "xpu"),
    )
    if not show_progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # our metrics callback prints one plain line per log
    os.makedirs(checkpoints_dir, exist_ok=True)
    return trainer, notes
