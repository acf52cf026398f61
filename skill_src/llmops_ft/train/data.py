"""Training data: prep's rows -> token ids and labels (loss on assistant tokens only), checked before step 1.

prep.py writes ``{"messages": [...]}`` rows (or ``{"text": ...}``). Each row is rendered with the model's chat
template; with ``dataset.completion_only_loss`` every token outside an assistant turn gets label -100 (every
assistant turn of a multi-turn chat is trained, each with its end-of-turn token). The masking is prep's own
function, so ``prep.py --model`` and training agree on which tokens are trainable.

The fail-fast check: a row whose labels are all -100 (assistant turn cut off by max_seq_length, a chat with
no assistant content) trains nothing and, in a batch of such rows, the loss reads 0. Training refuses to start
and names each such row by file and line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import numbered_jsonl

IGNORE = -100
SHOW_AT_MOST = 5  # rows named in a one-line message; the rest are counted


@dataclass
class Example:
    """One tokenized row and where it came from."""

    input_ids: list[int]
    labels: list[int]
    file: str
    line: int
    full_length: int  # tokens before truncation to max_seq_length
    is_chat: bool = True

    @property
    def trainable(self) -> int:
        """How many tokens carry a label."""
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass
class TrainData:
    """The tokenized train (and val) split with what was truncated and the shared system prompt."""

    train: list[Example]
    val: list[Example]
    train_path: Path
    val_path: Path | None
    system_prompt: str | None
    truncated: list[Example] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        """Tokens in the train split after truncation."""
        return sum(len(e.input_ids) for e in self.train)

    @property
    def trainable_tokens(self) -> int:
        """Train tokens that carry a label."""
        return sum(e.trainable for e in self.train)


def dataset_files(dataset: dict[str, Any]) -> tuple[Path, Path | None]:
    """(train file, val file or None) from the config's ``dataset`` section."""
    path = Path(dataset["path"])
    if path.is_dir():
        train = path / "train.jsonl"
        if not train.is_file():
            raise UserError("no train.jsonl in this folder (run prep.py with --out here first)", file=str(path),
                            field="dataset.path")
        val = path / "val.jsonl"
        val = val if val.is_file() and val.stat().st_size > 0 else None
    elif path.is_file():
        train, val = path, None
    else:
        raise UserError("dataset not found (prep.py's output folder or a .jsonl file)", file=str(path),
                        field="dataset.path")
    if dataset.get("val"):
        val = Path(dataset["val"])
        if not val.is_file():
            raise UserError("validation file not found", file=str(val), field="dataset.val")
    return train, val


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line, row) for every non-blank line; a line that is not a JSON object is a UserError."""
    for number, row in numbered_jsonl(path):
        if not isinstance(row, dict) or not ("messages" in row or "text" in row):
            raise UserError('expected a {"messages": [...]} or {"text": ...} row; run prep.py on raw data first',
                            file=str(path), line=number)
        yield number, row


def chat_labels(tokenizer: Any, row: dict[str, Any], max_length: int, completion_only: bool,
                ) -> tuple[list[int], list[int], int]:
    """(input_ids, labels, untruncated length) of one chat row; labels are -100 outside assistant turns."""
    from ..data.tokens import assistant_token_mask

    input_ids, labels = assistant_token_mask(tokenizer, row["messages"], None, tools=row.get("tools"))
    full_length = len(input_ids)
    if not completion_only:
        labels = list(input_ids)
    return input_ids[:max_length], labels[:max_length], full_length


def text_labels(tokenizer: Any, text: str, max_length: int) -> tuple[list[int], list[int], int]:
    """(input_ids, labels, untruncated length) of a plain-text row: every token trained, EOS appended."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
    return ids[:max_length], list(ids[:max_length]), len(ids)


def tokenize_file(tokenizer: Any, path: Path, max_length: int, completion_only: bool) -> list[Example]:
    """Every row of ``path`` as an Example."""
    examples = []
    for number, row in read_rows(path):
        if "messages" in row:
            try:
                ids, labels, full = chat_labels(tokenizer, row, max_length, completion_only)
            except (TypeError, KeyError, ValueError) as exc:  # prep's RowError is a ValueError: the reason
                raise UserError(str(exc), file=str(path), line=number, field="messages") from None
        else:
            ids, labels, full = text_labels(tokenizer, str(row["text"]), max_length)
        examples.append(Example(ids, labels, str(path), number, full, is_chat="messages" in row))
    if not examples:
        raise UserError("no rows to train on", file=str(path))
    return examples


def check_trainable(examples: list[Example], max_length: int) -> None:
    """Fail fast when any row has no trainable label (the "all labels -100, loss reads 0" trap)."""
    empty = [e for e in examples if e.trainable == 0]
    if not empty:
        return
    shown = "; ".join(f"{e.file}:{e.line} ({_why_empty(e, max_length)})" for e in empty[:SHOW_AT_MOST])
    more = f"; and {len(empty) - SHOW_AT_MOST} more" if len(empty) > SHOW_AT_MOST else ""
    raise UserError(
        f"{len(empty)} of {len(examples)} rows have no trainable token after masking, so their loss would read 0: "
        f"{shown}{more}. Raise model.max_seq_length, or drop or fix these rows (prep.py --model lists them)",
        field="labels",
    )


def _why_empty(example: Example, max_length: int) -> str:
    if example.full_length > max_length:
        return f"{example.full_length} tokens, the assistant turn starts after max_seq_length {max_length}"
    return "no assistant content"


def shared_system_prompt(path: Path) -> str | None:
    """The system prompt every row shares, else None (it goes into run.json for export's Modelfile)."""
    prompts = set()
    for _, row in read_rows(path):
        messages = row.get("messages") or []
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        prompts.add(first.get("content") if first.get("role") == "system" else None)
        if len(prompts) > 1:
            return None
    return prompts.pop() if prompts else None


def load_train_data(tokenizer: Any, config: dict[str, Any],
                    refine: Callable[[list[Example]], None] | None = None) -> TrainData:
    """Tokenize the configured train (and val) files and run the trainable-label check on both.

    ``refine`` may narrow the labels of chat rows further before the check (the Unsloth backend intersects
    them with its train_on_responses_only spans), so the check sees exactly what will be trained.
    """
    max_length = config["model"]["max_seq_length"]
    completion_only = config["dataset"]["completion_only_loss"]
    train_path, val_path = dataset_files(config["dataset"])
    train = tokenize_file(tokenizer, train_path, max_length, completion_only)
    val = tokenize_file(tokenizer, val_path, max_length, completion_only) if val_path else []
    if refine is not None and completion_only:
        refine([e for e in train + val if e.is_chat])
    check_trainable(train + val, max_length)
    truncated = [e for e in train if e.full_length > max_length]
    return TrainData(train, val, train_path, val_path, shared_system_prompt(train_path), truncated)


def response_markers(tokenizer: Any) -> tuple[str, str]:
    """(instruction part, response part): the text that opens a user turn and an assistant turn in the template.

    Rendered from the template itself with a two-exchange chat: what sits between the first answer and the
    second question is "end of turn + user header"; between the second question and answer it is "end of turn +
    assistant header". The end of turn is what follows the last answer. E.g. ChatML (SmolLM2):
    ``<|im_start|>user\\n`` and ``<|im_start|>assistant\\n``;
    Llama 3: ``<|start_header_id|>user<|end_header_id|>\\n\\n``.
    """
    marks = ["\u2063Q1\u2063", "\u2063A1\u2063", "\u2063Q2\u2063", "\u2063A2\u2063"]
    chat = [{"role": role, "content": mark} for role, mark in zip(["user", "assistant"] * 2, marks, strict=True)]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    spots = [text.find(mark) for mark in marks]
    if -1 in spots or spots != sorted(spots):
        raise UserError("cannot find the user/assistant turns in the model's chat template", field="model.name")
    end_of_turn = text[spots[3] + len(marks[3]):]

    def header(between: str) -> str:
        trimmed = between[len(end_of_turn):] if end_of_turn and between.startswith(end_of_turn) else between
        return trimmed or between

    instruction = header(text[spots[1] + len(marks[1]):spots[2]])
    response = header(text[spots[2] + len(marks[2]):spots[3]])
    return instruction, response


def to_dataset(examples: list[Example]) -> Any:
    """A ``datasets.Dataset`` with ``input_ids`` and ``labels`` columns, ready for the trainer as is."""
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [e.input_ids for e in examples], "labels": [e.labels for e in examples]})
