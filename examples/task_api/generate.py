#!/usr/bin/env python3
"""Regenerate this folder's train.jsonl and eval.jsonl: `python examples/task_api/generate.py --help`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "skill_src"))
from llmops_ft.cli import main  # noqa: E402

sys.exit(main(["gen-taskapi", *sys.argv[1:]]))
