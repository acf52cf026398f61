"""plan: memory terms, verdicts, dtype per GPU, largest batch/length, exact LoRA and parameter counts."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from llmops_ft.config import ConfigError, load_config
from llmops_ft.config.gpus import cpu_bf16_flags
from llmops_ft.errors import UserError
from llmops_ft.plan import make_plan
from llmops_ft.plan.architectures import KNOWN, from_hf_config, lookup, resolve_architecture
from llmops_ft.plan.memory import GIB, Settings, activation_bytes, estimate, largest, lora_params
from llmops_ft.plan.planner import FITS_BELOW

T4_QLORA = "examples/configs/colab_t4_qlora.yaml"
A100_LORA = "examples/configs/a100_lora.yaml"
CPU_SMOKE = "examples/configs/cpu_smoke.yaml"


def plan_of(repo, config_path: str, *overrides: str, gpu: str = "auto") -> dict:
    return make_plan(load_config(repo / config_path, list(overrides)), gpu)


def test_terms_add_up_and_dtype_follows_the_gpu(repo):
    plan = plan_of(repo, T4_QLORA)
    memory = plan["memory_gib"]
    assert memory["total"] == pytest.approx(sum(v for k, v in memory.items() if k != "total"), abs=0.01)
    assert plan["precision"] == {"dtype": "float16", "fp16": True, "bf16": False}
    assert plan["verdict"] == "fits" and plan["usage"] <= FITS_BELOW
    # Llama 3.1 8B in NF4 with 16-bit embeddings and lm_head: 6.98e9 * ~0.516 + 1.05e9 * 2 bytes = 5.3 GiB
    assert 5.2 < memory["weights"] < 5.4
    assert plan["trainable_params"] == 41_943_040  # r=16 on all seven projections of 32 blocks
    a100 = plan_of(repo, A100_LORA)
    assert a100["precision"]["dtype"] == "bfloat16"
    assert 14.9 < a100["memory_gib"]["weights"] < 15.0  # 8.03e9 params * 2 bytes
    cpu_dtype = "bfloat16" if cpu_bf16_flags() else "float32"  # the CPU rule: test_train_precision.py
    assert plan_of(repo, CPU_SMOKE)["precision"]["dtype"] == cpu_dtype


def test_activations_without_checkpointing_dwarf_the_alternatives(repo):
    alt = plan_of(repo, T4_QLORA)["activations_gib"]
    assert alt["none"] > 8 * alt["standard"] > 8 * alt["offload"]
    plan = plan_of(repo, T4_QLORA, "training.gradient_checkpointing=false")
    assert plan["settings"]["checkpointing"] == "none"
    assert plan["verdict"] == "oom"  # 8B at 2 x 2048 tokens without checkpointing does not fit a T4


def test_the_same_config_fits_an_a100_and_oom_on_a_t4(repo):
    assert plan_of(repo, A100_LORA)["verdict"] == "fits"
    plan = plan_of(repo, A100_LORA, gpu="t4")  # 16-bit 8B weights alone exceed 15 GiB
    assert plan["verdict"] == "oom" and plan["largest_batch"] is None and plan["largest_seq_length"] is None
    assert any("load_in_4bit" in note for note in plan["notes"])


def test_largest_batch_and_length_are_the_edge_of_fitting(repo):
    config = load_config(repo / T4_QLORA)
    plan = make_plan(config)
    arch = resolve_architecture(config["model"]["name"])
    settings = Settings(batch=2, seq=2048, load_in_4bit=True, weight_bytes=2, activation_bytes=2, lora_r=16,
                        target_modules=tuple(config["lora"]["target_modules"]), optim="adamw_8bit",
                        checkpointing="offload", fused_cross_entropy=True, device="cuda")
    assert estimate(arch, settings)["total"] / GIB == pytest.approx(plan["memory_gib"]["total"], abs=0.01)
    limit = FITS_BELOW * 15.0 * GIB
    best = plan["largest_batch"]["batch_size"]
    assert estimate(arch, replace(settings, batch=best))["total"] <= limit
    assert estimate(arch, replace(settings, batch=best + 1))["total"] > limit
    seq = plan["largest_seq_length"]
    assert seq % 64 == 0
    assert estimate(arch, replace(settings, seq=seq))["total"] <= limit
    assert estimate(arch, replace(settings, seq=seq + 64))["total"] > limit
    # when the batch is capped, the accumulation keeps the effective batch of 2 x 8
    small = make_plan(load_config(repo / T4_QLORA, ["model.max_seq_length=16384"]))
    batch = small["largest_batch"]
    assert batch["batch_size"] < 2 or batch["suggested_batch_size"] * batch["grad_accum"] >= 16


def test_largest_search():
    assert largest(lambda v: v <= 37, 1, 4096) == 37
    assert largest(lambda v: v <= 5000, 1, 4096) == 4096
    assert largest(lambda v: v <= 0, 1, 4096) is None
    assert largest(lambda v: v <= 1000, 64, 131072, 64) == 960


def test_bf16_on_a_t4_plan_is_a_config_error(repo):
    config = load_config(repo / A100_LORA, ["model.dtype=bfloat16"])  # fine on the A100 it names
    assert make_plan(config)["precision"]["bf16"] is True
    with pytest.raises(ConfigError) as excinfo:
        make_plan(config, "t4")
    assert excinfo.value.problems[0].path == "model.dtype"


def test_eight_bit_optimizer_on_cpu_is_planned_as_adamw_torch(repo):
    plan = plan_of(repo, CPU_SMOKE, "training.optim=adamw_8bit")
    assert plan["settings"]["optim"] == "adamw_torch"
    assert any("falls back to adamw_torch" in note for note in plan["notes"])
    assert plan["memory_gib"]["optimizer"] == pytest.approx(2 * plan["memory_gib"]["lora_params"], abs=0.002)


def test_lora_and_parameter_counts_match_peft_on_a_real_model():
    """Counts from the dimensions equal what transformers + peft build (a small Llama with GQA)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_config = LlamaConfig(hidden_size=96, intermediate_size=256, num_hidden_layers=3, num_attention_heads=6,
                            num_key_value_heads=2, vocab_size=512, tie_word_embeddings=False)
    model = LlamaForCausalLM(hf_config)
    arch = from_hf_config(hf_config.to_dict(), "tiny")
    assert arch.total_params() == sum(p.numel() for p in model.parameters())
    targets = ("q_proj", "v_proj", "down_proj")
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=list(targets), task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert lora_params(arch, 8, targets) == (trainable, [])
    assert lora_params(arch, 8, ("q_proj", "c_attn")) == (3 * 8 * (96 + 96), ["c_attn"])


def test_architectures_from_table_and_local_config(tmp_path):
    assert lookup("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit").name == "llama-3.1-8b"
    assert lookup("Qwen/Qwen2.5-72B-Instruct").name == "qwen2.5-72b"
    assert lookup("Qwen/Qwen2.5-7B-Instruct").name == "qwen2.5-7b"
    assert lookup("meta-llama/Llama-3.2-1B-Instruct").name == "llama-3.2-1b"
    assert lookup("someone/unknown-model") is None
    assert 8.0e9 < KNOWN["llama-3.1-8b"].total_params() < 8.06e9  # the published 8.03B
    assert 70.5e9 < KNOWN["llama-3.3-70b"].total_params() < 70.6e9  # the published 70.6B
    folder = tmp_path / "local-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
        "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936, "tie_word_embeddings": True,
    }))
    arch = resolve_architecture(str(folder))
    assert arch.source == "config.json" and arch.total_params() == KNOWN["qwen2.5-0.5b"].total_params()
    with pytest.raises(UserError, match="unknown architecture for 'someone/unknown-model'"):
        resolve_architecture("someone/unknown-model")


def test_activation_modes_are_ordered():
    arch = KNOWN["llama-3.2-1b"]
    settings = Settings(batch=2, seq=1024, load_in_4bit=False, weight_bytes=2, activation_bytes=2, lora_r=16,
                        target_modules=tuple(arch.linears()), optim="adamw_8bit", checkpointing="standard",
                        fused_cross_entropy=False, device="cuda")
    none, standard, offload = (activation_bytes(arch, settings, mode) for mode in ("none", "standard", "offload"))
    assert none > standard > offload > 0
    assert activation_bytes(arch, replace(settings, batch=4), "none") == pytest.approx(2 * none)


def run_plan(repo, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(repo / "scripts" / "plan.py"), *args], cwd=repo,
                          capture_output=True, text=True, timeout=120)


def test_cli_json_exit_codes_and_one_line_errors(repo, tmp_path):
    done = run_plan(repo, "--config", A100_LORA, "--gpu", "t4", "--json")
    assert done.returncode == 3, done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "oom" and data["hardware"]["name"] == "t4"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {name: m}\ndataset: {path: d}\nlora: {rr: 8, r: 0}\n")
    done = run_plan(repo, "--config", str(bad))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "lora.rr: unknown key (did you mean lora.r?)" in done.stderr and "lora.r: must be >= 1" in done.stderr
