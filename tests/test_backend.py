"""One backend decision (issue 11): plan and train both ask plan.backend.choose_backend, which imports unsloth to
see whether it works; the plan's numbers are for the backend that will run; a config that asks for unsloth when
it cannot import stops with the import error in one line (auto falls back to hf, saying why).

A real way to make unsloth fail to import: UNSLOTH_DISABLE_CPU_FALLBACK=1 makes it raise when there is no GPU.
On a CUDA machine it still imports, so each test asserts what is right for the hardware it runs on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO

CPU_SMOKE = REPO / "examples" / "configs" / "cpu_smoke.yaml"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _verb(verb: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / f"{verb}.py"), *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=900)


@pytest.fixture(scope="module")
def no_cpu_fallback(tmp_path_factory) -> dict[str, str]:
    """An environment where unsloth refuses a machine without a GPU, with its own answer cache."""
    return {"UNSLOTH_DISABLE_CPU_FALLBACK": "1", "LLMOPS_FT_CACHE": str(tmp_path_factory.mktemp("cache")),
            "HF_HUB_OFFLINE": "1"}


def test_hf_is_chosen_without_importing_anything():
    from llmops_ft.plan.backend import choose_backend

    assert choose_backend("hf") == ("hf", None) and "unsloth" not in sys.modules


def test_the_answer_is_an_import_and_is_kept(monkeypatch, tmp_path):
    from llmops_ft.plan import backend

    monkeypatch.setenv("UNSLOTH_DISABLE_CPU_FALLBACK", "1")
    monkeypatch.setenv("LLMOPS_FT_CACHE", str(tmp_path))
    monkeypatch.setattr(backend, "_ANSWERS", {})
    error = backend.unsloth_import_error()  # a fresh interpreter imports unsloth: this process stays unpatched
    assert "unsloth" not in sys.modules
    if _cuda():
        assert error is None
    else:
        assert error.startswith("NotImplementedError:") and "GPU" in error
    started = time.perf_counter()
    assert backend.unsloth_import_error() == error and time.perf_counter() - started < 0.5  # this process
    monkeypatch.setattr(backend, "_ANSWERS", {})
    assert backend.unsloth_import_error() == error and time.perf_counter() - started < 1.0  # on disk
    stored = json.loads((tmp_path / "unsloth-import.json").read_text())
    assert [entry["error"] for entry in stored.values()] == [error]
    monkeypatch.delenv("UNSLOTH_DISABLE_CPU_FALLBACK")
    assert backend.fingerprint() not in stored  # another environment is another question


def test_plan_and_train_agree_on_the_backend(no_cpu_fallback, tmp_path):
    """backend auto: the plan and train's dry run name the same backend, and the plan notes why."""
    plan = _verb("plan", "--config", str(CPU_SMOKE), "--set", "backend=auto", "--json", env=no_cpu_fallback)
    assert plan.returncode == 0, plan.stderr[-2000:]
    planned = json.loads(plan.stdout)
    dry = _verb("train", "--config", str(CPU_SMOKE), "--dry-run", "--json", "--set", "backend=auto",
                "--set", f"output_dir={tmp_path / 'r'}",
                "--set", f"dataset.path={REPO / 'examples' / 'task_api' / 'train.jsonl'}", env=no_cpu_fallback)
    assert dry.returncode == 0, dry.stderr[-2000:]
    trained = json.loads(dry.stdout)
    expected = "unsloth" if _cuda() else "hf"
    assert planned["backend"] == trained["backend"] == expected
    if expected == "hf":
        assert any("unsloth does not import here (NotImplementedError" in n for n in planned["notes"])
        assert any("unsloth does not import here" in n for n in trained["notes"])


def test_asking_for_unsloth_when_it_cannot_import_stops_with_its_error(no_cpu_fallback, tmp_path):
    out = tmp_path / "run"
    args = ["--config", str(CPU_SMOKE), "--set", "backend=unsloth", "--set", f"output_dir={out}",
            "--set", f"dataset.path={REPO / 'examples' / 'task_api' / 'train.jsonl'}"]
    for verb, extra in (("plan", []), ("train", ["--dry-run"])):
        proc = _verb(verb, *args, *extra, env=no_cpu_fallback)
        if _cuda():  # unsloth imports on a GPU whatever the variable says
            assert proc.returncode == 0 and "does not import" not in proc.stderr, proc.stderr[-2000:]
            continue
        errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
        assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert errors[0].startswith(f"{verb}: error: backend: the config asks for unsloth, and it does not import "
                                    "here: NotImplementedError: Unsloth cannot find any torch accelerator")
    assert not out.exists()  # stopped before writing anything


def test_planning_for_another_machine_says_what_it_assumed():
    """plan --gpu NAME for a GPU this machine does not have cannot import unsloth there: it says what it assumed."""
    from llmops_ft.config import GPUS, detect_cuda, load_config
    from llmops_ft.plan import make_plan

    here = (detect_cuda() or {}).get("name")
    other = next(name for name in GPUS if name not in ("cpu", here))
    config = load_config(str(CPU_SMOKE), ["backend=auto"])
    plan = make_plan(config, gpu=other)
    assert plan["backend"] == "hf" and any("planned as hf (the larger footprint)" in n for n in plan["notes"])
    asked = make_plan({**config, "backend": "unsloth"}, gpu=other)
    assert asked["backend"] == "unsloth" and any("planned for another machine" in n for n in asked["notes"])
    assert asked["memory_gib"]["total"] <= plan["memory_gib"]["total"]  # unsloth's fused loss needs less
