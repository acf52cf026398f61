"""train.py as separate processes: the Unsloth backend (it patches transformers process-wide, so never in the
pytest process), kill -9 / SIGTERM then --resume auto, and DDP with two processes under torchrun (gloo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llmops_ft.io import read_jsonl
from llmops_ft.train import checkpoints as ckpt
from llmops_ft.train import train
from test_train import TASK_API, tiny_config, write_yaml

REPO = Path(__file__).resolve().parents[1]
TRAIN = [sys.executable, str(REPO / "scripts" / "train.py")]


def start(config_path: Path, *extra: str, log: Path) -> subprocess.Popen:
    """scripts/train.py in its own process, output to ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    with open(log, "w") as fh:
        return subprocess.Popen([*TRAIN, "--config", str(config_path), *extra], stdout=fh, stderr=subprocess.STDOUT,
                                cwd=REPO, env=env)


def wait_for(condition, process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Poll ``condition()`` until true; fail with the log if the process ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"condition not reached (rc {process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.02)


def logged_steps(metrics: Path) -> list[int]:
    try:
        return [row["step"] for row in read_jsonl(metrics)]
    except (FileNotFoundError, json.JSONDecodeError):  # a row being written
        return []


@pytest.mark.slow
def test_unsloth_backend_learns_on_cpu(tmp_path, smollm2_dir):
    """The default backend when Unsloth imports: SmolLM2-135M on the Task API data, loss falls by >= 5%."""
    out = tmp_path / "run"
    cfg = write_yaml(tmp_path / "cfg.yaml", {
        "model": {"name": "smollm2-135m", "max_seq_length": 256},
        "dataset": {"path": str(TASK_API)},
        # the shipped CPU preset's learning rate: at 2e-4, 8 steps of single-batch losses are mostly batch noise
        "training": {"max_steps": 8, "batch_size": 4, "grad_accum": 1, "learning_rate": 1e-3,
                     "warmup_steps": 1, "optim": "adamw_torch", "gradient_checkpointing": False,
                     "save_steps": 100, "logging_steps": 1},
        "hardware": "cpu", "backend": "auto", "output_dir": str(out),
    })
    done = subprocess.run([*TRAIN, "--config", str(cfg), "--json"], capture_output=True, text=True, cwd=REPO,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # --json: the summary alone on stdout, progress on stderr
    assert summary["backend"] == "unsloth" and "Unsloth" in done.stderr
    assert summary["response_markers"] == ["<|im_start|>user\n", "<|im_start|>assistant\n"]
    assert summary["labels_removed_by_unsloth_markers"] == 0  # Unsloth's spans and prep's mask agree
    assert summary["steps"] == 8
    assert summary["final_loss"] <= 0.95 * summary["first_loss"], summary

    run = json.loads((out / "run.json").read_text())
    assert run["backend"] == "unsloth" and run["versions"]["unsloth"]
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run["base_model"]), out / "adapter")
    assert sum(p.numel() for n, p in model.named_parameters() if "lora_" in n) > 0


def test_kill9_and_sigterm_then_resume_continue_the_schedule(tmp_path, tiny_model_dir):
    """kill -9 after checkpoint-4, resume, SIGTERM (saves a checkpoint at that step), resume to the end: every
    step's lr and loss equal an uninterrupted run's, so optimizer, scheduler, RNG and data position came back."""
    settings = {"max_steps": 16, "save_steps": 2, "save_total_limit": 20}
    reference = tmp_path / "reference"
    train(tiny_config(tiny_model_dir, TASK_API, reference, **settings))
    expected = {row["step"]: row for row in read_jsonl(reference / "metrics.jsonl")}

    out = tmp_path / "run"
    cfg = write_yaml(tmp_path / "cfg.yaml", tiny_config(tiny_model_dir, TASK_API, out, **settings))
    checkpoints = out / "checkpoints"

    first = start(cfg, log=tmp_path / "1.log")
    wait_for(lambda: ckpt.newest_complete(checkpoints) is not None
             and ckpt.checkpoint_step(ckpt.newest_complete(checkpoints)) >= 4, first, tmp_path / "1.log")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL

    second = start(cfg, "--resume", "auto", log=tmp_path / "2.log")
    wait_for(lambda: max(logged_steps(out / "metrics.jsonl"), default=0) >= 7, second, tmp_path / "2.log")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 128 + signal.SIGTERM
    log = (tmp_path / "2.log").read_text()
    assert "resuming from checkpoint-" in log and "stopped by SIGTERM at step" in log
    stopped_at = int(log.split("stopped by SIGTERM at step ")[1].split(";")[0])
    assert 7 <= stopped_at < 16 and ckpt.is_complete(checkpoints / f"checkpoint-{stopped_at}")

    third = subprocess.run([*TRAIN, "--config", str(cfg), "--resume", "auto"], capture_output=True, text=True,
                           cwd=REPO, timeout=300)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    assert f"resuming from checkpoint-{stopped_at}" in third.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["steps"] == 16 and run["resumed_from"].endswith(f"checkpoint-{stopped_at}")

    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert [r["step"] for r in rows] == list(range(1, 17))  # rows after a checkpoint were dropped, not doubled
    for row in rows:
        assert row["lr"] == pytest.approx(expected[row["step"]]["lr"], rel=1e-9), row["step"]
        assert row["loss"] == pytest.approx(expected[row["step"]]["loss"], abs=1e-4), row["step"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_processes_write_one_run_dir(tmp_path, tiny_model_dir):
    """torchrun --nproc_per_node 2 on CPU (gloo): 24 rows, batch 2 per process -> 6 optimizer steps, not 12."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(TASK_API.read_text(encoding="utf-8").splitlines(keepends=True)[:24]), encoding="utf-8")
    out = tmp_path / "run"
    config = tiny_config(tiny_model_dir, data, out, max_steps=None, epochs=1, batch_size=2, save_steps=4)
    cfg = write_yaml(tmp_path / "cfg.yaml", config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
         str(REPO / "scripts" / "train.py"), "--config", str(cfg)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("done: 6 steps") == 1  # rank 0 reports, rank 1 stays quiet

    run = json.loads((out / "run.json").read_text())
    assert run["steps"] == 6 and run["hardware"]["world_size"] == 2
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    last = ckpt.newest_complete(out / "checkpoints")
    assert last.name == "checkpoint-6"
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in last.iterdir()}
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run["base_model"]), out / "adapter")
