"""A GGUF model in llama.cpp (llama-cpp-python), the engine Ollama runs: prompts from the GGUF's own chat template,
greedy decoding that stops at an end-of-generation token, and raw logits for verification.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from ..errors import UserError
from .chat_templates import render


def _cpu_has_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def use_extra_buffers() -> bool:
    """Whether llama.cpp may use its extra CPU buffer types (weight repacking, AMX).

    On CPUs with AMX tiles (here, in a VM) llama.cpp segfaults decoding any quantized GGUF (q8_0, q4_k_m, even
    the upstream Q4_1 file) when those buffers are on; f16 is unaffected. Off costs some speed, not accuracy.
    `LLMOPS_FT_LLAMA_EXTRA_BUFFERS=1|0` overrides the detection.
    """
    forced = os.environ.get("LLMOPS_FT_LLAMA_EXTRA_BUFFERS")
    if forced in ("0", "1"):
        return forced == "1"
    return not _cpu_has_amx()


@contextlib.contextmanager
def _model_params_without_extra_buffers():
    """llama-cpp-python's Llama() builds its model params internally; patch the defaults while it does."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params():
        value = original()
        value.use_extra_bufts = False
        return value

    lib.llama_model_default_params = params
    try:
        yield
    finally:
        lib.llama_model_default_params = original


def default_threads() -> int:
    """llama.cpp threads: `LLMOPS_FT_LLAMA_THREADS`, else every core.

    On a machine whose cores are busy with other work, llama.cpp's threads spin at every barrier; one thread is
    then often faster (measured here: a tiny model decoded 2,300 tok/s on 1 thread, 50-1,000 on 2 busy cores).
    """
    value = os.environ.get("LLMOPS_FT_LLAMA_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else os.cpu_count() or 2


def metadata_value(meta: dict[str, str], key: str, default: Any = None) -> Any:
    """A GGUF metadata value as llama-cpp-python reports it (all strings), typed for bools and ints."""
    value = meta.get(key)
    if value is None:
        return default
    if value in ("true", "false"):
        return value == "true"
    try:
        return int(value)
    except ValueError:
        return value


class LlamaCppModel:
    """One GGUF file loaded in llama.cpp, with greedy generation from chat conversations."""

    kind = "gguf"

    def __init__(self, path: str | Path, *, n_ctx: int = 2048, logits_all: bool = False, threads: int | None = None):
        from llama_cpp import Llama

        self.path = Path(path)
        if not self.path.is_file():
            raise UserError("GGUF file not found", file=str(self.path))
        self.source = str(self.path)
        kwargs = dict(n_ctx=n_ctx, logits_all=logits_all, verbose=False, n_threads=threads or default_threads())
        guard = contextlib.nullcontext() if use_extra_buffers() else _model_params_without_extra_buffers()
        try:
            with guard:
                self.llm = Llama(str(self.path), **kwargs)
        except ValueError as exc:
            raise UserError(f"llama.cpp cannot load this GGUF ({exc}); the file is truncated or corrupt",
                            file=str(self.path)) from None
        meta = self.llm.metadata
        self.chat_template: str | None = meta.get("tokenizer.chat_template")
        self.add_bos: bool = bool(metadata_value(meta, "tokenizer.ggml.add_bos_token", False))
        self.bos_id: int = self.llm.token_bos()
        self.eos_id: int = self.llm.token_eos()
        self.bos_text = self.token_text(self.bos_id)
        self.eos_text = self.token_text(self.eos_id)
        self.n_vocab = self.llm.n_vocab()

    def token_text(self, token_id: int) -> str:
        """The text of a (special) token, '' for none."""
        if token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def is_end(self, token_id: int) -> bool:
        """llama.cpp's end-of-generation test (eos, eot and the end-of-turn tokens it recognises)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token_id))

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text from the GGUF's embedded chat template (the template Ollama users will get)."""
        if not self.chat_template:
            raise UserError("GGUF has no tokenizer.chat_template: chat prompts cannot be built from it",
                            file=str(self.path))
        text = render(self.chat_template, messages, add_generation_prompt=add_generation_prompt,
                      bos_token=self.bos_text, eos_token=self.eos_text)
        if self.add_bos and self.bos_text and text.startswith(self.bos_text):
            # llama.cpp's chat path drops a template-written BOS when the tokenizer adds one itself.
            text = text[len(self.bos_text):]
        return text

    def tokenize(self, text: str) -> list[int]:
        """Token ids as llama.cpp runtimes feed them: special tokens parsed, BOS per the GGUF's add_bos_token."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=self.add_bos, special=True)

    def text_ids(self, text: str) -> list[int]:
        """Token ids of plain text (BOS per the GGUF, special tokens not parsed)."""
        return self.llm.tokenize(text.encode("utf-8"), add_bos=self.add_bos, special=False)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a conversation's generation prompt."""
        return self.tokenize(self.render(messages))

    def _feed(self, tokens: list[int]) -> None:
        """Evaluate ``tokens``, reusing the KV cache of the longest prefix already evaluated."""
        from .sequences import common_prefix

        keep = common_prefix(list(self.llm._input_ids[: self.llm.n_tokens]), tokens[:-1])
        self.llm.n_tokens = keep
        self.llm.eval(tokens[keep:])

    def _last_logits(self):
        import llama_cpp
        import numpy as np

        pointer = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,)).copy()

    def greedy(self, prompt: list[int], max_new_tokens: int) -> tuple[list[int], bool]:
        """Greedy continuation of ``prompt``: (new token ids without the end token, stopped at an end token)."""
        if len(prompt) + max_new_tokens > self.llm.n_ctx():
            raise UserError(f"a prompt of {len(prompt)} tokens + {max_new_tokens} new ones exceeds the llama.cpp "
                            f"context of {self.llm.n_ctx()} tokens", file=str(self.path))
        self._feed(prompt)
        out: list[int] = []
        for _ in range(max_new_tokens):
            token = int(self._last_logits().argmax())
            if self.is_end(token):
                return out, True
            out.append(token)
            self.llm.eval([token])
        return out, False

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], bool]]:
        """Greedy continuations of several prompts, one after another (shared prefixes reuse the KV cache)."""
        return [self.greedy(prompt, max_new_tokens) for prompt in prompts]

    def decode(self, tokens: list[int]) -> str:
        """Text of generated tokens (special tokens dropped)."""
        return self.llm.detokenize(tokens).decode("utf-8", errors="replace")

    def logits(self, tokens: list[int]):
        """Logits at every position of ``tokens`` (needs logits_all=True), shape (len(tokens), n_vocab)."""
        import numpy as np

        self.llm.reset()
        self.llm.eval(tokens)
        return np.array(self.llm.scores[: len(tokens)], dtype=np.float32)

    def continuation_logits(self, prompt: list[int], continuation: list[int]):
        """Logits predicting each token of ``continuation`` after ``prompt``, shape (len(continuation), n_vocab)
        (needs logits_all=True). The longest prefix already evaluated is reused, so right after ``greedy(prompt)``
        only the tokens past the point where the two continuations part are evaluated again."""
        import numpy as np

        from .sequences import common_prefix

        target = prompt + continuation[:-1]  # the last token is predicted, never fed
        keep = common_prefix(list(self.llm._input_ids[: self.llm.n_tokens]), target)
        self.llm.n_tokens = keep  # the rows before ``keep`` were computed on this same prefix
        if keep < len(target):
            self.llm.eval(target[keep:])
        return np.array(self.llm.scores[len(prompt) - 1 : len(target)], dtype=np.float32)

    def close(self) -> None:
        """Free the llama.cpp model and context now (not at interpreter exit, where it can fail)."""
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None
