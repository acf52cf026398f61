"""chat.py and evaluate.py over every export kind (run dir, adapter dir, merged folder, GGUF) of a trained tiny run:
one generation interface, identical prompts in transformers and llama.cpp, Task API scoring, loss/perplexity.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from llmops_ft.errors import UserError
from test_export_support import REPO, TASK_API, train_once

EVAL_ROWS = 4


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model_dir) -> Path:
    """The trained tiny run shared by the export and evaluate tests."""
    return train_once(tmp_path_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def exports(tiny_run, tmp_path_factory) -> dict[str, Path]:
    """The run as a merged folder and an f16 GGUF (converted directly, no verification: test_export does that)."""
    from llmops_ft.engines.runs import load_run
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.merge import merge_run

    root = tmp_path_factory.mktemp("exports")
    merge_run(load_run(tiny_run), root / "merged")
    (root / "gguf").mkdir()
    convert(root / "merged", root / "gguf" / "tiny-f16.gguf", "f16")
    return {"run": tiny_run, "adapter": tiny_run / "adapter", "merged": root / "merged",
            "gguf": root / "gguf" / "tiny-f16.gguf", "gguf_dir": root / "gguf"}


def _conversations(n: int = EVAL_ROWS) -> list[list[dict[str, str]]]:
    from llmops_ft.data.examples import read_examples

    examples, _ = read_examples(TASK_API / "eval.jsonl", limit=n)
    return [e.prompt for e in examples]


def test_every_kind_builds_the_same_prompt_and_answers_greedily(exports):
    from llmops_ft.engines.generate import generate, model_kind, open_model

    assert {k: model_kind(str(p)) for k, p in exports.items()} == {
        "run": "run", "adapter": "adapter", "merged": "merged", "gguf": "gguf", "gguf_dir": "gguf"}
    assert model_kind("smollm2-135m") == "hf"
    conversations = _conversations()
    prompts, answers = {}, {}
    for kind in ("run", "adapter", "merged", "gguf_dir"):
        model = open_model(str(exports[kind]))
        try:
            prompts[kind] = [model.prompt_ids(c) for c in conversations]
            answers[kind] = generate(model, conversations, max_new_tokens=12)
        finally:
            model.close()
    assert prompts["run"] == prompts["adapter"] == prompts["merged"] == prompts["gguf_dir"]
    assert [a.token_ids for a in answers["run"]] == [a.token_ids for a in answers["adapter"]]
    for kind, result in answers.items():
        assert len(result) == EVAL_ROWS and all(a.prompt_tokens == len(p) for a, p in zip(result, prompts[kind],
                                                                                            strict=True))
        assert all(len(a.token_ids) == 12 or a.stopped for a in result), kind


def test_hf_batching_and_left_padding_do_not_change_answers(exports):
    from llmops_ft.engines.generate import generate, open_model

    conversations = _conversations(5)
    batched = open_model(str(exports["merged"]), batch_size=5)
    single = open_model(str(exports["merged"]), batch_size=1)
    assert [a.token_ids for a in generate(batched, conversations, 10)] == \
        [a.token_ids for a in generate(single, conversations, 10)]


def test_errors_name_the_path(tmp_path):
    from llmops_ft.engines.generate import open_model

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no run.json, adapter_config.json, config.json or .gguf"):
        open_model(str(tmp_path / "empty"))
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "a.gguf").write_bytes(b"")
    (tmp_path / "two" / "b.gguf").write_bytes(b"")
    with pytest.raises(UserError, match=r"several GGUF files \(a.gguf, b.gguf\)"):
        open_model(str(tmp_path / "two"))
    (tmp_path / "bad.gguf").write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(UserError, match="truncated or corrupt"):
        open_model(str(tmp_path / "bad.gguf"))


def _script(name: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True,
                          input=stdin, timeout=300)


def test_chat_cli_one_prompt_json_and_stdin(exports):
    proc = _script("chat.py", "--model", str(exports["gguf"]), "--prompt", "List my tasks", "--max-new-tokens", "8",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["kind"] == "gguf" and data["new_tokens"] <= 8 and data["prompt_tokens"] > 10
    assert data["system"] is None
    proc = _script("chat.py", "--model", str(exports["run"]), "--max-new-tokens", "4", "--json",
                   stdin="List my tasks\n")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["kind"] == "run"
    assert data["system"] == "Reply with one Task API call as JSON."  # the run's training system prompt
    proc = _script("chat.py", "--model", "no/such/dir/x", "--prompt", "hi")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_evaluate_task_api_base_vs_tuned(exports, tiny_model_dir, tmp_path):
    from llmops_ft.evaluate.command import evaluate, markdown

    report = evaluate(str(tiny_model_dir), str(exports["gguf"]), str(TASK_API / "eval.jsonl"), limit=EVAL_ROWS,
                      max_new_tokens=16)
    assert report["mode"] == "task_api" and report["n"] == EVAL_ROWS
    for role, kind in (("base", "merged"), ("tuned", "gguf")):
        scores = report["models"][role]["scores"]
        assert report["models"][role]["kind"] == kind and scores["n"] == EVAL_ROWS
        for key in ("valid_json_rate", "schema_valid_rate", "action_accuracy", "exact_match_rate", "field_f1"):
            assert 0.0 <= scores[key] <= 1.0
    assert [p["line"] for p in report["predictions"]] == [1, 2, 3, 4]
    assert json.loads(report["predictions"][0]["target"])["action"] == "clarify"
    text = markdown(report)
    assert "| valid JSON |" in text and "| field F1 |" in text and "## Tuned model disagreements" in text


def test_evaluate_cli_writes_reports_and_keeps_existing_output(exports, tmp_path):
    out = tmp_path / "eval"
    args = ["--base", str(exports["merged"]), "--tuned", str(exports["run"]), "--data",
            str(TASK_API / "eval.jsonl"), "--limit", "2", "--max-new-tokens", "8", "--out", str(out)]
    proc = _script("evaluate.py", *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Evaluation on eval.jsonl (2 rows)")
    assert json.loads((out / "report.json").read_text())["models"]["tuned"]["kind"] == "run"
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2
    assert (out / "report.md").read_text().startswith("# Evaluation")
    proc = _script("evaluate.py", *args)
    assert proc.returncode == 2 and "output exists; pass --force" in proc.stderr


def test_evaluate_generic_data_by_loss_and_perplexity(exports, tmp_path):
    """Non-Task-API data: the reference answers' loss, the same in transformers and in the f16 GGUF."""
    from llmops_ft.evaluate.command import evaluate, markdown

    rows = [{"messages": [{"role": "user", "content": f"Name a colour number {i}."},
                          {"role": "assistant", "content": f"Colour {i} is blue, like the sky."}]} for i in range(3)]
    rows.append({"text": "Plain text rows are scored on every token."})
    data = tmp_path / "val.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = evaluate(str(exports["merged"]), str(exports["gguf"]), str(data))
    assert report["mode"] == "loss"
    base, tuned = report["models"]["base"], report["models"]["tuned"]
    assert base["tokens"] == tuned["tokens"] > 20
    assert math.isclose(base["loss"], tuned["loss"], rel_tol=1e-2)  # same weights, two engines
    assert math.isclose(base["perplexity"], math.exp(base["loss"]))
    assert "| perplexity |" in markdown(report)


def test_evaluate_rejects_unusable_data(tmp_path):
    from llmops_ft.evaluate.command import evaluate

    data = tmp_path / "bad.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{"x": 1}\nnot json\n')
    with pytest.raises(UserError, match=r"bad.jsonl:3: invalid JSON"):
        evaluate("smollm2-135m", "smollm2-135m", str(data))
