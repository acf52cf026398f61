#!/usr/bin/env python3
"""Thin entry point: `init_config.py --help` explains it; the logic lives in skill_src/llmops_ft."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "skill_src"))
from llmops_ft.cli import main  # noqa: E402

sys.exit(main(["init-config", *sys.argv[1:]]))
