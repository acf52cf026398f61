"""`prep.py`: turn a raw dataset into train/val JSON lines a fine-tune can use, and say what is wrong with it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.commands import add_force_flag, add_trust_flag
from ..core.result import Result
from .formats import FORMATS
from .prep import DEFAULT_VAL_FRACTION, prepare

HELP = """Prepare a dataset for supervised fine-tuning.

Reads .jsonl, .json (array), .csv, .parquet files, folders of them, or a hub dataset id (online only).
Detects the format (alpaca, sharegpt, messages, prompt-completion, text) and the fields it saw, checks every
row against the format's jsonschema, normalises rows to {"messages": [...]} (or {"text": ...}), drops exact
duplicates (whitespace-normalised) and splits train/val deterministically by seed.

Writes OUT/train.jsonl, OUT/val.jsonl, OUT/rejects.jsonl (source, line, reason, row), OUT/duplicates.jsonl
and OUT/report.json (format, detected_from, total = kept + rejected + duplicates, train, val, ...).
With --model: applies the model's chat template and reports token lengths (min/p50/p95/max), rows over
--max-seq-length, and rows left with no trainable (assistant) tokens after prompt masking.

Exit 0 when the input is usable (bad rows become rejects); 2 with one line naming file and line when it is not
(unreadable, binary, empty, mixed or unknown format, preference data, no valid row; any reject with --strict).
--out must be a new or empty folder, or an earlier prep output; --force replaces only prep's own files there.
A folder holding other files, the working directory, or a folder holding the input is refused (exit 2).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add prep's arguments."""
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="dataset file(s), folder(s) or hub dataset id")
    parser.add_argument("--out", required=True, type=Path,
                        help="output folder, new or empty (an earlier prep output there needs --force)")
    parser.add_argument("--format", dest="fmt", default="auto", choices=("auto", *FORMATS),
                        help="dataset format (default: detect from the first row's fields)")
    parser.add_argument("--model", help="model name or folder whose tokenizer and chat template count tokens "
                                        "(e.g. smollm2-135m); only the tokenizer is loaded")
    parser.add_argument("--max-seq-length", type=int, help="token limit to check rows against "
                                                           "(default: the recommended training.max_seq_length)")
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                        help=f"share of rows for val (default {DEFAULT_VAL_FRACTION})")
    parser.add_argument("--seed", type=int, help="split seed (default: the recommended training.seed)")
    parser.add_argument("--no-dedupe", action="store_true", help="keep exact duplicates")
    parser.add_argument("--strict", action="store_true", help="fail (exit 2) on any rejected row")
    add_force_flag(parser, "replace prep's own files in an earlier prep output")
    add_trust_flag(parser, "the --model tokenizer", "prep never trusts it otherwise")


def run(args: argparse.Namespace) -> Result:
    """Run prep and summarise it for a person (text) or an agent (--json: the report)."""
    report = prepare(
        args.inputs, args.out, fmt=args.fmt, model=args.model, max_seq_length=args.max_seq_length,
        val_fraction=args.val_fraction, seed=args.seed, dedupe=not args.no_dedupe, strict=args.strict,
        force=args.force, trust_remote_code=args.trust_remote_code,
    )
    return Result(data={"ok": True, "out": str(args.out), **report}, text=summarise(report, args.out))


def summarise(report: dict, out: Path) -> str:
    """A few lines an agent or a person can act on."""
    how = "given by --format" if report["format_given"] else f"detected at {report['detected_at']}"
    lines = [
        f"format: {report['format']} ({how}; fields: {', '.join(report['detected_from'])})",
        f"rows: {report['total']} = {report['kept']} kept (train {report['train']}, val {report['val']})"
        f" + {report['rejected']} rejected + {report['duplicates']} duplicates",
    ]
    if report["rejected"]:
        top = "; ".join(f"{n} x {reason}" for reason, n in list(report["reject_reasons"].items())[:3])
        lines.append(f"rejected rows are listed in {out / 'rejects.jsonl'}: {top}")
    if report["duplicates"]:
        lines.append(f"duplicates are listed with the row they repeat in {out / 'duplicates.jsonl'}")
    if report["ignored_fields"]:
        lines.append("fields not used: " + ", ".join(f"{k} ({n} rows)" for k, n in report["ignored_fields"].items()))
    for skipped in report["skipped_files"]:
        lines.append(f"skipped {skipped['source']}: {skipped['reason']}")
    if "tokens" in report:
        t = report["tokens"]
        lines.append(f"tokens ({report['model']}): min {t['min']}, p50 {t['p50']}, p95 {t['p95']}, max {t['max']}; "
                     f"{len(report['over_max_length'])} rows over {report['max_seq_length']}; "
                     f"{len(report['no_trainable_tokens'])} rows with no trainable tokens (see report.json)")
    lines.append(f"wrote {out}/ (train.jsonl, val.jsonl, rejects.jsonl, duplicates.jsonl, report.json)")
    return "\n".join(lines)
