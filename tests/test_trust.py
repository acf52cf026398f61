"""Trust only from the command line (issue 11): model repository code runs only with --trust-remote-code on the
verb that loads the model; a run folder's run.json saying trust_remote_code: true is shown, never obeyed.

The model here has real custom code (transformers' auto_map): importing it writes a marker file, so each test
sees whether the code ran."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from llmops_ft.cli import main

CUSTOM_CODE = '''import os
import pathlib

from transformers import LlamaConfig, LlamaForCausalLM

pathlib.Path(os.environ.get("LLMOPS_FT_TEST_MARKER", "ran-custom-code.txt")).write_text("ran")


class CustomConfig(LlamaConfig):
    model_type = "tinycustom"


class CustomForCausalLM(LlamaForCausalLM):
    config_class = CustomConfig
'''


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny Llama as a model whose config needs its own Python code (custom.py) to load."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("custom") / "tinycustom"))
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="tinycustom", architectures=["CustomForCausalLM"],
                  auto_map={"AutoConfig": "custom.CustomConfig", "AutoModelForCausalLM": "custom.CustomForCausalLM"})
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "custom.py").write_text(CUSTOM_CODE)
    return folder


@pytest.fixture()
def custom_run(custom_model, tmp_path) -> Path:
    """A run folder on the custom model whose run.json records trust_remote_code: true (someone else's run)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaForCausalLM

    run = tmp_path / "their-run"
    model = get_peft_model(LlamaForCausalLM.from_pretrained(str(custom_model)),
                           LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    model.save_pretrained(str(run / "adapter"))
    AutoTokenizer.from_pretrained(str(custom_model)).save_pretrained(str(run / "adapter"))
    (run / "run.json").write_text(json.dumps({
        "base_model": str(custom_model), "backend": "hf",
        "config": {"model": {"name": str(custom_model), "trust_remote_code": True}}}))
    return run


@pytest.fixture()
def marker(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "ran-custom-code.txt"
    monkeypatch.setenv("LLMOPS_FT_TEST_MARKER", str(path))
    return path


def cli(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_a_runs_recorded_trust_is_shown_not_obeyed(custom_run):
    from llmops_ft.engines.runs import load_run, trust_note

    run = load_run(custom_run)
    assert run.recorded_trust_remote_code is True and run.trust_remote_code is False
    assert "--trust-remote-code" in trust_note(run)
    assert load_run(custom_run, trust_remote_code=True).trust_remote_code is True
    assert trust_note(load_run(custom_run, trust_remote_code=True)) is None


@pytest.mark.parametrize("argv", [
    ["chat", "--model", "{model}", "--prompt", "hi"],
    ["chat", "--model", "{run}", "--prompt", "hi"],
    ["evaluate", "--base", "{model}", "--tuned", "{model}", "--data", "{data}"],
    ["export", "--run", "{run}", "--to", "merged", "--no-verify", "--out", "{out}"],
])
def test_without_the_flag_no_repository_code_runs(custom_model, custom_run, marker, tmp_path, capsys, argv):
    data = tmp_path / "eval.jsonl"
    data.write_text('{"text": "hello"}\n')
    filled = [a.format(model=custom_model, run=custom_run, data=data, out=tmp_path / "out") for a in argv]
    code, err = cli(capsys, *filled)
    assert code == 2 and not marker.exists()
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "pass --trust-remote-code" in errors[0], err
    if argv[0] == "chat" and "{run}" in argv:  # the run's own record is shown
        assert "run.json records trust_remote_code: true" in err


def test_with_the_flag_the_code_runs(custom_run, tmp_path):
    """In its own process: transformers imports the repository's module once per process."""
    marker = tmp_path / "ran.txt"
    env = {**os.environ, "LLMOPS_FT_TEST_MARKER": str(marker), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "chat.py"), "--model", str(custom_run),
                           "--prompt", "hi", "--max-new-tokens", "2", "--trust-remote-code", "--json"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert marker.read_text() == "ran" and json.loads(proc.stdout)["kind"] == "run"
    assert "run.json records trust_remote_code" not in proc.stderr


def test_train_refuses_a_config_asking_for_trust_without_the_flag(custom_model, marker, tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps({"model": {"name": str(custom_model), "trust_remote_code": True},
                                  "dataset": {"path": str(tmp_path)}, "backend": "hf", "hardware": "cpu",
                                  "output_dir": str(tmp_path / "run")}))
    code, err = cli(capsys, "train", "--config", config, "--dry-run")
    assert code == 2 and not marker.exists()
    assert f"{config}: model.trust_remote_code: the config asks to run Python code" in err


CUSTOM_TOKENIZER = '''import os
import pathlib

from transformers import PreTrainedTokenizerFast

pathlib.Path(os.environ.get("LLMOPS_FT_TEST_MARKER", "ran-custom-code.txt")).write_text("ran")


class CustomTokenizerFast(PreTrainedTokenizerFast):
    pass
'''


@pytest.fixture(scope="module")
def custom_tokenizer(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny Llama whose tokenizer class is the repository's own code (tokcustom.py)."""
    folder = Path(shutil.copytree(tiny_model_dir, tmp_path_factory.mktemp("customtok") / "tinytok"))
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(tokenizer_class="CustomTokenizerFast",
                  auto_map={"AutoTokenizer": [None, "tokcustom.CustomTokenizerFast"]})
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    (folder / "tokcustom.py").write_text(CUSTOM_TOKENIZER)
    return folder


def test_prep_loads_a_tokenizer_with_repository_code_only_with_the_flag(custom_tokenizer, tmp_path):
    """Each in its own process (transformers imports the module once per process)."""
    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello"}]}) + "\n")
    marker = tmp_path / "ran.txt"
    env = {**os.environ, "LLMOPS_FT_TEST_MARKER": str(marker), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    base = [sys.executable, str(REPO / "scripts" / "prep.py"), str(data), "--model", str(custom_tokenizer)]
    refused = subprocess.run([*base, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env,
                             timeout=600)
    assert refused.returncode == 2 and not marker.exists(), refused.stderr[-2000:]
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "--model" in lines[0] and "trust_remote_code" in lines[0], refused.stderr
    trusted = subprocess.run([*base, "--out", str(tmp_path / "b"), "--trust-remote-code", "--json"],
                             capture_output=True, text=True, env=env, timeout=600)
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert marker.read_text() == "ran" and json.loads(trusted.stdout)["kept"] == 1
