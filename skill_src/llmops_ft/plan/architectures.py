"""Model architectures: dimensions from a local config.json, or from a table of common models' public configs.

The table lets plan.py work offline for hub ids and drives the calibration against Unsloth's VRAM table.
Each entry holds public config.json facts (hidden size, layers, heads, kv heads, head dim, intermediate size,
vocabulary, tied embeddings) and the ``family`` that names its linear layers.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import UserError
from ..io import user_path


@dataclass(frozen=True)
class Architecture:
    """A decoder-only transformer's shape: enough to count its parameters, LoRA parameters and activations."""

    name: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    tied_embeddings: bool
    head_dim: int | None = None
    family: str = "llama"  # which linear layers a block has: llama | phi3 | falcon
    source: str = "table"
    match: tuple[str, ...] = field(default=(), compare=False)

    @property
    def q_dim(self) -> int:
        return self.heads * (self.head_dim or self.hidden // self.heads)

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * (self.head_dim or self.hidden // self.heads)

    def linears(self) -> dict[str, tuple[int, int]]:
        """Each linear layer of one block: module name -> (in_features, out_features)."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        if self.family == "phi3":
            return {"qkv_proj": (h, q + 2 * kv), "o_proj": (q, h), "gate_up_proj": (h, 2 * i), "down_proj": (i, h)}
        if self.family == "falcon":
            return {"query_key_value": (h, q + 2 * kv), "dense": (q, h),
                    "dense_h_to_4h": (h, i), "dense_4h_to_h": (i, h)}
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def gated_mlp(self) -> bool:
        return self.family != "falcon"

    def linear_params(self) -> int:
        """Parameters in the blocks' linear layers (what 4-bit quantization applies to)."""
        return self.layers * sum(fan_in * fan_out for fan_in, fan_out in self.linears().values())

    def embedding_params(self) -> int:
        """Input embeddings plus an untied lm_head: kept 16-bit under 4-bit quantization."""
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2)

    def other_params(self) -> int:
        """Norm weights (two per block and a final one): small, kept 16-bit."""
        return (2 * self.layers + 1) * self.hidden

    def total_params(self) -> int:
        return self.linear_params() + self.embedding_params() + self.other_params()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("match")
        data["params"] = self.total_params()
        return data


def _arch(name: str, match: tuple[str, ...], hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int,
          vocab: int, tied: bool, head_dim: int | None = None, family: str = "llama") -> Architecture:
    return Architecture(name, hidden, layers, heads, kv_heads, intermediate, vocab, tied, head_dim, family,
                        "table", match)


# Public config.json numbers. `match`: lower-case fragments of hub ids that name the model.
KNOWN: dict[str, Architecture] = {a.name: a for a in (
    _arch("smollm2-135m", ("smollm2-135m",), 576, 30, 9, 3, 1536, 49152, True),
    _arch("smollm2-360m", ("smollm2-360m",), 960, 32, 15, 5, 2560, 49152, True),
    _arch("smollm2-1.7b", ("smollm2-1.7b",), 2048, 24, 32, 32, 8192, 49152, True),
    _arch("llama-3.2-1b", ("llama-3.2-1b",), 2048, 16, 32, 8, 8192, 128256, True, 64),
    _arch("llama-3.2-3b", ("llama-3.2-3b",), 3072, 28, 24, 8, 8192, 128256, True, 128),
    _arch("llama-3.1-8b", ("llama-3.1-8b", "llama-3-8b", "llama3-8b"), 4096, 32, 32, 8, 14336,
          128256, False),
    _arch("llama-3.3-70b", ("llama-3.3-70b", "llama-3.1-70b", "llama-3-70b", "llama3-70b"), 8192, 80, 64, 8, 28672,
          128256, False),
    _arch("llama-3.1-405b", ("llama-3.1-405b",), 16384, 126, 128, 8, 53248, 128256, False),
    _arch("mistral-7b", ("mistral-7b",), 4096, 32, 32, 8, 14336, 32768, False),
    _arch("mistral-nemo-12b", ("mistral-nemo",), 5120, 40, 32, 8, 14336, 131072, False, 128),
    _arch("mistral-small-24b", ("mistral-small-24b", "mistral-small-3"), 5120, 40, 32, 8, 32768, 131072, False, 128),
    _arch("solar-10.7b", ("solar-10.7b",), 4096, 48, 32, 8, 14336, 32000, False),
    _arch("qwen2.5-0.5b", ("qwen2.5-0.5b",), 896, 24, 14, 2, 4864, 151936, True),
    _arch("qwen2.5-1.5b", ("qwen2.5-1.5b",), 1536, 28, 12, 2, 8960, 151936, True),
    _arch("qwen2.5-3b", ("qwen2.5-3b",), 2048, 36, 16, 2, 11008, 151936, True),
    _arch("qwen2.5-7b", ("qwen2.5-7b",), 3584, 28, 28, 4, 18944, 152064, False),
    _arch("qwen2.5-14b", ("qwen2.5-14b",), 5120, 48, 40, 8, 13824, 152064, False),
    _arch("qwen2.5-32b", ("qwen2.5-32b",), 5120, 64, 40, 8, 27648, 152064, False),
    _arch("qwen2.5-72b", ("qwen2.5-72b",), 8192, 80, 64, 8, 29568, 152064, False),
    _arch("gemma-2-2b", ("gemma-2-2b",), 2304, 26, 8, 4, 9216, 256000, True, 256),
    _arch("gemma-2-9b", ("gemma-2-9b",), 3584, 42, 16, 8, 14336, 256000, True, 256),
    _arch("gemma-2-27b", ("gemma-2-27b",), 4608, 46, 32, 16, 36864, 256000, True, 128),
    _arch("phi-3-mini", ("phi-3-mini", "phi-3.5-mini"), 3072, 32, 32, 32, 8192, 32064, False, None, "phi3"),
    _arch("phi-3-medium", ("phi-3-medium",), 5120, 40, 40, 10, 17920, 32064, False, None, "phi3"),
    _arch("phi-4", ("phi-4",), 5120, 40, 40, 10, 17920, 100352, False, None, "phi3"),
    _arch("falcon-40b", ("falcon-40b",), 8192, 60, 128, 8, 32768, 65024, True, 64, "falcon"),
)}

# model_type in config.json -> family; any other type is read as llama-like with a note.
_FAMILIES = {"llama": "llama", "mistral": "llama", "qwen2": "llama", "qwen3": "llama", "gemma": "llama",
             "gemma2": "llama", "gemma3_text": "llama", "phi3": "phi3", "falcon": "falcon", "olmo2": "llama",
             "granite": "llama", "cohere": "llama"}


def from_hf_config(config: dict[str, Any], name: str) -> Architecture:
    """An Architecture from a transformers config.json (text models; a nested text_config is used when present)."""
    config = config.get("text_config") or config
    model_type = str(config.get("model_type", ""))
    try:
        hidden = int(config["hidden_size"])
        heads = int(config["num_attention_heads"])
        return Architecture(
            name=name,
            hidden=hidden,
            layers=int(config["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(config.get("num_key_value_heads") or config.get("num_kv_heads") or heads),
            intermediate=int(config.get("intermediate_size") or config.get("ffn_hidden_size") or 4 * hidden),
            vocab=int(config["vocab_size"]),
            tied_embeddings=bool(config.get("tie_word_embeddings", True)),
            head_dim=int(config["head_dim"]) if config.get("head_dim") else None,
            family=_FAMILIES.get(model_type, "llama"),
            source="config.json" if model_type in _FAMILIES else f"config.json ({model_type!r} read as llama)",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"config.json lacks a readable {exc} for a decoder-only model", file=name) from None


def lookup(name: str) -> Architecture | None:
    """The table entry a model name or hub id refers to (longest matching fragment), or None."""
    if name in KNOWN:
        return KNOWN[name]
    text = name.lower().replace("_", "-")
    best: tuple[int, Architecture] | None = None
    for arch in KNOWN.values():
        for fragment in arch.match:
            if re.search(re.escape(fragment) + r"(?![0-9.])", text) and (best is None or len(fragment) > best[0]):
                best = (len(fragment), arch)
    return best[1] if best else None


def resolve_architecture(model_name: str) -> Architecture:
    """The architecture of ``model_name``: a local folder's config.json, else the built-in table.

    The embedded model is read from the table, so planning never converts it.
    """
    path = user_path(model_name)
    if (path / "config.json").is_file():
        try:
            data = json.loads((path / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read config.json: {exc}", file=str(path / "config.json")) from None
        return from_hf_config(data, model_name)
    found = lookup(model_name)
    if found is None:
        raise UserError(
            f"unknown architecture for {model_name!r}: give a local folder with config.json, or a model from the "
            f"built-in table ({', '.join(KNOWN)})",
            field="model.name",
        )
    return found
