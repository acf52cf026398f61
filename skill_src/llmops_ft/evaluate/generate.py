"""One generation interface over every export kind: a run dir or adapter (base + LoRA), a merged / HF folder,
an embedded model name, or a GGUF file (llama.cpp). Greedy decoding, stopping at the end-of-turn token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

KINDS = ("run", "adapter", "merged", "gguf", "hf")


@dataclass
class Generation:
    """One greedy answer."""

    text: str
    token_ids: list[int]
    stopped: bool  # ended at an end-of-turn token (False: cut at max_new_tokens)
    prompt_tokens: int


def model_kind(ref: str) -> str:
    """Which kind of model ``ref`` names (see KINDS); a UserError says what a path is missing."""
    path = Path(ref)
    if path.is_file():
        if path.suffix == ".gguf":
            return "gguf"
        raise UserError("not a model: expected a .gguf file or a folder", file=ref)
    if path.is_dir():
        if (path / "run.json").is_file():
            return "run"
        if (path / "adapter_config.json").is_file():
            return "adapter"
        if (path / "config.json").is_file():
            return "merged"
        if list(path.glob("*.gguf")):
            return "gguf"
        raise UserError("folder holds no run.json, adapter_config.json, config.json or .gguf file", file=ref)
    return "hf"  # an embedded model name or a hub id: resolve_model decides


def gguf_file(ref: str) -> Path:
    """The GGUF file ``ref`` names: the file itself, or the only .gguf in a folder."""
    path = Path(ref)
    if path.is_file():
        return path
    files = sorted(path.glob("*.gguf"))
    if len(files) > 1:
        names = ", ".join(f.name for f in files)
        raise UserError(f"folder holds several GGUF files ({names}); pass one of them", file=ref)
    return files[0]


def open_model(
    ref: str, *, base: str | None = None, batch_size: int = 8, n_ctx: int = 4096, logits_all: bool = False
):
    """Load ``ref`` for generation; returns an HFModel or a LlamaCppModel (both: prompt_ids, generate_ids, decode).

    A run dir / adapter is merged into its base in float32 in memory: the same function as the PEFT model, and
    generation runs at the speed of a plain model.
    """
    kind = model_kind(ref)
    if kind == "gguf":
        from .llama_engine import LlamaCppModel

        return LlamaCppModel(gguf_file(ref), n_ctx=n_ctx, logits_all=logits_all)
    from ..export.adapter import Run, load_run, load_tokenizer, load_tuned
    from ..models import resolve_model
    from .hf_engine import HFModel

    if kind in ("run", "adapter"):
        run = load_run(ref)
        if base:
            run = Run(path=run.path, adapter_dir=run.adapter_dir, base_model=resolve_model(base), info=run.info)
        model = load_tuned(run, "float32").merge_and_unload()
        return HFModel(model, load_tokenizer(run.adapter_dir), kind=kind, source=ref, batch_size=batch_size)
    import torch
    from transformers import AutoModelForCausalLM

    folder = resolve_model(ref) if kind == "hf" else ref
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return HFModel(model, load_tokenizer(folder), kind=kind, source=ref, batch_size=batch_size)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def generate(model, conversations: list[list[dict[str, str]]], max_new_tokens: int = 64) -> list[Generation]:
    """Greedy answers to each conversation (prompt = the conversation + the assistant generation prompt)."""
    prompts = [model.prompt_ids(conversation) for conversation in conversations]
    outputs = model.generate_ids(prompts, max_new_tokens)
    return [
        Generation(model.decode(ids), ids, stopped, len(prompt))
        for prompt, (ids, stopped) in zip(prompts, outputs, strict=True)
    ]
