"""check_skill.py, the validation harness: each check finds what it is for, and the repo's skill passes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from llmops_ft.cli import main
from llmops_ft.knowledge.facts import DOCS_CACHE, load_facts
from llmops_ft.knowledge.recommendations import RECOMMENDATIONS_PATH, load_set
from llmops_ft.skill import check, render
from llmops_ft.skill.checks import commands, grounding

DESCRIPTION = ("Fine-tune with LoRA or QLoRA using Unsloth and export GGUF for Ollama. Not for inference, RAG or "
               "prompt engineering.")


@pytest.fixture(scope="module")
def facts():
    return load_facts()


@pytest.fixture(scope="module")
def repo_report(facts):
    return check.run_checks(load_set(), facts)


def make_skill(root: Path, body: str, references: dict[str, str] | None = None,
               description: str = DESCRIPTION) -> Path:
    """A skill folder named llmops-fine-tuner under ``root`` with ``body`` and references."""
    skill = root / "llmops-fine-tuner"
    (skill / "references").mkdir(parents=True, exist_ok=True)
    (skill / "SKILL.md").write_text(f"---\nname: llmops-fine-tuner\ndescription: {description}\n---\n\n{body}")
    for name, text in (references or {}).items():
        (skill / "references" / name).write_text(text)
    return skill


def messages(report, name: str) -> list[str]:
    return [f.message for f in report.errors if f.check == name]


# --- the repo's own skill -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["format", "consistency", "grounding", "hardware"])
def test_repo_skill_passes(repo_report, name):
    assert messages(repo_report, name) == []


def test_repo_skill_commands_are_accepted_by_the_real_scripts(repo_report):
    # Fails (and names the script) while a script's command module is missing: never skipped silently.
    assert messages(repo_report, "commands") == []
    assert repo_report.counts["commands_checked"] >= 20


def test_repo_skill_checks_real_amounts_and_reports_curated_facts(repo_report, facts):
    counts = repo_report.counts
    assert counts["values_checked"] >= 100
    assert counts["facts"] == len(facts)
    assert counts["facts_curated"] == sum(1 for f in facts.values() if f["origin"] == "curated") > 0
    assert 0 < counts["facts_cited_curated"] <= counts["facts_curated"]
    verdicts = {row.verdict for row in repo_report.grounding}
    assert verdicts <= {"agrees", "ours"} and "agrees" in verdicts


def test_json_report_has_the_grounding_table(capsys):
    code = main(["check-skill", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == (0 if data["ok"] else 1)
    row = next(r for r in data["grounding"] if r["id"] == "training.warmup_fraction")
    assert row == {**row, "parameter": "warmup_fraction", "skill_value": "0.05", "verdict": "agrees",
                   "url": "https://unsloth.ai/docs/get-started/fine-tuning-llms-guide/lora-hyperparameters-guide"}
    assert row["docs_value"].startswith("0.05-0.1")
    assert set(data["findings"]) == set(check.CHECKS)


def test_text_report_prints_the_table_and_the_curated_count(capsys):
    main(["check-skill"])
    out = capsys.readouterr().out
    assert re.search(r"^parameter\s+skill value\s+docs value\s+source\s+verdict$", out, re.M)
    assert re.search(r"^learning_rate\s+2e-4\s+2e-4\s+https://unsloth\.ai/docs/\S+\s+agrees$", out, re.M)
    assert re.search(r"\d+ docs facts \(\d+ curated\)", out)


# --- the seed lesson's values are rejected ------------------------------------------------------------------------


def _seed_skill_md(shared: Path) -> str:
    lesson = (shared / "seed" / "build-your-fine-tuning-skill.md").read_text(encoding="utf-8")
    return re.search(r"<< 'EOF'\n(---\nname: llmops-fine-tuner.*?)\nEOF\n", lesson, re.S).group(1) + "\n"


def test_the_seed_lessons_skill_is_rejected_value_by_value(shared, tmp_path, facts):
    skill = tmp_path / "llmops-fine-tuner"
    skill.mkdir()
    (skill / "SKILL.md").write_text(_seed_skill_md(shared))
    report = check.run_checks(load_set(), facts, skill_dir=skill)
    found = "\n".join(messages(report, "consistency"))
    assert "warmup_fraction = 0.03" in found  # warmup_ratio=0.03
    assert "num_train_epochs = 3" in found
    assert "per_device_train_batch_size = 4" in found and "gradient_accumulation_steps = 4" in found
    assert "learning_rate = 1e-4" in found  # "Small datasets (<1K) | 1e-4"
    assert "gguf_size_gb = 4," in found  # "GGUF q4_k_m | ~4GB"
    bf16 = [f for f in report.errors if f.check == "hardware"]
    assert len(bf16) == 1 and "bnb_4bit_compute_dtype=torch.bfloat16" in (skill / "SKILL.md").read_text().splitlines()[
        bf16[0].line - 1]


SEED_VALUES = [  # (recommendation id, the seed lesson's value)
    ("precision.dtype.pre_ampere", "bfloat16"),  # bnb_4bit_compute_dtype=torch.bfloat16 on a T4
    ("training.warmup_fraction", "0.03"),
    ("training.num_train_epochs", "3"),
    ("training.per_device_train_batch_size", "4"),
    ("training.gradient_accumulation_steps", "4"),
    ("training.learning_rate.small_data", "1.0e-4"),
    ("export.gguf_size_gb.8b.q4_k_m", "4.0"),
]


def _with_values(tmp_path: Path, changes: list[tuple[str, str]]) -> Path:
    text = RECOMMENDATIONS_PATH.read_text(encoding="utf-8")
    for rec_id, value in changes:
        text, n = re.subn(rf"(id: {re.escape(rec_id)}\n(?:(?!\n  - )[\s\S])*?value: )[^,\n]+", rf"\g<1>{value}", text,
                          count=1)
        assert n == 1, rec_id
    path = tmp_path / "seed_recommendations.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_seed_values_as_recommendations_are_rejected_by_the_docs(tmp_path, facts):
    seed = load_set(str(_with_values(tmp_path, SEED_VALUES)))
    assert seed.entries["training.warmup_fraction"]["value"] == 0.03
    rows = grounding.ground(seed, facts)
    contradicted = {row.id for row in rows if row.verdict == "contradicts"}
    assert {rec_id for rec_id, _ in SEED_VALUES[:-1]} <= contradicted
    from llmops_ft.skill.checks import hardware

    assert any("precision.dtype.pre_ampere: bfloat16 on T4/V100" in f.message
               for f in hardware.recommendation_findings(seed, "seed.yaml"))


def test_a_skill_rendered_from_seed_values_is_rejected_against_ours(tmp_path, facts):
    # No docs page states GGUF sizes, so "q4_k_m is about 4 GB" is caught where the skill shows it.
    seed = load_set(str(_with_values(tmp_path, SEED_VALUES)))
    out = tmp_path / "llmops-fine-tuner"
    render.write(render.render(seed, facts), out)
    report = check.run_checks(load_set(), facts, skill_dir=out)
    found = "\n".join(messages(report, "consistency"))
    for shown in ("gguf_size_gb = 4,", "warmup_fraction = 0.03", "num_train_epochs = 3", "learning_rate = 1e-4",
                  "per_device_train_batch_size = 4", "gradient_accumulation_steps = 4", "dtype = bfloat16"):
        assert shown in found, shown


# --- --docs: another snapshot, cache untouched ---------------------------------------------------------------------


def _tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_docs_flag_checks_a_newer_snapshot_without_touching_the_cache(shared, tmp_path, capsys):
    mirror = tmp_path / "newer"
    shutil.copytree(shared / "unsloth-docs", mirror)
    page = mirror / "get-started/fine-tuning-llms-guide/lora-hyperparameters-guide.md"
    text = page.read_text(encoding="utf-8")
    assert "5-10% of total steps" in text
    page.write_text(text.replace("5-10% of total steps", "10-20% of total steps"), encoding="utf-8")
    before = _tree_digest(DOCS_CACHE)
    code = main(["check-skill", "--json", "--docs", str(mirror)])
    data = json.loads(capsys.readouterr().out)
    assert _tree_digest(DOCS_CACHE) == before
    assert code == 1 and data["facts_source"] == "newer"
    row = next(r for r in data["grounding"] if r["fact"] == "lora-hyperparameters.warmup_fraction.range")
    assert (row["verdict"], row["docs_value"].split()[0]) == ("contradicts", "0.1-0.2")
    assert any("training.warmup_fraction" in f["message"] for f in data["findings"]["grounding"])


# --- consistency --------------------------------------------------------------------------------------------------


def test_a_hand_edited_value_in_a_table_or_code_block_is_caught(tmp_path, facts):
    out = tmp_path / "llmops-fine-tuner"
    shutil.copytree(render.SKILL_DIR, out)
    skill_md = out / "SKILL.md"
    skill_md.write_text(skill_md.read_text().replace("| `lora_alpha` | 16 |", "| `lora_alpha` | 32 |"))
    lora = out / "references" / "lora-qlora.md"
    lora.write_text(lora.read_text().replace("    lora_dropout=0,\n", "    lora_dropout=0.05,\n", 1))
    report = check.run_checks(load_set(), facts, skill_dir=out)
    found = messages(report, "consistency")
    assert "lora_alpha = 32, but recommendations.yaml says 16 (lora.alpha)" in found
    assert "lora_dropout = 0.05, but recommendations.yaml says 0 (lora.dropout)" in found
    assert len(found) == 2


def test_context_picks_the_conditional_recommendation(tmp_path, facts):
    body = ("## Continued pretraining\n\n```python\nargs = dict(learning_rate=5e-5, embedding_learning_rate=5e-6)\n"
            "```\n\n## Batch per GPU\n\n| GPU | Batch | Accumulation |\n| --- | --- | --- |\n"
            "| 24 GB (L4) | 4 | 4 |\n| 40-80 GB (A100, H100) | 8 | 2 |\n| 24 GB (A10G) | 2 | 8 |\n")
    report = check.run_checks(load_set(), facts, skill_dir=make_skill(tmp_path, body))
    assert messages(report, "consistency") == [
        "per_device_train_batch_size = 2, but recommendations.yaml says 4 (training.per_device_train_batch_size.gpu24)",
        "gradient_accumulation_steps = 8, but recommendations.yaml says 4 (training.gradient_accumulation_steps.gpu24)",
    ]


# --- hardware -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, expected", [
    ("## On a T4\n\n```python\ncfg = dict(bnb_4bit_compute_dtype=torch.bfloat16)\n```\n", "bf16 in a T4/V100 context"),
    ("## Setup\n\n```python\nTrainingArguments(bf16=True)\n```\n", "bf16 shown without saying it needs Ampere"),
    ("## On an A100 (Ampere)\n\n```python\nTrainingArguments(fp16=True)\n```\n", "fp16 in an Ampere+ context"),
    ("## GPUs\n\n| GPU | dtype |\n| --- | --- |\n| T4 | bfloat16 |\n", "bf16 in a T4/V100 context"),
    ("## On an A100 (Ampere)\n\n```python\nTrainingArguments(bf16=True)\n```\n", None),
    ("## Any GPU\n\n```python\nargs = dict(fp16=not is_bfloat16_supported(), bf16=is_bfloat16_supported())\n```\n",
     None),
    ("## T4\n\n```python\nmodel = load(dtype=None)  # float16 on T4, bfloat16 on Ampere\n```\n", None),
    ("## CPUs\n\n| Machine | dtype |\n| --- | --- |\n| CPU with avx512_bf16 | bfloat16 |\n", None),
    ("## CPUs\n\n| Machine | dtype |\n| --- | --- |\n| CPU | bfloat16 |\n", "bf16 shown without saying"),
])
def test_hardware_rules_in_the_text(tmp_path, facts, body, expected):
    report = check.run_checks(load_set(), facts, skill_dir=make_skill(tmp_path, body))
    found = messages(report, "hardware")
    assert (found == []) if expected is None else (len(found) == 1 and expected in found[0])


def test_hardware_rules_in_the_recommendations(tmp_path):
    from llmops_ft.skill.checks import hardware

    recs = load_set(str(_with_values(tmp_path, [("precision.dtype.ampere_plus", "float16")])))
    assert [f.message for f in hardware.recommendation_findings(recs, "r.yaml")] == [
        "precision.dtype.ampere_plus: Ampere and newer should use bfloat16, not float16"]


# --- commands -----------------------------------------------------------------------------------------------------


def test_commands_are_parsed_by_the_real_parser(tmp_path, facts):
    body = ("```bash\nllmops-ft prep data.jsonl --out runs/p --bogus-flag\n"
            "llmops-ft plan --config c.yaml --gpu t5\nllmops-ft prep data.jsonl --out runs/p\n"
            "llmops-ft no-such-verb --x\npython -m llmops_ft train --config c.yaml --nope\n"
            "llmops-ft init-config --gpu t4 --out my.yaml && llmops-ft doctor --verbose\n```\n\n"
            "```python\ndef broken(:\n```\n\n"
            "Inline mention: `llmops-ft train --dry-run`, `llmops-ft train --nope`, `llmops-ft <verb> --help`, "
            "`llmops-ft --help`, `llmops-ft --version`.\n")
    report = check.run_checks(load_set(), facts, skill_dir=make_skill(tmp_path, body))
    found = "\n".join(messages(report, "commands"))
    assert "llmops-ft prep data.jsonl --out runs/p --bogus-flag: unrecognized arguments: --bogus-flag" in found
    assert "invalid choice: 't5'" in found
    assert "llmops-ft no-such-verb: no verb 'no-such-verb'" in found
    assert "llmops-ft train --config c.yaml --nope: unrecognized arguments: --nope" in found
    assert "llmops-ft doctor --verbose: unrecognized arguments: --verbose" in found  # the 2nd of a && chain
    assert "python block does not parse" in found
    assert "llmops-ft train --nope: unrecognized arguments: --nope" in found
    assert "llmops-ft --version: the only option before a verb is --help" in found
    # the correct prep line, init-config, --dry-run, the <verb> synopsis and --help pass
    assert len(messages(report, "commands")) == 8


def test_a_shown_flag_the_verb_does_not_have_fails_the_repo_skill(tmp_path, facts):
    # The repository's own SKILL.md with one flag renamed: the check must name it, file and line.
    skill = tmp_path / "llmops-fine-tuner"
    shutil.copytree(render.SKILL_DIR, skill)
    text = (skill / "SKILL.md").read_text(encoding="utf-8")
    assert "llmops-ft train --config my.yaml --dry-run" in text
    (skill / "SKILL.md").write_text(text.replace("--config my.yaml --dry-run", "--config my.yaml --dryrun"))
    report = check.run_checks(load_set(), facts, skill_dir=skill)
    found = [f for f in report.errors if f.check == "commands"]
    assert len(found) == 1 and "unrecognized arguments: --dryrun" in found[0].message
    line = next(i for i, ln in enumerate((skill / "SKILL.md").read_text().splitlines(), 1) if "--dryrun" in ln)
    assert found[0].line == line and found[0].file.endswith("SKILL.md")


def test_the_skill_shows_only_what_runs_in_the_users_project(tmp_path, facts):
    body = ("```bash\npython scripts/prep.py data.jsonl --out runs/p\nmake test\n"
            "llmops-ft plan --config examples/configs/cpu_smoke.yaml --gpu cpu\n"
            "llmops-ft train --config /home/someone/my.yaml\nllmops-ft train --config my.yaml --set output_dir=runs/x\n"
            "```\n\nInline: `scripts/train.py --dry-run`.\n")
    report = check.run_checks(load_set(), facts, skill_dir=make_skill(tmp_path, body))
    found = "\n".join(messages(report, "commands"))
    assert "scripts/prep.py runs only in a checkout of the llmops-fine-tuner repository" in found
    assert "show `llmops-ft prep ...`" in found and "show `llmops-ft train ...`" in found
    assert "make test: make targets exist only in a checkout of the repository" in found
    assert "examples/configs/cpu_smoke.yaml is a path of the llmops-fine-tuner repository" in found
    assert "/home/someone/my.yaml is an absolute path of one machine" in found
    assert len(messages(report, "commands")) == 5  # the last train line is fine


def test_repository_documents_keep_their_scripts_and_make_targets(tmp_path, facts):
    spec = tmp_path / "LEARNING-SPEC.md"
    spec.write_text("```bash\npython scripts/plan.py --config examples/configs/cpu_smoke.yaml --gpu cpu\n"
                    "python scripts/prep.py data.jsonl --out runs/p --bogus-flag\nmake test\nmake no-such-target\n"
                    "python scripts/no_such_script.py --x\n```\n")
    report = check.run_checks(load_set(), facts, skill_dir=make_skill(tmp_path, "Nothing to run.\n"),
                              extra_docs=[spec])
    found = messages(report, "commands")
    assert any("scripts/prep.py data.jsonl --out runs/p --bogus-flag: unrecognized arguments" in m for m in found)
    assert "make no-such-target: no such Makefile target" in found
    assert "scripts/no_such_script.py does not exist" in found
    assert len(found) == 3  # the plan line and make test pass: they run in this repository


def test_a_script_whose_module_is_missing_fails(tmp_path, monkeypatch):
    import llmops_ft.cli as cli

    monkeypatch.setitem(cli.COMMANDS, "ghost", "llmops_ft.no_such_module")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "ghost.py").write_text("")
    problem = commands.check_command(commands.ParserCache(), tmp_path, "python scripts/ghost.py --x 1")
    assert problem is not None and "cannot be built (ModuleNotFoundError" in problem


# --- format -------------------------------------------------------------------------------------------------------


def test_format_rules(tmp_path, facts):
    body = ("See references/missing.md and examples/configs/nope.yaml and scripts/prep.py.\n"
            + "line\n" * 500)
    skill = make_skill(tmp_path, body, {"orphan.md": "# Orphan\n\nSee [more](other.md).\n"},
                       description="Fine-tune models with LoRA.")
    (skill / "references" / "deeper").mkdir()
    (skill / "references" / "deeper" / "x.md").write_text("# x\n")
    found = "\n".join(messages(check.run_checks(load_set(), facts, skill_dir=skill), "format"))
    assert "body is 502 lines" in found
    assert "mentions references/missing.md, which does not exist" in found
    assert "mentions examples/configs/nope.yaml, which does not exist in the repo" in found
    assert "scripts/prep.py, which" not in found
    assert "references/orphan.md is never mentioned" in found
    assert "links to other.md: references stay one level deep" in found
    assert "references/deeper/x.md: only SKILL.md and references/*.md belong" in found
    assert "description does not mention QLoRA, Unsloth, GGUF, Ollama, Not for" in found


def test_skills_ref_validates_the_front_matter(tmp_path, facts):
    skill = make_skill(tmp_path, "body\n")
    renamed = skill.rename(tmp_path / "other-name")
    found = messages(check.run_checks(load_set(), facts, skill_dir=renamed), "format")
    assert any("skills-ref: Directory name 'other-name' must match skill name 'llmops-fine-tuner'" in m for m in found)


def test_learning_spec_is_checked_with_the_skill(repo, tmp_path, facts, capsys):
    main(["check-skill", "--json"])
    assert json.loads(capsys.readouterr().out)["counts"]["files"] == 2 + len(list((render.SKILL_DIR /
                                                                                  "references").glob("*.md")))
    spec = tmp_path / "LEARNING-SPEC.md"
    text = (repo / "LEARNING-SPEC.md").read_text(encoding="utf-8")
    assert "| 3 percent of steps | 5-10 percent of steps; a fixed 5 steps on short notebook runs | 0.05 |" in text
    spec.write_text(text.replace("short notebook runs | 0.05 |", "short notebook runs | 0.03 |"))
    report = check.run_checks(load_set(), facts, extra_docs=[spec])
    assert "warmup_fraction = 0.03, but recommendations.yaml says 0.05 (training.warmup_fraction)" in messages(
        report, "consistency")
