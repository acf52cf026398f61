"""`llmops-ft init-config`: a starter run config from the shipped presets, usable outside the repository."""

from __future__ import annotations

import json

import pytest
import yaml
from llmops_ft.cli import main
from llmops_ft.config import load_config
from llmops_ft.config.init_command import PRESETS
from llmops_ft.knowledge.resources import resource


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's project folder as the working directory (not this repository)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("gpu", sorted(PRESETS))
def test_each_preset_becomes_a_valid_config_with_project_relative_paths(project, gpu, capsys):
    assert main(["init-config", "--gpu", gpu, "--out", "my.yaml", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    text = (project / "my.yaml").read_text()
    preset = yaml.safe_load(resource(f"configs/{PRESETS[gpu]}.yaml").read_text())
    config = load_config("my.yaml")
    assert config["dataset"]["path"] == "runs/prep" and config["output_dir"] == "runs/my"
    assert config["model"]["name"] == preset["model"]["name"] and config["hardware"] == preset["hardware"]
    assert config["lora"]["r"] == preset["lora"]["r"] and config["training"]["batch_size"] == preset["training"][
        "batch_size"]
    assert result == {"ok": True, "path": "my.yaml", "gpu": gpu, "preset": PRESETS[gpu],
                      "model": preset["model"]["name"], "dataset_path": "runs/prep", "output_dir": "runs/my",
                      "hardware": preset["hardware"]}
    assert "scripts/" not in text and "examples/" not in text  # nothing a user's project does not have
    assert f"llmops-ft plan --config my.yaml --gpu {preset['hardware']}" in text
    assert [p.name for p in project.iterdir()] == ["my.yaml"]  # written atomically: no temp file left


def test_the_presets_comments_are_kept(project):
    assert main(["init-config", "--gpu", "t4", "--out", "t4.yaml"]) == 0
    text = (project / "t4.yaml").read_text()
    assert "# offloads activations to CPU RAM" in text  # an inline comment of colab_t4_qlora.yaml
    assert text.splitlines()[0].startswith("# Starter run config from `llmops-ft init-config --gpu t4`")


def test_data_output_dir_and_model_are_set_and_quoted_when_needed(project):
    assert main(["init-config", "--gpu", "cpu", "--out", "cfg/run a.yaml", "--data", "my data/prep",
                 "--output-dir", "out/run #1", "--model", "models/tiny"]) == 0
    config = load_config(project / "cfg" / "run a.yaml")
    assert config["dataset"]["path"] == "my data/prep" and config["output_dir"] == "out/run #1"
    assert config["model"]["name"] == "models/tiny"


def test_an_existing_file_is_kept_without_force(project, capsys):
    (project / "my.yaml").write_text("mine\n")
    assert main(["init-config", "--gpu", "cpu", "--out", "my.yaml"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "my.yaml" in err[0] and "--force" in err[0]
    assert (project / "my.yaml").read_text() == "mine\n"
    assert main(["init-config", "--gpu", "cpu", "--out", "my.yaml", "--force"]) == 0
    assert load_config("my.yaml")["hardware"] == "cpu"


def test_list_names_every_preset(project, capsys):
    assert main(["init-config", "--list", "--json"]) == 0
    presets = json.loads(capsys.readouterr().out)["presets"]
    assert [p["gpu"] for p in presets] == list(PRESETS)
    for p in presets:
        assert p["model"] == yaml.safe_load(resource(f"configs/{p['preset']}.yaml").read_text())["model"]["name"]
    assert list(project.iterdir()) == []


def test_missing_arguments_are_one_line(project, capsys):
    assert main(["init-config", "--gpu", "t4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


def test_the_written_config_plans_from_the_project(project, capsys):
    assert main(["init-config", "--gpu", "t4", "--out", "my.yaml"]) == 0
    capsys.readouterr()
    assert main(["plan", "--config", "my.yaml", "--gpu", "t4", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["verdict"] in ("fits", "tight") and plan["precision"]["dtype"] == "float16"
