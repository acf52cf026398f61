"""Atomic file and directory writes, hashing, JSON lines, and the rules for writing into an output folder."""

from __future__ import annotations

import codecs
import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

# Dataset rows nest a few levels (messages -> turn -> tool call -> arguments); past this a row is refused, so no
# later step (schema validation, json.dumps, repr) can hit Python's recursion limit on it.
MAX_JSON_DEPTH = 100
# The file an output folder's command leaves in it: who wrote the folder and which files are its own.
MANIFEST = ".llmops-ft.json"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike, mode: str, **open_kwargs: Any) -> Iterator[Any]:
    """Yield a file handle on a temp file beside ``path``; on success it is synced and renamed into place.

    The temp file gets the mode a plain open() would give (mkstemp's own is 0600).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError("is a folder; give a file name", file=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temp file beside ``path`` and rename it into place."""
    with _atomic_file(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def dumps_jsonl_line(obj: Any) -> str:
    """One compact JSON line (no trailing newline), keeping non-ASCII text as is."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    """Stream ``rows`` to a temp file as JSON lines and rename it into place; return the row count."""
    n = 0
    with _atomic_file(path, "w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps_jsonl_line(row) + "\n")
            n += 1
    return n


# ---------------------------------------------------------------- reading JSON


def json_depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (a scalar: 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads_bounded(text: str) -> Any:
    """``json.loads`` that refuses values nested deeper than MAX_JSON_DEPTH; ValueError says what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels") from None
    # counting brackets is cheap; only a text with many of them is walked to measure its real depth
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} levels")
    return value


@dataclass(slots=True)
class JsonLine:
    """One line of a JSON lines file: its value, or (``error`` set) its text and why it does not parse."""

    line: int
    value: Any
    error: str | None = None
    blank: bool = False


def json_lines(path: str | os.PathLike) -> Iterator[JsonLine]:
    """Every line of ``path`` as a :class:`JsonLine`: broken lines come back with ``error``, the file goes on.

    The package's one JSON lines reader: a UTF-8 BOM on line 1 is skipped, invalid UTF-8 and values nested
    deeper than MAX_JSON_DEPTH are errors of their line, never exceptions. A file that cannot be opened is a
    UserError.
    """
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                shown = raw.decode("utf-8", errors="backslashreplace").rstrip("\r\n")
                yield JsonLine(lineno, shown, f"not valid UTF-8 (byte {exc.start} of the line)")
                continue
            if not text.strip():
                yield JsonLine(lineno, None, blank=True)
                continue
            try:
                entry = JsonLine(lineno, loads_bounded(text))
            except ValueError as exc:
                entry = JsonLine(lineno, text.rstrip("\r\n"), str(exc))
            yield entry


def numbered_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, Any]]:
    """(1-based line, value) of each non-blank line; a line that does not parse is a UserError naming it."""
    for entry in json_lines(path):
        if entry.error:
            raise UserError(entry.error, file=str(path), line=entry.line)
        if not entry.blank:
            yield entry.line, entry.value


def read_jsonl(path: str | os.PathLike) -> Iterator[Any]:
    """The value of each non-blank line of ``path``; a line that does not parse is a UserError naming it."""
    for _, value in numbered_jsonl(path):
        yield value


def read_json_file(path: str | os.PathLike, field: str | None = None) -> Any:
    """One JSON file (config.json, run.json, ...); a UserError names the file, the line and ``field``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not valid UTF-8 (byte {exc.start})", file=str(path), field=field) from None
    except OSError as exc:
        raise UserError(f"cannot read: {exc.strerror or exc}", file=str(path), field=field) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg} (column {exc.colno}); the file is damaged or incomplete",
                        file=str(path), line=exc.lineno, field=field) from None
    except RecursionError:
        raise UserError("invalid JSON: nested too deeply", file=str(path), field=field) from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------- output files and folders


def user_path(value: str | os.PathLike) -> Path:
    """``value`` as a path with ``~`` expanded; ``~name`` of a user this machine does not know stays as written."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        return Path(value)


def check_output_free(path: str | os.PathLike, force: bool) -> None:
    """Refuse to overwrite an existing output file unless ``force``; a folder where the file goes is refused."""
    path = Path(path)
    if path.is_dir():
        raise UserError("is a folder; give a file name for the output", file=str(path))
    if path.exists() and not force:
        raise UserError("output exists; pass --force to overwrite it", file=str(path))


def refuse_unsafe_output(path: str | os.PathLike, inputs: Iterable[Any] = (), *, field: str = "--out") -> Path:
    """``path`` resolved, after refusing an output folder that is or holds the working directory, or holds an input.

    These are refused whatever the flags: the output would mix with the user's own files.
    """
    resolved = user_path(path).resolve()
    cwd = Path.cwd().resolve()
    if cwd.is_relative_to(resolved):
        what = "is the working directory" if resolved == cwd else "holds the working directory"
        raise UserError(f"{what}; give the output a folder of its own, e.g. {field} runs/NAME",
                        file=str(path), field=field)
    for item in inputs:
        source = user_path(str(item)) if item else None
        if source is not None and source.exists() and source.resolve().is_relative_to(resolved):
            raise UserError(f"is or holds the input {item}; give the output a folder of its own, outside the inputs",
                            file=str(path), field=field)
    if resolved.exists() and not resolved.is_dir():
        raise UserError("is a file; give a folder for the output", file=str(path), field=field)
    return resolved


def _entries(folder: Path) -> list[str]:
    """Relative paths of the files (and links) under ``folder``, its manifest left out."""
    found = []
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        links = [d for d in dirs if os.path.islink(os.path.join(root, d))]
        found += [(rel / name).as_posix() for name in files + links]
    return sorted(name for name in found if name != MANIFEST)


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), list) else None


def _is_ours(folder: Path, owner: str | None, ours: bool | None) -> bool:
    if ours is not None:
        return ours
    manifest = _manifest(folder)
    return owner is not None and manifest is not None and manifest.get("owner") == owner


def _safe_rel(name: Any) -> bool:
    """A manifest entry that names a file inside the folder (no absolute path, no '..')."""
    if not isinstance(name, str) or not name or name == MANIFEST:
        return False
    rel = Path(name)
    return not rel.is_absolute() and ".." not in rel.parts


def _others_error(shown: str, owner: str, others: list[str], field: str) -> UserError:
    listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    return UserError(f"holds files {owner} did not write ({listed}); --force replaces only {owner}'s own files: "
                     "give a new or empty folder, or move those files out", file=shown, field=field)


def check_output_dir(path: str | os.PathLike, *, owner: str, force: bool, may_write: Iterable[str] | None = None,
                     inputs: Iterable[Any] = (), field: str = "--out", ours: bool | None = None) -> None:
    """Before any work: may ``owner`` write its output folder at ``path``? A UserError (one line) says why not.

    Always refused: the working directory or a folder above it, a folder holding an input, a file. An empty or
    missing folder is fine. ``owner``'s earlier output (its manifest says so, or ``ours``) needs ``force``; any
    other folder needs ``force`` and may hold only files ``owner`` writes (``may_write``: glob patterns; None:
    checked when the output is complete).
    """
    out = refuse_unsafe_output(path, inputs, field=field)
    present = _entries(out) if out.is_dir() else []
    if not present:
        return
    mine = _is_ours(out, owner, ours)
    patterns = list(may_write) if may_write is not None else None
    others = [] if mine or patterns is None else [
        name for name in present if not any(fnmatch.fnmatch(name, p) for p in patterns)]
    if others:
        raise _others_error(str(path), owner, others, field)
    if not force:
        raise UserError(f"output exists; pass --force to replace the files {owner} writes there "
                        "(other files in it are kept)", file=str(path), field=field)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False, *, owner: str | None = None,
               may_write: Iterable[str] | None = None, inputs: Iterable[Any] = (), field: str = "--out",
               ours: bool | None = None, manifest: bool = True) -> Iterator[Path]:
    """Yield a temp dir beside ``path``; when the block succeeds its files move into ``path``.

    A new folder appears whole (one rename). Into an existing one (allowed as :func:`check_output_dir` says)
    the files are moved one by one: same-named files are replaced, everything else stays, but for files that
    ``owner``'s manifest lists from its earlier output and this run did not write again. With ``owner`` (and
    ``manifest``) the manifest is written too. The folder and its files get the modes the user's umask gives.

    Without ``owner`` the folder is a cache the package owns whole (the converted model, docs_cache/): it is
    replaced as a whole, the caller carrying over whatever it keeps.
    """
    name = owner or "this command"
    check_output_dir(path, owner=name, force=force, may_write=may_write, inputs=inputs, field=field, ours=ours)
    out = user_path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())
        yield tmp
        if owner is None:
            _replace_whole(tmp, out)
        else:
            mine = _is_ours(out, owner, ours) if out.is_dir() else False
            _commit(tmp, out, str(path), name, owner if manifest else None, mine, field)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _replace_whole(tmp: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _write_manifest(folder: Path, owner: str, files: list[str]) -> None:
    atomic_write_json(folder / MANIFEST, {
        "owner": owner, "files": files,
        "note": f"written by llmops-ft {owner}: --force replaces these files and keeps everything else here"})


def _commit(tmp: Path, out: Path, shown: str, name: str, owner: str | None, mine: bool, field: str) -> None:
    """Move the finished output from ``tmp`` into ``out`` (see atomic_dir); ``owner``: write the manifest."""
    new = _entries(tmp)
    if not out.exists():
        if owner:
            _write_manifest(tmp, owner, new)
        os.replace(tmp, out)
        return
    present = set(_entries(out))
    if not mine and present - set(new):
        raise _others_error(shown, name, sorted(present - set(new)), field)
    for rel in new:
        clash = next((p for p in [*Path(rel).parents][:-1] if p.as_posix() in present), None)
        if clash is not None or ((out / rel).is_dir() and not (out / rel).is_symlink()):
            raise UserError(f"{clash or rel} is in the way of the output file {rel} (a file and a folder share "
                            "the name); move it", file=shown, field=field)
    earlier = [f for f in ((_manifest(out) or {}).get("files") or []) if mine and _safe_rel(f)]
    if owner:  # listed first, so an interrupted move still leaves every file of ours named
        _write_manifest(out, owner, sorted(set(earlier) | set(new)))
    for rel in new:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / rel, out / rel)
    for rel in sorted(set(earlier) - set(new)):
        _remove_earlier(out, rel)
    if owner:
        _write_manifest(out, owner, new)


def _remove_earlier(out: Path, rel: str) -> None:
    """Delete one file of an earlier output, and the folders under ``out`` it leaves empty."""
    path = out / rel
    if not (path.is_file() or path.is_symlink()) or not path.parent.resolve().is_relative_to(out):
        return
    path.unlink()
    for parent in path.parents:
        if parent == out:
            break
        try:
            parent.rmdir()
        except OSError:
            break
