"""`render_skill.py`: render .claude/skills/llmops-fine-tuner/ from skill_src/templates, recommendations, facts."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.result import Result
from . import inputs, render

HELP = """Render the skill (SKILL.md + references/*.md) from skill_src/templates/*.j2, skill_src/recommendations.yaml
and the docs facts in docs_cache/. Re-rendering the same inputs gives byte-identical files.

  render_skill.py            write .claude/skills/llmops-fine-tuner/ (the folder is generated: never edit it)
  render_skill.py --check    exit 1 when the committed files differ from a fresh render (run `make skill`)

Exit status: 0 written / up to date, 1 stale (--check), 2 bad input."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the render options."""
    parser.add_argument("--check", action="store_true", help="compare with a fresh render; write nothing")
    parser.add_argument("--out", metavar="DIR", help="skill folder to write or check (default: the repo's)")
    parser.add_argument("--recommendations", metavar="FILE", help="recommendations file (default: the repo's)")
    parser.add_argument("--docs", metavar="DIR_OR_FILE",
                        help="take facts from this docs mirror or llms-full.txt instead of docs_cache/")
    parser.add_argument("--force", action="store_true", help="replace a --out folder that was not rendered by us")


def run(args: argparse.Namespace) -> Result:
    """Render, then write or compare."""
    recs = inputs.load_recommendations(args.recommendations)
    facts, source = inputs.load_facts(args.docs)
    files = render.render(recs, facts)
    skill_dir = Path(args.out) if args.out else render.SKILL_DIR
    shown = args.out or ".claude/skills/llmops-fine-tuner"
    data = {"skill_dir": shown, "files": sorted(files), "facts_source": source}
    if args.check:
        stale = render.stale_files(files, skill_dir)
        data.update(ok=not stale, stale=stale)
        if stale:
            text = f"{shown}: stale, differs from a fresh render: {', '.join(stale)}\nrun `make skill` and commit."
            return Result(data, text, exit_code=1)
        return Result(data, f"{shown}: up to date ({len(files)} files)")
    render.write(files, skill_dir, force=args.force)
    data.update(ok=True, written=sorted(files))
    return Result(data, f"rendered {len(files)} files into {shown} (facts: {source})")
