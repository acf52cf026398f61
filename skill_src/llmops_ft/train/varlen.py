"""Padding-free attention without FlashAttention: SDPA run once per packed sequence.

Padding-free batches hold several examples in one row, with position_ids restarting at 0 for each. FlashAttention's
varlen kernels keep them apart at no extra cost; SDPA and eager attention (CPU, Apple, GPUs without flash-attn)
get a dense block-diagonal mask instead, so every example still pays attention over the whole flattened row: on
CPU that quadratic cost eats most of what dropping the padding saved. This attention function splits the row
where position_ids restart and runs causal SDPA on each example alone (sum of L_i^2, not (sum of L_i)^2), and its
mask function builds no mask for such rows. Anything else (padded batches, generation with a KV cache) goes to
transformers' own SDPA path unchanged.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

NAME = "sdpa_varlen"


def varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                     scaling: float | None = None, position_ids: Any = None, **kwargs: Any) -> tuple[Any, None]:
    """transformers attention interface: causal SDPA per example of a flattened row, else plain SDPA."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    flattened = (attention_mask is None and position_ids is not None and query.shape[0] == 1
                 and query.shape[2] > 1 and key.shape[2] == query.shape[2])
    if not flattened:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    bounds = [*starts, query.shape[2]]
    parts = [
        sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None, dropout=dropout,
                               scaling=scaling, is_causal=True)[0]
        for a, b in pairwise(bounds)
    ]
    return torch.cat(parts, dim=1), None


def varlen_mask(*, attention_mask: Any = None, **kwargs: Any) -> Any:
    """No mask for rows without padding (causality comes from is_causal per example); SDPA's mask otherwise."""
    from transformers.masking_utils import sdpa_mask

    return None if attention_mask is None else sdpa_mask(attention_mask=attention_mask, **kwargs)


def use_varlen_attention(model: Any) -> bool:
    """Switch ``model`` (sdpa or eager attention) to per-example SDPA; False when it already has a varlen kernel."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    current = getattr(model.config, "_attn_implementation", None) or "sdpa"
    if current not in ("sdpa", "eager"):
        return False  # flash_attention_* / flex / kernels keep examples apart themselves
    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, varlen_mask)
    model.set_attn_implementation(NAME)
    return True
