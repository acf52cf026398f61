"""``train(config)``: plan, check the run dir, tokenize and check labels, load, train, write the run dir.

Order matters: everything that can fail on bad input (plan verdict, run dir, dataset, labels) is checked before
the model is loaded, and the backend is imported before transformers so Unsloth can patch it. Under torchrun or
accelerate every rank runs this same function; only rank 0 writes files.
"""

from __future__ import annotations

import math
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_write_json, atomic_write_text, read_jsonl, sha256_file
from . import checkpoints as ckpt
from .backends import Environment, choose_backend, environment, load_model, unsloth_response_mask
from .data import Example, TrainData, load_train_data, response_markers, to_dataset
from .metrics import is_terminal, keep_rows_up_to, peak_flops, plot_loss, summarize
from .runinfo import check_run_dir, git_commit, hardware, model_card, versions
from .trainer import build_trainer

# Files a run writes; --force removes them before starting over.
RUN_FILES = ("adapter", "checkpoints", "metrics.jsonl", "loss.png", "run.json", "README.md")


def say(env: Environment | None, message: str) -> None:
    """A progress line on stdout, from rank 0 only."""
    if env is None or env.is_main:
        print(message, flush=True)


def preflight(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(hardware, precision, plan) before anything is loaded; UserError when the plan says it will not fit."""
    from ..config import gpu_info
    from ..plan import make_plan

    plan = make_plan(config)
    if plan["verdict"] == "oom":
        memory = plan["hardware"]
        raise UserError(
            f"the plan estimates {plan['memory_gib']['total']:.1f} GiB against {memory['memory_gib']} GiB of "
            f"{memory['label']} {memory['kind']}: this will run out of memory. {'; '.join(plan['notes'])} "
            "(scripts/plan.py --config ... shows the breakdown)", field="training")
    return gpu_info(config["hardware"]), plan["precision"], plan


def prepare_run_dir(run_dir: Path, resume: str, force: bool, env: Environment, dry_run: bool = False
                    ) -> Path | None:
    """The checkpoint to resume from (or None), after checking what ``run_dir`` already holds.

    ``force`` removes an earlier run's files (not in a dry run) and starts from step 0.
    """
    checkpoints_dir = run_dir / "checkpoints"
    if force:
        if resume not in ("auto", "never"):
            raise UserError("--force starts the run over; it cannot be combined with --resume PATH", field="--force")
        if env.is_main and not dry_run:
            for name in RUN_FILES:
                target = run_dir / name
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        return None
    if (run_dir / "run.json").is_file():
        raise UserError("this run already finished (run.json exists); pass --force to train it again from step 0, "
                        "or set output_dir to a new folder", file=str(run_dir), field="output_dir")
    if resume == "never" and ckpt.complete_checkpoints(checkpoints_dir):
        raise UserError("output_dir holds checkpoints of an earlier run; use --resume auto to continue it or "
                        "--force to start over", file=str(run_dir), field="output_dir")
    return ckpt.resolve_resume(resume, checkpoints_dir)


def load_tokenizer(base: str, trust_remote_code: bool) -> Any:
    """The model's fast tokenizer with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=trust_remote_code)
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("training needs a fast (Rust) tokenizer for the assistant mask", file=base, field="model.name")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def unsloth_refine(tokenizer: Any) -> Any:
    """A data.load_train_data ``refine`` hook applying Unsloth's train_on_responses_only with the template's
    markers on top of prep's mask."""
    instruction, response = response_markers(tokenizer)
    mask = unsloth_response_mask(tokenizer, instruction, response)

    def refine(examples: list[Example]) -> None:
        if not examples:
            return
        before = sum(e.trainable for e in examples)
        out = mask({"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]})
        for example, labels in zip(examples, out["labels"], strict=True):
            example.labels = list(labels)
        refine.removed = before - sum(e.trainable for e in examples)  # type: ignore[attr-defined]

    refine.markers = (instruction, response)  # type: ignore[attr-defined]
    refine.removed = 0  # type: ignore[attr-defined]
    return refine


def planned_steps(config: dict[str, Any], rows: int, world_size: int) -> int:
    """Optimizer steps the run will take (max_steps, else epochs over the data)."""
    t = config["training"]
    if t["max_steps"] is not None:
        return t["max_steps"]
    batches = math.ceil(rows / (t["batch_size"] * world_size))
    return math.ceil(t["epochs"] * max(1, math.ceil(batches / t["grad_accum"])))  # as transformers' Trainer


def data_notes(data: TrainData, max_length: int) -> list[str]:
    """What the data check found that the user should know (truncated rows are counted and listed)."""
    notes = []
    if data.truncated:
        first = ", ".join(f"{Path(e.file).name}:{e.line}" for e in data.truncated[:5])
        notes.append(f"{len(data.truncated)} rows are longer than max_seq_length {max_length} and were truncated "
                     f"(they keep trainable tokens): {first}{' ...' if len(data.truncated) > 5 else ''}")
    return notes


def train(config: dict[str, Any], *, resume: str = "auto", dry_run: bool = False, force: bool = False
          ) -> dict[str, Any]:
    """Train a LoRA adapter as ``config`` says and write the run dir; return the summary.

    ``resume``: ``auto`` (newest complete checkpoint in output_dir, if any), ``never``, or a checkpoint folder.
    ``dry_run``: stop after the plan, the data and the label check. Exit codes for signals: the summary's
    ``exit_code`` is 128 + signal when SIGTERM/SIGINT stopped the run (a checkpoint was saved first).
    """
    run_dir = Path(config["output_dir"])
    check_run_dir(run_dir, config, RUN_FILES)
    gpu, precision, plan = preflight(config)
    backend, backend_note = choose_backend(config["backend"])
    if backend != plan["backend"]:  # the import here disagreed with the plan's probe: plan what will run
        gpu, precision, plan = preflight(config)
    env = environment()
    resume_from = prepare_run_dir(run_dir, resume, force, env, dry_run)
    notes = [backend_note] if backend_note else []

    from ..engines.models import resolve_model

    base = resolve_model(config["model"]["name"])
    tokenizer = load_tokenizer(base, config["model"]["trust_remote_code"])
    refine = unsloth_refine(tokenizer) if backend == "unsloth" else None
    data = load_train_data(tokenizer, config, refine)
    notes += data_notes(data, config["model"]["max_seq_length"])
    steps = planned_steps(config, len(data.train), env.world_size)
    summary: dict[str, Any] = {
        "ok": True,
        "output_dir": str(run_dir),
        "backend": backend,
        "base_model": config["model"]["name"],
        "precision": precision,
        "hardware": gpu["name"],
        "plan": {"verdict": plan["verdict"], "usage": plan["usage"], "total_gib": plan["memory_gib"]["total"]},
        "rows": len(data.train),
        "val_rows": len(data.val),
        "tokens": data.tokens,
        "trainable_tokens": data.trainable_tokens,
        "planned_steps": steps,
        "resume_from": str(resume_from) if resume_from else None,
        "notes": notes,
    }
    if refine is not None:
        # Unsloth's spans narrow prep's labels; on a template both read the same way this removes nothing.
        summary["response_markers"] = list(refine.markers)
        summary["labels_removed_by_unsloth_markers"] = refine.removed
    if dry_run:
        summary["dry_run"] = True
        return summary

    for note in notes:
        say(env, f"note: {note}")
    return run_training(config, summary, data, base=base, tokenizer=tokenizer, backend=backend, env=env, gpu=gpu,
                        precision=precision, resume_from=resume_from)


def reset_run_files(run_dir: Path, resume_from: Path | None, env: Environment) -> Path:
    """Rank 0 readies ``run_dir``: no half-written checkpoint, and metrics.jsonl only up to the resumed step."""
    metrics_path = run_dir / "metrics.jsonl"
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.clear_staging(run_dir / "checkpoints")
        if resume_from is None:
            metrics_path.unlink(missing_ok=True)
        else:
            keep_rows_up_to(metrics_path, ckpt.checkpoint_step(resume_from) or 0)
    return metrics_path


def measured_peak(env: Environment, precision: dict[str, Any]) -> dict[str, Any]:
    """The peak FLOP/s MFU is reported against (measured now, at the dtype the matmuls run in), for run.json."""
    value, source = peak_flops(env.device, precision["dtype"])
    say(env, f"peak for MFU: {value / 1e9:.1f} GFLOP/s ({source})")
    return {"flops": round(value), "source": source}


def run_training(config: dict[str, Any], summary: dict[str, Any], data: TrainData, *, base: str, tokenizer: Any,
                 backend: str, env: Environment, gpu: dict[str, Any], precision: dict[str, Any],
                 resume_from: Path | None) -> dict[str, Any]:
    """Load the model, train (resuming if asked), then write adapter/, metrics, loss.png, run.json, README.md."""
    from .hooks import MetricsCallback, TokenCounter

    run_dir = Path(config["output_dir"])
    metrics_path = reset_run_files(run_dir, resume_from, env)
    say(env, f"loading {config['model']['name']} with the {backend} backend ({precision['dtype']}, "
             f"{'4-bit' if config['model']['load_in_4bit'] else '16/32-bit'} weights)")
    model = load_model(backend, config, base, precision, env)
    trainable, total = model.get_nb_trainable_parameters()
    summary.update(attention=getattr(model.config, "_attn_implementation", None), peak=measured_peak(env, precision))
    show_progress = is_terminal() and env.is_main
    counter = TokenCounter()
    metrics = MetricsCallback(metrics_path, env=env, n_params=total, peak=summary["peak"]["flops"], counter=counter,
                              print_lines=not show_progress)
    with ckpt.StopOnSignal() as stop:
        trainer, notes = build_trainer(
            model, tokenizer, to_dataset(data.train), to_dataset(data.val) if data.val else None, config,
            precision=precision, env=env, backend=backend, run_dir=run_dir, stop=stop, callbacks=[metrics],
            counter=counter, show_progress=show_progress)
        for note in notes:
            say(env, f"note: {note}")
        summary["notes"] += notes
        say(env, f"training {summary['planned_steps']} steps on {len(data.train)} rows "
                 f"({trainable:,} trainable of {total:,} parameters)"
                 + (f", resuming from {resume_from.name}" if resume_from else ""))
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        runtime = time.perf_counter() - started
    if stop.signum:
        return stopped(summary, run_dir, trainer.state.global_step, stop.signum, env)
    tokens = metrics.tokens_all_ranks(trainer.args.device)
    save_adapter(trainer, run_dir, env)
    summary.update(steps=trainer.state.global_step, rank=env.rank)
    if not env.is_main:
        return summary
    run = run_record(config, summary, data, base=base, env=env, gpu=gpu, resume_from=resume_from,
                     curve=summarize(list(read_jsonl(metrics_path)) if metrics_path.is_file() else []),
                     train_loss_mean=output.training_loss, runtime=runtime, tokens=tokens,
                     parameters=(trainable, total))
    return finish_run(run, summary, run_dir, env)


def stopped(summary: dict[str, Any], run_dir: Path, steps: int, signum: int, env: Environment) -> dict[str, Any]:
    """The summary of a run a signal stopped (its checkpoint was saved at the end of the step)."""
    saved = ckpt.newest_complete(run_dir / "checkpoints")
    name = signal.Signals(signum).name
    summary.update(ok=False, stopped_by=name, steps=steps, checkpoint=str(saved) if saved else None,
                   exit_code=128 + signum)
    say(env, f"stopped by {name} at step {steps}; checkpoint {saved}; continue with --resume auto")
    return summary


def run_record(config: dict[str, Any], summary: dict[str, Any], data: TrainData, *, base: str, env: Environment,
               gpu: dict[str, Any], resume_from: Path | None, curve: dict[str, Any], train_loss_mean: float,
               runtime: float, tokens: int, parameters: tuple[int, int]) -> dict[str, Any]:
    """run.json: what was trained, on what, how, and how it went (export, evaluate and the demo read it)."""
    backend = summary["backend"]
    return {
        "config": config,
        "base_model": base,
        "backend": backend,
        "dataset": {"train": str(data.train_path), "train_sha256": sha256_file(data.train_path),
                    "val": str(data.val_path) if data.val_path else None,
                    "val_sha256": sha256_file(data.val_path) if data.val_path else None,
                    "rows": len(data.train), "val_rows": len(data.val), "tokens": data.tokens,
                    "trainable_tokens": data.trainable_tokens, "truncated_rows": len(data.truncated)},
        "system_prompt": data.system_prompt,
        "versions": versions(backend),
        "git_commit": git_commit(),
        "hardware": hardware(env, gpu),
        "precision": summary["precision"],
        "attention": summary["attention"],
        "steps": summary["steps"],
        "first_loss": curve["first_loss"],
        "final_loss": curve["final_loss"],
        "train_loss_mean": train_loss_mean,
        "train_runtime_s": round(runtime, 2),
        "tokens_per_s": round(tokens / runtime, 1) if runtime > 0 else None,
        "mfu": curve["mfu"],
        "peak": summary["peak"],
        "resumed_from": str(resume_from) if resume_from else None,
        "trainable_parameters": parameters[0],
        "total_parameters": parameters[1],
        "notes": summary["notes"],
    }


def finish_run(run: dict[str, Any], summary: dict[str, Any], run_dir: Path, env: Environment) -> dict[str, Any]:
    """Write loss.png, README.md and run.json (last: its presence means the run finished); the summary."""
    plot_loss(run_dir / "metrics.jsonl", run_dir / "loss.png")
    atomic_write_text(run_dir / "README.md", model_card(run))
    atomic_write_json(run_dir / "run.json", run)
    summary.update(first_loss=run["first_loss"], final_loss=run["final_loss"], train_runtime_s=run["train_runtime_s"],
                   tokens_per_s=run["tokens_per_s"], mfu=run["mfu"], adapter=str(run_dir / "adapter"))
    mfu_text = f", MFU {100 * run['mfu']:.1f}%" if run["mfu"] is not None else ""
    say(env, f"done: {run['steps']} steps in {run['train_runtime_s']:.0f} s, loss {_fmt(run['first_loss'])} -> "
             f"{_fmt(run['final_loss'])}, {run['tokens_per_s']} tokens/s{mfu_text}; adapter in {run_dir / 'adapter'}")
    return summary


def save_adapter(trainer: Any, run_dir: Path, env: Environment) -> None:
    """Write ``adapter/`` (PEFT adapter + tokenizer) atomically: every rank takes part (ZeRO-3/FSDP gather the
    weights), rank 0 renames the finished folder into place."""
    staged = run_dir / ".adapter.tmp"
    if env.is_main:
        shutil.rmtree(staged, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))
    trainer.accelerator.wait_for_everyone()
    if env.is_main:
        (staged / "training_args.bin").unlink(missing_ok=True)  # a pickle; run.json holds the config
        final = run_dir / "adapter"
        shutil.rmtree(final, ignore_errors=True)
        staged.rename(final)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
