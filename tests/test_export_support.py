"""Shared helpers of the export / evaluate tests (no tests here): a real training run on the tiny model, and GGUF
surgery (metadata rewrite, byte flips) for the verification-failure tests.

The run is trained once per session by llmops_ft.train (hf backend, a few steps) and memoised here, so every
test module that imports ``tiny_run`` gets the same run dir.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASK_API = REPO / "examples" / "task_api"
# Two cores shared with other work: llama.cpp's spinning threads are much slower than one (see llama_engine).
os.environ.setdefault("LLMOPS_FT_LLAMA_THREADS", "1")

_RUNS: dict[str, Path] = {}


def train_run(root: Path, model_dir: Path, *, steps: int = 5, rows: int = 32, system_prompt: str | None = None,
              learning_rate: float = 5e-3) -> Path:
    """Train ``model_dir`` for ``steps`` on the first Task API rows; returns the run dir (run.json + adapter/)."""
    import json

    from llmops_ft.config import load_config
    from llmops_ft.train import train

    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name, source, count in (("train.jsonl", "train.jsonl", rows), ("val.jsonl", "eval.jsonl", 8)):
        lines = (TASK_API / source).read_text(encoding="utf-8").splitlines()[:count]
        if system_prompt is not None:  # one shared system prompt, so run.json records it
            lines = [_with_system(line, system_prompt) for line in lines]
        (data / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = load_config(None, base={
        "model": {"name": str(model_dir), "max_seq_length": 256},
        "dataset": {"path": str(data)},
        "training": {"max_steps": steps, "batch_size": 4, "grad_accum": 1, "learning_rate": learning_rate,
                     "optim": "adamw_torch", "gradient_checkpointing": False, "save_steps": 1000,
                     "warmup_steps": 0, "logging_steps": 1},
        "backend": "hf",
        "hardware": "cpu",
        "output_dir": str(root / "run"),
    })
    train(config)
    assert json.loads((root / "run" / "run.json").read_text())["steps"] == steps
    return root / "run"


def _with_system(line: str, system_prompt: str) -> str:
    import json

    row = json.loads(line)
    row["messages"][0]["content"] = system_prompt
    return json.dumps(row)


def train_once(tmp_path_factory, model_dir: Path) -> Path:
    """The session's trained tiny run (5 real steps; one shared system prompt, recorded in run.json).

    Trained on first use and memoised, so every test module's fixture returns the same run dir.
    """
    if "tiny" not in _RUNS:
        _RUNS["tiny"] = train_run(tmp_path_factory.mktemp("tiny-run"), model_dir,
                                  system_prompt="Reply with one Task API call as JSON.")
    return _RUNS["tiny"]


def rewrite_gguf(src: Path, dst: Path, *, set_strings: dict[str, str] | None = None,
                 set_bools: dict[str, bool] | None = None, remove: tuple[str, ...] = ()) -> Path:
    """Copy a GGUF with some metadata changed or removed (tensors untouched)."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(str(src))
    arch = reader.get_field("general.architecture").contents()
    new = {k: MetadataDetails(gguf.GGUFValueType.STRING, v) for k, v in (set_strings or {}).items()}
    new.update({k: MetadataDetails(gguf.GGUFValueType.BOOL, v) for k, v in (set_bools or {}).items()})
    copy_with_new_metadata(reader, gguf.GGUFWriter(str(dst), arch), new, list(remove))
    return dst


def flip_tensor_bytes(path: Path, tensor_name: str, count: int = 4096) -> None:
    """Invert ``count`` bytes at the start of a tensor's data in place (a silently corrupted download)."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    tensor = next(t for t in reader.tensors if t.name == tensor_name)
    offset = tensor.data_offset
    del reader
    with open(path, "r+b") as fh:
        fh.seek(offset)
        data = bytearray(fh.read(count))
        fh.seek(offset)
        fh.write(bytes(b ^ 0x5A for b in data))
