"""train.py in this process (hf backend only: Unsloth patches transformers process-wide, see
test_train_processes.py): arguments, labels, checkpoints, padding-free, a full tiny run, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from llmops_ft.cli import main
from llmops_ft.config import load_config
from llmops_ft.config.gpus import cpu_bf16_flags
from llmops_ft.errors import UserError
from llmops_ft.io import read_jsonl
from llmops_ft.train import checkpoints as ckpt
from llmops_ft.train import train
from llmops_ft.train.backends import Environment
from llmops_ft.train.data import response_markers, tokenize_file
from llmops_ft.train.trainer import sft_arguments

CPU = Environment(device="cpu", rank=0, local_rank=0, world_size=1)
TASK_API = Path(__file__).resolve().parents[1] / "examples" / "task_api" / "train.jsonl"
CONTRACT_KEYS = {"config", "base_model", "backend", "dataset", "system_prompt", "versions", "git_commit",
                 "hardware", "precision", "steps", "final_loss", "train_runtime_s", "tokens_per_s"}


def tiny_config(model: Path, data: Path, out: Path, **training) -> dict:
    """A resolved config for the tiny model on the hf backend (never unsloth in this process)."""
    base = {
        "model": {"name": str(model), "max_seq_length": 256},
        "dataset": {"path": str(data)},
        "training": {"max_steps": 6, "batch_size": 4, "grad_accum": 1, "learning_rate": 1e-2, "optim": "adamw_torch",
                     "gradient_checkpointing": False, "save_steps": 3, "logging_steps": 1, **training},
        "hardware": "cpu",
        "backend": "hf",
        "output_dir": str(out),
    }
    return load_config(None, base=base)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def chat(user: str, answer: str | None) -> dict:
    messages = [{"role": "system", "content": "Reply with one Task API call as JSON."},
                {"role": "user", "content": user}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {"messages": messages}


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- pieces ------------------------------------------------------------------------------------------------------


def test_response_markers_come_from_the_template(smollm2_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert response_markers(tokenizer) == ("<|im_start|>user\n", "<|im_start|>assistant\n")
    # A Llama 3 style template (headers between special tokens, a blank line, <|eot_id|> ends a turn).
    tokenizer.chat_template = (
        "{{ '<|begin_of_text|>' }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + "
        "'<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    )
    assert response_markers(tokenizer) == ("<|start_header_id|>user<|end_header_id|>\n\n",
                                            "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_labels_cover_every_assistant_turn_and_nothing_else(smollm2_dir, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    row = chat("create a task", '{"action":"clarify","question":"Which title?"}')
    row["messages"] += [{"role": "user", "content": "Write report"},
                        {"role": "assistant", "content": '{"action":"create","title":"Write report"}'}]
    (example,) = tokenize_file(tokenizer, write_rows(tmp_path / "t.jsonl", [row]), 512, completion_only=True)
    trained = tokenizer.decode([t for t in example.labels if t != -100])
    assert trained == ('{"action":"clarify","question":"Which title?"}<|im_end|>'
                       '{"action":"create","title":"Write report"}<|im_end|>')
    (everything,) = tokenize_file(tokenizer, tmp_path / "t.jsonl", 512, completion_only=False)
    assert everything.labels == everything.input_ids


def test_sft_arguments_override_every_risky_trl_default(tiny_model_dir, tmp_path):
    from trl import SFTConfig

    config = tiny_config(tiny_model_dir, TASK_API, tmp_path / "run", optim="adamw_8bit", learning_rate=3e-4,
                         warmup_fraction=0.1)
    precision = {"dtype": "float32", "fp16": False, "bf16": False}
    kwargs, notes = sft_arguments(config, precision=precision, env=CPU, backend="hf",
                                  checkpoints_dir=tmp_path / "c", has_val=False, show_progress=False)
    args = SFTConfig(**kwargs)
    # trl 1.x would give bf16=True, gradient_checkpointing=True, lr 2e-5, max_length 1024, logging every 10 steps
    assert (args.bf16, args.fp16, args.gradient_checkpointing) == (False, False, False)
    assert args.learning_rate == 3e-4 and args.max_length == 256 and args.logging_steps == 1
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 1
    assert args.warmup_steps == 0.1 and args.max_steps == 6 and args.seed == config["training"]["seed"]
    assert args.optim == "adamw_torch" and "adamw_8bit needs CUDA" in notes[0]
    assert args.save_total_limit is None and args.report_to in ("none", [])  # rotation is ours; nothing uploaded

    free, _ = sft_arguments(tiny_config(tiny_model_dir, TASK_API, tmp_path / "r", padding_free=True,
                                        gradient_checkpointing=True),
                            precision=precision, env=CPU, backend="unsloth", checkpoints_dir=tmp_path / "c",
                            has_val=False, show_progress=False)
    # padding-free batches are not cut by trl (data.py truncates); Unsloth brings its own checkpointing
    assert free["padding_free"] is True and free["max_length"] is None
    assert free["gradient_checkpointing"] is False


def test_only_complete_checkpoints_count(tmp_path):
    root = tmp_path / "checkpoints"

    def staged(step: int, complete: bool = True) -> Path:
        folder = ckpt.staging_dir(root) / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        for name in ckpt.REQUIRED_FILES[: None if complete else -1]:
            (folder / name).write_text("x")
        return folder

    for step in (2, 4, 6):
        ckpt.publish(staged(step), root, keep=2)
    assert [p.name for p in ckpt.complete_checkpoints(root)] == ["checkpoint-4", "checkpoint-6"]
    assert not ckpt.staging_dir(root).exists()
    half = root / "checkpoint-8"
    staged(8, complete=False).rename(half)  # what a kill -9 mid-save would leave without the staging step
    assert ckpt.newest_complete(root).name == "checkpoint-6"
    assert ckpt.resolve_resume("auto", root).name == "checkpoint-6"
    assert ckpt.resolve_resume("never", root) is None
    with pytest.raises(UserError, match="incomplete checkpoint"):
        ckpt.resolve_resume(str(half), root)


@pytest.mark.parametrize("attention", ["sdpa", "sdpa_varlen"])
def test_padding_free_keeps_examples_apart(tiny_model_dir, attention):
    """Each example's loss inside a flattened batch equals its loss alone, with transformers' SDPA (dense
    block-diagonal mask) and with ours (SDPA per example, what train.py uses for padding_free without flash-attn).
    A plain causal mask over the same flattened batch (attention across examples) changes it, so this comparison
    can detect leakage."""
    import torch
    from llmops_ft.train.varlen import use_varlen_attention
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    examples = tokenize_file(tokenizer, TASK_API, 256, completion_only=True)[:4]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    collate = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=True)
    batch = collate([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    spans, start = [], 0
    for example in examples:
        spans.append((start, start + len(example.input_ids)))
        start += len(example.input_ids)

    def loss(**inputs) -> float:
        with torch.no_grad():  # use_cache=False as in training: a KV cache turns off packed-sequence detection
            return model(**inputs, use_cache=False).loss.item()

    def own_labels(a: int, b: int):
        labels = torch.full_like(batch["labels"], -100)
        labels[0, a:b] = batch["labels"][0, a:b]
        return labels

    # control, on plain SDPA: one causal mask over the whole row lets each example see the ones before it
    across = [loss(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=own_labels(a, b),
                   attention_mask=torch.ones_like(batch["input_ids"])) for a, b in spans]
    if attention == "sdpa_varlen":
        assert use_varlen_attention(model) and model.config._attn_implementation == "sdpa_varlen"
    for example, (a, b), leaked in zip(examples, spans, across, strict=True):
        alone = loss(input_ids=torch.tensor([example.input_ids]), labels=torch.tensor([example.labels]))
        flat = loss(input_ids=batch["input_ids"], position_ids=batch["position_ids"], labels=own_labels(a, b))
        assert flat == pytest.approx(alone, abs=1e-4)
        if a > 0:
            assert abs(leaked - alone) > 1e-3


# --- whole runs ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_free", [False, True])
def test_tiny_run_writes_the_run_dir(tiny_model_dir, tmp_path, padding_free):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    config = tiny_config(tiny_model_dir, TASK_API, out, padding_free=padding_free)
    summary = train(config)
    assert summary["ok"] and summary["steps"] == 6 and summary["backend"] == "hf"

    run = json.loads((out / "run.json").read_text())
    assert CONTRACT_KEYS <= set(run)
    assert run["config"] == config and run["base_model"] == str(tiny_model_dir)
    assert run["dataset"]["rows"] == sum(1 for _ in read_jsonl(TASK_API)) and len(run["dataset"]["train_sha256"]) == 64
    assert run["system_prompt"] is None  # Task API prompts carry each row's date
    bf16 = bool(cpu_bf16_flags())  # dtype auto: bf16 autocast only on a CPU with bf16 instructions
    assert run["precision"] == {"dtype": "bfloat16" if bf16 else "float32", "fp16": False, "bf16": bf16}
    assert run["peak"]["flops"] > 0
    assert run["peak"]["source"].startswith(f"measured: 1024x1024 {run['precision']['dtype']} matmul")
    assert 0 < run["mfu"] < 1 and summary["mfu"] == run["mfu"]
    assert run["attention"] == ("sdpa_varlen" if padding_free else "sdpa")  # per-example attention when flattened
    assert run["versions"]["trl"] and run["versions"]["peft"] and run["hardware"]["world_size"] == 1
    assert run["tokens_per_s"] > 0 and run["final_loss"] < run["first_loss"]

    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for row in rows:
        assert math.isfinite(row["loss"]) and row["tokens"] > 0 and row["memory_mib"] > 0 and row["mfu"] > 0
    assert rows[-1]["time_s"] > rows[0]["time_s"] and rows[-1]["cpu_s"] > rows[0]["cpu_s"]
    assert rows[-1]["lr"] < rows[1]["lr"]  # linear decay after the warmup step
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "LoRA adapter" in (out / "README.md").read_text()
    assert [p.name for p in ckpt.complete_checkpoints(out / "checkpoints")] == ["checkpoint-3", "checkpoint-6"]
    assert not ckpt.staging_dir(out / "checkpoints").exists()

    adapter = out / "adapter"
    assert not (adapter / "training_args.bin").exists()
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run["base_model"]), adapter)
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and max(float(p.abs().max()) for p in lora_b) > 0  # trained, not the zero init
    assert AutoTokenizer.from_pretrained(adapter).chat_template
    assert torch.isfinite(model(input_ids=torch.tensor([[1, 2, 3]])).logits).all()

    with pytest.raises(UserError, match="already finished"):
        train(config)


def test_dry_run_checks_everything_but_trains_nothing(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    cfg = write_yaml(tmp_path / "cfg.yaml", {"model": {"name": str(tiny_model_dir), "max_seq_length": 256},
                                             "dataset": {"path": str(TASK_API)},
                                             "training": {"batch_size": 8, "grad_accum": 2, "epochs": 2},
                                             "hardware": "cpu", "backend": "hf", "output_dir": str(out)})
    assert main(["train", "--config", str(cfg), "--dry-run", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = sum(1 for _ in read_jsonl(TASK_API))
    assert summary["dry_run"] and summary["rows"] == rows and summary["planned_steps"] == 2 * math.ceil(rows / 16)
    assert 0 < summary["trainable_tokens"] < summary["tokens"] and summary["plan"]["verdict"] == "fits"
    assert not out.exists()


def test_rows_without_trainable_tokens_fail_before_training(tiny_model_dir, tmp_path, capsys):
    data = write_rows(tmp_path / "train.jsonl", [
        chat("list my tasks", '{"action":"list"}'),
        chat("please " * 80 + "create a task", '{"action":"create","title":"x"}'),  # answer cut off at 64 tokens
        chat("what is on my list?", None),  # no assistant turn at all
        chat("list done tasks", '{"action":"list","status":"done"}'),
    ])
    out = tmp_path / "run"
    cfg = write_yaml(tmp_path / "cfg.yaml", {"model": {"name": str(tiny_model_dir), "max_seq_length": 64},
                                             "dataset": {"path": str(data)}, "hardware": "cpu", "backend": "hf",
                                             "output_dir": str(out)})
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "2 of 4 rows have no trainable token" in err
    assert f"{data}:2 (" in err and "starts after max_seq_length 64" in err
    assert f"{data}:3 (no assistant content)" in err
    assert not out.exists()


def test_config_and_plan_errors_stop_before_anything_loads(tmp_path, repo):
    """Each bad config: exit 2, one line naming the key, and transformers never imported (no model, no tokenizer)."""
    base = {"model": {"name": "smollm2-135m"}, "dataset": {"path": str(TASK_API)}, "hardware": "cpu",
            "output_dir": str(tmp_path / "run")}
    cases = {
        "unknown key": ({"lora": {"rr": 8}}, "lora.rr: unknown key (did you mean lora.r?)"),
        "bad type": ({"training": {"batch_size": "two"}}, "training.batch_size: expected integer"),
        "r=0": ({"lora": {"r": 0}}, "lora.r: must be >= 1"),
        "bf16 on a T4": ({"hardware": "t4", "model": {"name": "smollm2-135m", "dtype": "bfloat16"}}, "model.dtype"),
        "plan says OOM": ({"hardware": "t4", "model": {"name": "unsloth/Meta-Llama-3.1-8B-Instruct",
                                                      "load_in_4bit": False}}, "will run out of memory"),
    }
    files = {name: str(write_yaml(tmp_path / f"{i}.yaml", {**base, **change}))
             for i, (name, (change, _)) in enumerate(cases.items())}
    script = (
        "import json, sys\nfrom llmops_ft.cli import main\nout = {}\n"
        f"for name, path in {json.dumps(files)}.items():\n"
        "    out[name] = main(['train', '--config', path])\n"
        "print(json.dumps({'codes': out, 'transformers': 'transformers' in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=repo, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [line for line in done.stderr.splitlines() if line.startswith("train: error:")]
    assert result["codes"] == dict.fromkeys(cases, 2) and result["transformers"] is False
    assert len(errors) == len(cases) and "Traceback" not in done.stderr
    for (name, (_, expected)), line in zip(cases.items(), errors, strict=True):
        assert expected in line, (name, line)
    assert not (tmp_path / "run").exists()
