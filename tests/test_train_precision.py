"""The CPU dtype rule (bf16 autocast only where the CPU has bf16 instructions), the plan's note on it, and MFU
against a peak measured at the dtype in use."""

from __future__ import annotations

from pathlib import Path

import pytest
from llmops_ft.config import ConfigError, gpu_info, load_config, resolve_precision
from llmops_ft.config.gpus import bf16_flags_in, cpu_bf16_flags, precision_note
from llmops_ft.errors import UserError
from llmops_ft.train import metrics

REPO = Path(__file__).resolve().parents[1]
ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2 sha_ni\n"
GENOA = "processor\t: 0\nflags\t\t: fpu avx avx2 avx512f avx512_bf16 avx512_vnni\nbugs\t\t: sysret_ss_attrs\n"
SAPPHIRE = "flags\t\t: avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n"
AUTO = {"model": {"dtype": "auto"}}


def cpu(with_bf16: bool) -> dict:
    """This machine's CPU entry, as one with (or without) bf16 instructions would read."""
    return {**gpu_info("cpu"), "bf16": with_bf16, "bf16_flags": ["avx512_bf16"] if with_bf16 else []}


def test_bf16_flags_come_from_the_cpuinfo_flags_line():
    assert bf16_flags_in(ZEN3) == ()
    assert bf16_flags_in(GENOA) == ("avx512_bf16",)
    assert bf16_flags_in(SAPPHIRE) == ("avx512_bf16", "amx_bf16")
    assert bf16_flags_in("flags : avx512_bf16_extra\n") == ()  # whole flags, not substrings
    assert bf16_flags_in("") == ()
    here = Path("/proc/cpuinfo")
    if here.is_file():
        assert cpu_bf16_flags() == bf16_flags_in(here.read_text())
    assert gpu_info("cpu")["bf16"] == bool(cpu_bf16_flags())


def test_auto_is_bf16_only_on_a_cpu_with_bf16_instructions():
    assert resolve_precision(AUTO, cpu(True)) == {"dtype": "bfloat16", "fp16": False, "bf16": True}
    assert resolve_precision(AUTO, cpu(False)) == {"dtype": "float32", "fp16": False, "bf16": False}
    with pytest.raises(ConfigError, match="model.dtype: bfloat16 is not supported on this CPU.*avx512_bf16"):
        resolve_precision({"model": {"dtype": "bfloat16"}}, cpu(False))
    assert resolve_precision({"model": {"dtype": "float32"}}, cpu(True))["dtype"] == "float32"  # asked: kept
    for gpu, dtype in (("t4", "float16"), ("v100", "float16"), ("a100-80", "bfloat16")):  # GPU rules unchanged
        assert resolve_precision(AUTO, gpu)["dtype"] == dtype


def test_the_plan_says_how_the_cpu_dtype_was_chosen():
    from llmops_ft.plan import make_plan

    assert precision_note(cpu(True), {"bf16": True}).startswith("bf16 autocast on CPU (avx512_bf16)")
    assert "no bf16 instructions here" in precision_note(cpu(False), {"bf16": False})
    assert precision_note(gpu_info("t4"), {"bf16": False}) is None
    plan = make_plan(load_config(REPO / "examples" / "configs" / "cpu_smoke.yaml", ["backend=hf"]))
    expected = precision_note(gpu_info("cpu"), plan["precision"])
    assert expected in plan["notes"]
    assert plan["precision"]["dtype"] == ("bfloat16" if cpu_bf16_flags() else "float32")


def test_peak_is_measured_at_the_dtype_in_use_unless_the_variable_says(monkeypatch):
    monkeypatch.delenv(metrics.PEAK_ENV, raising=False)
    value, source = metrics.peak_flops("cpu", "float32")
    assert 1e8 < value < 1e14 and source.startswith("measured: 1024x1024 float32 matmul, ")
    monkeypatch.setenv(metrics.PEAK_ENV, "3.9e11")
    assert metrics.peak_flops("cpu", "bfloat16") == (3.9e11, metrics.PEAK_ENV)
    for bad in ("fast", "-1", "0"):
        monkeypatch.setenv(metrics.PEAK_ENV, bad)
        with pytest.raises(UserError, match=f"{metrics.PEAK_ENV}: expected a positive number"):
            metrics.peak_flops("cpu", "float32")


def test_the_peak_keeps_measuring_for_its_time_box(monkeypatch):
    """Five products alone read low when a neighbour takes the core for those milliseconds: the peak is the
    fastest product of at least MATMUL_SECONDS, and stops at MATMUL_MAX_PRODUCTS however fast they are."""
    import time

    monkeypatch.setattr(metrics, "MATMUL_MAX_PRODUCTS", 10**9)  # 64x64 products are too quick for the real cap
    started = time.perf_counter()
    assert metrics.measure_matmul_flops("cpu", "float32", 64, repeats=1, min_seconds=0.3) > 0
    assert time.perf_counter() - started >= 0.3
    monkeypatch.setattr(metrics, "MATMUL_MAX_PRODUCTS", 3)
    started = time.perf_counter()
    metrics.measure_matmul_flops("cpu", "float32", 8, repeats=1, min_seconds=60)
    assert time.perf_counter() - started < 30
    monkeypatch.delenv(metrics.PEAK_ENV, raising=False)
    assert metrics.peak_flops("cpu", "float32")[1].endswith(f"best over {metrics.MATMUL_SECONDS} s")


def test_mfu_goes_into_the_row_the_progress_line_and_the_summary():
    assert metrics.mfu(n_params=100_000_000, tokens_per_s=200.0, peak=1.6e11) == 0.5
    assert metrics.mfu(n_params=1, tokens_per_s=1.0, peak=None) is None
    row = {"step": 3, "loss": 1.5, "lr": 1e-3, "grad_norm": 0.5, "tokens_per_s": 150.0, "memory_mib": 900.0,
           "mfu": 0.0123}
    assert "150 tok/s mfu 1.2% mem 900 MiB" in metrics.progress_line(row, 10)
    rows = [dict(row, step=s, mfu=m, tokens_per_s=t) for s, m, t in ((1, 0.9, 10.0), (2, 0.02, 100.0),
                                                                     (3, 0.04, 200.0))]
    summary = metrics.summarize(rows)
    assert summary["mfu"] == 0.03 and summary["tokens_per_s"] == 150.0  # step 1 pays one-off costs: left out
