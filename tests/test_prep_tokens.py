"""prep --model: chat-template token stats and the assistant-token mask, on the real SmolLM2 tokenizer."""

from __future__ import annotations

import json

import pytest
from llmops_ft.data import assistant_token_mask, prepare
from llmops_ft.data.tokens import TokenStats, render_chat
from llmops_ft.io import read_jsonl

END = "<|im_end|>"


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


CHATS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "and 👩‍👩‍👧 + שלום?"},
        {"role": "assistant", "content": "\nnot a sum: e\u0301 \u00a0👍\n"},
    ],
    [
        {"role": "user", "content": "Create a task"},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
                                                              "function": {"name": "create", "arguments": {}}}]},
        {"role": "tool", "content": '{"id": 1}'},
        {"role": "assistant", "content": "Done: task 1."},
    ],
]


def spans_of(labels: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs of trainable positions."""
    runs, start = [], None
    for i, label in enumerate([*labels, -100]):
        if label != -100 and start is None:
            start = i
        elif label == -100 and start is not None:
            runs.append((start, i))
            start = None
    return runs


@pytest.mark.parametrize("messages", CHATS, ids=["one-turn", "multi-turn-unicode", "tool-calls"])
def test_assistant_mask_covers_exactly_the_answers_and_end_of_turn(tokenizer, messages):
    input_ids, labels = assistant_token_mask(tokenizer, messages)
    # The same ids as transformers' own chat tokenization.
    assert input_ids == tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    runs = spans_of(labels)
    assert [tokenizer.decode(input_ids[a:b]) for a, b in runs] == [a + END for a in answers]
    assert all(labels[i] == input_ids[i] for a, b in runs for i in range(a, b))
    # Everything else, the system prompt and user turns included, is masked.
    masked = tokenizer.decode([t for t, label in zip(input_ids, labels, strict=True) if label == -100])
    assert all(m["content"] in masked for m in messages if m["role"] in ("system", "user", "tool"))
    assert not any(a.strip() and a in masked for a in answers)


def test_mask_truncates_to_max_length(tokenizer):
    ids, labels = assistant_token_mask(tokenizer, CHATS[0])
    prompt_len = labels.index(next(x for x in labels if x != -100))
    short_ids, short_labels = assistant_token_mask(tokenizer, CHATS[0], max_length=prompt_len)
    assert short_ids == ids[:prompt_len] and set(short_labels) == {-100}


def test_batched_stats_agree_with_the_mask(tokenizer):
    stats = TokenStats(tokenizer, max_length=40)
    rendered = [render_chat(tokenizer, m) for m in CHATS]
    measured = stats.measure([t for t, _ in rendered], [s for _, s in rendered])
    for messages, (length, trainable) in zip(CHATS, measured, strict=True):
        ids, labels = assistant_token_mask(tokenizer, messages)
        _, cut_labels = assistant_token_mask(tokenizer, messages, max_length=40)
        assert length == len(ids)
        assert trainable == sum(label != -100 for label in cut_labels)
    summary = stats.summary()
    lengths = sorted(len(assistant_token_mask(tokenizer, m)[0]) for m in CHATS)
    assert (summary["min"], summary["max"], summary["p50"]) == (lengths[0], lengths[-1], lengths[1])


def test_prep_with_model_reports_lengths_over_max_and_untrainable_rows(shared, tmp_path, tokenizer):
    rows = json.loads((shared / "datasets" / "alpaca_en_demo.json").read_text(encoding="utf-8"))[:60]
    rows.append({"instruction": "Summarise: " + "word " * 20_000, "input": "", "output": "Too long to see."})
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = prepare(path, tmp_path / "out", model="smollm2-135m", max_seq_length=256)
    assert (report["model"], report["max_seq_length"], report["kept"]) == ("smollm2-135m", 256, 61)

    def length(row: dict) -> int:
        user = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        chat = [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
        return len(tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False))

    expected = [length(r) for r in rows]
    assert report["tokens"]["min"] == min(expected) and report["tokens"]["max"] == max(expected)
    assert report["tokens"]["total"] == sum(expected)
    over = [{"source": str(path), "line": i + 1, "tokens": n} for i, n in enumerate(expected) if n > 256]
    assert report["over_max_length"] == over and len(over) >= 2
    # The 20,000-word prompt leaves its answer beyond 256 tokens: nothing to learn from after masking.
    assert report["no_trainable_tokens"] == [{"source": str(path), "line": 61, "tokens": expected[-1]}]
    assert len(list(read_jsonl(tmp_path / "out" / "train.jsonl"))) == report["train"]


def test_prep_text_rows_count_every_token(shared, tmp_path, tokenizer):
    report = prepare(shared / "datasets" / "c4_demo.jsonl", tmp_path / "out", model="smollm2-135m")
    texts = [r["text"] for r in read_jsonl(shared / "datasets" / "c4_demo.jsonl")]
    # As training feeds text rows: the tokenizer's special tokens, then an end-of-sequence token.
    ids = [tokenizer(t, add_special_tokens=True)["input_ids"] for t in texts]
    lengths = [len(i) + (i[-1] != tokenizer.eos_token_id) for i in ids]
    assert min(lengths) > 1
    assert report["tokens"]["total"] == sum(lengths)
    # Every token trains, up to the max_seq_length the row is cut at.
    assert report["tokens"]["trainable_total"] == sum(min(n, 2048) for n in lengths)
    assert report["tokens"]["max"] == max(lengths) > 2048
    assert report["no_trainable_tokens"] == []


def test_pipelined_batches_give_the_same_output(shared, tmp_path, monkeypatch):
    from llmops_ft.data import prep

    source = shared / "datasets" / "alpaca_en_demo.json"
    whole = prepare(source, tmp_path / "whole", model="smollm2-135m", max_seq_length=300)
    monkeypatch.setattr(prep, "BATCH", 7)
    monkeypatch.setattr(prep, "IN_FLIGHT", 1)
    small = prepare(source, tmp_path / "small", model="smollm2-135m", max_seq_length=300)
    assert small == whole and whole["tokens"]["max"] > 300 and whole["over_max_length"]
    for name in ("train.jsonl", "val.jsonl", "duplicates.jsonl"):
        assert (tmp_path / "small" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
