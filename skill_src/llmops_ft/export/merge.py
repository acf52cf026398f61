"""Merge the adapter into a full-precision copy of the base and save it in 16-bit (safetensors + tokenizer).

The merge always happens on float weights: a QLoRA run's 4-bit base is reloaded (or dequantized) first, since
folding a LoRA delta into 4-bit weights would requantize it away. With Unsloth on CUDA the same result comes
from ``save_pretrained_merged(save_method="merged_16bit")``; elsewhere PEFT's ``merge_and_unload`` does it.
"""

from __future__ import annotations

from pathlib import Path

from ..engines.runs import Run, load_tokenizer, load_tuned
from .adapter import model_card

MERGED_DTYPES = ("float16", "bfloat16")


def merged_dtype(run: Run) -> str:
    """16-bit type of the merged weights: bfloat16 when the run trained in bf16 on a GPU, float16 otherwise.

    A CPU run under bf16 autocast trained over float32 base weights; float16 keeps three more mantissa bits of
    them than bfloat16 (saved as bfloat16, the embedded model's f16 GGUF fell outside its KL bounds).
    """
    precision = run.info.get("precision") or {}
    trained = str(precision.get("dtype") or "")
    on_cpu = (run.info.get("hardware") or {}).get("device") == "cpu"
    return "bfloat16" if (precision.get("bf16") or trained == "bfloat16") and not on_cpu else "float16"


def unsloth_merge_usable(run: Run) -> bool:
    """Unsloth's own merged_16bit save applies: an unsloth-trained run, unsloth importable, a CUDA device."""
    if run.backend != "unsloth":
        return False
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("unsloth") is not None


def merge_run(run: Run, out: Path, dtype: str | None = None):
    """Write the merged 16-bit model + tokenizer + card to ``out``; return (merged fp32 model, method, dtype).

    The returned model holds exactly the weights that were saved (16-bit values, upcast to float32), so a
    reload from ``out`` must reproduce its logits.
    """
    import torch

    dtype = dtype or merged_dtype(run)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(run.adapter_dir)
    if unsloth_merge_usable(run):
        method = _unsloth_merge(run, out, tokenizer)
        from transformers import AutoModelForCausalLM

        merged = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    else:
        method = "peft merge_and_unload (float32 base, saved as " + dtype + ")"
        merged = load_tuned(run, "float32").merge_and_unload()
        # Cast the parameters only: module.to() would also round buffers such as the rotary inv_freq, and
        # the in-memory model would then differ from what a reload computes.
        _cast_parameters(merged, getattr(torch, dtype))
        merged.config.dtype = dtype
        merged.save_pretrained(str(out), safe_serialization=True)
        tokenizer.save_pretrained(str(out))
        _cast_parameters(merged, torch.float32)
    merged.eval()
    (out / "README.md").write_text(model_card(run, f"merged {dtype}"), encoding="utf-8")
    return merged, method, dtype


def _unsloth_merge(run: Run, out: Path, tokenizer) -> str:  # pragma: no cover - needs CUDA
    """Unsloth's merged_16bit save (reloads the base in 16-bit, merges, writes safetensors)."""
    from unsloth import FastLanguageModel

    model, _ = FastLanguageModel.from_pretrained(str(run.adapter_dir), load_in_4bit=False)
    model.save_pretrained_merged(str(out), tokenizer, save_method="merged_16bit")
    return "unsloth save_pretrained_merged(merged_16bit)"



def _cast_parameters(model, dtype) -> None:
    """Cast every parameter (tied ones once) to ``dtype`` in place, leaving buffers as they are."""
    import torch

    with torch.no_grad():
        for param in model.parameters():
            param.data = param.data.to(dtype)
