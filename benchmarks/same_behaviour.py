#!/usr/bin/env python3
"""Same inputs, same config, two commits: does a refactor change what the verbs produce?

Checks out ``--before`` and ``--after`` into temporary git worktrees and runs each one's own scripts
(scripts/prep.py, train.py, evaluate.py, export.py) on the same files: the Task API rows and the CPU config as
they were at ``--before``, a short training run, and an evaluation of the first rows. Then compares, byte for
byte where the output is data:

- prep's train/val/rejects/duplicates files and its report;
- every logged training loss, grad norm and learning rate, and the adapter's weights;
- base and tuned answers and scores on the eval rows;
- the f16 and q4_k_m GGUF files (tensors and metadata);
- the test suite: which of ``--before``'s test ids still exist at ``--after``.

The default pair is the layering work (issue 14): the last commit before it against this checkout's HEAD.
Writes benchmarks/results/same_behaviour.json. Run it on a quiet machine: the two sides run one after the other.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results" / "same_behaviour.json"
sys.path.insert(0, str(REPO / "skill_src"))
BEFORE = "4984b1f^"  # the layering commit's parent
PREP_FILES = ("train.jsonl", "val.jsonl", "rejects.jsonl", "duplicates.jsonl", "report.json")
CONFIG = """model: {{name: smollm2-135m, load_in_4bit: false, dtype: auto, max_seq_length: 256}}
dataset: {{path: {work}/prep, completion_only_loss: true}}
lora: {{r: 16, alpha: 16, dropout: 0.0}}
training: {{max_steps: {steps}, batch_size: 4, grad_accum: 1, learning_rate: 1.0e-3, lr_scheduler: linear,
           warmup_steps: 10, optim: adamw_torch, gradient_checkpointing: false, padding_free: true,
           logging_steps: 5, save_steps: 50}}
hardware: cpu
backend: hf
output_dir: {work}/run
"""


def git(*args: str) -> str:
    """Run git in this checkout and return its stdout."""
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout


def run_side(tree: Path, work: Path, data: Path, steps: int, rows: int) -> None:
    """One commit's scripts on the shared inputs, outputs under ``work``."""
    env = {**os.environ, "PYTHONPATH": str(tree / "skill_src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    work.mkdir(parents=True)
    (work / "config.yaml").write_text(CONFIG.format(work=work, steps=steps))
    for name, args in (
        ("prep", [str(data / "train.jsonl"), "--out", str(work / "prep"), "--model", "smollm2-135m",
                  "--max-seq-length", "256"]),
        ("train", ["--config", str(work / "config.yaml"), "--resume", "never"]),
        ("evaluate", ["--base", "smollm2-135m", "--tuned", str(work / "run"), "--data", str(data / "eval.jsonl"),
                      "--limit", str(rows), "--batch-size", "32", "--out", str(work / "eval")]),
        ("export", ["--run", str(work / "run"), "--to", "gguf", "--quant", "f16", "q4_k_m", "--out",
                    str(work / "gguf"), "--no-verify"]),
    ):
        with open(work / f"{name}.log", "w") as log:
            subprocess.run([sys.executable, str(tree / "scripts" / f"{name}.py"), *args], cwd=work, env=env, check=True,
                           stdout=log, stderr=subprocess.STDOUT)


def test_ids(tree: Path) -> set[str]:
    """The test ids pytest collects in ``tree`` (against that tree's own package)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "skill_src"), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "tests"], cwd=tree, env=env,
                         capture_output=True, text=True).stdout
    return {line.strip() for line in out.splitlines() if "::" in line}


def losses(work: Path) -> dict[int, list[float]]:
    """Each logged step's [loss, grad_norm, lr] from the run's metrics.jsonl."""
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {r["step"]: [r["loss"], r.get("grad_norm"), r.get("lr")] for r in rows if "loss" in r}


def compare_training(b: Path, a: Path) -> dict[str, Any]:
    """Loss curves and adapter weights, before against after."""
    from safetensors.torch import load_file

    lb, la = losses(b), losses(a)
    wb, wa = (load_file(str(w / "run" / "adapter" / "adapter_model.safetensors")) for w in (b, a))
    same_names = set(wb) == set(wa)
    return {
        "logged_steps": len(lb), "same_steps": sorted(lb) == sorted(la),
        "max_loss_diff": max(abs(lb[s][0] - la[s][0]) for s in lb if s in la),
        "max_grad_norm_diff": max(abs(lb[s][1] - la[s][1]) for s in lb if s in la),
        "lr_equal": all(lb[s][2] == la.get(s, [None] * 3)[2] for s in lb),
        "adapter_tensors": len(wb), "adapter_bit_identical": same_names and all(bool((wb[k] == wa[k]).all())
                                                                                  for k in wb),
        "adapter_max_abs_diff": max(float((wb[k] - wa[k]).abs().max()) for k in wb) if same_names else None,
    }


def compare_eval(b: Path, a: Path) -> dict[str, Any]:
    """Answers and scores of both models on the eval rows."""
    pb, pa = ([json.loads(x) for x in (w / "eval" / "predictions.jsonl").read_text().splitlines()] for w in (b, a))
    rb, ra = (json.loads((w / "eval" / "report.json").read_text()) for w in (b, a))
    out: dict[str, Any] = {"rows": len(pb)}
    for role in ("base", "tuned"):
        sb, sa = rb["models"][role]["scores"], ra["models"][role]["scores"]
        out[role] = {"identical_answers": sum(x.get(role) == y.get(role) for x, y in zip(pb, pa, strict=True)),
                     "scores_equal": all(sa.get(k) == v for k, v in sb.items()),
                     "score_keys_added": sorted(set(sa) - set(sb)),
                     "exact_call": sb.get("exact_match_rate"), "exact_action": sb.get("action_accuracy")}
    return out


def compare_gguf(b: Path, a: Path) -> dict[str, Any]:
    """sha256 of each GGUF file, before and after."""
    out = {}
    for quant in ("f16", "q4_k_m"):
        digests = [hashlib.sha256(next((w / "gguf").glob(f"*-{quant}.gguf")).read_bytes()).hexdigest() for w in (b, a)]
        out[quant] = {"sha256": digests[0][:16], "identical": digests[0] == digests[1]}
    return out


def main() -> int:
    """Run both sides, compare, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--steps", type=int, default=60, help="60 passes a checkpoint save (save_steps 50)")
    parser.add_argument("--rows", type=int, default=40, help="eval rows answered by both models")
    args = parser.parse_args()
    commits = {side: git("rev-parse", "--short", ref).strip() for side, ref in (("before", args.before),
                                                                                  ("after", args.after))}
    with tempfile.TemporaryDirectory(prefix="same-behaviour-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        data.mkdir()
        for name in ("train.jsonl", "eval.jsonl"):
            (data / name).write_text(git("show", f"{commits['before']}:examples/task_api/{name}"))
        trees = {side: tmp_path / f"tree-{side}" for side in commits}
        try:
            for side, commit in commits.items():
                git("worktree", "add", "--detach", str(trees[side]), commit)
                run_side(trees[side], tmp_path / side, data, args.steps, args.rows)
            ids = {side: test_ids(tree) for side, tree in trees.items()}
            b, a = tmp_path / "before", tmp_path / "after"
            prep = {f: (b / "prep" / f).read_bytes() == (a / "prep" / f).read_bytes() for f in PREP_FILES}
            result = {"date": datetime.date.today().isoformat(), "commits": commits, "steps": args.steps,
                      "prep_identical": prep, "training": compare_training(b, a), "eval": compare_eval(b, a),
                      "gguf": compare_gguf(b, a),
                      "tests": {"before": len(ids["before"]), "after": len(ids["after"]),
                                "before_ids_missing_after": sorted(ids["before"] - ids["after"])}}
        finally:
            for tree in trees.values():
                if tree.exists():
                    git("worktree", "remove", "--force", str(tree))
    from llmops_ft.io import atomic_write_json

    atomic_write_json(RESULTS, result)
    print(json.dumps(result, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
