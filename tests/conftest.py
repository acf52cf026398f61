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
    from llmops_ft.models import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smollm2_dir) -> Path:
    """A tiny random Llama (hidden 64, 2 layers) with SmolLM2's tokenizer and chat template."""
    from llmops_ft.models import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")
