"""benchmarks/bench_train.py's quality rule for bf16 against fp32, fixed before any measurement."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_train  # noqa: E402  (benchmarks/ is not a package)


def run(accuracy: float, loss: float, n: int = 150) -> dict:
    return {"final_loss": loss, "eval": {"n": n, "exact_action": accuracy, "exact_call": accuracy / 2}}


def test_bf16_may_not_lose_more_than_two_standard_errors_of_accuracy_or_5_percent_of_loss():
    fp32 = run(0.85, 1.0)
    assert bench_train.judge_quality(fp32, run(0.85, 1.0))["held"]
    assert bench_train.judge_quality(fp32, run(0.78, 1.0))["allowed_drop"] == pytest.approx(0.0825, abs=1e-4)
    assert bench_train.judge_quality(fp32, run(0.78, 1.0))["held"]  # 7 points down: inside the noise of 150 rows
    assert not bench_train.judge_quality(fp32, run(0.76, 1.0))["accuracy_held"]
    assert not bench_train.judge_quality(fp32, run(0.90, 1.06))["loss_held"]
    perfect = run(1.0, 1.0)  # p = 1 has no spread: one row is still allowed
    assert bench_train.judge_quality(perfect, run(149 / 150, 1.0))["held"]
    assert not bench_train.judge_quality(perfect, run(148 / 150, 1.0))["held"]
