"""`gen-taskapi`: write the Task API example's train.jsonl and eval.jsonl (defaults = the committed files)."""

from __future__ import annotations

import argparse
import os
from collections import Counter
from pathlib import Path

from ..core.result import Result
from ..errors import UserError
from ..io import atomic_write_bytes, dumps_jsonl_line
from .generate import DEFAULT_N_EVAL, DEFAULT_N_TRAIN, DEFAULT_SEED, generate
from .schema import SCHEMA_PATH

HELP = """Generate the Task API example conversations (system prompt with today's date, a task-management
request, the Task API call as one compact JSON object) and write OUT/train.jsonl and OUT/eval.jsonl.
With the defaults it reproduces the files committed in examples/task_api. An existing file with other
content is kept unless --force; an identical one is left alone."""

DEFAULT_OUT = SCHEMA_PATH.parent


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the generator's arguments."""
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: examples/task_api)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN,
                        help=f"training conversations (default {DEFAULT_N_TRAIN})")
    parser.add_argument("--n-eval", type=int, default=DEFAULT_N_EVAL,
                        help=f"eval conversations (default {DEFAULT_N_EVAL})")
    parser.add_argument("--force", action="store_true", help="overwrite existing files that differ")


def render_jsonl(rows: list[dict]) -> bytes:
    """The exact bytes of a JSON-lines file of ``rows``."""
    return "".join(dumps_jsonl_line(row) + "\n" for row in rows).encode("utf-8")


def _actions(rows: list[dict]) -> dict[str, int]:
    """How many rows end in each action."""
    import json

    counts = Counter(json.loads(row["messages"][-1]["content"])["action"] for row in rows)
    return dict(sorted(counts.items()))


def run(args: argparse.Namespace) -> Result:
    """Generate both splits and write the files that changed."""
    for flag, value in (("--n-train", args.n_train), ("--n-eval", args.n_eval)):
        if value < 1:
            raise UserError(f"must be at least 1, got {value}", field=flag)
    train, evals = generate(args.seed, args.n_train, args.n_eval)
    outputs = {"train.jsonl": render_jsonl(train), "eval.jsonl": render_jsonl(evals)}
    written, unchanged = [], []
    for name, data in outputs.items():
        path = args.out / name
        if path.is_file() and path.read_bytes() == data:
            unchanged.append(name)
            continue
        if path.exists() and not args.force:
            raise UserError("exists with other content; pass --force to overwrite it", file=_shown(path))
    for name, data in outputs.items():
        if name not in unchanged:
            atomic_write_bytes(args.out / name, data)
            written.append(name)
    data = {"out": _shown(args.out), "seed": args.seed, "n_train": len(train), "n_eval": len(evals),
            "written": written, "unchanged": unchanged,
            "actions": {"train": _actions(train), "eval": _actions(evals)}}
    text = (f"{len(train)} train and {len(evals)} eval conversations (seed {args.seed}) in {data['out']}: "
            f"written {', '.join(written) or 'nothing'}; unchanged {', '.join(unchanged) or 'nothing'}")
    return Result(data=data, text=text)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
