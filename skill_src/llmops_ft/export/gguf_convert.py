"""Our own HF -> GGUF converter for Llama-family models (Llama, Mistral, Qwen2, Qwen3, SmolLM2), on the `gguf` package.

Output types f32 / f16 / bf16 / q8_0 (numpy quantization from `gguf.quants`); K-quants are made from the f16/bf16
file by llama.cpp's own quantizer (see quantize.py). Tensors are streamed: the header and tensor index are
written first, then each tensor is read from safetensors, transformed and written, so memory stays at one
tensor at a time.

What a correct conversion needs beyond renaming tensors:
- llama.cpp's `llama` architecture applies rotary embeddings to interleaved pairs, while HF Llama/Mistral
  checkpoints rotate the two halves of each head: the rows of q_proj and k_proj (and their biases) are
  permuted per head. Qwen2/Qwen3 run in llama.cpp with the half-split ("neox") layout: no permutation.
- tied embeddings (SmolLM2, Qwen small models): the output tensor is omitted and llama.cpp reuses token_embd.
- Llama 3.1+ "llama3" rope scaling becomes a `rope_freqs` tensor of per-frequency divisors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import read_json_file
from .gguf_vocab import read_vocab, write_vocab

# HF architecture -> (GGUF architecture, permute q/k rows for llama.cpp's rope layout)
ARCHITECTURES: dict[str, tuple[str, bool]] = {
    "LlamaForCausalLM": ("llama", True),
    "MistralForCausalLM": ("llama", True),
    "Qwen2ForCausalLM": ("qwen2", False),
    "Qwen3ForCausalLM": ("qwen3", False),
}
OUTTYPES = ("f32", "f16", "bf16", "q8_0")
# Approximate bytes per weight of each GGUF type (K-quant mixes included) for the free-disk preflight.
BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 1.07, "q5_k_m": 0.72, "q4_k_m": 0.62}
Q8_0_BLOCK = 32


@dataclass
class Hparams:
    """The numbers a Llama-family GGUF header needs, read from config.json."""

    arch: str
    permute: bool
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    vocab_size: int
    rms_eps: float
    rope_theta: float
    rope: dict[str, Any]
    tied: bool


@dataclass
class ConvertReport:
    """What the converter did: per-type tensor counts, fallbacks, skipped source tensors."""

    path: str
    outtype: str
    arch: str
    n_tensors: int = 0
    bytes: int = 0
    types: dict[str, int] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    tokenizer_pre: str = ""
    add_bos: bool = False


def read_hparams(model_dir: Path) -> Hparams:
    """Parse config.json; a UserError names what the built-in converter cannot do and what would, or the field of
    a damaged or incomplete config.json."""
    path = model_dir / "config.json"
    cfg = read_json_file(path)
    if not isinstance(cfg, dict):
        raise UserError("expected a JSON object", file=str(path))
    archs = cfg.get("architectures") or [cfg.get("model_type", "?")]
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        raise UserError(f"expected a list of class names, got {archs!r}", file=str(path), field="architectures")
    if archs[0] not in ARCHITECTURES:
        raise UserError(
            f"architecture {archs[0]} ({cfg.get('model_type')}) is not supported by the built-in GGUF converter "
            f"(supported: {', '.join(ARCHITECTURES)}); install llama.cpp and run convert_hf_to_gguf.py on the "
            "--to merged export, or use Unsloth's save_pretrained_gguf on a CUDA machine",
            file=str(path), field="architectures",
        )
    arch, permute = ARCHITECTURES[archs[0]]

    def number(key: str, default: Any = None, kind: type = int) -> Any:
        return _config_number(cfg, path, key, default, kind)

    n_head = number("num_attention_heads")
    if n_head == 0:
        raise UserError("must be above 0", file=str(path), field="num_attention_heads")
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if not isinstance(rope, dict):
        raise UserError(f"expected an object, got {rope!r}", file=str(path), field="rope_parameters")
    rope = dict(rope)
    rope_theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "linear", "llama3"):
        raise UserError(
            f"rope scaling {rope_type!r} is not supported by the built-in GGUF converter (default, linear, llama3); "
            "convert the --to merged export with llama.cpp's convert_hf_to_gguf.py",
            file=str(path), field="rope_parameters.rope_type",
        )
    if not isinstance(rope_theta, (int, float)) or isinstance(rope_theta, bool):
        raise UserError(f"not a number ({rope_theta!r})", file=str(path), field="rope_theta")
    rope["rope_type"] = rope_type
    hidden = number("hidden_size")
    return Hparams(
        arch=arch,
        permute=permute,
        n_layer=number("num_hidden_layers"),
        n_embd=hidden,
        n_ff=number("intermediate_size"),
        n_head=n_head,
        n_head_kv=number("num_key_value_heads", n_head) or n_head,
        head_dim=number("head_dim", hidden // n_head) or hidden // n_head,
        n_ctx=number("max_position_embeddings", 2048),
        vocab_size=number("vocab_size"),
        rms_eps=number("rms_norm_eps", 1e-6, float),
        rope_theta=float(rope_theta),
        rope=rope,
        tied=bool(cfg.get("tie_word_embeddings", False)),
    )


def _config_number(cfg: dict[str, Any], path: Path, key: str, default: Any, kind: type) -> Any:
    """``cfg[key]`` (or ``default`` when absent), which must be a non-negative int (or number for float)."""
    value = default if cfg.get(key) is None else cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int) or value < 0:
        raise UserError(f"missing or not a {'number' if kind is float else 'whole number'} ({value!r}); "
                        "config.json is incomplete or damaged", file=str(path), field=key)
    return value


def rope_permute(weight, n_head: int):
    """Reorder each head's rows from HF's half-split rotary layout to llama.cpp's interleaved pairs."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def llama3_rope_factors(hp: Hparams):
    """Per-frequency divisors of Llama 3.1's rope scaling (long wavelengths slowed by `factor`, smooth between)."""
    import numpy as np

    rope = hp.rope
    factor, low, high = rope["factor"], rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / hp.rope_theta ** (np.arange(0, hp.head_dim, 2, dtype=np.float64) / hp.head_dim)
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            factors.append(1.0)
        elif wavelen > old_ctx / low:
            factors.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            factors.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.asarray(factors, dtype=np.float32)


def _tensor_files(model_dir: Path) -> dict[str, Path]:
    """HF tensor name -> safetensors file (single file or sharded index)."""
    index = model_dir / "model.safetensors.index.json"
    if index.is_file():
        spec = read_json_file(index)
        weight_map = spec.get("weight_map") if isinstance(spec, dict) else None
        if not isinstance(weight_map, dict):
            raise UserError("no weight_map: the index is incomplete", file=str(index), field="weight_map")
        return {name: model_dir / file for name, file in weight_map.items()}
    single = model_dir / "model.safetensors"
    if not single.is_file():
        raise UserError("no model.safetensors (or index) in the model folder", file=str(model_dir))
    from safetensors import safe_open

    with safe_open(str(single), framework="pt") as fh:
        return dict.fromkeys(fh.keys(), single)


@dataclass
class _Planned:
    hf_name: str | None  # None: a computed tensor (rope_freqs)
    name: str
    shape: tuple[int, ...]
    qtype: Any  # gguf.GGMLQuantizationType
    transform: str = ""  # "permute_q" | "permute_k" | ""


def _plan(hp: Hparams, files: dict[str, Path], outtype: str, report: ConvertReport) -> list[_Planned]:
    """Map every source tensor to its GGUF name, shape and storage type; list what is skipped and why."""
    import gguf
    from safetensors import safe_open

    arch_enum = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3}
    names = gguf.get_tensor_name_map(arch_enum[hp.arch], hp.n_layer)
    wide = {"f32": gguf.GGMLQuantizationType.F32, "f16": gguf.GGMLQuantizationType.F16,
            "bf16": gguf.GGMLQuantizationType.BF16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[outtype]
    plan: list[_Planned] = []
    unknown = []
    for hf_name, file in files.items():
        if hf_name.endswith("rotary_emb.inv_freq"):
            report.skipped.append(f"{hf_name}: recomputed by llama.cpp")
            continue
        if hf_name == "lm_head.weight" and hp.tied:
            report.skipped.append(f"{hf_name}: tied to the embeddings (llama.cpp reuses token_embd)")
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            unknown.append(hf_name)
            continue
        with safe_open(str(file), framework="pt") as fh:
            shape = tuple(fh.get_slice(hf_name).get_shape())
        qtype = wide if len(shape) > 1 else gguf.GGMLQuantizationType.F32
        if qtype == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % Q8_0_BLOCK:
            qtype = gguf.GGMLQuantizationType.F16
            report.fallbacks.append(f"{name}: row of {shape[-1]} not a multiple of {Q8_0_BLOCK}, kept f16")
        transform = ""
        if hp.permute and ".self_attn.q_proj." in hf_name:
            transform = "permute_q"
        elif hp.permute and ".self_attn.k_proj." in hf_name:
            transform = "permute_k"
        plan.append(_Planned(hf_name, name, shape, qtype, transform))
    if unknown:
        raise UserError(
            f"{len(unknown)} tensors have no GGUF name for {hp.arch} (e.g. {', '.join(sorted(unknown)[:3])}); "
            "convert the --to merged export with llama.cpp's convert_hf_to_gguf.py",
            field="tensors",
        )
    if not hp.tied and not any(p.name == "output.weight" for p in plan):
        hp.tied = True  # no lm_head saved: the checkpoint relies on tied embeddings
    if hp.rope["rope_type"] == "llama3":
        plan.append(_Planned(None, "rope_freqs.weight", (hp.head_dim // 2,), gguf.GGMLQuantizationType.F32))
    plan.sort(key=lambda p: _order(p.name))
    return plan


def _order(name: str) -> tuple[int, int, str]:
    """llama.cpp-like tensor order: globals first, then blocks by index."""
    if name.startswith("blk."):
        return (1, int(name.split(".")[1]), name)
    return (0, 0, name)


def _tensor_data(plan: _Planned, files: dict[str, Path], hp: Hparams):
    """The numpy array of one planned tensor, transformed and quantized to its storage type."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    if plan.hf_name is None:
        return llama3_rope_factors(hp)
    with safe_open(str(files[plan.hf_name]), framework="pt") as fh:
        data = fh.get_tensor(plan.hf_name).float().numpy()
    if plan.transform == "permute_q":
        data = rope_permute(data, hp.n_head)
    elif plan.transform == "permute_k":
        data = rope_permute(data, hp.n_head_kv)
    q = plan.qtype
    if q == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(data, dtype=np.float32)
    if q == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(data, dtype=np.float16)
    return gguf.quants.quantize(np.ascontiguousarray(data, dtype=np.float32), q)


def _write_header(writer, hp: Hparams, name: str, outtype: str) -> None:
    import gguf

    file_types = {"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                  "bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
    writer.add_type("model")
    writer.add_name(name)
    writer.add_file_type(file_types[outtype])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_vocab_size(hp.vocab_size)
    writer.add_context_length(hp.n_ctx)
    writer.add_embedding_length(hp.n_embd)
    writer.add_feed_forward_length(hp.n_ff)
    writer.add_block_count(hp.n_layer)
    writer.add_head_count(hp.n_head)
    writer.add_head_count_kv(hp.n_head_kv)
    writer.add_layer_norm_rms_eps(hp.rms_eps)
    writer.add_rope_freq_base(hp.rope_theta)
    writer.add_rope_dimension_count(hp.head_dim)
    if hp.head_dim != hp.n_embd // hp.n_head:
        writer.add_key_length(hp.head_dim)
        writer.add_value_length(hp.head_dim)
    if hp.rope["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(hp.rope["factor"]))


def convert(
    model_dir: str | Path, out_path: str | Path, outtype: str = "f16", name: str | None = None
) -> ConvertReport:
    """Convert the HF model folder ``model_dir`` to a GGUF file at ``out_path``."""
    import gguf
    import numpy as np

    model_dir, out_path = Path(model_dir), Path(out_path)
    if outtype not in OUTTYPES:
        raise UserError(f"the built-in converter writes {', '.join(OUTTYPES)}, not {outtype!r}", field="--quant")
    hp = read_hparams(model_dir)
    vocab = read_vocab(model_dir, hp.vocab_size)
    files = _tensor_files(model_dir)
    report = ConvertReport(path=str(out_path), outtype=outtype, arch=hp.arch, tokenizer_pre=vocab.pre,
                           add_bos=vocab.add_bos)
    plan = _plan(hp, files, outtype, report)

    writer = gguf.GGUFWriter(str(out_path), hp.arch)
    _write_header(writer, hp, name or model_dir.name, outtype)
    write_vocab(writer, vocab)
    for item in plan:
        nbytes = _nbytes(item)
        dtype = _np_dtype(item.qtype)
        shape = item.shape if dtype != np.uint8 else gguf.quant_shape_to_byte_shape(item.shape, item.qtype)
        writer.add_tensor_info(item.name, shape, dtype, nbytes, raw_dtype=item.qtype)
        report.types[item.qtype.name] = report.types.get(item.qtype.name, 0) + 1
        report.bytes += nbytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for item in plan:
        writer.write_tensor_data(_tensor_data(item, files, hp))
    writer.close()
    report.n_tensors = len(plan)
    return report


def _np_dtype(qtype):
    import gguf
    import numpy as np

    return {gguf.GGMLQuantizationType.F32: np.float32, gguf.GGMLQuantizationType.F16: np.float16}.get(qtype, np.uint8)


def _nbytes(item: _Planned) -> int:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[item.qtype]
    return math.prod(item.shape) // block * type_size


def estimate_bytes(n_params: int, quant: str) -> int:
    """Rough size of a GGUF of ``n_params`` weights in ``quant`` (for the free-disk preflight)."""
    return int(n_params * BYTES_PER_WEIGHT.get(quant, 2.0)) + (16 << 20)
