"""Stream dataset records from .jsonl, .json (array), .csv, .parquet files, folders of them, or a hub dataset.

Every reader yields :class:`Record` one at a time, so memory stays bounded by one record (plus a read buffer)
whatever the file size. A record that cannot be parsed on its own (a broken JSON line, invalid UTF-8 in one
line, a CSV row with the wrong number of fields) comes back with ``error`` set and is rejected downstream; a
file that cannot be read at all raises :class:`UserError` naming the file and line.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import MAX_JSON_DEPTH, json_lines, loads_bounded

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
# CSV cells under these columns hold JSON (a list of turns or tool definitions); they are parsed back.
STRUCTURED_COLUMNS = frozenset({"messages", "conversations", "history", "tools", "chosen", "rejected"})
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
CHUNK = 1 << 16  # bytes read at a time from a JSON array file
SNIFF = 8192


@dataclass(slots=True)
class Record:
    """One input record: where it came from (1-based line or record number) and its value or why it broke."""

    source: str
    line: int
    value: Any
    error: str | None = None


@dataclass
class InputSummary:
    """What the readers saw beyond the records: files read, files skipped in folders, blank lines."""

    files: list[dict[str, Any]] = field(default_factory=list)
    skipped_files: list[dict[str, str]] = field(default_factory=list)
    blank_lines: int = 0


def iter_records(
    inputs: list[str | os.PathLike], summary: InputSummary, exclude: Path | None = None
) -> Iterator[Record]:
    """Yield the records of every input in order, filling ``summary`` as files are read.

    Files under ``exclude`` (prep's own output folder) are skipped when a folder is scanned.
    """
    if not inputs:
        raise UserError("no input given")
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = _folder_files(path, summary, exclude)
            if not files:
                raise UserError(f"folder holds no dataset file ({', '.join(SUFFIXES)})", file=str(path))
            for child in files:
                yield from _counted(str(child), _file_records(child, summary), summary)
        elif path.exists():
            yield from _counted(str(path), _file_records(path, summary), summary)
        else:
            yield from _hub_records(str(item), summary)


def _counted(source: str, records: Iterator[Record], summary: InputSummary) -> Iterator[Record]:
    entry = {"source": source, "records": 0}
    summary.files.append(entry)
    for record in records:
        entry["records"] += 1
        yield record
    if entry["records"] == 0:
        raise UserError("empty: no rows", file=source)


def _folder_files(folder: Path, summary: InputSummary, exclude: Path | None) -> list[Path]:
    """Dataset files under ``folder`` in a stable order; anything else is listed as skipped, not ignored."""
    files = []
    skip = exclude.resolve() if exclude else None
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if skip and path.resolve().is_relative_to(skip):
            summary.skipped_files.append({"source": str(path), "reason": "inside the output folder"})
        elif any(part.startswith(".") for part in rel.parts):
            summary.skipped_files.append({"source": str(path), "reason": "hidden file"})
        elif path.suffix.lower() not in SUFFIXES:
            summary.skipped_files.append({"source": str(path), "reason": f"unsupported extension {path.suffix!r}"})
        else:
            files.append(path)
    return files


def _file_records(path: Path, summary: InputSummary) -> Iterator[Record]:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise UserError(f"unsupported file type {suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}",
                        file=str(path))
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(SNIFF)
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    if size == 0:
        raise UserError("empty file", file=str(path))
    if suffix == ".parquet":
        return _parquet_records(path)
    _check_text(path, head)
    if suffix == ".csv":
        return _csv_records(path, summary)
    if suffix == ".json" and head.lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"["):
        return _json_array_records(path)
    return _jsonl_records(path, summary)


def _check_text(path: Path, head: bytes) -> None:
    """Refuse binary files: NUL bytes, or mostly undecodable bytes, in the first block."""
    decoded = head.decode("utf-8", errors="replace")
    if b"\x00" in head or decoded.count("\ufffd") > max(8, len(head) // 10):
        raise UserError("not a text file (binary data); expected UTF-8 JSON lines, JSON, CSV or Parquet",
                        file=str(path), line=1)
    if not decoded.lstrip("\ufeff \t\r\n"):
        raise UserError("empty file (only whitespace)", file=str(path))


def _strip_bom(raw: bytes, lineno: int) -> bytes:
    return raw[len(codecs.BOM_UTF8):] if lineno == 1 and raw.startswith(codecs.BOM_UTF8) else raw


def _jsonl_records(path: Path, summary: InputSummary) -> Iterator[Record]:
    """One JSON value per line (the package's JSON lines reader); a line that fails is a rejected record."""
    source = str(path)
    for entry in json_lines(path):
        if entry.blank:
            summary.blank_lines += 1
            continue
        if entry.line == 1 and entry.error and path.suffix.lower() == ".json" and "not valid UTF-8" not in \
                entry.error and "nested deeper" not in entry.error:
            raise UserError("not a JSON array of rows nor one JSON object per line", file=source, line=1)
        yield Record(source, entry.line, entry.value, entry.error)


def _json_array_records(path: Path) -> Iterator[Record]:
    """Stream the elements of a top-level JSON array through ijson's parser, one element in memory at a time.

    The file is fed to the parser in pieces that never cross a line break, so each element's start line is
    known exactly. A syntax error, invalid UTF-8 or an element nested deeper than MAX_JSON_DEPTH makes the rest
    of the array unreadable (there is no line boundary to resume at): it raises for the whole file, naming the
    line, as soon as the parser reaches it.
    """
    import ijson
    from ijson.utils import sendable_list

    source = str(path)
    events = sendable_list()
    parser = ijson.basic_parse_coro(events, use_float=True)  # floats, not Decimals, as json.loads gives
    elements = _ArrayElements()
    line = 1
    with open(path, "rb") as fh:
        for piece, newline in _line_pieces(fh):
            try:
                parser.send(piece)
                for event, value in events:
                    if (element := elements.feed(event, value, line)) is not None:
                        yield Record(source, *element)
            except ijson.JSONError as exc:
                raise UserError(_parser_message(exc), file=source, line=line) from None
            except ValueError as exc:
                raise UserError(str(exc), file=source, line=line) from None
            del events[:]
            line += newline
    try:
        parser.close()
    except ijson.JSONError as exc:
        raise UserError(_parser_message(exc), file=source, line=line) from None


def _line_pieces(fh: Any) -> Iterator[tuple[bytes, int]]:
    """(piece, 1 if it ends a line else 0) over a binary file read CHUNK bytes at a time; a BOM is dropped."""
    first = True
    while block := fh.read(CHUNK):
        if first and block.startswith(codecs.BOM_UTF8):
            block = block[len(codecs.BOM_UTF8):]
        first = False
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            yield block[start:end + 1], 1
            start = end + 1
        if start < len(block):
            yield block[start:], 0


def _parser_message(exc: Exception) -> str:
    """The first line of yajl's message (it may come as the repr of bytes), as one of ours."""
    text = str(exc)
    if text[:2] in ("b'", 'b"'):
        text = text[2:]
    first = text.replace("\\n", "\n").strip().splitlines()[0].strip() if text.strip() else type(exc).__name__
    if "UTF8" in first:
        return "not valid UTF-8"
    if "premature EOF" in first:
        return "invalid JSON: the array is not closed (the file ends inside it)"
    return "invalid JSON: " + first.removeprefix("parse error: ").removeprefix("lexical error: ").rstrip(".")


class _ArrayElements:
    """Builds each element of a top-level JSON array from parser events, refusing deep nesting as it goes."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.key: str | None = None
        self.depth = 0  # 1 inside the top-level array
        self.start = 0

    def feed(self, event: str, value: Any, line: int) -> tuple[int, Any] | None:
        """One parser event; returns (start line, element) when an element is complete."""
        if event == "map_key":
            self.key = value
            return None
        if event in ("start_map", "start_array"):
            self.depth += 1
            if self.depth == 1:
                return None
            if self.depth - 1 > MAX_JSON_DEPTH:
                raise ValueError(f"invalid JSON: an element nested deeper than {MAX_JSON_DEPTH} levels")
            if self.depth == 2:
                self.start = line
            container: Any = {} if event == "start_map" else []
            if self.stack:
                self._add(container)
            self.stack.append(container)
            return None
        if event in ("end_map", "end_array"):
            self.depth -= 1
            if self.depth == 0:
                return None
            done = self.stack.pop()
            return None if self.stack else (self.start, done)
        if self.depth == 1:
            return line, value
        self._add(value)
        return None

    def _add(self, value: Any) -> None:
        parent = self.stack[-1]
        if isinstance(parent, dict):
            parent[self.key] = value
        else:
            parent.append(value)


def _decoded_lines(path: Path, source: str) -> Iterator[str]:
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield _strip_bom(raw, lineno).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(f"not valid UTF-8 (byte {exc.start} of the line)", file=source, line=lineno) from exc


def _csv_records(path: Path, summary: InputSummary) -> Iterator[Record]:
    """A header row, then one record per row; JSON in structured columns (e.g. `messages`) is parsed."""
    source = str(path)
    csv.field_size_limit(1 << 30)  # the default (128 KiB) refuses long answers; records stream anyway
    reader = csv.reader(_decoded_lines(path, source))
    try:
        header = next(reader)
        if not any(h.strip() for h in header):
            raise UserError("CSV header row is empty", file=source, line=1)
        if len(set(header)) != len(header):
            raise UserError(f"CSV header repeats a column: {header}", file=source, line=1)
        start = reader.line_num + 1
        for fields in reader:
            line, start = start, reader.line_num + 1
            if not fields:
                summary.blank_lines += 1
                continue
            if len(fields) != len(header):
                yield Record(source, line, fields, f"has {len(fields)} fields but the header has {len(header)}")
                continue
            yield _csv_record(source, line, dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        raise UserError(f"unreadable CSV: {exc}", file=source, line=reader.line_num) from exc


def _csv_record(source: str, line: int, row: dict[str, Any]) -> Record:
    for column in STRUCTURED_COLUMNS.intersection(row):
        cell = row[column]
        if cell.strip()[:1] in ("[", "{"):
            try:
                row[column] = loads_bounded(cell)
            except ValueError as exc:
                return Record(source, line, row, f"{column}: the cell holds {exc}")
        elif not cell.strip():
            row[column] = None
    return Record(source, line, row)


def _parquet_records(path: Path) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = str(path)
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield Record(source, number, row)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"unreadable Parquet file: {exc}", file=source) from exc


def _hub_records(name: str, summary: InputSummary) -> Iterator[Record]:
    """A Hugging Face hub dataset id (train split, streamed); only reachable online."""
    if not HUB_ID.match(name):
        raise UserError("no such file or folder", file=name)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise UserError(
            "not a local file or folder, and hub datasets need the network (HF_HUB_OFFLINE=1 is set)", file=name
        )
    import datasets

    try:
        rows = datasets.load_dataset(name, split="train", streaming=True)
    except Exception as exc:  # the hub client raises many types; all mean "cannot load it"
        raise UserError(f"cannot load hub dataset: {exc}", file=name) from exc
    source = f"hf://{name}"
    yield from _counted(source, (Record(source, n, row) for n, row in enumerate(rows, 1)), summary)
