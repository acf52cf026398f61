"""`llmops-ft doctor`: every check runs on the real machine, one verdict, and a failing check is named."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from llmops_ft import doctor
from llmops_ft.cli import main

CHECKS = ["python", "package", "torch", "unsloth", "llama.cpp", "model cache", "disk"]


def test_json_gives_one_object_with_every_check_and_the_verdict(capsys):
    code = main(["doctor", "--json", "--skip-unsloth"])
    report = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert {c["status"] for c in report["checks"]} <= {"ok", "warn", "fail"}
    assert report["failed"] == [c["name"] for c in report["checks"] if c["status"] == "fail"] == []
    assert code == 0 and report["ok"] is True
    assert "unsloth" in report["warnings"]  # skipped, so not vouched for
    assert report["verdict"] == doctor.verdict_line(report["checks"])
    assert report["verdict"].startswith("doctor: READY with warnings (") and "unsloth" in report["verdict"]
    torch_check = next(c for c in report["checks"] if c["name"] == "torch")
    import torch

    assert torch_check["version"] == torch.__version__
    assert torch_check["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_text_prints_one_line_per_check_and_the_verdict_last(capsys):
    assert main(["doctor", "--skip-unsloth"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("doctor: READY")
    for name in CHECKS:
        assert any(line.split(None, 1)[1].startswith(name) for line in lines[:-1] if line[:4].strip() in
                   ("OK", "WARN", "FAIL")), name


def test_cpu_bf16_reads_the_flags_and_really_computes_in_bf16():
    info = doctor.cpu_bf16()
    cpuinfo = Path("/proc/cpuinfo")
    flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
    assert info["flags"] == [f for f in doctor.CPU_BF16_FLAGS if f in flags]
    # bf16 rounds: a product computed in it differs from fp32, by far less than a broken kernel would
    assert 1e-4 < info["matmul_error"] < 0.05 and info["matmul_ok"] is True


def test_unsloth_is_imported_in_a_subprocess_only():
    import importlib.metadata

    had = "unsloth" in sys.modules
    check = doctor.check_unsloth()
    assert check["status"] == "ok", check
    assert check["version"] == importlib.metadata.version("unsloth")
    assert ("unsloth" in sys.modules) == had  # this process was not patched


def test_an_unusable_cache_fails_by_name_with_exit_1(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LLMOPS_FT_CACHE", str(blocker / "cache"))
    code = main(["doctor", "--json", "--skip-unsloth"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["ok"] is False and report["failed"] == ["model cache"]
    cache = next(c for c in report["checks"] if c["name"] == "model cache")
    assert cache["path"] == str(blocker / "cache") and cache["source"] == "LLMOPS_FT_CACHE"
    assert cache["writable"] is False and "LLMOPS_FT_CACHE" in cache["fix"]
    assert report["verdict"].startswith("doctor: NOT READY (") and report["verdict"].endswith("failed: model cache")


def test_disk_reports_the_free_space_of_both_places(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_FT_CACHE", str(tmp_path / "cache"))
    check = doctor.check_disk(tmp_path)
    free = shutil.disk_usage(tmp_path).free / 2**30
    assert check["free_gib"]["runs"] == pytest.approx(free, abs=0.5)
    assert check["free_gib"]["cache"] == pytest.approx(free, abs=0.5)  # same file system here
    expected = "fail" if free < doctor.DISK_FAIL_GIB else "warn" if free < doctor.DISK_WARN_GIB else "ok"
    assert check["status"] == expected


def test_a_check_that_raises_is_reported_not_a_traceback(monkeypatch):
    def broken():
        raise RuntimeError("driver exploded")

    monkeypatch.setattr(doctor, "check_llama_cpp", broken)
    checks = doctor.run_checks(Path("."), unsloth=False)
    failed = [c for c in checks if c["status"] == "fail"]
    assert failed == [{"name": "llama.cpp", "status": "fail", "detail": "RuntimeError: driver exploded"}]
