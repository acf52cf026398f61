"""Loss / perplexity of reference answers (generic data; Task API data is scored by llmops_ft.taskapi.score)."""

from __future__ import annotations

import math
from typing import Any

from ..data.examples import Example
from ..engines.sequences import common_prefix


def answer_ids(model, example: Example) -> tuple[list[int], int]:
    """(ids of prompt + reference answer, index of the first answer token) in ``model``'s own tokenization.

    Chat rows: the conversation rendered with the answer, split where the generation prompt ends; text rows
    (no prompt): every token but the first is scored.
    """
    if not example.prompt:
        return model.text_ids(example.target or ""), 1
    prompt = model.prompt_ids(example.prompt)
    full = model.tokenize(model.render(example.prompt + [{"role": "assistant", "content": example.target}],
                                       add_generation_prompt=False))
    # a template may render the answer turn differently from its generation prompt: score after the shared part
    return full, max(common_prefix(full, prompt), 1)


def answer_loss(model, examples: list[Example]) -> dict[str, Any]:
    """Mean token cross-entropy of the reference answers (chat: assistant turn only) and its perplexity."""
    import numpy as np

    total, count = 0.0, 0
    for example in examples:
        ids, start = answer_ids(model, example)
        if start >= len(ids):
            continue
        logits = model.logits(ids).astype(np.float64)
        shifted = logits[start - 1 : len(ids) - 1]
        shifted -= shifted.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        targets = np.asarray(ids[start:])
        total -= float(log_probs[np.arange(len(targets)), targets].sum())
        count += len(targets)
    loss = total / count if count else float("nan")
    return {"loss": loss, "perplexity": math.exp(loss) if count else float("nan"), "tokens": count,
            "n": len(examples)}
