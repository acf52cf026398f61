"""Shared fixtures: the ../shared fixtures folder, the embedded SmolLM2 folder and a tiny random Llama."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared beside the checkout (datasets, Unsloth docs, seed lesson): read there, never copied."""
    assert SHARED.is_dir(), f"../shared must sit beside the checkout ({SHARED.name} missing)"
    return SHARED


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The embedded SmolLM2-135M-Instruct as a cached HF folder."""
    from llmops_ft.engines.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A tiny random Llama (hidden 64, 2 layers) with SmolLM2's tokenizer and chat template."""
    from llmops_ft.engines.models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The package's wheel, built as a user's pip builds it from a clone (no editable install).

    Built from a copy of the files git would commit (symlinks kept), so a stale ``build/`` folder here cannot leak
    old files into it.
    """
    import shutil
    import subprocess
    import sys

    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    src = tmp_path_factory.mktemp("clone")
    for name in filter(None, listed):
        path, dest = REPO / name, src / name
        if path.is_symlink() or path.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest, follow_symlinks=False)
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheels = sorted(out.glob("llmops_fine_tuner-*.whl"))
    assert len(wheels) == 1, [p.name for p in out.iterdir()]
    return wheels[0]
