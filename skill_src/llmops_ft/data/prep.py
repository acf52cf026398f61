"""The prep pipeline: read -> detect format -> check + normalise -> dedupe -> token stats -> split -> write.

One streaming pass. Rows are written as they are decided, so memory holds one tokenizer batch, the duplicate
keys (16 bytes a row) and the token lengths (8 bytes a row), never the dataset. The output folder is built
in a temp dir and renamed into place only when the input is usable.
"""

from __future__ import annotations

import os
import re
from collections import Counter, deque
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import atomic_dir, atomic_write_json, check_output_dir, dumps_jsonl_line
from .dedupe import content_key, split_draw
from .formats import FORMATS, RowError, detected_fields, normalise, signature
from .readers import InputSummary, Record, iter_records
from .tokens import TokenStats, load_tokenizer

DEFAULT_VAL_FRACTION = 0.1
# Rows are tokenized in batches of BATCH rows or BATCH_CHARS characters, whichever comes first, with at most
# IN_FLIGHT batches waiting in the tokenizer thread.
BATCH = 1000
BATCH_CHARS = 2_000_000
IN_FLIGHT = 2
OUTPUT_FILES = {
    "train": "train.jsonl",
    "val": "val.jsonl",
    "rejects": "rejects.jsonl",
    "duplicates": "duplicates.jsonl",
    "report": "report.json",
}


def prepare(
    inputs: str | os.PathLike | list[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    fmt: str = "auto",
    model: str | None = None,
    max_seq_length: int | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int | None = None,
    dedupe: bool = True,
    strict: bool = False,
    force: bool = False,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Prepare ``inputs`` into ``out_dir`` (train/val/rejects/duplicates .jsonl + report.json); return the report.

    Raises :class:`UserError` (one line naming file and line) when the input as a whole is unusable: unreadable,
    not text, empty, mixed or unknown format, preference data, no valid row, or any reject under ``strict``.
    """
    from ..knowledge.recommendations import recommended

    if fmt != "auto" and fmt not in FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}", field="--format")
    if not 0 <= val_fraction < 1:
        raise UserError(f"must be in [0, 1), got {val_fraction}", field="--val-fraction")
    if max_seq_length is not None and max_seq_length < 1:
        raise UserError(f"must be a positive number of tokens, got {max_seq_length}", field="--max-seq-length")
    inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    output = {"owner": "prep", "may_write": OUTPUT_FILES.values(), "inputs": inputs}
    check_output_dir(out_dir, force=force, **output)
    stats = None
    if model:
        limit = max_seq_length or recommended("training.max_seq_length")
        stats = TokenStats(load_tokenizer(model, trust_remote_code), limit)
    seed = recommended("training.seed") if seed is None else seed
    summary = InputSummary()
    with atomic_dir(out_dir, force=force, **output) as tmp:
        run = _Run(tmp, fmt, stats, val_fraction, seed, dedupe)
        try:
            for record in iter_records(inputs, summary, exclude=Path(out_dir)):
                run.add(record)
            run.flush(drain=True)
        finally:
            run.close()
        run.check_usable(strict)
        run.ensure_both_splits()
        report = run.report(summary, model=model)
        atomic_write_json(tmp / OUTPUT_FILES["report"], report)
    return report


class _Run:
    """The state of one prep pass: counters, open output files, the duplicate index, the pending batch."""

    def __init__(self, out: Path, fmt: str, stats: TokenStats | None, val_fraction: float, seed: int,
                 dedupe: bool) -> None:
        self.out = out
        self.fmt = None if fmt == "auto" else fmt
        self.fmt_given = fmt != "auto"
        self.detected_from: list[str] = []
        self.detected_at: str | None = None
        self.stats = stats
        self.val_fraction = val_fraction
        self.seed = seed
        self.dedupe = dedupe
        self.files = {name: open(out / OUTPUT_FILES[name], "w", encoding="utf-8", newline="\n")
                      for name in ("train", "val", "rejects", "duplicates")}
        self.counts = Counter()
        self.reasons = Counter()
        self.ignored = Counter()
        self.first_reject: tuple[Record, str] | None = None
        self.seen: dict[bytes, tuple[str, int]] = {}
        self.pending: list[tuple[Record, dict[str, Any], bytes, str, list]] = []
        self.pending_chars = 0
        self.in_flight: deque = deque()
        self.over_max_length: list[dict[str, Any]] = []
        self.no_trainable: list[dict[str, Any]] = []
        # The train row least likely to be in train and vice versa: moved over if a split ends up empty.
        self.edge = {"train": (2.0, -1), "val": (-1.0, -1)}

    def add(self, record: Record) -> None:
        """Decide one record: reject, duplicate, or kept (written once its token batch is measured)."""
        self.counts["total"] += 1
        if record.error:
            return self.reject(record, record.error)
        try:
            row = normalise(self._format_of(record), record.value, self.ignored)
            text, spans = self.stats.render(row) if self.stats else ("", [])
        except RowError as exc:
            return self.reject(record, str(exc))
        key = content_key(row)
        if self.dedupe:
            first = self.seen.setdefault(key, (record.source, record.line))
            if first != (record.source, record.line):
                self.counts["duplicates"] += 1
                self._write("duplicates", {"source": record.source, "line": record.line,
                                           "duplicate_of": {"source": first[0], "line": first[1]}})
                return None
        if not self.stats:
            self._keep(row, key)
            return None
        self.pending.append((record, row, key, text, spans))
        self.pending_chars += len(text)
        if len(self.pending) >= BATCH or self.pending_chars >= BATCH_CHARS:
            self.flush()
        return None

    def _format_of(self, record: Record) -> str:
        """The format to read ``record`` with; detects it from the first recognisable row when auto."""
        found = signature(record.value)
        if found == "preference":
            raise UserError(
                "preference data (chosen/rejected pairs) is for DPO/ORPO training, not SFT prep; "
                "keep one answer per prompt (e.g. the chosen one) as messages or prompt/completion",
                file=record.source, line=record.line, field="chosen",
            )
        if self.fmt is None:
            if found is None:
                keys = sorted(record.value) if isinstance(record.value, dict) else type(record.value).__name__
                raise RowError(f"matches no known format (fields: {keys}); see --format")
            self.fmt, self.detected_at = found, f"{record.source}:{record.line}"
            self.detected_from = detected_fields(found, record.value)
        elif not self.fmt_given and found is not None and found != self.fmt:
            raise UserError(
                f"mixed formats: this row looks like {found} ({', '.join(detected_fields(found, record.value))}) "
                f"but the input was detected as {self.fmt} at {self.detected_at}; prepare each format separately",
                file=record.source, line=record.line,
            )
        if not self.detected_from and isinstance(record.value, dict):
            self.detected_from = detected_fields(self.fmt, record.value)
        return self.fmt

    def reject(self, record: Record, reason: str) -> None:
        """Write ``record`` to rejects.jsonl with its reason."""
        self.counts["rejected"] += 1
        self.reasons[re.sub(r"\[\d+\]", "[]", reason.split(" (fields:")[0])] += 1
        if self.first_reject is None:
            self.first_reject = (record, reason)
        self._write("rejects", {"source": record.source, "line": record.line, "reason": reason,
                                "row": record.value})

    def flush(self, drain: bool = False) -> None:
        """Send the pending batch to the tokenizer thread; write out finished batches, all of them if ``drain``."""
        if self.pending:
            texts = [p[3] for p in self.pending]
            spans = None if self.fmt == "text" else [p[4] for p in self.pending]
            batch = [(record, row, key) for record, row, key, _, _ in self.pending]
            self.in_flight.append((batch, self.stats.submit(texts, spans)))
            self.pending, self.pending_chars = [], 0
        while self.in_flight and (drain or len(self.in_flight) > IN_FLIGHT):
            batch, future = self.in_flight.popleft()
            for (record, row, key), (length, trainable) in zip(batch, future.result(), strict=True):
                self.stats.record(length, trainable)
                self._check_tokens(record, length, trainable)
                self._keep(row, key)

    def _check_tokens(self, record: Record, length: int, trainable: int) -> None:
        where = {"source": record.source, "line": record.line, "tokens": length}
        if length > self.stats.max_length:
            self.over_max_length.append(where)
        if trainable == 0:
            self.no_trainable.append(where)

    def _keep(self, row: dict[str, Any], key: bytes) -> None:
        draw = split_draw(key, self.seed)
        split = "val" if draw < self.val_fraction else "train"
        index = self.counts[split]
        edge_draw = self.edge[split][0]
        if (split == "train" and draw < edge_draw) or (split == "val" and draw > edge_draw):
            self.edge[split] = (draw, index)
        self.counts[split] += 1
        self.counts["kept"] += 1
        self._write(split, row)

    def _write(self, name: str, obj: Any) -> None:
        self.files[name].write(dumps_jsonl_line(obj) + "\n")

    def close(self) -> None:
        """Stop the tokenizer thread and close the output files (idempotent)."""
        if self.stats:
            self.stats.close()
        for fh in self.files.values():
            fh.close()

    def check_usable(self, strict: bool) -> None:
        """Raise for an input with no usable row, or for any reject under ``strict``."""
        total, kept, rejected = self.counts["total"], self.counts["kept"], self.counts["rejected"]
        first = self.first_reject
        if kept == 0:
            detail = f"; first reject: {first[1]}" if first else ""
            raise UserError(
                f"no valid row: {rejected} of {total} rejected, {self.counts['duplicates']} duplicates{detail}",
                file=first[0].source if first else None, line=first[0].line if first else None,
            )
        if strict and rejected:
            raise UserError(f"--strict: {rejected} of {total} rows rejected; first: {first[1]}",
                            file=first[0].source, line=first[0].line)

    def ensure_both_splits(self) -> None:
        """With a val fraction and at least two rows, neither split may be empty: move the edge row over."""
        if self.val_fraction == 0 or self.counts["kept"] < 2:
            return
        for empty, full in (("val", "train"), ("train", "val")):
            if self.counts[empty] == 0:
                _move_line(self.out / OUTPUT_FILES[full], self.out / OUTPUT_FILES[empty], self.edge[full][1])
                self.counts[empty], self.counts[full] = 1, self.counts[full] - 1

    def report(self, summary: InputSummary, model: str | None) -> dict[str, Any]:
        """The report.json content."""
        report: dict[str, Any] = {
            "format": self.fmt,
            "format_given": self.fmt_given,
            "detected_from": self.detected_from,
            "detected_at": self.detected_at,
            "inputs": summary.files,
            "skipped_files": summary.skipped_files,
            "blank_lines": summary.blank_lines,
            **{name: self.counts[name] for name in ("total", "kept", "rejected", "duplicates", "train", "val")},
            "reject_reasons": dict(self.reasons.most_common()),
            "ignored_fields": dict(sorted(self.ignored.items())),
            "dedupe": self.dedupe,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "files": OUTPUT_FILES,
        }
        if self.stats:
            report.update(
                model=model,
                max_seq_length=self.stats.max_length,
                tokens=self.stats.summary(),
                over_max_length=self.over_max_length,
                no_trainable_tokens=self.no_trainable,
            )
        return report


def _move_line(src: Path, dst: Path, index: int) -> None:
    """Move line ``index`` of ``src`` to the end of ``dst`` (both JSON lines files), streaming ``src``."""
    rest = src.with_name(src.name + ".rest")
    with open(src, encoding="utf-8") as fin, open(rest, "w", encoding="utf-8", newline="\n") as fout:
        for i, line in enumerate(fin):
            if i == index:
                moved = line
            else:
                fout.write(line)
    with open(dst, "a", encoding="utf-8", newline="\n") as fh:
        fh.write(moved)
    os.replace(rest, src)
