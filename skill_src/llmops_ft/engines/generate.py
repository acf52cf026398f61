"""One generation interface over every export kind: a run dir or adapter (base + LoRA), a merged / HF folder,
an embedded model name, or a GGUF file (llama.cpp). Greedy decoding, stopping at the end-of-turn token.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
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


def model_kind(ref: str, field: str | None = None) -> str:
    """Which kind of model ``ref`` names (see KINDS); a UserError says what a path is missing."""
    path = Path(ref)
    if path.is_file():
        if path.suffix == ".gguf":
            return "gguf"
        raise UserError("not a model: expected a .gguf file or a folder", file=ref, field=field)
    if path.is_dir():
        if (path / "run.json").is_file():
            return "run"
        if (path / "adapter_config.json").is_file():
            return "adapter"
        if (path / "config.json").is_file():
            return "merged"
        if list(path.glob("*.gguf")):
            return "gguf"
        raise UserError("folder holds no run.json, adapter_config.json, config.json or .gguf file", file=ref,
                        field=field)
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
    ref: str, *, base: str | None = None, batch_size: int = 8, n_ctx: int = 4096, logits_all: bool = False,
    trust_remote_code: bool = False, field: str | None = None,
):
    """Load ``ref`` for generation; returns an HFModel or a LlamaCppModel (both: prompt_ids, generate_ids, decode).

    A run dir / adapter is merged into its base in float32 in memory: the same function as the PEFT model, and
    generation runs at the speed of a plain model. Model repository code runs only with ``trust_remote_code``
    (the command line's --trust-remote-code, never a run's own record). ``field`` (the flag that named ``ref``)
    goes into the one-line error of a model that cannot be loaded.
    """
    kind = model_kind(ref, field)
    if kind == "gguf":
        from .llama import LlamaCppModel

        return LlamaCppModel(gguf_file(ref), n_ctx=n_ctx, logits_all=logits_all)
    import torch

    from .hf import HFModel
    from .models import load_causal_lm, resolve_model
    from .runs import load_run, load_tokenizer, load_tuned, trust_note

    if kind in ("run", "adapter"):
        run = load_run(ref, trust_remote_code=trust_remote_code, field=field)
        if note := trust_note(run):
            print(f"note: {note}", file=sys.stderr, flush=True)
        if base:
            run = replace(run, base_model=resolve_model(base, field="--base"))
        model = load_tuned(run, "float32").merge_and_unload()
        tokenizer = load_tokenizer(run.adapter_dir, trust_remote_code)
        return HFModel(model, tokenizer, kind=kind, source=ref, batch_size=batch_size)
    folder = resolve_model(ref, field) if kind == "hf" else ref
    if kind == "merged":
        from .model_files import check_model_folder

        check_model_folder(Path(folder), weights=True, tokenizer=True)
    model = load_causal_lm(folder, field=field, trust_remote_code=trust_remote_code, dtype=torch.float32).eval()
    return HFModel(model, load_tokenizer(folder, trust_remote_code), kind=kind, source=ref, batch_size=batch_size)


def generate(model, conversations: list[list[dict[str, str]]], max_new_tokens: int = 64) -> list[Generation]:
    """Greedy answers to each conversation (prompt = the conversation + the assistant generation prompt)."""
    prompts = [model.prompt_ids(conversation) for conversation in conversations]
    outputs = model.generate_ids(prompts, max_new_tokens)
    return [
        Generation(model.decode(ids), ids, stopped, len(prompt))
        for prompt, (ids, stopped) in zip(prompts, outputs, strict=True)
    ]
