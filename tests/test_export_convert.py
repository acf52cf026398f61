"""The built-in HF -> GGUF converter against llama.cpp itself: every supported architecture (tiny random models
with SmolLM2's tokenizer) gives the HF model's logits in llama.cpp; the rope permutation, tied embeddings, Llama 3
rope scaling and the pre-tokenizer names are each checked by what llama.cpp computes; unsupported inputs fail
with one line naming what would convert them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import test_export_support  # noqa: F401  (sets the llama.cpp thread count for this machine)
from llmops_ft.errors import UserError

TEXT_IDS = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 2, 198, 1, 4093, 198, 19556, 28, 392, 416, 722, 30,
            504, 3575, 282, 4649, 314, 3911, 17, 216, 33, 34, 35, 36, 37, 38, 2, 198, 1, 520, 9531, 198]
SMALL = dict(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512)


def _save(model, tokenizer_dir: Path, out: Path) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return out


def _build(kind: str, tokenizer_dir: Path, out: Path) -> Path:
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if kind == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**SMALL, tie_word_embeddings=True))
        with torch.no_grad():  # Qwen2 has q/k/v biases; make them non-zero so a wrong mapping shows
            for layer in model.model.layers:
                for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                    proj.bias.normal_(0, 0.5)
    elif kind == "qwen3":  # head_dim 32 != hidden / heads: exercises key_length / value_length
        model = tf.Qwen3ForCausalLM(tf.Qwen3Config(**SMALL, head_dim=32, tie_word_embeddings=True))
    elif kind == "mistral":  # untied output head
        model = tf.MistralForCausalLM(tf.MistralConfig(**SMALL, tie_word_embeddings=False, sliding_window=None))
    elif kind == "llama3-rope":  # Llama 3.1-style rope scaling with a short original context, untied head
        rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16, "rope_theta": 500.0}
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**SMALL, rope_parameters=rope, tie_word_embeddings=False))
    else:
        raise ValueError(kind)
    return _save(model, tokenizer_dir, out)


def _compare(model_dir: Path, gguf: Path, tie: float = 0.1) -> tuple[float, int]:
    """(max |dlogit| / max |logit|, disagreements beyond a near-tie) of llama.cpp vs transformers."""
    import torch
    from llmops_ft.engines.llama import LlamaCppModel
    from llmops_ft.export.verify import agreement
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        want = hf(torch.tensor([TEXT_IDS])).logits[0].numpy()
    llm = LlamaCppModel(gguf, n_ctx=256, logits_all=True)
    try:
        got = llm.logits(TEXT_IDS)
    finally:
        llm.close()
    result = agreement([got], [want], tie)
    return result.max_abs_logit_diff / float(np.abs(want).max()), result.real_disagreements


@pytest.mark.parametrize("kind", ["qwen2", "qwen3", "mistral", "llama3-rope"])
def test_architecture_matches_transformers_in_llama_cpp(kind, smollm2_dir, tmp_path):
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.gguf_info import read_info

    model_dir = _build(kind, smollm2_dir, tmp_path / kind)
    report = convert(model_dir, tmp_path / "m.gguf", "f32")
    worst, disagreements = _compare(model_dir, tmp_path / "m.gguf")
    assert disagreements == 0 and worst < 5e-3, (kind, worst)  # the f16 KV cache rounds K and V
    names = {name for name, _, _ in read_info(tmp_path / "m.gguf").tensors}
    assert ("output.weight" in names) == (kind in ("mistral", "llama3-rope"))
    assert ("rope_freqs.weight" in names) == (kind == "llama3-rope")
    assert report.arch == {"qwen2": "qwen2", "qwen3": "qwen3"}.get(kind, "llama")


def test_without_the_rope_permutation_llama_cpp_disagrees(tiny_model_dir, tmp_path, monkeypatch):
    """The q/k row permutation is what makes a Llama checkpoint right in llama.cpp: drop it and logits move."""
    from llmops_ft.export import gguf_convert

    gguf_convert.convert(tiny_model_dir, tmp_path / "ok.gguf", "f32")
    good, _ = _compare(tiny_model_dir, tmp_path / "ok.gguf")
    monkeypatch.setitem(gguf_convert.ARCHITECTURES, "LlamaForCausalLM", ("llama", False))
    gguf_convert.convert(tiny_model_dir, tmp_path / "bad.gguf", "f32")
    bad, _ = _compare(tiny_model_dir, tmp_path / "bad.gguf")
    assert good < 5e-3 and bad > 0.1, (good, bad)


def test_bf16_and_q8_0_outputs(tiny_model_dir, tmp_path):
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.gguf_info import read_info
    from llmops_ft.export.verify import TIE

    for outtype, expected, limit in (("bf16", "BF16", 0.05), ("q8_0", "Q8_0", 0.1)):
        path = tmp_path / f"{outtype}.gguf"
        report = convert(tiny_model_dir, path, outtype)
        info = read_info(path)
        assert info.tensor_types() == {"F32": 5, expected: 15} == report.types
        assert info.metadata["general.file_type"] == {"bf16": 32, "q8_0": 7}[outtype]
        worst, disagreements = _compare(tiny_model_dir, path, TIE[outtype])
        assert worst < limit and disagreements == 0, (outtype, worst)


def test_k_quants_fall_back_on_narrow_rows(tiny_model_dir, tmp_path):
    from llmops_ft.engines.llama import LlamaCppModel
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.quantize import quantize

    convert(tiny_model_dir, tmp_path / "f16.gguf", "f16")
    types = quantize(tmp_path / "f16.gguf", tmp_path / "q5.gguf", "q5_k_m")
    assert "Q5_K" not in types and types["Q5_1"] >= 10 and types["F32"] == 5  # rows of 64/128 < 256
    llm = LlamaCppModel(tmp_path / "q5.gguf")
    try:
        assert len(llm.greedy(TEXT_IDS[:8], 4)[0]) == 4
    finally:
        llm.close()
    with pytest.raises(UserError, match="choose one of q4_k_m, q5_k_m"):
        quantize(tmp_path / "f16.gguf", tmp_path / "x.gguf", "q2_k")


def _with_pre_tokenizer(src: Path, out: Path, pre: dict) -> Path:
    shutil.copytree(src, out)
    spec = json.loads((out / "tokenizer.json").read_text())
    spec["pre_tokenizer"] = pre
    (out / "tokenizer.json").write_text(json.dumps(spec))
    return out


LLAMA3_SPLIT = {"type": "Split", "behavior": "Isolated", "invert": False, "pattern": {"Regex": None}}
BYTELEVEL = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}


@pytest.mark.parametrize("variant, expected", [("gpt2", "gpt-2"), ("digits", "smollm"), ("llama3", "llama-bpe"),
                                               ("qwen2", "qwen2")])
def test_pre_tokenizer_name_reproduces_hf_tokenization_in_llama_cpp(variant, expected, tiny_model_dir, tmp_path):
    from llama_cpp import Llama
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.gguf_vocab import LLAMA3_SPLIT as L3
    from llmops_ft.export.gguf_vocab import QWEN2_SPLIT as Q2
    from transformers import AutoTokenizer

    no_regex = dict(BYTELEVEL, use_regex=False)
    pre = {
        "gpt2": BYTELEVEL,
        "digits": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True}, BYTELEVEL]},
        "llama3": {"type": "Sequence", "pretokenizers": [dict(LLAMA3_SPLIT, pattern={"Regex": L3}), no_regex]},
        "qwen2": {"type": "Sequence", "pretokenizers": [dict(LLAMA3_SPLIT, pattern={"Regex": Q2}), no_regex]},
    }[variant]
    model_dir = _with_pre_tokenizer(tiny_model_dir, tmp_path / variant, pre)
    report = convert(model_dir, tmp_path / "v.gguf", "f16")
    assert report.tokenizer_pre == expected
    text = "Call 555-123456 at 10:30,  isn't it?\n\n  Café déjà vu 2024!\tTabs"
    hf_ids = AutoTokenizer.from_pretrained(model_dir)(text, add_special_tokens=False)["input_ids"]
    llm = Llama(str(tmp_path / "v.gguf"), vocab_only=True, verbose=False)
    try:
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == hf_ids
    finally:
        llm.close()


def test_unknown_or_sentencepiece_tokenizers_are_refused(tiny_model_dir, tmp_path):
    from llmops_ft.export.gguf_vocab import tokenizer_spec

    odd = _with_pre_tokenizer(tiny_model_dir, tmp_path / "odd", {
        "type": "Sequence", "pretokenizers": [dict(LLAMA3_SPLIT, pattern={"Regex": r"\w+"}), BYTELEVEL]})
    with pytest.raises(UserError, match=r"pre-tokenizer \['Split', 'ByteLevel'\] is not one the built-in"):
        tokenizer_spec(odd)
    spm = _with_pre_tokenizer(tiny_model_dir, tmp_path / "spm", {"type": "Metaspace", "replacement": "▁"})
    with pytest.raises(UserError, match="SentencePiece style") as err:
        tokenizer_spec(spm)
    assert "convert_hf_to_gguf.py" in str(err.value) and "tokenizer.json: model.type:" in str(err.value)


def test_rope_permute_interleaves_the_two_halves_of_each_head():
    from llmops_ft.export.gguf_convert import rope_permute

    rows = np.arange(16).reshape(16, 1)  # 2 heads of head_dim 8
    assert rope_permute(rows, 2)[:, 0].tolist() == [0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15]


def test_llama3_rope_factors_follow_the_wavelength_bands():
    from llmops_ft.export.gguf_convert import Hparams, llama3_rope_factors

    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    hp = Hparams("llama", True, 1, 4096, 1, 32, 8, 128, 131072, 128256, 1e-5, 500000.0, rope, False)
    factors = llama3_rope_factors(hp)
    assert factors.shape == (64,) and factors[0] == 1.0 and factors[-1] == 8.0
    band = factors[(factors > 1.0) & (factors < 8.0)]  # wavelengths between 8192/4 and 8192: smoothed
    assert np.all(np.diff(factors) >= 0) and len(band) == 6 and 2.0 < band[2] < 4.0


def test_gguf_info_agrees_with_the_gguf_package(tiny_model_dir, tmp_path):
    import gguf
    from llmops_ft.export.gguf_convert import convert
    from llmops_ft.export.gguf_info import read_info

    convert(tiny_model_dir, tmp_path / "m.gguf", "q8_0")
    ours = read_info(tmp_path / "m.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "m.gguf"))
    assert [(n, t) for n, t, _ in ours.tensors] == [(t.name, t.tensor_type.name) for t in reader.tensors]
    assert ours.metadata["tokenizer.chat_template"] == reader.get_field("tokenizer.chat_template").contents()
    assert ours.metadata["tokenizer.ggml.merges.length"] == len(reader.get_field("tokenizer.ggml.merges").data)
    (tmp_path / "junk.gguf").write_bytes(b"NOPE" + bytes(100))
    with pytest.raises(UserError, match="not a GGUF file"):
        read_info(tmp_path / "junk.gguf")


def test_unsupported_architecture_names_the_way_out(tmp_path):
    from llmops_ft.export.gguf_convert import read_hparams
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=100)).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(UserError) as err:
        read_hparams(tmp_path / "gpt2")
    message = str(err.value)
    assert "architecture GPT2LMHeadModel (gpt2) is not supported by the built-in GGUF converter" in message
    assert "convert_hf_to_gguf.py" in message and "\n" not in message
