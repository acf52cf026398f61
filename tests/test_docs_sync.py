"""sync_docs.py end to end: mirror and llms-full sources, the drift report and exit codes, and online fetching
against a local HTTP server that misbehaves the ways the real one can (500, timeout, truncation, huge, redirect)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from llmops_ft.cli import main
from llmops_ft.docs.drift import diff_facts, drift_rows, drift_table
from llmops_ft.docs.faultserver import faulty_docs_server
from llmops_ft.docs.sync import fetch_online
from llmops_ft.knowledge.facts import load_facts, load_manifest
from llmops_ft.knowledge.pages import PAGES, PAGES_BY_KEY
from llmops_ft.knowledge.recommendations import load_recommendations

VRAM_ROW = "| 8B               | 6 GB               | 22 GB              |"
WARMUP_CELL = "<td>5-10% of total steps</td>"


@pytest.fixture(scope="module")
def docs(shared):
    return shared / "unsloth-docs"


@pytest.fixture
def committed_cache(repo, tmp_path):
    """A copy of the committed cache (manifest + facts; raw/ is not committed)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copytree(repo / "docs_cache" / "facts", cache / "facts")
    shutil.copy2(repo / "docs_cache" / "manifest.json", cache / "manifest.json")
    return cache


def _mirror(docs, tmp_path, edits: dict[str, tuple[str, str]] | None = None):
    """A copy of the twelve pages in tmp, with ``edits`` = {key: (old, new)} applied."""
    root = tmp_path / "mirror"
    for page in PAGES:
        text = (docs / page.filename).read_text(encoding="utf-8")
        if edits and page.key in edits:
            old, new = edits[page.key]
            assert old in text
            text = text.replace(old, new)
        (root / page.filename).parent.mkdir(parents=True, exist_ok=True)
        (root / page.filename).write_text(text, encoding="utf-8")
    return root


def _tree(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_from_mirror_into_an_empty_cache_then_stable(docs, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(["sync-docs", "--from", str(docs), "--cache", str(cache)]) == 3  # everything is new
    n_facts = load_manifest(cache)["facts_total"]
    assert f"drift: {n_facts} added, 0 removed, 0 changed" in capsys.readouterr().out
    first = _tree(cache)
    assert (cache / "raw" / PAGES_BY_KEY["requirements"].filename).read_bytes() == (
        docs / PAGES_BY_KEY["requirements"].filename).read_bytes()
    assert main(["sync-docs", "--from-cache", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "drift: none" in out and "not used (datasets-guide)" in out
    assert _tree(cache) == first  # same bytes, same fetched_at: a re-sync changes nothing


def test_drift_report_names_the_change_and_exit_3(docs, tmp_path, committed_cache, capsys):
    mirror = _mirror(docs, tmp_path, {
        "requirements": (VRAM_ROW, VRAM_ROW.replace("6 GB ", "7 GB ")),
        "lora-hyperparameters": (WARMUP_CELL, "<td>3-10% of total steps</td>"),
    })
    code = main(["sync-docs", "--from", str(mirror), "--cache", str(committed_cache), "--json"])
    assert code == 3
    import json

    data = json.loads(capsys.readouterr().out)
    changes = {row["id"]: (row["change"], row["old"], row["new"]) for row in data["drift"]}
    assert set(changes) == {"requirements.vram_min_gb.8b_qlora", "lora-hyperparameters.warmup_fraction.range"}
    vram = changes["requirements.vram_min_gb.8b_qlora"]
    assert (vram[0], vram[1]["value"], vram[2]["value"]) == ("changed", 6, 7)
    warmup = changes["lora-hyperparameters.warmup_fraction.range"]
    assert (warmup[1]["range"], warmup[2]["range"]) == ({"min": 0.05, "max": 0.1}, {"min": 0.03, "max": 0.1})
    assert load_facts(committed_cache)["requirements.vram_min_gb.8b_qlora"]["value"] == 7  # cache updated
    citing = sorted(rec_id for rec_id, entry in load_recommendations().items()
                    if "requirements.vram_min_gb.8b_qlora" in (entry.get("facts") or []))
    assert [r["recommendations"] for r in data["drift"] if r["id"].startswith("requirements.")] == [citing]
    # the text report is a table: fact, change, old, new, recommendations
    assert main(["sync-docs", "--from", str(docs), "--cache", str(committed_cache)]) == 3
    out = capsys.readouterr().out
    assert "| requirements.vram_min_gb.8b_qlora | changed | 7 GB (model:8B,method:qlora) | 6 GB " in out
    assert "| lora-hyperparameters.warmup_fraction.range | changed | 0.03-0.1 fraction of total steps | 0.05-0.1" in out


def test_drift_rows_carry_citing_recommendations(docs):
    old = {"a.x": {"id": "a.x", "value": 1, "unit": None, "condition": None}}
    new = {"a.x": {"id": "a.x", "value": 2, "unit": None, "condition": None},
           "a.y": {"id": "a.y", "enum": ["p", "q"], "unit": None, "condition": "gpu:t4"}}
    rows = drift_rows(diff_facts(old, new), {"a.x": ["training.lr", "training.lr.cpt"]})
    assert [(r["id"], r["change"], r["recommendations"]) for r in rows] == [
        ("a.x", "changed", ["training.lr", "training.lr.cpt"]), ("a.y", "added", [])]
    assert drift_table(rows).splitlines()[2:] == [
        "| a.x | changed | 1 | 2 | training.lr, training.lr.cpt |", "| a.y | added | - | p|q (gpu:t4) | - |"]


def test_from_cache_without_raw_keeps_committed_facts(committed_cache, capsys):
    before = _tree(committed_cache)
    assert main(["sync-docs", "--from-cache", "--cache", str(committed_cache)]) == 0
    assert "committed facts stand" in capsys.readouterr().out
    assert _tree(committed_cache) == before


def test_bad_sources_exit_2_and_leave_the_cache(docs, tmp_path, committed_cache, capsys):
    before = _tree(committed_cache)
    mirror = _mirror(docs, tmp_path)
    (mirror / PAGES_BY_KEY["saving-ollama"].filename).unlink()
    assert main(["sync-docs", "--from", str(mirror), "--cache", str(committed_cache)]) == 2
    err = capsys.readouterr().err
    assert "mirror lacks 1 page(s): saving-ollama (basics/inference-and-deployment/saving-to-ollama.md)" in err
    full = tmp_path / "llms-full.txt"
    full.write_text("# Unsloth Docs\n\nnothing else\n", encoding="utf-8")
    assert main(["sync-docs", "--from", str(full), "--cache", str(committed_cache)]) == 2
    assert "pages not found by title: lora-hyperparameters, fine-tuning-guide" in capsys.readouterr().err
    assert _tree(committed_cache) == before


# --- online -----------------------------------------------------------------------------------------------------


@pytest.fixture
def server(docs):
    with faulty_docs_server(docs) as handler:
        yield handler, handler.base_url


def _online(base, cache, *extra):
    return main(["sync-docs", "--online", "--base-url", base, "--cache", str(cache),
                 "--timeout", "0.3", "--retries", "1", "--backoff", "0.01", *extra])


def test_online_fetch_fills_the_cache(server, docs, tmp_path, capsys):
    _handler, base = server
    _handler.behaviour = {"docs/" + PAGES_BY_KEY["chat-templates"].filename: "500-once"}  # retried
    cache = tmp_path / "cache"
    assert _online(base, cache) == 3
    assert load_manifest(cache)["source"] == "online"
    from llmops_ft.docs.sync import facts_from_mirror

    assert load_facts(cache) == facts_from_mirror(docs)
    assert _handler.hits["docs/" + PAGES_BY_KEY["chat-templates"].filename] == 2


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("500", "HTTP 500, 2 tries"),
        ("sleep", "timed out after 0.3 s, 2 tries"),
        ("truncate", "truncated: "),
        ("huge", "bytes declared, over the 300000-byte cap"),
        ("huge-unsized", "body over the 300000-byte cap"),
        ("html", "not a GitBook markdown page"),
        ("redirect-off", "redirect to http://localhost:"),
    ],
)
def test_online_failure_names_the_page_and_keeps_the_cache(server, committed_cache, capsys, mode, reason):
    _handler, base = server
    page = PAGES_BY_KEY["lora-hyperparameters"]
    _handler.behaviour = {"docs/" + page.filename: mode}
    before = _tree(committed_cache)
    assert _online(base, committed_cache, "--max-bytes", "300000") == 2
    err = capsys.readouterr().err
    assert "1 page(s) failed, cache unchanged: lora-hyperparameters (" in err and reason in err
    assert _tree(committed_cache) == before


def test_online_refuses_other_hosts_without_connecting(committed_cache, capsys, monkeypatch):
    assert main(["sync-docs", "--online", "--base-url", "http://unsloth.ai/docs/", "--cache",
                 str(committed_cache)]) == 2
    assert "base URL must be https://unsloth.ai/" in capsys.readouterr().err
    monkeypatch.setenv("LLMOPS_DOCS_BASE_URL", "https://10.0.0.1/docs/")
    assert main(["sync-docs", "--online", "--cache", str(committed_cache)]) == 2
    assert "got 'https://10.0.0.1/docs/'" in capsys.readouterr().err


def test_fetch_backs_off_exponentially(server):
    _handler, base = server
    _handler.behaviour = {"docs/" + page.filename: "500" for page in PAGES[:1]}
    slept = []
    with pytest.raises(Exception, match="HTTP 500, 4 tries"):
        fetch_online(base, timeout=1, retries=3, backoff=0.5, sleep=slept.append)
    assert slept == [0.5, 1.0, 2.0]


def test_script_exit_code_and_help(repo):
    help_run = subprocess.run([sys.executable, "scripts/sync_docs.py", "--help"], cwd=repo,
                              capture_output=True, text=True, timeout=60)
    assert help_run.returncode == 0 and "--from-cache" in help_run.stdout and "3 drift found" in help_run.stdout
    bad = subprocess.run([sys.executable, "scripts/sync_docs.py", "--from", "no/such/dir", "--dry-run"], cwd=repo,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "sync-docs: error: no/such/dir: no such mirror folder or llms-full.txt file"
