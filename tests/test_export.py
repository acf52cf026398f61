"""export.py end to end on a trained tiny run: adapter, merged, GGUF (f16, bf16, q8_0, q4_k_m, q5_k_m) + Modelfile,
each verified; refusal to overwrite; one-line errors; and verification failing on broken GGUFs and templates.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from llmops_ft.errors import UserError
from test_export_support import REPO, flip_tensor_bytes, rewrite_gguf, train_once

RUN_SYSTEM = "Reply with one Task API call as JSON."
QUANTS = ["f16", "q8_0", "q4_k_m"]  # bf16 and q5_k_m: test_export_convert.py
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_model_dir) -> Path:
    """The trained tiny run shared by the export and evaluate tests."""
    return train_once(tmp_path_factory, tiny_model_dir)


def _failed(report, label: str) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if c.export == label and c.required and not c.ok}


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def gguf_export(tiny_run, tmp_path_factory) -> dict:
    """One GGUF export of the tiny run with every quant and a Modelfile (shared by the GGUF tests)."""
    from llmops_ft.export.pipeline import export

    out = tmp_path_factory.mktemp("gguf") / "out"
    return export(str(tiny_run), "gguf", str(out), quants=QUANTS, ollama=True, name="tiny-task")


def test_adapter_export_reloads_exactly_and_carries_the_training(tiny_run, tmp_path):
    from llmops_ft.engines.runs import load_base, load_tuned
    from llmops_ft.export.pipeline import export
    from llmops_ft.export.verify import max_logit_diff

    summary = export(str(tiny_run), "adapter", str(tmp_path / "adapter"))
    assert summary["ok"] and summary["verified"]
    out = tmp_path / "adapter"
    for name in ("adapter_model.safetensors", "adapter_config.json", "tokenizer.json", "README.md", "verify.json"):
        assert (out / name).is_file(), name
    tokenizer_check, reload_check = summary["verification"]["checks"]
    assert tokenizer_check["name"] == "tokenizer + chat template saved" and tokenizer_check["ok"]
    assert reload_check["name"] == "reload matches in-memory model"
    assert reload_check["values"]["max_abs_logit_diff"] <= 1e-3
    # the adapter is not a no-op: 5 training steps moved the logits away from the base model's
    from llmops_ft.engines.runs import load_run

    run = load_run(tiny_run)
    ids = [[1, 9690, 198, 2683, 359, 253, 5356, 2]]
    assert max_logit_diff(load_base(run), load_tuned(run), ids) > 1e-3


def test_merged_export_is_16_bit_and_matches_the_adapter(tiny_run, tmp_path):
    from llmops_ft.export.pipeline import export
    from safetensors import safe_open

    summary = export(str(tiny_run), "merged", str(tmp_path / "merged"))
    assert summary["ok"] and summary["dtype"] == "float16"
    with safe_open(str(tmp_path / "merged" / "model.safetensors"), framework="pt") as fh:
        dtypes = {str(fh.get_tensor(k).dtype) for k in fh.keys()}
    assert dtypes == {"torch.float16"}
    checks = {c["name"]: c for c in summary["verification"]["checks"]}
    assert checks["reload matches in-memory model"]["values"]["max_abs_logit_diff"] <= 1e-3
    drift = checks["16-bit merge vs float32 adapter"]["values"]
    assert drift["top1_agreement"] >= 0.99 and drift["max_abs_logit_diff"] < 0.05
    assert (tmp_path / "merged" / "chat_template.jinja").is_file() or "chat_template" in json.loads(
        (tmp_path / "merged" / "tokenizer_config.json").read_text())


def test_gguf_every_quant_is_written_and_checked(gguf_export):
    out = Path(gguf_export["out"])
    assert gguf_export["files"] == [f"tiny-task-{q}.gguf" for q in QUANTS]
    assert sorted(p.name for p in out.glob("*.gguf")) == sorted(gguf_export["files"])
    checks = gguf_export["verification"]["checks"]
    by = {(c["export"], c["name"]): c for c in checks}
    assert by[("gguf f16", "transformers top-1 agreement")]["values"]["max_abs_logit_diff"] < 1e-3
    assert by[("gguf f16", "transformers top-1 agreement")]["values"]["strict"] == 1.0
    for quant in QUANTS:
        assert by[(f"gguf {quant}", "prompt from GGUF template = trained ids")]["ok"]
        assert by[(f"gguf {quant}", "end-of-turn ends generation")]["ok"]
    conv = gguf_export["conversions"]
    assert conv["f16"]["types"] == {"F32": 5, "F16": 15} and conv["f16"]["fallbacks"] == []
    assert conv["q8_0"]["types"] == {"F32": 5, "Q8_0": 15}
    # hidden 64: no row is a multiple of 256, so llama.cpp's q4_k_m falls back to q5_0 / q8_0 everywhere
    assert "Q4_K" not in conv["q4_k_m"]["tensor_types"] and conv["q4_k_m"]["tensor_types"]["Q5_0"] > 0
    assert gguf_export["notes"][0].startswith("GGUF written by the built-in converter")


def test_gguf_parity_figures_and_the_gate(gguf_export):
    """A random tiny model: every next-token distribution is nearly flat, so 8-bit and smaller types change its
    answers while f16 keeps them; the gate says so per quant and names f16 as the smallest that passes."""
    parity = gguf_export["parity"]
    assert set(parity) == {"f16", "q8_0", "q4_k_m", "q5_k_m"}  # q5_k_m: measured for the rule, not written
    assert [q for q in QUANTS if parity[q]["passes"]] == ["f16"] and not gguf_export["ok"]
    f16, q8, q4 = (parity[q]["figures"] for q in ("f16", "q8_0", "q4_k_m"))
    assert (f16["prompts"], f16["positions"]) == (8, 8 * 64)  # 8 val rows, 64-token answers (none stops)
    assert f16["kl_mean"] < 1e-4 and f16["same_top_p"] >= 0.98 and f16["answers_kept"] == 1.0
    assert f16["kl_mean"] * 10 < q8["kl_mean"] < q4["kl_mean"]  # fewer bits, farther from the trained model
    assert q4["kl_p99"] > q4["kl_mean"] and q4["same_top_p"] < q8["same_top_p"] <= f16["same_top_p"]
    assert parity["q5_k_m"]["requested"] is False and not (Path(gguf_export["out"]) / "tiny-task-q5_k_m.gguf").exists()
    assert gguf_export["advice"]["choice"] == "f16"
    lines = gguf_export["advice"]["lines"]
    assert [line.split()[1] for line in lines] == ["q4_k_m", "q8_0"]
    assert lines[0].startswith("gguf q4_k_m fails its parity bounds: ") and lines[0].endswith(
        "the smallest quant that passes is f16 (--quant f16)")
    saved = json.loads((Path(gguf_export["out"]) / "verify.json").read_text())
    assert saved["ok"] is False and saved["heldout"]["prompts"] == 8 and "val split" in saved["heldout"]["source"]
    assert saved["parity"]["gguf q4_k_m"]["figures"] == q4 and saved["advice"] == gguf_export["advice"]
    from llmops_ft.export.command import render

    text = render(gguf_export)
    assert "| `f16` | 7.8 |" in text and "VERIFICATION FAILED" in text and text.count("fails its parity bounds") == 2
    from llmops_ft.export.parity import side_by_side

    view = side_by_side(gguf_export)  # what the demo reports: only the bounds failed, the rule ships f16
    assert view["only_parity_failed"] and view["choice"] == "f16" and view["modelfile_file"] == "tiny-task-f16.gguf"
    assert [r["quant"] for r in view["rows"]] == ["q4_k_m", "q5_k_m", "q8_0", "f16"]


def test_gguf_modelfile_and_ollama_command(gguf_export):
    out = Path(gguf_export["out"])
    text = (out / "Modelfile").read_text()
    assert text.startswith("FROM ./tiny-task-f16.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in text and 'PARAMETER stop "<|im_start|>"' in text
    assert f'SYSTEM """{RUN_SYSTEM}"""' in text
    assert "<|im_start|>assistant\n" in text and "{{ .System }}" in text
    assert gguf_export["ollama"]["command"] == f"ollama create tiny-task -f {out / 'Modelfile'}"
    assert gguf_export["ollama"]["variant"] == "chatml" and "note" not in gguf_export["ollama"]


def test_gguf_embeds_tokenizer_and_template(gguf_export, tiny_run):
    import gguf

    reader = gguf.GGUFReader(str(Path(gguf_export["out"]) / "tiny-task-q8_0.gguf"))
    field = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml.token")}
    template = (tiny_run / "adapter" / "chat_template.jinja").read_text()
    assert field["tokenizer.chat_template"] == template
    assert field["tokenizer.ggml.model"] == "gpt2" and field["tokenizer.ggml.pre"] == "gpt-2"
    assert (field["tokenizer.ggml.bos_token_id"], field["tokenizer.ggml.eos_token_id"]) == (1, 2)
    assert field["tokenizer.ggml.eot_token_id"] == 2 and field["tokenizer.ggml.add_bos_token"] is False
    assert len(reader.get_field("tokenizer.ggml.tokens").data) == 49152
    assert not any(t.name == "output.weight" for t in reader.tensors)  # tied embeddings


@pytest.fixture(scope="module")
def broken_reports(gguf_export, tiny_run, tmp_path_factory):
    """Verification of five damaged copies of the f16 GGUF, in one pass."""
    from llmops_ft.engines.runs import load_run
    from llmops_ft.export.merge import merge_run
    from llmops_ft.export.verify import verify_ggufs

    good = Path(gguf_export["out"]) / "tiny-task-f16.gguf"
    work = tmp_path_factory.mktemp("broken")
    truncated = work / "truncated.gguf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    flipped = work / "flipped.gguf"
    shutil.copy(good, flipped)
    flip_tensor_bytes(flipped, "blk.0.attn_q.weight")
    flip_tensor_bytes(flipped, "blk.1.ffn_down.weight")
    files = {
        "truncated": truncated,
        "flipped": flipped,
        "wrong template": rewrite_gguf(good, work / "llama3.gguf",
                                       set_strings={"tokenizer.chat_template": LLAMA3_TEMPLATE}),
        "no template": rewrite_gguf(good, work / "none.gguf", remove=("tokenizer.chat_template",)),
        "add bos": rewrite_gguf(good, work / "bos.gguf", set_bools={"tokenizer.ggml.add_bos_token": True}),
    }
    files = {f"gguf {label}": ("f16", path) for label, path in files.items()}
    run = load_run(tiny_run)
    merged, _, _ = merge_run(run, work / "merged")
    return verify_ggufs(run, merged, files)


def test_truncated_gguf_fails_to_load(broken_reports):
    failed = _failed(broken_reports, "gguf truncated")
    assert "truncated or corrupt" in failed["loads in llama.cpp"]
    assert not broken_reports.ok


def test_flipped_tensor_bytes_change_the_answers(broken_reports):
    failed = _failed(broken_reports, "gguf flipped")
    assert "parity with the trained model" in failed
    # bytes flipped in f16 weights make NaN logits: infinite KL (None in JSON), no position keeps its top token
    figures = broken_reports.parity["gguf flipped"]["figures"]
    assert figures["kl_mean"] is None and figures["same_top_p"] < 0.5
    assert "mean KL inf > " in failed["parity with the trained model"]
    assert broken_reports.parity["gguf wrong template"]["passes"]  # same weights as the good file: parity holds
    assert "prompt from GGUF template = trained ids" not in failed  # the tokenizer is intact


def test_wrong_template_fails_the_prompt_check(broken_reports):
    failed = _failed(broken_reports, "gguf wrong template")
    assert set(failed) == {"prompt from GGUF template = trained ids"}, failed
    # <|im_start|> (this vocabulary's BOS) renders first either way; the Llama 3 headers differ right after it
    detail = failed["prompt from GGUF template = trained ids"]
    assert re.match(r"prompt 0: \d+ vs \d+ ids, first difference at 1;", detail)


def test_missing_template_fails(broken_reports):
    failed = _failed(broken_reports, "gguf no template")
    assert "no tokenizer.chat_template" in failed["chat template embedded"]


def test_add_bos_with_a_bos_template_is_a_doubled_bos(broken_reports):
    failed = _failed(broken_reports, "gguf add bos")
    assert set(failed) == {"BOS not doubled"}, failed
    assert "add_bos_token=True, prompt starts [1, 1]" in failed["BOS not doubled"]
    assert "FAIL" in broken_reports.table()


def test_existing_output_is_kept_without_force(tiny_run, tmp_path):
    from llmops_ft.export.pipeline import export

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    for force in (False, True):  # a folder holding files export did not write is refused, --force or not
        with pytest.raises(UserError, match=r"holds files export --to adapter did not write \(keep.txt\)"):
            export(str(tiny_run), "adapter", str(out), verify=False, force=force)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    export(str(tiny_run), "adapter", str(out), verify=False)
    with pytest.raises(UserError, match="output exists; pass --force"):
        export(str(tiny_run), "adapter", str(out), verify=False)
    (out / "keep.txt").write_text("mine")  # beside an earlier export of ours: --force replaces only export's files
    export(str(tiny_run), "adapter", str(out), verify=False, force=True)
    assert (out / "keep.txt").read_text() == "mine" and (out / "adapter_model.safetensors").is_file()


def test_bad_requests_are_one_clear_line(tiny_run, tmp_path):
    from llmops_ft.export.pipeline import export

    cases = [
        (dict(to="gguf", quants=["q3_k_s"]), "llama-quantize MODEL-f16.gguf MODEL-q3_k_s.gguf Q3_K_S"),
        (dict(to="merged", quants=["q8_0"]), "--quant applies to --to gguf only"),
        (dict(to="merged", ollama=True), "--ollama needs --to gguf"),
    ]
    for kwargs, message in cases:
        to = kwargs.pop("to")
        with pytest.raises(UserError, match="") as err:
            export(str(tiny_run), to, str(tmp_path / "x"), **kwargs)
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()


def test_full_disk_is_refused_before_any_work(tiny_run, tmp_path, monkeypatch):
    """A disk that cannot hold the export (simulated: no real disk can be filled here) stops it up front."""
    import shutil as real_shutil

    from llmops_ft.export import pipeline

    usage = real_shutil.disk_usage(tmp_path)
    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda _path: usage._replace(free=1 << 20))
    with pytest.raises(UserError, match=r"not enough free disk: the export needs about \d+\.\d MiB, 1\.0 MiB free"):
        pipeline.export(str(tiny_run), "gguf", str(tmp_path / "out"), quants=["q4_k_m"])
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_cli_unsupported_architecture_is_one_line(tiny_run, tmp_path):
    """A run whose base is a Gemma model: the built-in converter refuses before loading anything."""
    from transformers import GemmaConfig, GemmaForCausalLM

    base = tmp_path / "gemma"
    GemmaForCausalLM(GemmaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1, head_dim=16)).save_pretrained(base)
    run = tmp_path / "run"
    shutil.copytree(tiny_run / "adapter", run / "adapter")
    info = json.loads((tiny_run / "run.json").read_text())
    info["base_model"] = str(base)
    (run / "run.json").write_text(json.dumps(info))
    proc = _script("export.py", "--run", str(run), "--to", "gguf", "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "architecture GemmaForCausalLM (gemma) is not supported by the built-in GGUF converter" in proc.stderr
    assert "convert_hf_to_gguf.py" in proc.stderr
    proc = _script("export.py", "--run", str(tmp_path / "missing"), "--to", "adapter", "--out", str(tmp_path / "o"),
                   "--json")
    assert proc.returncode == 2 and json.loads(proc.stdout) == {"ok": False, "error": f"{tmp_path / 'missing'}: "
                                                                "run dir not found"}


@pytest.mark.slow
def test_smollm2_gguf_export_verifies(smollm2_dir, tmp_path):
    """The embedded SmolLM2-135M after one training step: f16 passes its parity bounds, q4_k_m is measured against
    its own (benchmarks/PARITY.md has both on 150 rows). Hidden 576 is not a multiple of 256, so q4_k_m is a mix:
    Q4_K/Q6_K where rows allow (ffn_down, 1536 wide), Q5_0/Q8_0 fallbacks elsewhere."""
    from llmops_ft.export.pipeline import export
    from test_export_support import train_run

    run = train_run(tmp_path / "smol", smollm2_dir, steps=1, learning_rate=2e-4)
    summary = export(str(run), "gguf", str(tmp_path / "gguf"), quants=["f16", "q4_k_m"], ollama=True)
    parity = summary["parity"]
    assert parity["f16"]["passes"] and parity["f16"]["figures"]["answers_kept"] == 1.0, summary["verification_table"]
    assert parity["q4_k_m"]["figures"]["kl_mean"] > 100 * parity["f16"]["figures"]["kl_mean"]
    assert summary["ok"] == parity["q4_k_m"]["passes"]  # every other check passes
    if not summary["ok"]:
        assert summary["advice"]["choice"] in ("q5_k_m", "q8_0", "f16")
    by = {(c["export"], c["name"]): c["values"] for c in summary["verification"]["checks"]}
    assert by[("gguf f16", "transformers top-1 agreement")]["strict"] == 1.0
    types = summary["conversions"]["q4_k_m"]["tensor_types"]
    assert types["Q4_K"] > 0 and types["Q6_K"] > 0 and types["Q5_0"] > types["Q4_K"]
    modelfile = (tmp_path / "gguf" / "Modelfile").read_text()
    # the Task API rows' system prompt varies only by its date: SYSTEM rebuilds it with Ollama's currentDate
    assert ('SYSTEM """Today is {{ currentDate }}. Reply with one Task API call as JSON; use clarify if a detail '
            'is missing."""') in modelfile and "trained by Hugging Face" not in modelfile
    assert "share one system prompt but for its date" in summary["ollama"]["note"]
    assert "{{ currentDate }}" in summary["ollama"]["note"]


def test_quantizer_failure_is_one_line_and_its_log_stays_quiet(tmp_path, capfd):
    from llmops_ft.errors import UserError
    from llmops_ft.export.quantize import quantize

    bad = tmp_path / "bad.gguf"
    bad.write_text("not a gguf", encoding="utf-8")
    with pytest.raises(UserError) as err:
        quantize(bad, tmp_path / "bad-q4_k_m.gguf", "q4_k_m")
    message = str(err.value)
    assert message.startswith(f"{bad}: llama.cpp's quantizer failed") and "\n" not in message
    assert "failed to load model" in message  # the quantizer's own last log line says why
    assert capfd.readouterr().err == ""  # llama.cpp's log went to the capture, not the terminal
    print("stderr restored", file=sys.stderr)
    assert capfd.readouterr().err == "stderr restored\n"


def test_cli_gate_failure_is_one_line_naming_the_quant_and_the_one_that_passes(tiny_run, tmp_path):
    """--eval-data picks the held-out rows; a quant outside its bounds exits 1 with one line naming the figure,
    its bound and the smallest quant that passes (measured in the scratch folder, not written)."""
    rows = (REPO / "examples" / "task_api" / "eval.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    data = tmp_path / "heldout.jsonl"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    proc = _script("export.py", "--run", str(tiny_run), "--to", "gguf", "--quant", "q4_k_m", "--out", str(out),
                   "--eval-data", str(data), "--verify-rows", "3")
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stdout.splitlines() if "fails its parity bounds" in line]
    assert len(lines) == 1 and lines[0].startswith("gguf q4_k_m fails its parity bounds: ")
    assert re.search(r"(mean KL [\d.e-]+ > [\d.e-]+|answers kept [\d.]+% < [\d.]+%)", lines[0])
    assert lines[0].endswith("the smallest quant that passes is f16 (--quant f16)")
    saved = json.loads((out / "verify.json").read_text())
    assert saved["heldout"]["prompts"] == 3 and "(--eval-data)" in saved["heldout"]["source"]
    # verify.json's keys are sorted: the measurement order is read from what each entry says
    entries = {e["quant"]: e for e in saved["parity"].values()}
    assert set(entries) == {"q4_k_m", "q5_k_m", "q8_0", "f16"}
    assert [q for q, e in entries.items() if e["requested"]] == ["q4_k_m"]
    assert [q for q, e in entries.items() if e["passes"]] == ["f16"]  # measured up the sizes until one passed
    assert [p.name for p in out.glob("*.gguf")] == [f"{tiny_run.name}-q4_k_m.gguf"]


def test_eval_data_problems_are_one_line_before_any_work(tiny_run, tmp_path):
    from llmops_ft.export.pipeline import export

    empty = tmp_path / "plain.jsonl"
    empty.write_text('{"text": "no chat turns here"}\n', encoding="utf-8")
    cases = [(dict(to="gguf", eval_data=str(empty)), f"{empty}: no chat rows"),
             (dict(to="merged", eval_data=str(empty)), "--eval-data applies to --to gguf"),
             (dict(to="gguf", eval_data=str(tmp_path / "missing.jsonl")), "data file not found"),
             (dict(to="gguf", verify_rows=0), "--verify-rows: must be at least 1")]
    for kwargs, message in cases:
        to = kwargs.pop("to")
        with pytest.raises(UserError) as err:
            export(str(tiny_run), to, str(tmp_path / "x"), quants=["f16"] if to == "gguf" else None, **kwargs)
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()


def test_llama_continuation_logits_equal_a_fresh_teacher_forced_pass(gguf_export):
    """Parity reuses greedy's KV cache and logits; they must be those of a fresh pass over the same tokens."""
    import numpy as np
    from llmops_ft.engines.llama import LlamaCppModel

    llm = LlamaCppModel(Path(gguf_export["out"]) / "tiny-task-f16.gguf", n_ctx=512, logits_all=True)
    try:
        prompt = llm.prompt_ids([{"role": "user", "content": "Create a task to call Ana tomorrow"}])
        answer, _ = llm.greedy(prompt, 12)
        other = answer[:5] + [answer[5] + 1] + answer[6:]  # parts from greedy's answer at token 5
        reused = [llm.continuation_logits(prompt, c) for c in (answer, other)]
        fresh = [llm.logits(prompt + c)[len(prompt) - 1 : len(prompt) + len(c) - 1] for c in (answer, other)]
    finally:
        llm.close()
    for a, b in zip(reused, fresh, strict=True):
        assert a.shape == b.shape == (12, 49152)
        np.testing.assert_allclose(a, b, atol=2e-3 * float(np.abs(b).max()))
    assert not np.allclose(reused[0][6:], reused[1][6:])  # after the fork the two contexts differ
