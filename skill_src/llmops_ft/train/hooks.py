"""What a run plugs into transformers' Trainer, through its public hooks only.

- ``RunTrainer`` (an SFTTrainer) overrides three public methods: ``compute_loss`` (on CPU with the hf backend,
  the loss from the logits of trainable positions only), ``training_step`` (counts non-pad tokens) and
  ``create_model_card`` (none inside checkpoints/).
- ``PublishCheckpoints.on_save``: the Trainer writes ``checkpoint-N`` under its ``output_dir``, which is
  ``checkpoints/.staging``; once every rank has written its part, rank 0 renames it into ``checkpoints/``.
- ``StopAtStepEnd.on_step_end``: SIGTERM/SIGINT on any rank saves a checkpoint at the end of the step and stops.
- ``MetricsCallback.on_log``: one metrics.jsonl row (and progress line) per log step.

``tests/test_train_hooks.py`` pins what these rely on (the overridden signatures, the checkpoint folder name,
on_save right after the save), so a transformers or trl upgrade that changes them fails there, by name.
This module imports torch, transformers and trl: import it only where a run starts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from accelerate import PartialState
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import SFTTrainer

from ..io import dumps_jsonl_line
from .checkpoints import StopOnSignal, publish
from .data import IGNORE
from .metrics import log_row, progress_line


class TokenCounter:
    """Non-pad tokens this process trained on in this session (the Trainer adds, the metrics read)."""

    def __init__(self) -> None:
        self.local = 0

    def add(self, inputs: dict[str, Any]) -> None:
        """Count a batch: its attention mask where there is one (padded), else every token (padding-free)."""
        mask = inputs.get("attention_mask")
        self.local += int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel())

    def all_ranks(self, world_size: int, device: Any) -> int:
        """The sum over every rank (a collective: every rank must call it at the same point)."""
        if world_size == 1:
            return self.local
        import torch.distributed as dist

        total = torch.tensor([self.local], dtype=torch.int64, device=device)
        dist.all_reduce(total)
        return int(total.item())


def trainable_positions_loss(model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> tuple[Any, Any]:
    """(loss, outputs): the model's causal-LM loss, computed from the logits of trainable positions only.

    Position p predicts token p + 1; only positions whose target carries a label (a quarter of the tokens in
    the Task API chats) go through the LM head and the softmax over the vocabulary, instead of every position.
    Same sum over targets divided by ``num_items_in_batch`` (or the mean) as transformers' ForCausalLMLoss.
    """
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets = inputs.pop("shift_labels", None)
    if targets is None:
        targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    outputs = model(**inputs, use_cache=False, logits_to_keep=keep)
    logits = outputs.logits.float()
    picked = targets[:, keep].reshape(-1).to(logits.device)
    if keep.numel() == 0:
        return logits.sum() * 0.0, outputs  # nothing to learn from: a zero that still reaches the graph
    reduction = "mean" if num_items_in_batch is None else "sum"
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), picked, ignore_index=IGNORE,
                                             reduction=reduction)
    if num_items_in_batch is not None:
        loss = loss / torch.as_tensor(num_items_in_batch, device=loss.device)
    return loss, outputs


class RunTrainer(SFTTrainer):
    """SFTTrainer with three public methods overridden (see the module docstring); nothing private."""

    def __init__(self, *args: Any, counter: TokenCounter, own_loss: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counter = counter
        # trl 1.x computes the loss through a fused LM head whose kernel is Triton (CUDA/XPU only), so stock
        # SFTTrainer cannot train on CPU; there the loss is ours (same labels, same token averaging).
        self.own_loss = own_loss

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """trl's loss, or on CPU the trainable-positions loss scaled as transformers' Trainer scales its own."""
        if not self.own_loss:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = trainable_positions_loss(model, inputs, num_items_in_batch)
        summed_count = self.model_accepts_loss_kwargs and num_items_in_batch is not None
        if self.args.average_tokens_across_devices and summed_count:
            loss = loss * self.accelerator.num_processes  # the gradient all-reduce averages; the count was summed
        return (loss, outputs) if return_outputs else loss

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> Any:
        """Count the batch's real tokens, then train on it."""
        self.counter.add(inputs)
        return super().training_step(model, inputs, num_items_in_batch)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """The run dir gets its own model card (runinfo.model_card); none inside checkpoints/."""


class PublishCheckpoints(TrainerCallback):
    """After each save: once every rank has written ``output_dir/checkpoint-N``, rank 0 moves it into
    ``checkpoints_dir`` (a checkpoint under its final name is complete) and keeps the newest ``keep``."""

    def __init__(self, checkpoints_dir: Path, keep: int | None) -> None:
        self.checkpoints_dir = checkpoints_dir
        self.keep = keep

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Publish the checkpoint the Trainer has just written."""
        staged = Path(args.output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
        PartialState().wait_for_everyone()
        if state.is_world_process_zero:
            if not staged.is_dir():
                raise RuntimeError(f"the Trainer saved step {state.global_step} but {staged} does not exist: "
                                   "transformers changed its checkpoint layout (tests/test_train_hooks.py)")
            publish(staged, self.checkpoints_dir, self.keep)
        PartialState().wait_for_everyone()


class StopAtStepEnd(TrainerCallback):
    """On SIGTERM/SIGINT (on any rank): save a checkpoint at the end of this step and stop."""

    def __init__(self, stop: StopOnSignal, world_size: int) -> None:
        self.stop = stop
        self.world_size = world_size

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Every rank learns whether any rank was signalled, so all of them save and stop together."""
        signum = self.stop.signum or 0
        if self.world_size > 1:
            import torch.distributed as dist

            flag = torch.tensor([signum], device=args.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if signum:
            self.stop.signum = signum
            control.should_save = True
            control.should_training_stop = True
        return control


class MetricsCallback(TrainerCallback):
    """Appends one row per log step to ``path`` (rank 0); ``print_lines``: also a plain progress line (no tqdm
    bar: CI logs, agents)."""

    def __init__(self, path: Path, *, env: Any, n_params: int, peak: float | None, counter: TokenCounter,
                 print_lines: bool) -> None:
        self.path, self.env, self.n_params, self.peak = path, env, n_params, peak
        self.counter, self.print_lines = counter, print_lines
        self.started = self.last_time = time.perf_counter()
        self.cpu_started = time.process_time()
        self.last_tokens = 0
        self.rows: list[dict[str, Any]] = []

    def tokens_all_ranks(self, device: Any = "cpu") -> int:
        """Non-pad tokens trained in this session, summed over ranks."""
        return self.counter.all_ranks(self.env.world_size, device)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Clocks and the token count start here (after loading and a resume's fast-forward set-up)."""
        self.started = self.last_time = time.perf_counter()
        self.cpu_started = time.process_time()
        self.last_tokens = self.tokens_all_ranks(args.device)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        """A training or eval log: one row; the end-of-training summary goes to run.json instead."""
        logs = logs or {}
        if "loss" not in logs and "eval_loss" not in logs:
            return
        now, tokens = time.perf_counter(), self.tokens_all_ranks(args.device)
        tokens_per_s = (tokens - self.last_tokens) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_tokens = now, tokens
        row = log_row(state, logs, tokens=tokens, tokens_per_s=tokens_per_s, time_s=now - self.started,
                      cpu_s=time.process_time() - self.cpu_started, device=self.env.device,
                      n_params=self.n_params, peak=self.peak)
        if not self.env.is_main:
            return
        self.rows.append(row)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(dumps_jsonl_line(row) + "\n")
        if self.print_lines:
            print(progress_line(row, state.max_steps), flush=True)
