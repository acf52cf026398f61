"""Token statistics with a model's chat template, and the assistant-token mask training uses.

"Trainable tokens" are the tokens of each assistant turn's content plus the end-of-turn marker the template
writes after it; everything else (system prompt, user turns, tool results, role headers) gets label -100.
The assistant spans come from the chat template itself, by rendering the chat prefix by prefix: the
characters between "chat so far + assistant header" and "chat including this turn" are the turn. This needs no
``{% generation %}`` markers in the template (SmolLM2's has none). The spans are mapped to tokens through the
fast tokenizer's character offsets, so a chat is tokenized once, and many chats in one batch call.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..errors import UserError
from .formats import RowError

Span = tuple[int, int]


def load_tokenizer(model: str, trust_remote_code: bool = False):
    """The fast tokenizer (with chat template) of ``model``: an embedded name, a local HF folder or a hub id.
    ``trust_remote_code`` comes from prep's command line only."""
    from transformers import AutoTokenizer

    from ..engines.models import resolve_model

    path = resolve_model(model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load the tokenizer: {exc}", file=model, field="--model") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise UserError("prep needs a fast (Rust) tokenizer for character offsets", file=model, field="--model")
    return tokenizer


def render_chat(tokenizer, messages: list[dict[str, Any]], tools: list | None = None) -> tuple[str, list[Span]]:
    """The chat rendered by the tokenizer's template, and the character span of each assistant turn.

    Raises :class:`RowError` when the template fails on the chat or does not render it prefix by prefix.
    """
    if not tokenizer.chat_template:
        raise UserError("the model's tokenizer has no chat template; use --format text or another model",
                        field="--model")
    try:
        full = _render(tokenizer, messages, tools)
        spans = []
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            head = _render(tokenizer, messages[:i], tools, add_generation_prompt=True)
            upto = full if i == len(messages) - 1 else _render(tokenizer, messages[: i + 1], tools)
            if not (full.startswith(head) and full.startswith(upto)):
                raise RowError(f"messages[{i}]: the chat template does not render this chat prefix by prefix, "
                               "so its assistant tokens cannot be told apart")
            # The template's separator after the end-of-turn marker (ChatML's "\n") is not the model's to learn.
            end = len(upto.rstrip())
            spans.append((len(head), max(len(head), end)))
    except RowError:
        raise
    except Exception as exc:  # jinja raises TemplateError, templates call raise_exception: the row is unusable
        raise RowError(f"chat template error: {exc}") from exc
    return full, spans


def _render(tokenizer, messages, tools, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def token_ranges(encoding, spans: Sequence[Span]) -> list[Span]:
    """Map character spans to [first, last+1) token index ranges of a tokenizers ``Encoding``."""
    ranges = []
    for start, end in spans:
        first = next((t for c in range(start, end) if (t := encoding.char_to_token(c)) is not None), None)
        last = next((t for c in range(end - 1, start - 1, -1) if (t := encoding.char_to_token(c)) is not None), None)
        if first is not None and last is not None:
            ranges.append((first, last + 1))
    return ranges


def assistant_token_mask(
    tokenizer, messages: list[dict[str, Any]], max_length: int | None = None, *, tools: list | None = None
) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` of a chat: labels are the ids on assistant tokens and -100 everywhere else.

    Both are cut to ``max_length`` when given. Training and prep use this same definition of trainable tokens.
    """
    text, spans = render_chat(tokenizer, messages, tools)
    encoding = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    input_ids = list(encoding.ids)
    labels = [-100] * len(input_ids)
    for first, last in token_ranges(encoding, spans):
        labels[first:last] = input_ids[first:last]
    if max_length is not None:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return input_ids, labels


def measure_batch(
    tokenizer, max_length: int, texts: list[str], spans: list[list[Span]] | None
) -> list[tuple[int, int]]:
    """``(tokens, trainable tokens within max_length)`` per text, from one batched tokenizer call.

    ``spans`` None means plain-text rows, counted as training feeds them: the tokenizer's own special tokens plus
    an end-of-sequence token, every token trainable. Pure and GIL-free in its heavy part (the Rust tokenizer),
    so it can run in a worker thread.
    """
    if spans is None:
        eos = tokenizer.eos_token_id
        encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = [len(e) + (eos is not None and (not e.ids or e.ids[-1] != eos)) for e in encodings]
        return [(n, min(n, max_length)) for n in lengths]
    encodings = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    out = []
    for encoding, row_spans in zip(encodings, spans, strict=True):
        length = len(encoding)
        cut = min(length, max_length)
        out.append((length, sum(max(0, min(last, cut) - first) for first, last in token_ranges(encoding, row_spans))))
    return out


class TokenStats:
    """Counts tokens and trainable tokens of prepared rows, in batches, and keeps what the report needs.

    ``submit`` tokenizes a batch in one worker thread while the caller goes on reading and checking rows: the
    tokenizer releases the GIL, so the two overlap on two cores without TOKENIZERS_PARALLELISM.
    """

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.lengths = array("q")
        self.trainable_total = 0
        self._executor = None

    def render(self, row: dict[str, Any]) -> tuple[str, list[Span] | None]:
        """The text a prepared row trains on and its assistant character spans (None for a text row)."""
        if "text" in row:
            return row["text"], None
        return render_chat(self.tokenizer, row["messages"], row.get("tools"))

    def submit(self, texts: list[str], spans: list[list[Span]] | None) -> Future:
        """Start measuring a batch in the worker thread; pass each result to :meth:`record` in order."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prep-tokens")
        return self._executor.submit(measure_batch, self.tokenizer, self.max_length, texts, spans)

    def measure(self, texts: list[str], spans: list[list[Span]] | None) -> list[tuple[int, int]]:
        """Measure and record a batch now."""
        measured = measure_batch(self.tokenizer, self.max_length, texts, spans)
        for length, trainable in measured:
            self.record(length, trainable)
        return measured

    def record(self, length: int, trainable: int) -> None:
        """Add one row's counts to the statistics."""
        self.lengths.append(length)
        self.trainable_total += trainable

    def close(self) -> None:
        """Stop the worker thread (pending batches are dropped)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def summary(self) -> dict[str, int]:
        """min / p50 / p95 / max of the token lengths (nearest rank), their total and the trainable total."""
        if not self.lengths:
            return {}
        ordered = sorted(self.lengths)

        def rank(p: float) -> int:
            return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

        return {
            "min": ordered[0],
            "p50": rank(0.50),
            "p95": rank(0.95),
            "max": ordered[-1],
            "total": sum(ordered),
            "trainable_total": self.trainable_total,
        }
