"""The tokenizer part of a GGUF: a byte-level BPE vocabulary (llama.cpp's `gpt2` model) read from tokenizer.json.

llama.cpp re-implements each pre-tokenizer by name (`tokenizer.ggml.pre`), so the name must match the regex the
Hugging Face tokenizer splits with; we read that structure from tokenizer.json instead of guessing from the
model family, and verification then compares llama.cpp's token ids with transformers' on real text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..engines.chat_templates import detect_family
from ..errors import UserError

# Split regexes as they appear in tokenizer.json, and the llama.cpp pre-tokenizer that reproduces each.
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
TEKKEN_SPLIT = (
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?"
    r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
SPLIT_PRE = {LLAMA3_SPLIT: "llama-bpe", QWEN2_SPLIT: "qwen2", TEKKEN_SPLIT: "tekken"}

# gguf TokenType values (kept as ints so this module does not import gguf).
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5


@dataclass
class Vocab:
    """Everything `tokenizer.*` in a GGUF holds."""

    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    special_ids: dict[str, int]  # bos / eos / unk / pad / eot -> id
    add_bos: bool
    add_eos: bool
    chat_template: str | None
    padded: int = 0  # rows of the embedding with no token (named [PAD<i>], type UNUSED)
    notes: list[str] = field(default_factory=list)


def pre_tokenizer_name(pre: dict | None, source: str) -> str:
    """llama.cpp's pre-tokenizer name for a tokenizer.json `pre_tokenizer` (UserError when none fits)."""
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else [pre] if pre else []
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not steps[1].get("use_regex", True):
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        if pattern in SPLIT_PRE:
            return SPLIT_PRE[pattern]
    raise UserError(
        f"pre-tokenizer {kinds or 'none'} is not one the built-in GGUF converter knows (gpt-2, smollm, llama-bpe, "
        "qwen2, tekken); export --to merged and convert with llama.cpp's convert_hf_to_gguf.py",
        file=source, field="pre_tokenizer",
    )


def tokenizer_spec(model_dir: Path) -> tuple[dict, str]:
    """tokenizer.json of ``model_dir`` and its llama.cpp pre-tokenizer name; UserError when we cannot convert it."""
    path = model_dir / "tokenizer.json"
    if not path.is_file():
        raise UserError("no tokenizer.json (a fast tokenizer is needed for GGUF)", file=str(model_dir))
    spec = json.loads(path.read_text(encoding="utf-8"))
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        kind = f"{model.get('type')} without a byte-level pre-tokenizer (SentencePiece style)"
        raise UserError(
            f"tokenizer model {kind} is not supported by the built-in GGUF converter (byte-level BPE only); "
            "export --to merged and convert with llama.cpp's convert_hf_to_gguf.py",
            file=str(path), field="model.type",
        )
    return spec, pre_tokenizer_name(spec.get("pre_tokenizer"), str(path))


def read_vocab(model_dir: Path, vocab_size: int) -> Vocab:
    """Read the tokenizer of an HF model folder into a GGUF vocabulary of ``vocab_size`` rows."""
    from transformers import AutoTokenizer

    spec, pre = tokenizer_spec(model_dir)
    model = spec["model"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))

    by_id = {idx: tok for tok, idx in model["vocab"].items()}
    types = dict.fromkeys(by_id, NORMAL)
    for added in spec.get("added_tokens", []):
        by_id[added["id"]] = added["content"]
        types[added["id"]] = CONTROL if added.get("special") else USER_DEFINED
    if max(by_id) >= vocab_size:
        raise UserError(f"tokenizer has ids up to {max(by_id)} but the model has {vocab_size} embedding rows",
                        file=str(model_dir), field="vocab_size")
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    token_types = [types.get(i, UNUSED) for i in range(vocab_size)]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]

    special = {
        key: getattr(tokenizer, f"{key}_token_id")
        for key in ("bos", "eos", "unk", "pad")
        if getattr(tokenizer, f"{key}_token_id", None) is not None
    }
    family = detect_family(tokenizer.chat_template)
    if family is not None:
        eot = tokenizer.convert_tokens_to_ids(family.end_of_turn[0])
        if isinstance(eot, int) and eot != tokenizer.unk_token_id:
            special["eot"] = eot
    return Vocab(
        tokens=tokens,
        types=token_types,
        merges=merges,
        pre=pre,
        special_ids=special,
        add_bos=adds_bos(tokenizer),
        add_eos=adds_eos(tokenizer),
        chat_template=tokenizer.chat_template,
        padded=vocab_size - len(by_id),
    )


def adds_bos(tokenizer) -> bool:
    """Whether the HF tokenizer puts BOS in front of plain text (GGUF add_bos_token)."""
    ids = tokenizer("a")["input_ids"]
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


def adds_eos(tokenizer) -> bool:
    """Whether the HF tokenizer appends EOS to plain text (GGUF add_eos_token)."""
    ids = tokenizer("a")["input_ids"]
    return tokenizer.eos_token_id is not None and len(ids) > 1 and ids[-1] == tokenizer.eos_token_id


def write_vocab(writer, vocab: Vocab) -> None:
    """Add the `tokenizer.*` keys of ``vocab`` to a GGUFWriter."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    adders = {
        "bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id, "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id, "eot": writer.add_eot_token_id,
    }
    for key, token_id in vocab.special_ids.items():
        adders[key](token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)
