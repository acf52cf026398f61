"""Peak training memory of a LoRA/QLoRA run, term by term.

Weights: 16-bit (or 32-bit on CPU) as loaded, or NF4 for QLoRA: 0.5 byte per parameter plus bitsandbytes'
double-quantized block constants (one 8-bit absmax per 64 weights, one fp32 per 256 blocks). Embeddings, an
untied lm_head and norms stay 16-bit. LoRA adapters are fp32 (peft upcasts them): r x (in + out) per targeted
linear. Gradients exist only for the adapters; the optimizer keeps its states for them alone.

Activations per token and layer, with a memory-efficient attention (no seq^2 term): the block input and the
attention norm's output (h each), q, k and v (q + 2 kv), the attention output (q), the residual and the MLP
norm's output (h each), and the MLP's intermediate tensors (gate, up, their product: 3 i; 2 i for a non-gated
MLP). Gradient checkpointing keeps only each block's input (h) plus one block recomputed at a time; Unsloth's
offloaded checkpointing moves those inputs to CPU RAM, leaving about one block's activations on the GPU.

Logits: Unsloth's fused cross-entropy computes the loss chunk by chunk and sizes the chunks to the free memory,
so it is counted as one small chunk; otherwise logits are materialised (16-bit logits, fp32 copy, fp32 log-softmax
and its gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .architectures import Architecture

GIB = 2**30
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
LORA_PARAM_BYTES = 4  # fp32 adapters
FUSED_CE_CHUNK_BYTES = 0.25 * GIB  # one chunk: Unsloth sizes its chunks to the memory left free
CUDA_RUNTIME_BYTES = 0.5 * GIB  # CUDA context and cuBLAS workspace
CPU_RUNTIME_BYTES = 1.5 * GIB  # the Python process: torch, transformers, tokenizer, dataset

# Optimizer state bytes per trainable parameter.
OPTIMIZER_STATE_BYTES = {
    "adamw_torch": 8, "adamw_torch_fused": 8, "paged_adamw_32bit": 8,  # two fp32 moments
    "adamw_8bit": 2, "adamw_bnb_8bit": 2, "paged_adamw_8bit": 2,  # two 8-bit moments (+ tiny block constants)
    "lion_32bit": 4, "paged_lion_32bit": 4, "lion_8bit": 1, "paged_lion_8bit": 1,  # one moment
    "adafactor": 0, "sgd": 0,  # factored second moment (negligible); plain SGD keeps none
}
EIGHT_BIT_OPTIMIZERS = {"adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "lion_8bit", "paged_lion_8bit"}


@dataclass(frozen=True)
class Settings:
    """What the memory depends on besides the architecture."""

    batch: int
    seq: int
    load_in_4bit: bool
    weight_bytes: int  # 2 (fp16/bf16) or 4 (fp32) for unquantized weights
    activation_bytes: int
    lora_r: int
    target_modules: tuple[str, ...]
    optim: str
    checkpointing: str  # none | standard | offload
    fused_cross_entropy: bool
    device: str  # cuda | cpu
    notes: list[str] = field(default_factory=list, compare=False)


def lora_params(arch: Architecture, r: int, targets: tuple[str, ...]) -> tuple[int, list[str]]:
    """(LoRA parameters, target names this architecture lacks): r x (in + out) per targeted linear per block."""
    linears = arch.linears()
    missing = [name for name in targets if name not in linears]
    per_block = sum(r * (fan_in + fan_out) for name, (fan_in, fan_out) in linears.items() if name in targets)
    return arch.layers * per_block, missing


def block_activation_elements(arch: Architecture, settings: Settings) -> int:
    """Elements one block keeps per token for its backward pass (see the module docstring)."""
    mlp = (3 if arch.gated_mlp else 2) * arch.intermediate
    lora_inner = settings.lora_r * sum(1 for name in settings.target_modules if name in arch.linears())
    return 4 * arch.hidden + 2 * arch.q_dim + 2 * arch.kv_dim + mlp + lora_inner


def activation_bytes(arch: Architecture, settings: Settings, checkpointing: str) -> float:
    """Activation memory for ``checkpointing`` = none | standard | offload."""
    tokens = settings.batch * settings.seq
    block = block_activation_elements(arch, settings) * settings.activation_bytes * tokens
    # the hidden-state gradient flowing back and the block output being formed: 2 h per token
    stream = 2 * arch.hidden * settings.activation_bytes * tokens
    if checkpointing == "none":
        return arch.layers * block + stream
    if checkpointing == "standard":
        return arch.layers * arch.hidden * settings.activation_bytes * tokens + block + stream
    return block + stream


def logits_bytes(arch: Architecture, settings: Settings) -> float:
    """Memory of the logits and the loss over them."""
    elements = settings.batch * settings.seq * arch.vocab
    if settings.fused_cross_entropy:
        return min(elements * 16, FUSED_CE_CHUNK_BYTES)
    upcast = 4 if settings.activation_bytes < 4 else 0  # fp32 copy of 16-bit logits for the loss
    return elements * (settings.activation_bytes + upcast + 8)


def estimate(arch: Architecture, settings: Settings) -> dict[str, float]:
    """Peak memory in bytes, term by term; ``total`` sums the terms (the alternatives are for reading only)."""
    trainable, _missing = lora_params(arch, settings.lora_r, settings.target_modules)
    if settings.load_in_4bit:
        sixteen_bit = arch.embedding_params() + arch.other_params()
        weights = arch.linear_params() * NF4_BYTES_PER_PARAM + sixteen_bit * settings.weight_bytes
        # one block weight dequantized at a time for the matmul
        dequant = max(fan_in * fan_out for fan_in, fan_out in arch.linears().values()) * settings.weight_bytes
    else:
        weights, dequant = arch.total_params() * settings.weight_bytes, 0.0
    terms = {
        "weights": weights,
        "lora_params": trainable * LORA_PARAM_BYTES,
        "gradients": trainable * LORA_PARAM_BYTES,
        "optimizer": trainable * OPTIMIZER_STATE_BYTES[settings.optim],
        "activations": activation_bytes(arch, settings, settings.checkpointing),
        "logits": logits_bytes(arch, settings),
        "runtime": (CUDA_RUNTIME_BYTES + dequant) if settings.device == "cuda" else CPU_RUNTIME_BYTES,
    }
    terms["total"] = sum(terms.values())
    return terms


def largest(fits, start: int, limit: int, step: int = 1) -> int | None:
    """The largest multiple of ``step`` in [start, limit] for which ``fits(value)`` holds (monotone), or None."""
    if not fits(start):
        return None
    low, high = start, start
    while high < limit and fits(min(high * 2, limit)):
        low = high = min(high * 2, limit)
    if high >= limit:
        return limit
    high = min(high * 2, limit)  # fits(low) is true, fits(high) is false
    while high - low > step:
        middle = (low + high) // 2 // step * step
        if middle <= low:
            break
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low

