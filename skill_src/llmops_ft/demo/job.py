"""The demo's stages: each takes the shared state, does one step of the job, and returns its one-line verdict."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path
from typing import Any

from ..core.stages import Stage, run_stages
from ..errors import UserError
from ..io import atomic_write_json
from ..knowledge.resources import resources_dir

TRAIN = resources_dir() / "task_api" / "train.jsonl"
EVAL_SETS = {  # name -> file; the held-out set is hand-written and never used for training or tuning the recipe
    "eval": resources_dir() / "task_api" / "eval.jsonl",
    "held-out": resources_dir() / "task_api" / "heldout.jsonl",
}
CONFIG = resources_dir() / "configs" / "cpu_smoke.yaml"
QUANTS = ["f16", "q8_0", "q4_k_m"]  # side by side; the parity rule picks the one Ollama gets
MODEL_NAME = "task-api-assistant"
EVAL_STEPS = 100  # eval loss on the val split every 100 steps: the 6 points on loss.png of the 600-step demo
# On a CPU the hf backend trains 1.46x (fp32 CPU) and 1.33x (bf16 CPU) the tokens per CPU-second of Unsloth's CPU
# mode, which also turns padding-free off (benchmarks/BENCHMARKS.md); the config's own `auto` stays for users.
BACKEND = "hf"
_DATE = re.compile(r"(?<![0-9])[0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])")


def run_demo(out: Path, *, steps: int | None = None, eval_limit: int | None = None) -> dict[str, Any]:
    """Every stage in order (stopping at the first failure); writes the report and returns its dict."""
    from .report import write_report

    state: dict[str, Any] = {"work": out / "work", "steps": steps, "eval_limit": eval_limit, "out": out,
                             "eval_files": {n: p.name for n, p in EVAL_SETS.items()}, "model_name": MODEL_NAME}
    stages: list[Stage] = [
        ("prep", _prep), ("plan", _plan), ("train", _train),
        *[(f"evaluate {name} set", lambda s, n=name: _evaluate(s, n)) for name in EVAL_SETS],
        ("export adapter", lambda s: _export(s, "adapter")), ("export merged", lambda s: _export(s, "merged")),
        ("export gguf " + " / ".join(QUANTS), _export_gguf), ("ollama run's prompt", _ollama_path),
    ]
    started = time.perf_counter()
    _import_backend_first()
    timings = run_stages(stages, state, announce="demo")
    return write_report(state, timings, time.perf_counter() - started, n_stages=len(stages))


def _import_backend_first() -> None:
    """Let the demo's backend (were it unsloth) patch transformers before prep loads a tokenizer."""
    from ..train.backends import choose_backend

    choose_backend(BACKEND)


def _prep(state: dict[str, Any]) -> str:
    from ..data import prepare

    report = prepare([TRAIN], state["work"] / "prep", model="smollm2-135m", max_seq_length=256, force=True)
    state["prep"] = report
    return (f"kept {report['kept']}/{report['total']} ({report['train']} train, {report['val']} val), "
            f"tokens p50 {report['tokens']['p50']} p95 {report['tokens']['p95']}")


def _plan(state: dict[str, Any]) -> str:
    from ..config import load_config
    from ..plan import make_plan

    overrides = [f"dataset.path={state['work'] / 'prep'}", f"output_dir={state['work'] / 'run'}",
                 f"training.eval_steps={EVAL_STEPS}", f"backend={BACKEND}"]
    if state["steps"]:
        overrides.append(f"training.max_steps={state['steps']}")
    state["config"] = load_config(str(CONFIG), overrides)
    plan = make_plan(state["config"], gpu="cpu")
    state["plan"] = plan
    return f"{plan['verdict']}: {plan['memory_gib']['total']:.2f} GiB peak estimate, {plan['precision']['dtype']}"


def _train(state: dict[str, Any]) -> str:
    from ..train import train

    summary = train(state["config"], resume="never", force=True)
    state["train"] = summary
    return (f"{summary.get('steps')} steps, loss {summary['first_loss']:.3f} -> {summary['final_loss']:.3f}, "
            f"{summary.get('backend')} backend")


def _evaluate(state: dict[str, Any], name: str) -> str:
    from ..evaluate.command import evaluate

    report = evaluate("smollm2-135m", state["train"]["output_dir"], str(EVAL_SETS[name]), limit=state["eval_limit"],
                      max_new_tokens=64, batch_size=32)  # 1.7x the rows/s of 8 on 2 cores; base answers identical
    atomic_write_json(state["work"] / f"evaluate-{name}.json", report)
    state.setdefault("evaluate", {})[name] = report
    base, tuned = (report["models"][role]["scores"] for role in ("base", "tuned"))
    return (f"{report['n']} rows: exact call base {base['exact_match_rate']:.0%} -> tuned "
            f"{tuned['exact_match_rate']:.0%}, exact action {base['action_accuracy']:.0%} -> "
            f"{tuned['action_accuracy']:.0%}")


def _export(state: dict[str, Any], kind: str) -> str:
    from ..export.pipeline import export

    out = state["work"] / f"export-{kind}"
    summary = export(state["train"]["output_dir"], kind, str(out), verify=True, force=True, name=MODEL_NAME)
    _record_export(state, kind, out, summary)
    if not summary["ok"]:
        raise UserError(f"{kind} export failed verification:\n{summary.get('verification_table', '')}")
    return f"{len(summary['files'])} files, {summary['bytes'] / 2**20:.1f} MiB, verified"


def _record_export(state: dict[str, Any], kind: str, out: Path, summary: dict[str, Any]) -> None:
    summary["bytes"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    state.setdefault("exports", {})[kind] = summary


def _export_gguf(state: dict[str, Any]) -> str:
    """f16, q8_0 and q4_k_m, each measured against the trained model on the held-out set; the rule picks one."""
    from ..export.parity import side_by_side
    from ..export.pipeline import export

    out = state["work"] / "export-gguf"
    heldout = EVAL_SETS["held-out"]
    rows = state["evaluate"]["held-out"]["n"]
    summary = export(state["train"]["output_dir"], "gguf", str(out), quants=QUANTS, ollama=True, verify=True,
                     force=True, name=MODEL_NAME, eval_data=str(heldout), verify_rows=rows)
    _record_export(state, "gguf", out, summary)
    quants = side_by_side(summary)
    state["quants"] = quants
    if not summary["ok"] and not quants["only_parity_failed"]:
        raise UserError(f"gguf export failed verification:\n{summary.get('verification_table', '')}")
    if not quants["choice"]:
        raise UserError("no GGUF quant is within its parity bounds: " + "; ".join(quants["lines"]))
    outside = [r["quant"] for r in quants["rows"] if not r["passes"]]
    return (f"{len(quants['rows'])} quants measured on {rows} held-out rows; outside their bounds: "
            f"{', '.join(outside) or 'none'}; the rule picks {quants['choice']} for Ollama")


def _ollama_path(state: dict[str, Any]) -> str:
    """The held-out requests as `ollama run` sends them (no system message; the Modelfile's SYSTEM and TEMPLATE
    with today's date), answered by the chosen GGUF in llama.cpp, against the prompt the model was trained with."""
    from ..data.examples import read_examples
    from ..engines.generate import open_model
    from ..export.modelfile import modelfile_prompt

    out = state["work"] / "export-gguf"
    modelfile = (out / "Modelfile").read_text(encoding="utf-8")
    examples, _ = read_examples(str(EVAL_SETS["held-out"]), state["eval_limit"])
    model = open_model(str(out / state["quants"]["modelfile_file"]))
    try:
        trained = [model.prompt_ids(e.prompt) for e in examples]
        # Ollama tokenizes its rendered prompt with special tokens parsed and BOS per the GGUF, as tokenize() does
        ollama = [model.tokenize(modelfile_prompt(modelfile, _without_system(e.prompt), today=_today(e.prompt)))
                  for e in examples]
        answers = {"trained": model.generate_ids(trained, 64), "ollama": None}
        same = [a == b for a, b in zip(trained, ollama, strict=True)]
        # identical prompts give identical greedy answers: only the differing ones are answered again
        differing = [p for p, s in zip(ollama, same, strict=True) if not s]
        redo = iter(model.generate_ids(differing, 64))
        answers["ollama"] = [t if s else next(redo) for t, s in zip(answers["trained"], same, strict=True)]
        texts = {k: [model.decode(ids) for ids, _ in v] for k, v in answers.items()}
    finally:
        model.close()
    state["ollama"] = _score_paths(examples, texts, sum(same))
    o = state["ollama"]
    return (f"prompt identical to the training prompt on {o['same_prompt']}/{o['n']} rows; exact call "
            f"{o['ollama']['exact_match_rate']:.0%} (ollama run) vs {o['trained']['exact_match_rate']:.0%} "
            "(training prompt)")


def _score_paths(examples: list, texts: dict[str, list[str]], same_prompt: int) -> dict[str, Any]:
    from ..scoring import scorer_for

    targets = [e.target for e in examples]
    scorer = scorer_for(targets)
    if scorer is None:
        raise UserError("the held-out set's answers fit no registered scorer", file=str(EVAL_SETS["held-out"]))
    return {"n": len(examples), "same_prompt": same_prompt,
            "same_answer": sum(a == b for a, b in zip(texts["ollama"], texts["trained"], strict=True)),
            **{k: scorer.score_all(v, targets) for k, v in texts.items()}}


def _without_system(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return [m for m in messages if m["role"] != "system"]


def _today(messages: list[dict[str, str]]) -> dt.date | None:
    """The date the row's system prompt states (the day the request was made), for Ollama's currentDate."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    found = _DATE.search(system)
    return dt.date.fromisoformat(found.group()) if found else None
