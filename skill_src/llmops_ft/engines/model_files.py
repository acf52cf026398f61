"""Checks on model, tokenizer and adapter folders before a library loads them, and one line for every way a load
fails: a damaged or incomplete folder, a hub id that cannot be reached, a repository that needs its own code.

The libraries raise a dozen exception types for a bad folder (OSError, ValueError, TypeError, JSONDecodeError,
SafetensorError, huggingface_hub's validation errors, tokenizers' plain Exception, RuntimeError on mismatched
shapes). The checks here catch the common cases first, with the file and line; :func:`loading` turns what is left
into a UserError naming the model.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import read_json_file

# owner/name as the hub accepts it: ASCII letters, digits, "-", "_", "." (not first), at most 96 characters
HUB_ID = re.compile(r"^(?=.{3,96}$)[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
TOKENIZER_JSON = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
TOKENIZER_ANY = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
MAX_HEADER = 100 << 20  # a safetensors header larger than this is not one
# Messages of load failures that mean "this folder or hub id is not usable", not a bug of ours.
LOAD_FAILURE_TEXT = re.compile(r"size mismatch|ignore_mismatched_sizes|Error\(s\) in loading state_dict|deserializ")


def offline() -> bool:
    """Whether the Hugging Face hub is switched off (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE, as the hub reads them)."""
    return any(os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cached_snapshot(repo_id: str) -> Path | None:
    """The local snapshot folder of a hub model when its config.json is in the Hugging Face cache, else None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except ValueError:  # HFValidationError: not a repo id the hub accepts
        return None
    return Path(found).parent if isinstance(found, str) else None


def check_safetensors(path: Path) -> None:
    """UserError when ``path`` is not a complete safetensors file (header unreadable, or tensors cut off)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        length = int.from_bytes(head, "little") if len(head) == 8 else -1
        if length < 2 or length > min(MAX_HEADER, size - 8):
            raise UserError("not a complete safetensors file (its header is cut off or missing); the download or "
                            "copy was interrupted: fetch it again", file=str(path))
        try:
            header = json.loads(fh.read(length))
        except (ValueError, RecursionError):
            raise UserError("safetensors header is not valid JSON; the file is damaged: fetch it again",
                            file=str(path)) from None
    if not isinstance(header, dict):
        raise UserError("safetensors header is not a JSON object; the file is damaged", file=str(path))
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"
            and isinstance(entry, dict) and isinstance(entry.get("data_offsets"), list) and entry["data_offsets"]]
    need = 8 + length + max((e for e in ends if isinstance(e, int)), default=0)
    if need > size:
        raise UserError(f"truncated: the header describes {need:,} bytes, the file holds {size:,}; fetch it again",
                        file=str(path))


def check_weights(folder: Path, *, required: bool = True) -> None:
    """Every safetensors file the folder's index names (or every *.safetensors) is complete; pickles are refused."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        spec = read_json_file(index)
        weight_map = spec.get("weight_map") if isinstance(spec, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise UserError("no weight_map: the index is incomplete", file=str(index), field="weight_map")
        shards = sorted({str(name) for name in weight_map.values()})
        missing = [name for name in shards if not (folder / name).is_file()]
        if missing:
            raise UserError(f"names shards that are not there: {', '.join(missing[:3])}; the folder is incomplete",
                            file=str(index), field="weight_map")
        files = [folder / name for name in shards]
    else:
        files = sorted(folder.glob("*.safetensors"))
    for file in files:
        check_safetensors(file)
    if not files and required:
        pickles = sorted(p.name for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern))
        if pickles:
            raise UserError(f"holds only pickle weights ({', '.join(pickles[:3])}); this package loads safetensors "
                            "only, which cannot run code: convert them to .safetensors first", file=str(folder))
        raise UserError("no weights: no *.safetensors file; the folder is incomplete", file=str(folder))


def check_tokenizer_files(folder: Path, *, required: bool = True) -> None:
    """The tokenizer's JSON files parse; with ``required`` (a tokenizer is loaded from here) one must be there."""
    if required and not any((folder / name).is_file() for name in TOKENIZER_ANY):
        raise UserError(f"no tokenizer files ({', '.join(TOKENIZER_ANY)}); the folder is incomplete", file=str(folder))
    for name in TOKENIZER_JSON:
        if (folder / name).is_file() and not isinstance(read_json_file(folder / name), dict):
            raise UserError("expected a JSON object", file=str(folder / name))


def check_model_folder(folder: Path, *, weights: bool = False, tokenizer: bool = False) -> dict[str, Any]:
    """config.json parses and names a model type; the tokenizer files present parse; the safetensors present are
    complete. With ``weights`` / ``tokenizer`` they must be there too. Returns the config."""
    path = folder / "config.json"
    if not path.is_file():
        raise UserError("not a Hugging Face model folder (no config.json)", file=str(folder))
    config = read_json_file(path)
    if not isinstance(config, dict):
        raise UserError("expected a JSON object", file=str(path))
    if not isinstance(config.get("model_type"), str) or not config["model_type"]:
        raise UserError("missing: config.json is incomplete (every transformers model folder names its model_type)",
                        file=str(path), field="model_type")
    generation = folder / "generation_config.json"
    if generation.is_file() and not isinstance(read_json_file(generation), dict):
        raise UserError("expected a JSON object", file=str(generation))
    check_tokenizer_files(folder, required=tokenizer)
    check_weights(folder, required=weights)
    return config


def check_adapter_folder(folder: Path) -> dict[str, Any]:
    """adapter_config.json parses (a PEFT config) and adapter_model.safetensors is complete; returns the config."""
    path = folder / "adapter_config.json"
    weights = folder / "adapter_model.safetensors"
    missing = [p.name for p in (path, weights) if not p.is_file()]
    if missing:
        bins = [name for name in ("adapter_model.bin",) if (folder / name).is_file()]
        hint = " (adapter_model.bin is a pickle: this package loads safetensors only)" if bins else ""
        raise UserError(f"adapter incomplete: missing {', '.join(missing)}{hint}", file=str(folder))
    config = read_json_file(path)
    if not isinstance(config, dict) or not isinstance(config.get("peft_type"), str):
        raise UserError("not a PEFT adapter config (no peft_type); the file is damaged or not an adapter's",
                        file=str(path), field="peft_type")
    check_safetensors(weights)
    return config


def load_failure(exc: BaseException) -> str | None:
    """What a failed from_pretrained means for the user, or None when it looks like a bug of ours."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "trust_remote_code" in text:
        return ("it needs to run Python code from the model repository; if you trust that code, pass "
                "--trust-remote-code")
    module = type(exc).__module__ or ""
    # the tokenizers library raises a bare Exception for a tokenizer.json it cannot read; no code of ours does
    library = module.startswith(("safetensors", "tokenizers", "huggingface_hub")) or type(exc) is Exception
    if isinstance(exc, (OSError, ValueError, KeyError)) or library or (
            isinstance(exc, RuntimeError) and LOAD_FAILURE_TEXT.search(text)):
        return text[:400]
    return None


@contextlib.contextmanager
def loading(ref: str, what: str = "model", field: str | None = None) -> Iterator[None]:
    """Around one from_pretrained call: a failure that is the model's (see :func:`load_failure`) becomes one line."""
    try:
        yield
    except UserError:
        raise
    except Exception as exc:
        reason = load_failure(exc)
        if reason is None:
            raise
        raise UserError(f"cannot load the {what}: {reason}", file=ref, field=field) from None
