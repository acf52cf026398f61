"""recommendations.yaml: schema + semantic validation with file:line: field errors, and the values others read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from llmops_ft.errors import UserError
from llmops_ft.knowledge.recommendations import RECOMMENDATIONS_PATH, load_recommendations, load_set, recommended

SEEDED_IDS = [
    "lora.r", "lora.alpha", "lora.dropout", "lora.target_modules", "lora.use_rslora", "training.learning_rate",
    "training.num_train_epochs", "training.per_device_train_batch_size", "training.gradient_accumulation_steps",
    "training.warmup_fraction", "training.weight_decay", "training.optim", "training.lr_scheduler_type",
    "training.seed", "training.max_seq_length", "model.load_in_4bit", "model.gradient_checkpointing",
    "precision.dtype.pre_ampere", "precision.dtype.ampere_plus", "export.gguf_quantization", "dataset.min_rows",
]


def _variant(tmp_path: Path, old: str, new: str) -> str:
    """A copy of the repo's recommendations with one exact text replaced."""
    text = RECOMMENDATIONS_PATH.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path = tmp_path / "recommendations.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return str(path)


def _line_of(path: str, needle: str, after: str = "") -> int:
    """1-based line of the first ``needle`` that comes after the first ``after``."""
    lines = Path(path).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[start:], start + 1) if needle in line)


def test_every_seeded_id_is_kept_with_the_documented_values():
    entries = load_recommendations()
    assert set(SEEDED_IDS) <= set(entries)
    assert recommended("lora.r") == 16
    assert recommended("training.learning_rate") == pytest.approx(2e-4)
    assert (recommended("training.per_device_train_batch_size"), recommended("training.gradient_accumulation_steps")) \
        == (2, 8)
    assert recommended("precision.dtype.pre_ampere") == "float16"
    assert recommended("precision.dtype.ampere_plus") == "bfloat16"
    assert "t4" in entries["model.load_in_4bit"]["hardware"]


def test_every_run_config_default_names_an_existing_recommendation():
    from llmops_ft.skill.checks.consistency import config_key_ids

    ids = config_key_ids()
    assert ids, "the run-config schema declares x-recommendation defaults"
    assert set(ids.values()) <= set(load_recommendations())


def test_docs_basis_needs_a_fact(tmp_path):
    path = _variant(tmp_path, "    facts:\n      - datasets-guide.dataset_min_rows\n", "    facts: []\n")
    with pytest.raises(UserError) as err:
        load_set(path)
    message = str(err.value)
    assert "basis: docs needs at least one fact id" in message
    line = _line_of(path, "facts: []", "id: dataset.min_rows")
    assert f"recommendations.yaml:{line}: dataset.min_rows.facts:" in message


def test_wrong_value_type_names_file_line_and_field(tmp_path):
    path = _variant(tmp_path, "    value: adamw_8bit\n", "    value: {optimizer: adamw_8bit}\n")
    with pytest.raises(UserError) as err:
        load_set(path)
    message = str(err.value)
    assert f"recommendations.yaml:{_line_of(path, '{optimizer: adamw_8bit}')}: training.optim.value:" in message
    assert "\n" not in message


@pytest.mark.parametrize("old, new, expected", [
    ("  - id: lora.alpha\n", "  - id: lora.r\n", "duplicate id 'lora.r'"),
    ("    condition: gpu:cpu\n    value: float32\n", "    condition: gpu:tpu\n    value: float32\n",
     "unknown condition 'gpu:tpu'"),
    ("    param: optim\n", "    param: optimiser\n", "unknown param 'optimiser'"),
])
def test_semantic_problems_are_reported(tmp_path, old, new, expected):
    path = _variant(tmp_path, old, new)
    with pytest.raises(UserError) as err:
        load_set(path)
    assert expected in str(err.value)


def test_unreadable_yaml_points_at_the_line(tmp_path):
    path = _variant(tmp_path, "    value: 0.75\n", "    value: [0.75\n")
    with pytest.raises(UserError) as err:
        load_set(path)
    assert "not valid YAML" in str(err.value)
    assert "recommendations.yaml:" in str(err.value)


def test_schema_file_is_a_valid_schema():
    import jsonschema

    schema_path = Path(__file__).resolve().parents[1] / "skill_src/llmops_ft/schemas/recommendations.json"
    jsonschema.Draft202012Validator.check_schema(json.loads(schema_path.read_text()))
