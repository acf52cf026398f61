"""The validation harness: run every check over a rendered skill, its recommendations and the docs facts.

Checks (one module each under ``checks/``): format (skills-ref + our layout rules), consistency (values shown ==
recommendations.yaml), grounding (recommendations vs docs facts, as a table), hardware (fp16 on T4/V100, bf16 on
Ampere+), commands (python parses, scripts accept the flags shown). Any error fails; warnings are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..knowledge.recommendations import RecommendationSet
from . import markdown
from .checks import Finding, commands, consistency, format, grounding, hardware
from .render import REPO, SKILL_DIR

CHECKS = ("format", "consistency", "grounding", "hardware", "commands")


@dataclass
class Report:
    """Everything the harness found, plus the grounding table and counts."""

    findings: list[Finding] = field(default_factory=list)
    grounding: list[grounding.Row] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        """Findings that fail the check."""
        return [f for f in self.findings if f.severity == "error"]


def label_for(path: Path, repo: Path, base: Path | None = None) -> str:
    """A path as printed (never absolute): relative to the repo, else to ``base``, else its name."""
    for root in (repo, base):
        if root is not None and path.resolve().is_relative_to(root.resolve()):
            return path.resolve().relative_to(root.resolve()).as_posix()
    return path.name


def skill_docs(skill_dir: Path, repo: Path) -> dict[str, markdown.Doc]:
    """SKILL.md and references/*.md of ``skill_dir`` parsed, keyed by printed label (SKILL.md first)."""
    paths = [skill_dir / "SKILL.md", *sorted((skill_dir / "references").glob("*.md"))]
    return {label_for(path, repo, skill_dir.parent): markdown.parse(path) for path in paths if path.is_file()}


def run_checks(recs: RecommendationSet, facts: dict[str, dict[str, Any]], skill_dir: Path = SKILL_DIR,
               repo: Path = REPO, extra_docs: list[Path] | None = None) -> Report:
    """Run every check. ``extra_docs`` (e.g. LEARNING-SPEC.md) get the consistency, hardware and command checks."""
    report = Report()
    recs_label = label_for(recs.path, repo)
    docs = skill_docs(skill_dir, repo)
    skill_md_label = label_for(skill_dir / "SKILL.md", repo, skill_dir.parent)
    report.findings += format.check(skill_dir, repo, docs, skill_md_label)
    for path in extra_docs or []:
        docs[label_for(path, repo)] = markdown.parse(path)

    found, claims = consistency.check(recs, docs)
    report.findings += found

    report.grounding = grounding.ground(recs, facts)
    report.findings += grounding.findings(recs, report.grounding, recs_label)

    report.findings += hardware.recommendation_findings(recs, recs_label)
    for label, doc in docs.items():
        report.findings += hardware.doc_findings(recs, doc, label)

    found, shown = commands.check(docs, repo)
    report.findings += found

    cited = {row.fact for row in report.grounding if row.verdict in ("agrees", "contradicts")}
    report.counts = {
        "files": len(docs),
        "values_checked": claims,
        "commands_checked": shown,
        "recommendations": len(recs.entries),
        "recommendations_ours": sum(1 for e in recs.entries.values() if e["basis"] == "ours"),
        "facts": len(facts),
        "facts_curated": sum(1 for f in facts.values() if f.get("origin") == "curated"),
        "facts_cited": len(cited),
        "facts_cited_curated": sum(1 for fact_id in cited if facts[fact_id].get("origin") == "curated"),
    }
    return report


def report_data(report: Report, facts_source: str) -> dict[str, Any]:
    """The ``--json`` object."""
    by_check = {name: [f.as_dict() for f in report.findings if f.check == name] for name in CHECKS}
    return {
        "ok": not report.errors,
        "errors": len(report.errors),
        "warnings": len(report.findings) - len(report.errors),
        "facts_source": facts_source,
        "counts": report.counts,
        "findings": by_check,
        "grounding": [row.as_dict() for row in report.grounding],
    }


def report_text(report: Report, facts_source: str, show_table: bool = True) -> str:
    """The human report: grounding table, findings per check, a summary line."""
    c = report.counts
    lines = []
    if show_table:
        lines += [f"grounding (facts from {facts_source}):", grounding.table_text(report.grounding), ""]
    for name in CHECKS:
        found = [f for f in report.findings if f.check == name]
        status = "ok" if not any(f.severity == "error" for f in found) else "FAILED"
        lines.append(f"{name}: {status}")
        lines += [f"  {f}" for f in found]
    lines.append("")
    lines.append(
        f"{c['files']} files, {c['values_checked']} values and {c['commands_checked']} commands checked; "
        f"{c['recommendations']} recommendations ({c['recommendations_ours']} ours, not in the docs); "
        f"{c['facts']} docs facts ({c['facts_curated']} curated), {c['facts_cited']} cited "
        f"({c['facts_cited_curated']} curated)")
    verdict = "OK" if not report.errors else f"FAILED: {len(report.errors)} error(s)"
    lines.append(f"check_skill: {verdict}")
    return "\n".join(lines)
