"""The parity figures of export --verify (KL divergence, same top p, answers kept), the per-quant bounds from
recommendations.yaml, the gate and the rule that names the smallest quant that passes. Pure numpy and YAML: fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from llmops_ft.export import parity
from llmops_ft.knowledge.recommendations import load_recommendations

FIVE = ("f16", "bf16", "q8_0", "q5_k_m", "q4_k_m")


def _logprobs(probs) -> np.ndarray:
    return np.log(np.asarray(probs, dtype=np.float64))


def test_kl_is_that_of_the_full_distributions_and_zero_for_equal_ones():
    import torch

    rng = np.random.default_rng(0)
    ref_logits, eng_logits = rng.normal(size=(7, 300)), rng.normal(size=(7, 300))
    acc = parity.Accumulator()
    acc.add_positions(parity.log_softmax(ref_logits), eng_logits)
    ref_t, eng_t = torch.tensor(ref_logits), torch.tensor(eng_logits)
    # torch's kl_div(input=log q, target=log p, log_target) is sum p (log p - log q): KL(reference || engine)
    expected = torch.nn.functional.kl_div(torch.log_softmax(eng_t, -1), torch.log_softmax(ref_t, -1),
                                          reduction="none", log_target=True).sum(-1).numpy()
    np.testing.assert_allclose(acc.kl[0], expected, rtol=1e-9)
    same = parity.Accumulator()
    same.add_positions(parity.log_softmax(ref_logits), ref_logits + 3.0)  # a constant shift is the same softmax
    assert float(same.kl[0].max()) < 1e-12 and bool(same.same_top[0].all())


def test_figures_summarise_positions_and_answers():
    acc = parity.Accumulator()
    # two positions: the first identical, the second a swapped near-tie (KL 0.000202...)
    acc.add_positions(_logprobs([[0.7, 0.2, 0.1], [0.5, 0.49, 0.01]]), np.log([[0.7, 0.2, 0.1], [0.49, 0.5, 0.01]]))
    acc.add_answer(True)
    acc.add_answer(False, margin=0.02)  # the reference's own token was ahead by 0.02: a near-tie
    acc.add_answer(False, margin=1.5)
    f = acc.figures()
    assert (f.prompts, f.positions, f.identical, f.near_ties) == (3, 2, 1, 1)
    assert f.kl_mean == pytest.approx((0.5 * math.log(0.5 / 0.49) + 0.49 * math.log(0.49 / 0.5)) / 2)
    assert f.kl_max == pytest.approx(2 * f.kl_mean)
    assert f.same_top_p == 0.5
    assert f.answers_identical == pytest.approx(1 / 3) and f.answers_kept == pytest.approx(2 / 3)
    assert f.fork_margins == [0.02, 1.5]
    assert "answers identical 1/3, 1 more forked at a near-tie" in f.line()


def test_p99_is_the_99th_percentile_of_every_position():
    acc = parity.Accumulator()
    acc.kl = [np.linspace(0.0, 1.0, 101)[:60], np.linspace(0.0, 1.0, 101)[60:]]
    acc.same_top = [np.ones(60, bool), np.zeros(41, bool)]
    f = acc.figures()
    assert f.positions == 101 and f.kl_p99 == pytest.approx(0.99) and f.kl_median == pytest.approx(0.5)
    assert f.same_top_p == pytest.approx(60 / 101)


def test_every_quant_has_bounds_recorded_as_ours_with_the_measurement():
    entries = load_recommendations()
    for quant in FIVE:
        assert set(parity.bounds(quant)) == set(parity.GATED)
        for prefix, _ in parity.GATED.values():
            entry = entries[f"{prefix}.{quant}"]
            assert entry["basis"] == "ours" and entry["condition"] == f"quant:{quant}"
            assert "measured" in entry["rationale"], entry["id"]
    assert parity.bounds("f32") == parity.bounds("f16")


def test_kl_bounds_loosen_with_fewer_bits():
    # (q5_k_m is not below q4_k_m: on SmolLM2 its fallback type, Q5_1, measured farther from the model than Q5_0)
    for figure in ("kl_mean", "kl_p99"):
        values = [parity.bounds(q)[figure] for q in ("f16", "bf16", "q8_0")]
        assert values == sorted(values) and values[-1] < min(parity.bounds(q)[figure] for q in ("q5_k_m", "q4_k_m"))


def _figures(**changes) -> parity.Figures:
    base = dict(prompts=50, positions=2000, kl_mean=0.0, kl_median=0.0, kl_p99=0.0, kl_p999=0.0, kl_max=0.0,
                same_top_p=1.0, answers_identical=1.0, answers_kept=1.0, identical=50, near_ties=0, fork_margins=[])
    return parity.Figures(**{**base, **changes})


def test_the_gate_names_each_figure_outside_its_bound():
    b = parity.bounds("q4_k_m")
    assert parity.gate("q4_k_m", _figures(kl_mean=b["kl_mean"], kl_p99=b["kl_p99"],
                                          answers_kept=b["answers_kept"])) == []  # on the bound: passes
    failed = parity.gate("q4_k_m", _figures(kl_mean=b["kl_mean"] * 2, answers_kept=0.5))
    assert failed == [f"mean KL {b['kl_mean'] * 2:.4g} > {b['kl_mean']:.4g}",
                      f"answers kept 50.0% < {b['answers_kept']:.1%}"]
    nothing = parity.gate("f16", _figures(kl_mean=float("nan"), kl_p99=float("nan")))
    assert [f.split()[0] for f in nothing] == ["mean", "99th-percentile"]  # no positions measured: fails


def test_the_rule_names_the_smallest_quant_that_passes():
    def entry(passes: bool, kl: float | None = 0.0) -> dict:
        return {"passes": passes, "figures": {"kl_mean": kl}}

    assert parity.smallest_passing({"f16": entry(True), "q8_0": entry(True), "q4_k_m": entry(False)}) == "q8_0"
    assert parity.smallest_passing({"f16": entry(False), "q4_k_m": entry(False)}) is None
    # f16 and bf16 files have one size: the one nearer the trained model wins, whichever was listed first
    assert parity.smallest_passing({"bf16": entry(True, 1.5e-4), "f16": entry(True, 3.8e-6)}) == "f16"
    assert parity.smallest_passing({"bf16": entry(True, 2e-6), "f16": entry(True, 3.8e-6)}) == "bf16"
    assert parity.larger_than("q4_k_m") == ["q5_k_m", "q8_0", "f16"]
    assert parity.larger_than("q8_0") == ["f16"] and parity.larger_than("f16") == []
    entries = {"q4_k_m": {"passes": False, "failed": ["mean KL 0.09 > 0.05"]},
               "q5_k_m": {"passes": False, "failed": ["answers kept 80.0% < 95.0%"], "requested": False},
               "q8_0": {"passes": True, "failed": []}, "f16": {"passes": True, "failed": []}}
    advice = parity.advice(entries)
    assert advice["choice"] == "q8_0"
    assert advice["lines"] == ["gguf q4_k_m fails its parity bounds: mean KL 0.09 > 0.05; the smallest quant that "
                               "passes is q8_0 (--quant q8_0)"]  # q5_k_m was only measured: no line of its own
    none = parity.advice({"f16": {"passes": False, "failed": ["mean KL 1 > 0.001"]}})
    assert none["choice"] is None and "no quant measured passes" in none["lines"][0]


def test_side_by_side_rows_and_table():
    fig = _figures(kl_mean=0.0123, kl_p99=0.2, same_top_p=0.9, answers_identical=0.7, answers_kept=0.72).to_dict()
    task = [{"label": "exact call", "key": "exact_match_rate", "gguf": 0.46, "python": 0.54}]
    summary = {"parity": {"q4_k_m": {"figures": fig, "passes": False, "bytes": 2**20 * 100, "task": task},
                          "f16": {"figures": _figures().to_dict(), "passes": True, "bytes": 2**20 * 258,
                                  "task": task}},
               "advice": {"choice": "f16"}}
    rows = parity.comparison_rows(summary)
    assert [r["quant"] for r in rows] == ["q4_k_m", "f16"] and rows[1]["chosen"] and not rows[0]["chosen"]
    table = parity.comparison_table(rows).splitlines()
    assert table[0].startswith("| quant | size MiB | mean KL | p99 KL | same top p | answers identical |")
    assert "exact call (llama.cpp / Python)" in table[0]
    assert table[2] == "| `q4_k_m` | 100.0 | 0.0123 | 0.2 | 90.0% | 70.0% | 72.0% | 46.0% / 54.0% | outside |"
    assert table[3].endswith("| within (chosen) |")


def test_recorded_bounds_are_the_principle_applied_to_the_committed_measurement(repo):
    """recommendations.yaml holds what benchmarks/bench_parity.py's principle gives from its committed results."""
    import json
    import sys

    results = json.loads((repo / "benchmarks" / "results" / "parity.json").read_text(encoding="utf-8"))
    sys.path.insert(0, str(repo / "benchmarks"))
    try:
        import bench_parity
    finally:
        sys.path.remove(str(repo / "benchmarks"))
    assert set(results["settings"]) == {"task_api", "chat"}
    assert bench_parity.principle_bounds(results["settings"]) == results["bounds"]
    for quant in FIVE:
        assert parity.bounds(quant) == results["bounds"][quant], quant
        for setting in results["settings"].values():  # every type was measured in both settings
            assert setting["quants"][quant]["figures"]["prompts"] >= 50


def test_merged_weights_are_bf16_only_after_bf16_training_on_a_gpu(tmp_path):
    """bf16 autocast on a CPU trained over float32 base weights: the merge keeps float16, whose three extra
    mantissa bits the f16 GGUF's KL bounds were measured with."""
    from llmops_ft.engines.runs import Run
    from llmops_ft.export.merge import merged_dtype

    def run(device, **precision):
        return Run(path=tmp_path, adapter_dir=tmp_path, base_model="m",
                   info={"precision": precision, "hardware": {"device": device}})

    assert merged_dtype(run("cuda", dtype="bfloat16", bf16=True)) == "bfloat16"
    assert merged_dtype(run("cpu", dtype="bfloat16", bf16=True)) == "float16"
    assert merged_dtype(run("cuda", dtype="float16", fp16=True)) == "float16"
    assert merged_dtype(run("cpu", dtype="float32")) == "float16"
