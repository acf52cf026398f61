"""Run config: defaults from recommendations.yaml, every error reported at once with its key path and line."""

from __future__ import annotations

import json

import pytest
from llmops_ft.config import GPUS, HARDWARE_CHOICES, ConfigError, load_config, load_schema, resolve_precision
from llmops_ft.config.gpus import cpu_bf16_flags
from llmops_ft.knowledge.recommendations import recommended

MINIMAL = {"model": {"name": "smollm2-135m"}, "dataset": {"path": "runs/prep"}, "hardware": "cpu"}


def write(tmp_path, text: str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(excinfo) -> dict[str, str]:
    return {p.path: p.message for p in excinfo.value.problems}


def test_defaults_come_from_recommendations():
    config = load_config(None, base=MINIMAL)
    assert config["lora"]["r"] == recommended("lora.r")
    assert config["lora"]["alpha"] == recommended("lora.alpha")
    assert config["lora"]["target_modules"] == recommended("lora.target_modules")
    assert config["training"]["learning_rate"] == recommended("training.learning_rate")
    assert config["training"]["batch_size"] == recommended("training.per_device_train_batch_size")
    assert config["training"]["grad_accum"] == recommended("training.gradient_accumulation_steps")
    assert config["training"]["optim"] == recommended("training.optim")
    assert config["training"]["gradient_checkpointing"] == recommended("model.gradient_checkpointing")
    assert config["model"]["max_seq_length"] == recommended("training.max_seq_length")
    assert config["training"]["max_steps"] is None and config["training"]["save_steps"] == 50
    assert config["output_dir"] == "runs/run"


def test_every_schema_key_is_present_in_the_resolved_config():
    config = load_config(None, base=MINIMAL)
    for section, spec in load_schema()["properties"].items():
        assert section in config
        if spec.get("type") == "object":
            assert set(config[section]) == set(spec["properties"]), section
    json.dumps(config)  # plain data: goes into run.json as is
    assert load_config(None, base=config) == config  # a resolved config loads back unchanged


@pytest.mark.parametrize(("hardware", "expected"), [("cpu", False), ("t4", True), ("l4", True), ("a100-80", False)])
def test_4bit_default_follows_the_hardware_the_recommendation_lists(hardware, expected):
    assert load_config(None, [f"hardware={hardware}"], base=MINIMAL)["model"]["load_in_4bit"] is expected


def test_example_configs_load(repo):
    paths = sorted((repo / "examples" / "configs").glob("*.yaml"))
    assert {p.stem for p in paths} >= {"colab_t4_qlora", "cpu_smoke", "a100_lora"}
    configs = {p.stem: load_config(p) for p in paths}
    assert configs["cpu_smoke"]["hardware"] == "cpu" and configs["cpu_smoke"]["model"]["name"] == "smollm2-135m"
    assert configs["cpu_smoke"]["training"]["warmup_fraction"] is None  # warmup_steps given instead
    assert configs["colab_t4_qlora"]["model"]["load_in_4bit"] is True
    assert resolve_precision(configs["colab_t4_qlora"], "t4")["dtype"] == "float16"
    assert resolve_precision(configs["a100_lora"], "a100-80")["dtype"] == "bfloat16"


def test_overrides_are_parsed_as_yaml_scalars(tmp_path):
    path = write(tmp_path, "model: {name: m}\ndataset: {path: d}\nhardware: cpu\n")
    config = load_config(path, ["training.max_steps=20", "lora.use_rslora=true", "training.learning_rate=1e-4",
                                "lora.target_modules=[q_proj, v_proj]", "output_dir=runs/x"])
    assert config["training"]["max_steps"] == 20
    assert config["lora"]["use_rslora"] is True
    assert config["training"]["learning_rate"] == pytest.approx(1e-4)
    assert config["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert config["output_dir"] == "runs/x"
    assert load_config(path)["output_dir"] == "runs/cfg"  # default: named after the config file


def test_unknown_key_gets_a_did_you_mean(tmp_path):
    path = write(tmp_path, "model: {name: m}\ndataset: {path: d}\nlora:\n  rr: 8\nlearning_rate: 1.0e-4\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    found = problems_of(excinfo)
    assert found["lora.rr"] == "unknown key (did you mean lora.r?)"
    assert found["learning_rate"] == "unknown key (did you mean training.learning_rate?)"  # wrong section
    assert "cfg.yaml: lora.rr: unknown key (did you mean lora.r?) (line 4)" in str(excinfo.value)


def test_unknown_key_from_an_override_is_caught_too():
    with pytest.raises(ConfigError) as excinfo:
        load_config(None, ["training.max_step=5"], base=MINIMAL)
    assert problems_of(excinfo) == {"training.max_step": "unknown key (did you mean training.max_steps?)"}


def test_bad_type_and_r_zero_and_more_all_reported_at_once(tmp_path):
    text = (
        "model:\n  name: m\n  dtype: bfloat16\n"
        "dataset: {path: d}\n"
        "lora:\n  r: 0\n  dropout: 1.5\n"
        "training:\n  batch_size: two\n  grad_accum: 2.0\n  learning_rate: .nan\n  optim: adamw8bit\n"
        "hardware: t4\n"
    )
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, text))
    found = problems_of(excinfo)
    assert found["lora.r"] == "must be >= 1 (got 0)"
    assert found["lora.dropout"] == "must be < 1 (got 1.5)"
    assert found["training.batch_size"] == 'expected integer (got "two")'
    assert found["training.grad_accum"] == "expected integer (got 2.0)"
    assert found["training.learning_rate"] == "must be a finite number (got nan)"
    assert "did you mean adamw_8bit?" in found["training.optim"]
    assert found["model.dtype"].startswith("bfloat16 is not supported on NVIDIA T4")
    assert len(found) == 7
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "cfg.yaml") + ": model.dtype:")  # file order
    assert "lora.r: must be >= 1 (got 0) (line 6)" in message


def test_bf16_on_a_t4_is_refused_and_auto_picks_per_gpu():
    config = load_config(None, ["model.dtype=bfloat16", "hardware=a100-80"], base=MINIMAL)  # fine on an A100
    assert resolve_precision(config, "a100-80") == {"dtype": "bfloat16", "fp16": False, "bf16": True}
    for gpu in ("t4", "v100"):
        with pytest.raises(ConfigError) as excinfo:
            resolve_precision(config, gpu)
        assert excinfo.value.problems[0].path == "model.dtype"
    auto = load_config(None, base=MINIMAL)
    expected = {"t4": "float16", "v100": "float16", "l4": "bfloat16", "a10g": "bfloat16", "a100-40": "bfloat16",
                "a100-80": "bfloat16", "h100": "bfloat16", "rtx3090": "bfloat16", "rtx4090": "bfloat16",
                "cpu": "bfloat16" if cpu_bf16_flags() else "float32"}  # test_train_precision.py: the CPU rule
    assert set(expected) == set(GPUS)
    for gpu, dtype in expected.items():
        assert resolve_precision(auto, gpu)["dtype"] == dtype
    with pytest.raises(ConfigError, match="model.dtype: float16 mixed precision needs a CUDA GPU"):
        resolve_precision(load_config(None, ["model.dtype=float16"], base=MINIMAL), "cpu")


def test_schema_hardware_choices_match_the_gpu_table():
    assert set(load_schema()["properties"]["hardware"]["enum"]) == set(HARDWARE_CHOICES) == {"auto", *GPUS}


def test_yaml_syntax_error_names_its_line(tmp_path):
    path = write(tmp_path, "model:\n  name: m\ndataset:\n  path: [d\nlora: {r: 8}\n")
    with pytest.raises(ConfigError) as excinfo:
        load_config(path)
    assert excinfo.value.line == 5
    assert str(excinfo.value).startswith(f"{path}:5: YAML syntax error")


def test_duplicate_keys_are_not_silently_dropped(tmp_path):
    path = write(tmp_path, "model: {name: m}\ndataset: {path: d}\nlora:\n  r: 8\n  r: 32\n")
    with pytest.raises(ConfigError, match=r"lora.r: duplicate key .* \(line 5\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "dataset: required key is missing; model: required key is missing"),
        ("- a\n- b\n", "the config must be a mapping of sections (got a list)"),
        ("model: {}\ndataset: {path: d}\n", "model.name: required key is missing"),
        ("model: m\ndataset: {path: d}\n", 'model: expected object (got "m") (line 1)'),
        ("model: {name: m}\ndataset: {path: d}\ntraining: {warmup_steps: 3, warmup_fraction: 0.1}\n",
         "training.warmup_steps: set warmup_steps or warmup_fraction, not both (line 3)"),
    ],
)
def test_structural_problems(tmp_path, text, expected):
    with pytest.raises(ConfigError) as excinfo:
        load_config(write(tmp_path, text))
    assert str(excinfo.value) == f"{tmp_path / 'cfg.yaml'}: {expected}"


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"--set: expected key.path=value \(got 'training.max_steps'\)"):
        load_config(None, ["training.max_steps"], base=MINIMAL)
    with pytest.raises(ConfigError, match="cannot go inside model.name"):
        load_config(None, ["model.name.x=1"], base=MINIMAL)
