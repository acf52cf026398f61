"""Format: the Agent Skills spec through the reference validator (skills-ref), plus this project's rules.

Body at most 500 lines; references one level deep (SKILL.md + references/*.md, references link to no other
reference); every file and script SKILL.md mentions exists and every reference is mentioned; the description says
when to pick the skill and when not to.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..markdown import Doc
from . import Finding

MAX_BODY_LINES = 500
# The description must name what should trigger the skill and say what should not.
DESCRIPTION_MUST_MENTION = ("fine-tun", "LoRA", "QLoRA", "Unsloth", "GGUF", "Ollama", "Not for")
_REPO_PATH = re.compile(r"(?<![\w/.-])((?:scripts|examples|skill_src|docs_cache|benchmarks|tests)/[\w./-]*\w"
                        r"|LEARNING-SPEC\.md|Makefile)")
_REFERENCE = re.compile(r"(?<![\w/.-])references/[\w.-]+\.md")


def check(skill_dir: Path, repo: Path, docs: dict[str, Doc], label: str) -> list[Finding]:
    """Findings for the skill folder; ``docs`` are its parsed files keyed by label, ``label`` is SKILL.md's."""
    import skills_ref

    skill_md = skill_dir / "SKILL.md"
    out = [Finding("format", label, None, f"skills-ref: {message}") for message in skills_ref.validate(skill_dir)]
    if not skill_md.exists():
        return out
    doc = docs[label]
    if doc.body_lines > MAX_BODY_LINES:
        out.append(Finding("format", label, None, f"body is {doc.body_lines} lines; keep it at most {MAX_BODY_LINES} "
                                                  "and move detail into references/"))
    out += _layout(skill_dir, label)
    out += _description(skill_dir, label)
    out += _mentions(skill_dir, repo, doc, label)
    for other_label, other in docs.items():
        if other_label != label:
            out += [Finding("format", other_label, line, f"links to {target}: references stay one level deep "
                                                         "(link from SKILL.md instead)")
                    for target, line in other.links if _REFERENCE.search(target) or target.endswith(".md")
                    and not target.startswith("http")]
    return out


def _layout(skill_dir: Path, label: str) -> list[Finding]:
    out = []
    for path in sorted(skill_dir.rglob("*")):
        rel = path.relative_to(skill_dir)
        ok = rel.as_posix() in ("SKILL.md", "references") or (
            len(rel.parts) == 2 and rel.parts[0] == "references" and rel.suffix == ".md" and path.is_file())
        if not ok:
            out.append(Finding("format", label, None, f"{rel.as_posix()}: only SKILL.md and references/*.md belong "
                                                      "in the skill (references one level deep)"))
    return out


def _description(skill_dir: Path, label: str) -> list[Finding]:
    import skills_ref

    try:
        description = skills_ref.read_properties(skill_dir).description
    except skills_ref.SkillError:
        return []  # skills_ref.validate already reported it
    missing = [word for word in DESCRIPTION_MUST_MENTION if word.lower() not in description.lower()]
    return [Finding("format", label, 2, f"description does not mention {', '.join(missing)}: it must say when to "
                                        "pick this skill and when not to")] if missing else []


def _mentions(skill_dir: Path, repo: Path, doc: Doc, label: str) -> list[Finding]:
    out = []
    mentioned_refs = set()
    for number, line in enumerate(doc.text.splitlines(), start=1):
        for ref in _REFERENCE.findall(line):
            mentioned_refs.add(ref)
            if not (skill_dir / ref).is_file():
                out.append(Finding("format", label, number, f"mentions {ref}, which does not exist"))
        for path in _REPO_PATH.findall(line):
            if not (repo / path).exists():
                out.append(Finding("format", label, number, f"mentions {path}, which does not exist in the repo"))
    for ref in sorted((skill_dir / "references").glob("*.md")):
        rel = f"references/{ref.name}"
        if rel not in mentioned_refs:
            out.append(Finding("format", label, None, f"{rel} is never mentioned: the agent cannot find it"))
    return out
