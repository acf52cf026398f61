"""--force never deletes what the command did not write (issue 11): for every verb that writes an output folder,
a file beside the folder and a file inside it survive; a folder of someone else's files is refused, --force or
not; `--out .` and an output folder holding an input are refused up front; outputs get the user's umask modes.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import pytest
from llmops_ft.cli import main
from llmops_ft.io import MANIFEST
from test_export_support import TASK_API, train_once


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model_dir) -> Path:
    """The session's trained tiny run (shared with the export and evaluate tests)."""
    return train_once(tmp_path_factory, tiny_model_dir)


def cli(capsys, *argv) -> tuple[int, str]:
    """Exit code and stderr of one verb run in this process."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def plant(out: Path) -> dict[Path, str]:
    """An unrelated file beside ``out`` and one inside it; returns what each must still hold."""
    out.mkdir(parents=True, exist_ok=True)
    files = {out.parent / "beside.txt": "a file next to the output folder\n",
             out / "notes" / "inside.txt": "my notes, kept inside the output folder\n"}
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return files


def assert_kept(files: dict[Path, str]) -> None:
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, path


def one_error_line(err: str, *parts: str) -> None:
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], (part, lines[0])


def write_rows(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


# --- prep --------------------------------------------------------------------------------------------------------


def test_prep_force_replaces_only_its_own_files(tmp_path, capsys):
    data = write_rows(tmp_path / "in.jsonl", ["one", "two", "three"])
    out = tmp_path / "runs" / "prep"
    assert cli(capsys, "prep", data, "--out", out)[0] == 0
    first = json.loads((out / "report.json").read_text())
    kept = plant(out)
    code, err = cli(capsys, "prep", data, "--out", out)
    one_error_line(err, "output exists; pass --force")
    assert code == 2
    write_rows(data, ["four", "five"])
    assert cli(capsys, "prep", data, "--out", out, "--force")[0] == 0
    assert_kept(kept)
    report = json.loads((out / "report.json").read_text())
    assert (first["total"], report["total"]) == (3, 2)
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == sorted(
        ["train.jsonl", "val.jsonl", "rejects.jsonl", "duplicates.jsonl", "report.json"])
    assert not list(out.parent.glob(".prep.*.tmp"))  # no temp folder left behind


def test_prep_refuses_a_folder_of_other_files_even_with_force(tmp_path, capsys):
    data = write_rows(tmp_path / "in.jsonl", ["one", "two"])
    runs = tmp_path / "runs"
    (runs / "old-run").mkdir(parents=True)
    (runs / "old-run" / "run.json").write_text("{}")
    (runs / "readme.txt").write_text("mine")
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    for extra in ([], ["--force"]):
        code, err = cli(capsys, "prep", data, "--out", runs, *extra)
        assert code == 2
        one_error_line(err, f"{runs}: --out: holds files prep did not write", "old-run/run.json", "readme.txt")
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before


def test_prep_force_over_files_it_would_write_replaces_just_them(tmp_path, capsys):
    """A folder holding only names prep writes (e.g. an earlier prep from before the manifest) is replaced."""
    data = write_rows(tmp_path / "in.jsonl", ["one", "two"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("old")
    assert cli(capsys, "prep", data, "--out", out)[0] == 2
    assert cli(capsys, "prep", data, "--out", out, "--force")[0] == 0
    assert json.loads((out / "report.json").read_text())["total"] == 2


@pytest.mark.parametrize("where", [".", "..", "data", "data/in.jsonl"])
def test_out_that_is_or_holds_the_working_dir_or_an_input_is_refused_before_any_work(tmp_path, capsys,
                                                                                      monkeypatch, where):
    (tmp_path / "work" / "data").mkdir(parents=True)
    write_rows(tmp_path / "work" / "data" / "in.jsonl", ["one", "two"])
    monkeypatch.chdir(tmp_path / "work")
    before = sorted(tmp_path.rglob("*"))
    started = time.perf_counter()
    # --model names a tokenizer that would take seconds to load: the refusal comes before it
    code, err = cli(capsys, "prep", "data/in.jsonl", "--out", where, "--force", "--model", "smollm2-135m")
    assert code == 2 and time.perf_counter() - started < 5
    what = {".": "is the working directory", "..": "holds the working directory"}.get(where, "is or holds the input")
    one_error_line(err, f"prep: error: {where}: --out: {what}")
    assert sorted(tmp_path.rglob("*")) == before


def test_outputs_get_the_users_umask_modes(tmp_path, capsys):
    data = write_rows(tmp_path / "in.jsonl", ["one", "two"])
    old = os.umask(0o027)
    try:
        assert cli(capsys, "prep", data, "--out", tmp_path / "out")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o750  # mkdtemp alone would give 0700
    for name in ("train.jsonl", "report.json", MANIFEST):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o640, name


# --- evaluate ----------------------------------------------------------------------------------------------------


def test_evaluate_force_replaces_only_its_own_files(tiny_model_dir, tmp_path, capsys):
    data = write_rows(tmp_path / "eval.jsonl", ["a short text to score", "another one"])
    out = tmp_path / "runs" / "eval"
    argv = ["evaluate", "--base", tiny_model_dir, "--tuned", tiny_model_dir, "--data", data, "--out", out]
    assert cli(capsys, *argv)[0] == 0
    kept = plant(out)
    code, err = cli(capsys, *argv)
    assert code == 2 and "output exists; pass --force" in err
    assert cli(capsys, *argv, "--force", "--limit", "1")[0] == 0
    assert_kept(kept)
    assert json.loads((out / "report.json").read_text())["n"] == 1
    assert json.loads((out / MANIFEST).read_text())["owner"] == "evaluate"


def test_evaluate_refuses_out_dot_before_loading_anything(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_rows(tmp_path / "eval.jsonl", ["text"])
    # models that do not exist: had evaluate worked first, their error would come instead of this one
    code, err = cli(capsys, "evaluate", "--base", "no/such-model", "--tuned", "no/other", "--data", data,
                    "--out", ".", "--force")
    assert code == 2
    one_error_line(err, "evaluate: error: .: --out: is the working directory")


# --- export ------------------------------------------------------------------------------------------------------


def test_export_force_replaces_only_its_own_files_and_its_stale_ones(tiny_run, tmp_path, capsys):
    out = tmp_path / "exports" / "gguf"
    argv = ["export", "--run", tiny_run, "--to", "gguf", "--no-verify", "--out", out]
    assert cli(capsys, *argv, "--quant", "f16")[0] == 0
    kept = plant(out)
    assert cli(capsys, *argv, "--quant", "q8_0")[0] == 2
    assert cli(capsys, *argv, "--quant", "q8_0", "--force")[0] == 0
    assert_kept(kept)
    gguf = sorted(p.name for p in out.glob("*.gguf"))
    assert gguf == ["run-q8_0.gguf"]  # the earlier export's f16 file was export's own: replaced, not left stale


def test_export_into_the_run_dir_or_another_kinds_output_is_refused(tiny_run, tmp_path, capsys):
    code, err = cli(capsys, "export", "--run", tiny_run, "--to", "adapter", "--out", tiny_run, "--force")
    assert code == 2
    one_error_line(err, f"{tiny_run}: --out: is or holds the input")
    out = tmp_path / "merged"
    assert cli(capsys, "export", "--run", tiny_run, "--to", "adapter", "--no-verify", "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = cli(capsys, "export", "--run", tiny_run, "--to", "gguf", "--quant", "f16", "--no-verify",
                    "--out", out, "--force")
    assert code == 2
    one_error_line(err, "holds files export --to gguf did not write", "adapter_config.json")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# --- train -------------------------------------------------------------------------------------------------------


def _train_config(tmp_path: Path, model_dir: Path, output_dir: str, steps: int = 2) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    lines = (TASK_API / "train.jsonl").read_text(encoding="utf-8").splitlines()[:16]
    (data / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps({
        "model": {"name": str(model_dir), "max_seq_length": 128},
        "dataset": {"path": str(data)},
        "training": {"max_steps": steps, "batch_size": 2, "grad_accum": 1, "optim": "adamw_torch",
                     "gradient_checkpointing": False, "save_steps": 1000, "warmup_steps": 0, "logging_steps": 1},
        "backend": "hf", "hardware": "cpu", "output_dir": output_dir}), encoding="utf-8")
    return config


def test_train_force_keeps_files_beside_and_inside_the_run(tiny_run, tiny_model_dir, tmp_path, capsys):
    run = tmp_path / "runs" / "again"
    shutil.copytree(tiny_run, run)  # an earlier run of train: 5 steps
    kept = plant(run)
    config = _train_config(tmp_path, tiny_model_dir, str(run), steps=2)
    assert cli(capsys, "train", "--config", config, "--force")[0] == 0
    assert_kept(kept)
    assert json.loads((run / "run.json").read_text())["steps"] == 2


@pytest.mark.parametrize("output_dir", [".", "data"])
def test_train_refuses_the_working_dir_or_the_dataset_folder(tiny_model_dir, tmp_path, capsys, monkeypatch,
                                                             output_dir):
    monkeypatch.chdir(tmp_path)
    config = _train_config(tmp_path, tiny_model_dir, output_dir)
    before = sorted(tmp_path.rglob("*"))
    code, err = cli(capsys, "train", "--config", config, "--force")
    assert code == 2
    one_error_line(err, f"train: error: {output_dir}: output_dir:")
    assert sorted(tmp_path.rglob("*")) == before


def test_train_refuses_a_folder_whose_readme_it_would_replace(tiny_model_dir, tmp_path, capsys):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("my project\n")
    config = _train_config(tmp_path, tiny_model_dir, str(project))
    for extra in ([], ["--force"]):
        code, err = cli(capsys, "train", "--config", config, *extra)
        assert code == 2
        one_error_line(err, "holds README.md, which train did not write")
    assert (project / "README.md").read_text() == "my project\n" and sorted(os.listdir(project)) == ["README.md"]


# --- render-skill and init-config (the other verbs with --out and --force) ---------------------------------------


def test_render_skill_force_keeps_a_file_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "skill"
    out.mkdir()
    (out / "SKILL.md").write_text("hand-written\n")
    (out / "mine.txt").write_text("mine\n")
    code, err = cli(capsys, "render-skill", "--out", out, "--force")
    assert code == 2
    one_error_line(err, "holds files render-skill did not write (mine.txt)")
    assert (out / "SKILL.md").read_text() == "hand-written\n" and (out / "mine.txt").read_text() == "mine\n"


def test_init_config_out_dot_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = cli(capsys, "init-config", "--gpu", "cpu", "--out", ".", "--force")
    assert code == 2
    one_error_line(err, "init-config: error: .: is a folder; give a file name")
    assert list(tmp_path.iterdir()) == []
