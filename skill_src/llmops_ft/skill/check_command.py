"""`check_skill.py`: the validation harness over the rendered skill, its recommendations and the docs facts."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.result import Result
from . import inputs
from .check import report_data, report_text, run_checks
from .render import REPO, SKILL_DIR

HELP = """Validate the skill in .claude/skills/llmops-fine-tuner/ against skill_src/recommendations.yaml and the
docs facts in docs_cache/:
  format       Agent Skills spec (skills-ref), body <= 500 lines, references one level deep, mentioned files exist
  consistency  every value in SKILL.md/references tables and code blocks equals recommendations.yaml
  grounding    every recommendation agrees with the docs facts it cites (table: parameter, skill value,
               docs value, source URL, verdict)
  hardware     fp16 (never bf16, compute dtype included) on T4/V100; bf16 on Ampere and newer
  commands     python blocks parse; every scripts/*.py command shown is accepted by that script's parser
--docs DIR checks against another docs snapshot (a mirror or llms-full.txt) without touching docs_cache/.
Exit status: 0 all checks pass, 1 a contradiction or other error, 2 bad input."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the harness options."""
    parser.add_argument("--docs", metavar="DIR_OR_FILE",
                        help="extract facts from this docs mirror or llms-full.txt instead of docs_cache/ (read only)")
    parser.add_argument("--skill", metavar="DIR", help="skill folder to check (default: the repo's)")
    parser.add_argument("--recommendations", metavar="FILE", help="recommendations file (default: the repo's)")
    parser.add_argument("--quiet", action="store_true", help="leave out the grounding table")


def run(args: argparse.Namespace) -> Result:
    """Run every check and report."""
    recs = inputs.load_recommendations(args.recommendations)
    facts, source = inputs.load_facts(args.docs)
    skill_dir = Path(args.skill) if args.skill else SKILL_DIR
    spec = REPO / "LEARNING-SPEC.md"
    extra = [spec] if args.skill is None and spec.is_file() else []
    report = run_checks(recs, facts, skill_dir=skill_dir, repo=REPO, extra_docs=extra)
    return Result(report_data(report, source), report_text(report, source, show_table=not args.quiet),
                  exit_code=1 if report.errors else 0)
