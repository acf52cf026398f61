"""`smoke_test.py`: the whole chain on a tiny random model in about a minute — run it before a long job.

prep -> plan -> train (loss must fall) -> export adapter, merged, GGUF f16 (each verified) -> reload each and
generate. One verdict per stage; the exit code is non-zero when any stage fails. With a CUDA GPU present the
Unsloth 4-bit (QLoRA) path is trained too.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from .core.result import Result
from .core.stages import Stage, run_stages
from .errors import UserError
from .io import read_jsonl
from .knowledge.resources import resources_dir

HELP = """Run prep -> plan -> train -> export (adapter, merged, GGUF f16) -> reload + generate on a tiny random
Llama (SmolLM2 tokenizer and chat template) with the Task API example data. Prints one verdict per stage;
exit 0 only when every stage passed. Use it on a new machine before a long training job."""

TASK_API_TRAIN = resources_dir() / "task_api" / "train.jsonl"
SMOKE_PROMPT = [{"role": "user", "content": "Create a task to email Ana tomorrow"}]


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of smoke_test.py."""
    parser.add_argument("--workdir", help="keep the artifacts here (default: a temp dir, removed afterwards)")
    parser.add_argument("--steps", type=int, default=16, help="training steps (default 16)")
    parser.add_argument("--data", default=str(TASK_API_TRAIN), help="training data (default: Task API example)")


def run(args: argparse.Namespace) -> Result:
    """Run every stage, stop at the first failure, report one verdict each."""
    if args.workdir:
        verdicts = run_chain(Path(args.workdir), steps=args.steps, data=args.data)
    else:
        with tempfile.TemporaryDirectory(prefix="llmops-smoke-") as tmp:
            verdicts = run_chain(Path(tmp), steps=args.steps, data=args.data)
    ok = all(v["ok"] for v in verdicts)
    lines = [f"{'PASS' if v['ok'] else 'FAIL'}  {v['stage']:<16} {v['seconds']:>6.1f}s  {v['detail']}"
             for v in verdicts]
    lines.append(f"smoke test {'passed' if ok else 'FAILED'} in {sum(v['seconds'] for v in verdicts):.1f}s")
    return Result(data={"ok": ok, "stages": verdicts}, text="\n".join(lines), exit_code=0 if ok else 1)


def run_chain(work: Path, *, steps: int = 16, data: str = str(TASK_API_TRAIN)) -> list[dict[str, Any]]:
    """The stages in order; each returns a one-line detail or raises. Stops after the first failure."""
    state: dict[str, Any] = {"work": work, "steps": steps, "data": data}
    stages: list[Stage] = [
        ("model", _stage_model),
        ("prep", _stage_prep),
        ("plan", _stage_plan),
        ("train", _stage_train),
        ("export-adapter", lambda s: _stage_export(s, "adapter")),
        ("export-merged", lambda s: _stage_export(s, "merged")),
        ("export-gguf-f16", lambda s: _stage_export(s, "gguf")),
        ("generate", _stage_generate),
    ]
    if _cuda_available():
        stages.append(("unsloth-4bit", _stage_unsloth_4bit))
    return run_stages(stages, state)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _stage_model(state: dict[str, Any]) -> str:
    from .engines.models import build_tiny_llama

    state["model"] = str(build_tiny_llama(state["work"] / "tiny-llama"))
    return "tiny random Llama (hidden 64, 2 layers) with the SmolLM2 tokenizer"


def _stage_prep(state: dict[str, Any]) -> str:
    from .data import prepare

    report = prepare([state["data"]], state["work"] / "prep", model=state["model"], max_seq_length=256, force=True)
    if report["kept"] < 10 or report.get("no_trainable_tokens"):
        raise UserError(f"prep kept {report['kept']} rows, {len(report.get('no_trainable_tokens', []))} untrainable")
    return f"{report['format']}: kept {report['kept']}/{report['total']}, p95 {report['tokens']['p95']} tokens"


def _smoke_config(state: dict[str, Any], **extra: Any) -> dict[str, Any]:
    from .config import load_config

    base = {
        "model": {"name": state["model"], "max_seq_length": 256, "load_in_4bit": False},
        "dataset": {"path": str(state["work"] / "prep")},
        "training": {
            "max_steps": state["steps"], "batch_size": 4, "grad_accum": 1, "learning_rate": 2e-2,
            "warmup_steps": 2, "optim": "adamw_torch", "gradient_checkpointing": False,
            "logging_steps": 1, "save_steps": max(state["steps"] // 2, 1),
        },
        "backend": "hf",
        "hardware": "cpu",
        "output_dir": str(state["work"] / "run"),
    }
    for section, values in extra.items():
        base[section] = {**base.get(section, {}), **values} if isinstance(values, dict) else values
    return load_config(None, base=base)


def _stage_plan(state: dict[str, Any]) -> str:
    from .plan import make_plan

    state["config"] = _smoke_config(state)
    plan = make_plan(state["config"], gpu="cpu")
    if plan["verdict"] == "oom":
        raise UserError(f"plan says the smoke run will not fit: {plan.get('advice')}")
    memory = plan["memory_gib"]
    return f"verdict {plan['verdict']}, peak {memory['total']:.2f} GiB, dtype {plan['precision']['dtype']}"


def _stage_train(state: dict[str, Any]) -> str:
    from .train import train

    summary = train(state["config"], resume="never", force=True)
    losses = [row["loss"] for row in read_jsonl(Path(state["config"]["output_dir"]) / "metrics.jsonl") if "loss" in row]
    k = max(len(losses) // 4, 1)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    if summary.get("steps") != state["steps"] or not last <= 0.95 * first:
        raise UserError(f"training did not converge: {summary.get('steps')} steps, loss {first:.3f} -> {last:.3f}")
    state["run"] = summary["output_dir"]
    return f"{summary['steps']} steps, loss {first:.3f} -> {last:.3f} (first/last quarter means)"


def _stage_export(state: dict[str, Any], kind: str) -> str:
    from .export.pipeline import export

    out = state["work"] / f"export-{kind}"
    summary = export(state["run"], kind, str(out), quants=["f16"] if kind == "gguf" else None, verify=True,
                     force=True)
    if not summary["ok"]:
        raise UserError(f"{kind} export failed verification: {summary.get('verification_table', '')}")
    state.setdefault("exports", {})[kind] = out / summary["files"][0] if kind == "gguf" else out
    return f"{', '.join(summary['files'][:3])} verified"


def _stage_generate(state: dict[str, Any]) -> str:
    from .engines.generate import generate, open_model

    answers = {}
    for kind, path in [("run", state["run"]), *state["exports"].items()]:
        model = open_model(str(path))
        try:
            answers[kind] = generate(model, [SMOKE_PROMPT], max_new_tokens=16)[0].text
        finally:
            model.close()
    hf_answers = {kind: text for kind, text in answers.items() if kind != "gguf"}
    if len(set(hf_answers.values())) != 1:
        raise UserError(f"reloaded models disagree: {hf_answers}")
    return f"{len(answers)} reloads answered; HF kinds agree token for token ({len(answers['run'])} chars)"


def _stage_unsloth_4bit(state: dict[str, Any]) -> str:
    import subprocess
    import sys

    config = _smoke_config(state, model={"load_in_4bit": True}, backend="unsloth", hardware="auto",
                           output_dir=str(state["work"] / "run-4bit"))
    config_path = state["work"] / "unsloth-4bit.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(config))
    # A subprocess: importing unsloth patches transformers for the whole process.
    proc = subprocess.run([sys.executable, "-m", "llmops_ft", "train", "--config", str(config_path),
                           "--resume", "never", "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"unsloth 4-bit training failed: {proc.stderr.strip().splitlines()[-1:]}")
    return "unsloth QLoRA (4-bit) trained on CUDA"
