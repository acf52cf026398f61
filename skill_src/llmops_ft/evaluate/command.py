"""`evaluate.py`: base vs tuned on held-out data. Task API data: greedy answers scored (valid JSON, action, exact
call, field F1, disagreements); other chat or text data: loss and perplexity of the reference answers.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from ..core.commands import add_force_flag, add_trust_flag
from ..errors import UserError
from ..scoring import Scorer

HELP = """Compare two models on an eval set (markdown table + JSON).

Each of --base and --tuned may be any export kind: a run dir (base + adapter), an adapter dir, a merged folder,
a .gguf file (run by llama.cpp), or an embedded model name (smollm2-135m).

Data: JSONL of {"messages": [...]} rows (the prompt is every turn but the last assistant one, the target is that
turn) or {"text": ...} rows. When every target is a Task API call, both models answer greedily (batched for HF
models, llama.cpp for GGUF; stop at end of turn; --max-new-tokens cap) and are scored: valid-JSON rate,
schema-valid rate, action accuracy, exact call match, field-level F1, with examples of disagreements.
Otherwise the reference answers are scored by loss and perplexity (use prep's val split).

Example:
  evaluate.py --base smollm2-135m --tuned runs/cpu_smoke --data examples/task_api/eval.jsonl --out runs/eval
"""

SHOW_DISAGREEMENTS = 5
OUTPUT_FILES = ("report.json", "report.md", "predictions.jsonl")


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of evaluate.py."""
    parser.add_argument("--base", required=True, help="the model before fine-tuning (any export kind)")
    parser.add_argument("--tuned", required=True, help="the fine-tuned model (any export kind)")
    parser.add_argument("--data", required=True, help="eval JSONL (messages rows; prep's val.jsonl works)")
    parser.add_argument("--limit", type=int, help="evaluate the first N rows only")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="answer length cap (default 64)")
    parser.add_argument("--batch-size", type=int, default=8, help="HF generation batch (default 8)")
    parser.add_argument("--out", help="write report.json, report.md and predictions.jsonl into this dir")
    add_force_flag(parser, "replace evaluate's own files in an existing --out dir")
    add_trust_flag(parser, "a model")


def run(args: argparse.Namespace) -> Any:
    """Evaluate both models and format the comparison."""
    from ..core.result import Result
    from ..io import check_output_dir

    if args.limit is not None and args.limit < 1:
        raise UserError("must be >= 1", field="--limit")
    if args.max_new_tokens < 1:
        raise UserError("must be >= 1", field="--max-new-tokens")
    if args.out:
        check_output_dir(args.out, force=args.force, **_output(args))
    report = evaluate(args.base, args.tuned, args.data, limit=args.limit, max_new_tokens=args.max_new_tokens,
                      batch_size=args.batch_size, trust_remote_code=args.trust_remote_code)
    text = markdown(report)
    if args.out:
        _write(Path(args.out), report, text, args.force, _output(args))
    return Result(data=report, text=text)


def _output(args: argparse.Namespace) -> dict[str, Any]:
    """How evaluate writes --out (see io.atomic_dir): its own files only, never over an input."""
    return {"owner": "evaluate", "may_write": OUTPUT_FILES, "inputs": [args.base, args.tuned, args.data]}


def evaluate(base: str, tuned: str, data: str, *, limit: int | None = None, max_new_tokens: int = 64,
             batch_size: int = 8, trust_remote_code: bool = False) -> dict[str, Any]:
    """The comparison report (see HELP); models are loaded one at a time."""
    from ..data.examples import read_examples
    from ..scoring import scorer_for

    examples, skipped = read_examples(data, limit)
    if not examples:
        raise UserError("no usable rows", file=data)
    targets = [e.target for e in examples]
    scorer = scorer_for(targets)
    report: dict[str, Any] = {"data": data, "n": len(examples), "skipped": skipped,
                              "mode": scorer.name if scorer else "loss", "models": {}}
    if scorer:
        report["metrics"] = [list(m) for m in scorer.metrics]
    for role, ref in (("base", base), ("tuned", tuned)):
        started = time.time()
        opened = {"trust_remote_code": trust_remote_code, "field": f"--{role}"}
        if scorer:
            result = answer_and_score(ref, examples, max_new_tokens, batch_size, scorer, opened)
        else:
            result = _loss(ref, examples, opened)
        result.update(model=ref, seconds=round(time.time() - started, 1))
        report["models"][role] = result
    if scorer:
        answers = {role: report["models"][role].pop("answers") for role in ("base", "tuned")}
        report["predictions"] = [
            {"line": e.line, "prompt": e.prompt[-1]["content"] if e.prompt else "", "target": e.target,
             "base": answers["base"][i], "tuned": answers["tuned"][i]}
            for i, e in enumerate(examples)
        ]
    return report


def answer_and_score(ref: str, examples: list, max_new_tokens: int, batch_size: int,
                     scorer: Scorer, opened: dict[str, Any] | None = None) -> dict[str, Any]:
    """One model (any export kind) answers every example greedily; the task's scores, answers and token counts.

    ``opened``: open_model's trust_remote_code and field.
    """
    from ..engines.generate import generate, open_model

    model = open_model(ref, batch_size=batch_size, **(opened or {}))
    try:
        answers = generate(model, [e.prompt for e in examples], max_new_tokens)
    finally:
        model.close()
    texts = [a.text for a in answers]
    scores = scorer.score_all(texts, [e.target for e in examples])
    new_tokens = sum(len(a.token_ids) for a in answers)
    return {"kind": model.kind, "scores": scores, "answers": texts,
            "stopped_rate": sum(a.stopped for a in answers) / len(answers), "new_tokens": new_tokens}


def _loss(ref: str, examples, opened: dict[str, Any]) -> dict[str, Any]:
    from ..engines.generate import open_model
    from .metrics import answer_loss

    usable = [e for e in examples if e.target]
    model = open_model(ref, logits_all=True, **opened)
    try:
        return {"kind": model.kind, **answer_loss(model, usable)}
    finally:
        model.close()


def markdown(report: dict[str, Any]) -> str:
    """The comparison as a markdown table (+ disagreements for Task API data)."""
    base, tuned = report["models"]["base"], report["models"]["tuned"]
    lines = [f"# Evaluation on {Path(report['data']).name} ({report['n']} rows)", "",
             f"| metric | base ({base['kind']}) | tuned ({tuned['kind']}) |", "| --- | --- | --- |"]
    if report["mode"] != "loss":
        for label, key in report["metrics"]:
            lines.append(f"| {label} | {base['scores'][key]:.1%} | {tuned['scores'][key]:.1%} |")
        lines.append(f"| stopped at end of turn | {base['stopped_rate']:.1%} | {tuned['stopped_rate']:.1%} |")
    else:
        for key in ("loss", "perplexity", "tokens"):
            lines.append(f"| {key} | {_num(base[key])} | {_num(tuned[key])} |")
    lines.append(f"| seconds | {base['seconds']} | {tuned['seconds']} |")
    lines += ["", f"base: `{base['model']}`; tuned: `{tuned['model']}`"]
    if report["skipped"]:
        lines.append(f"skipped {len(report['skipped'])} rows: " + "; ".join(report["skipped"][:5]))
    if report["mode"] != "loss":
        lines += _disagreements(report)
    return "\n".join(lines)


def _num(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _disagreements(report: dict[str, Any]) -> list[str]:
    shown = report["models"]["tuned"]["scores"]["disagreements"][:SHOW_DISAGREEMENTS]
    total = report["models"]["tuned"]["scores"]["n_disagreements"]
    lines = ["", f"## Tuned model disagreements ({total} of {report['n']}; first {len(shown)})", ""]
    for item in shown:
        row = report["predictions"][item["index"]]
        lines += [f"- line {row['line']}: {item['reason']}", f"  - prompt: {row['prompt'][:160]!r}",
                  f"  - target: `{row['target']}`", f"  - tuned: `{row['tuned'][:200]}`",
                  f"  - base: `{row['base'][:200]}`"]
    return lines


def _write(out: Path, report: dict[str, Any], text: str, force: bool, output: dict[str, Any]) -> None:
    from ..io import atomic_dir, atomic_write_json, atomic_write_jsonl, atomic_write_text

    with atomic_dir(out, force, **output) as tmp:
        atomic_write_json(tmp / "report.json", {k: v for k, v in report.items() if k != "predictions"})
        atomic_write_text(tmp / "report.md", text + "\n")
        atomic_write_jsonl(tmp / "predictions.jsonl", report.get("predictions", []))
