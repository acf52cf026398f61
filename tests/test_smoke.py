"""The smoke test is part of `make test`: the whole chain on a tiny model, one verdict per stage."""

from __future__ import annotations

import json
import subprocess
import sys

STAGES = ["model", "prep", "plan", "train", "export-adapter", "export-merged", "export-gguf-f16", "generate"]


def expected_stages() -> list[str]:
    """The stages on the hardware this runs on: with a CUDA GPU the smoke test also trains Unsloth 4-bit (QLoRA)."""
    import torch

    return STAGES + (["unsloth-4bit"] if torch.cuda.is_available() else [])


def test_smoke_test_passes_every_stage_with_json_verdicts(repo, tmp_path):
    proc = subprocess.run([sys.executable, "scripts/smoke_test.py", "--json", "--workdir", str(tmp_path / "w")],
                          cwd=repo, capture_output=True, text=True, timeout=900)
    verdict = json.loads(proc.stdout)
    assert [s["stage"] for s in verdict["stages"]] == expected_stages(), verdict
    assert all(s["ok"] for s in verdict["stages"]), [s for s in verdict["stages"] if not s["ok"]]
    assert proc.returncode == 0 and verdict["ok"] is True
    train = next(s for s in verdict["stages"] if s["stage"] == "train")
    first, last = (float(x) for x in train["detail"].split("loss ")[1].split(" (")[0].split(" -> "))
    assert last <= 0.95 * first
    assert (tmp_path / "w" / "export-gguf" / "run-f16.gguf").stat().st_size > 1_000_000


def test_smoke_test_reports_a_failing_stage_and_exits_non_zero(repo, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "only plain text, no chat"\n', encoding="utf-8")  # broken JSON: prep cannot use it
    proc = subprocess.run([sys.executable, "scripts/smoke_test.py", "--json", "--data", str(bad),
                           "--workdir", str(tmp_path / "w")], cwd=repo, capture_output=True, text=True, timeout=600)
    verdict = json.loads(proc.stdout)
    assert proc.returncode == 1 and verdict["ok"] is False
    assert [s["stage"] for s in verdict["stages"]] == ["model", "prep"]
    assert verdict["stages"][-1]["ok"] is False and "bad.jsonl" in verdict["stages"][-1]["detail"]
