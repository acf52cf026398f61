"""A transformers model (base, merged folder, or base + adapter) with batched greedy generation on CPU."""

from __future__ import annotations

from .chat_templates import detect_family


def sequence_logits(model, sequences: list[list[int]], batch_size: int = 8) -> list:
    """float32 logits (numpy, len(seq) x vocab) of each sequence; right-padded batches, padding masked out."""
    import torch

    rows = []
    with torch.no_grad():
        for start in range(0, len(sequences), batch_size):
            chunk = sequences[start : start + batch_size]
            logits = model(**_right_padded(chunk)).logits.float()
            rows += [logits[row, : len(seq)].numpy() for row, seq in enumerate(chunk)]
    return rows


def answer_logprobs(model, sequences: list[list[int]], starts: list[int], batch_size: int = 8) -> list:
    """float32 log-softmax rows (numpy) at positions ``start`` .. len(seq) - 2 of each sequence: the next-token
    distributions of its tail only, so a long prompt costs no memory."""
    import torch

    rows = []
    with torch.no_grad():
        for first in range(0, len(sequences), batch_size):
            chunk = sequences[first : first + batch_size]
            logits = model(**_right_padded(chunk)).logits
            for row, (seq, start) in enumerate(zip(chunk, starts[first : first + batch_size], strict=True)):
                rows.append(torch.log_softmax(logits[row, start : len(seq) - 1].double(), -1).float().numpy())
    return rows


def _right_padded(chunk: list[list[int]]) -> dict:
    """input_ids and attention_mask of right-padded sequences (padding masked out)."""
    import torch

    width = max(len(seq) for seq in chunk)
    ids = torch.zeros((len(chunk), width), dtype=torch.long)
    mask = torch.zeros((len(chunk), width), dtype=torch.long)
    for row, seq in enumerate(chunk):
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def end_token_ids(tokenizer) -> list[int]:
    """Ids that end an assistant turn: the tokenizer's eos and its template family's end-of-turn token."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    family = detect_family(tokenizer.chat_template)
    if family is not None:
        eot = tokenizer.convert_tokens_to_ids(family.end_of_turn[0])
        if isinstance(eot, int) and eot != tokenizer.unk_token_id and eot not in ids:
            ids.append(eot)
    return ids


class HFModel:
    """A causal LM + its tokenizer (chat template included), greedy generation in left-padded batches."""

    def __init__(self, model, tokenizer, *, kind: str, source: str, batch_size: int = 8):
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.source = source
        self.batch_size = batch_size
        self.end_ids = end_token_ids(tokenizer)
        self.chat_template = tokenizer.chat_template

    def render(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        """The prompt text from the tokenizer's chat template."""
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=False
        )

    def tokenize(self, text: str) -> list[int]:
        """Token ids of rendered chat text (the template writes any special tokens itself)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def text_ids(self, text: str) -> list[int]:
        """Token ids of plain text, with the special tokens the tokenizer adds (as training did)."""
        return self.tokenizer(text)["input_ids"]

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a conversation's generation prompt, as training tokenized conversations."""
        return self.tokenize(self.render(messages))

    def generate_ids(self, prompts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], bool]]:
        """Greedy continuations of token-id prompts: (new ids without the end token, stopped at an end token)."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.end_ids[0]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths pad less
        by_index: dict[int, tuple[list[int], bool]] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(prompts[i]) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, i in enumerate(chunk):
                ids[row, width - len(prompts[i]) :] = torch.tensor(prompts[i])
                mask[row, width - len(prompts[i]) :] = 1
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                    eos_token_id=self.end_ids, pad_token_id=pad,
                )
            for row, i in enumerate(chunk):
                by_index[i] = self._cut(out[row, width:].tolist())
        return [by_index[i] for i in range(len(prompts))]

    def _cut(self, new: list[int]) -> tuple[list[int], bool]:
        for pos, token in enumerate(new):
            if token in self.end_ids:
                return new[:pos], True
        return new, False

    def decode(self, tokens: list[int]) -> str:
        """Text of generated tokens (special tokens dropped)."""
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def logits(self, tokens: list[int]):
        """float32 logits at every position of ``tokens``, shape (len(tokens), vocab)."""
        return sequence_logits(self.model, [tokens])[0]

    def close(self) -> None:
        """Drop the model (frees memory before the next one loads)."""
        self.model = None
