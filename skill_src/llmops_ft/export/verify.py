"""Prove an export behaves like the trained model before calling it done.

- adapter / merged: reloaded from disk, max |logit difference| against the in-memory model <= 1e-3 (float32).
- GGUF, in llama.cpp (what Ollama runs) and in transformers (`gguf_file=`): prompts are built from the GGUF's own
  embedded chat template and must tokenize to exactly the ids the trained model saw; BOS must not be doubled;
  the end-of-turn token must end generation. f16/bf16/f32: the greedy continuation equals the HF model's. q8_0:
  top-1 agreement >= 95% of positions (teacher-forced on the HF continuation). K-quants: load and answer; on a
  trained Task API run, answer with valid JSON wherever the 16-bit model does (at most one prompt less).

Each criterion is a Check (required or informational) in a report written as JSON and a short text table.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOGIT_TOL = 1e-3
TOP1_MIN = 0.95
WIDE = ("f32", "f16", "bf16")
KQUANT_NAMES = ("q4_k_m", "q5_k_m")
# A flip is a near-tie when the reference preferred its token by at most this many logits: 16-bit engines round
# activations (noise ~0.05 logit), quantized ones more; ln 2 = "the engine's pick was at least half as likely".
TIE = {"f32": 0.1, "f16": 0.1, "bf16": 0.1, "q8_0": math.log(2), "q4_k_m": math.log(2), "q5_k_m": math.log(2)}
GREEDY_TOKENS = 32
TASK_API_TOKENS = 64  # the longest Task API answer in the example data is 54 tokens
# Prompts for runs whose data holds no chat rows to sample from.
SAMPLE_PROMPTS = (
    "Create a task to pay the rent by 2025-03-01 with high priority.",
    "What is the capital of France?",
    "Write one sentence about autumn.",
    "List my open tasks in project apollo.",
    "Translate to French: good morning, how are you?",
    "Give me three tips for sleeping well.",
    "Explain what a LoRA adapter is in one sentence.",
    "Sum 17 and 25, then explain the steps.",
)
SAMPLE_SIZE = 8


@dataclass
class Check:
    """One verification result; ``required=False`` checks are reported but do not fail the export."""

    export: str
    name: str
    ok: bool
    detail: str
    required: bool = True
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    """All checks of one export."""

    checks: list[Check] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every required check passed."""
        return all(c.ok for c in self.checks if c.required)

    def failures(self) -> list[Check]:
        """The required checks that failed."""
        return [c for c in self.checks if c.required and not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"ok": self.ok, "criteria": self.criteria, "checks": [asdict(c) for c in self.checks]}

    def table(self) -> str:
        """A short aligned text table: export, check, result, detail."""
        rows = [("export", "check", "result", "detail")]
        for c in self.checks:
            result = ("ok" if c.ok else "FAIL") if c.required else ("info" if c.ok else "info!")
            rows.append((c.export, c.name, result, c.detail))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3] for r in rows
        )


# ---------------------------------------------------------------- sample prompts


def sample_conversations(run) -> tuple[list[list[dict[str, str]]], bool]:
    """Up to SAMPLE_SIZE prompts from the run's own data (val, else train), and whether it is Task API data."""
    from ..evaluate.rows import is_task_api, read_examples

    dataset = run.info.get("dataset") or {}
    for key in ("val", "train"):
        path = dataset.get(key)
        if path and Path(path).is_file():
            examples, _ = read_examples(path, limit=SAMPLE_SIZE)
            if examples:
                return [e.prompt for e in examples], is_task_api([e.target for e in examples])
    system = [{"role": "system", "content": run.system_prompt}] if run.system_prompt else []
    return [system + [{"role": "user", "content": p}] for p in SAMPLE_PROMPTS[:SAMPLE_SIZE]], False


# ---------------------------------------------------------------- adapter / merged


def max_logit_diff(model_a, model_b, sequences: list[list[int]]) -> float:
    """Largest |logit difference| between two HF models over all positions of ``sequences`` (float32)."""
    from ..evaluate.hf_engine import sequence_logits

    pairs = zip(sequence_logits(model_a, sequences), sequence_logits(model_b, sequences), strict=True)
    return max(float(abs(a - b).max()) for a, b in pairs)


def check_reload(export: str, reference, reloaded, sequences: list[list[int]]) -> Check:
    """Reloaded-from-disk model vs the in-memory one: max |Δlogit| <= LOGIT_TOL."""
    diff = max_logit_diff(reference, reloaded, sequences)
    return Check(export, "reload matches in-memory model", diff <= LOGIT_TOL,
                 f"max |dlogit| {diff:.2e} (limit {LOGIT_TOL:.0e}) over {len(sequences)} prompts",
                 values={"max_abs_logit_diff": diff})


def check_merge_drift(merged, tuned, sequences: list[list[int]]) -> Check:
    """How far rounding the merged weights to 16 bits moves the logits of the float32 adapter model (info)."""
    from ..evaluate.hf_engine import sequence_logits

    result = agreement(sequence_logits(merged, sequences), sequence_logits(tuned, sequences), tie=0.0)
    return Check("merged", "16-bit merge vs float32 adapter", True,
                 f"max |dlogit| {result.max_abs_logit_diff:.2e}, top-1 agreement {result.strict:.1%} of "
                 f"{result.positions} positions", required=False,
                 values={"max_abs_logit_diff": result.max_abs_logit_diff, "top1_agreement": result.strict})


# ---------------------------------------------------------------- GGUF


@dataclass
class Reference:
    """What the 16-bit HF model does on the sample prompts: ids, greedy continuations, logits."""

    conversations: list[list[dict[str, str]]]
    prompts: list[list[int]]
    continuations: list[tuple[list[int], bool]]
    texts: list[str]
    end_ids: list[int]
    task_api: bool
    trained: bool

    def sequences(self) -> list[list[int]]:
        """prompt + the first GREEDY_TOKENS continuation tokens of each sample."""
        return [p + c[:GREEDY_TOKENS] for p, (c, _) in zip(self.prompts, self.continuations, strict=True)]


def build_reference(hf_model, conversations, *, task_api: bool, trained: bool) -> Reference:
    """Run the HF model (an evaluate.hf_engine.HFModel) once; every GGUF is compared with this."""
    prompts = [hf_model.prompt_ids(c) for c in conversations]
    new_tokens = TASK_API_TOKENS if task_api and trained else GREEDY_TOKENS
    continuations = hf_model.generate_ids(prompts, new_tokens)
    texts = [hf_model.decode(ids) for ids, _ in continuations]
    return Reference(conversations, prompts, continuations, texts, hf_model.end_ids, task_api, trained)


def hf_logit_rows(hf_model, ref: Reference) -> list:
    """The HF model's logits at the continuation positions of each sample (compared with every GGUF)."""
    return _continuation_rows(hf_model.model, ref)


def _continuation_rows(model, ref: Reference) -> list:
    from ..evaluate.hf_engine import sequence_logits

    logits = sequence_logits(model, ref.sequences())
    return [rows[len(p) - 1 :] for p, rows in zip(ref.prompts, logits, strict=True)]


@dataclass
class Agreement:
    """Top-1 agreement of an engine with the HF reference over teacher-forced positions."""

    strict: float  # same argmax
    positions: int
    max_abs_logit_diff: float
    real_disagreements: int  # argmax differs and the reference did not nearly tie the engine's pick
    worst_margin: float  # the largest reference margin the engine overturned

    def passes(self, minimum: float) -> bool:
        """>= ``minimum`` strict agreement, or every disagreement is a near-tie of the reference."""
        return self.strict >= minimum or self.real_disagreements == 0

    def describe(self, minimum: float) -> str:
        """One line for the report."""
        return (f"{self.strict:.1%} of {self.positions} positions (limit {minimum:.0%}), "
                f"{self.real_disagreements} beyond a near-tie (largest overturned margin {self.worst_margin:.3f}), "
                f"max |dlogit| {self.max_abs_logit_diff:.3g}")


def agreement(engine_rows, hf_rows, tie: float) -> Agreement:
    """Compare logit matrices position by position; a flip where the reference's margin <= ``tie`` is a near-tie."""
    import numpy as np

    agree = total = real = 0
    worst = margin = 0.0
    for ours, theirs in zip(engine_rows, hf_rows, strict=True):
        picks, best = ours.argmax(-1), theirs.argmax(-1)
        index = np.arange(len(best))
        gaps = theirs[index, best] - theirs[index, picks]
        agree += int((picks == best).sum())
        real += int((gaps > tie).sum())
        margin = max(margin, float(gaps.max()))
        total += len(best)
        worst = max(worst, float(np.abs(ours - theirs).max()))
    return Agreement(agree / max(total, 1), total, worst, real, margin)


def gguf_checks(label: str, quant: str, path: Path, ref: Reference, hf_rows) -> list[Check]:
    """Every check of one GGUF file (``quant`` picks the criteria), in llama.cpp then in transformers."""
    from ..errors import UserError
    from ..evaluate.llama_engine import LlamaCppModel

    try:
        llm = LlamaCppModel(path, n_ctx=4096, logits_all=True)
    except UserError as exc:
        return [Check(label, "loads in llama.cpp", False, str(exc))]
    try:
        checks = [Check(label, "loads in llama.cpp", True, f"{path.name}, {path.stat().st_size / 2**20:.1f} MiB")]
        checks += _template_checks(label, llm, ref)
        if all(c.ok for c in checks):
            checks += _behaviour_checks(label, quant, llm, ref, hf_rows)
    finally:
        llm.close()
    if all(c.ok for c in checks if c.required):
        checks.append(_transformers_check(label, quant, path, ref, hf_rows))
    else:  # already failed: spare the slow second reader
        checks.append(Check(label, "transformers top-1 agreement", False, "not run: llama.cpp checks failed",
                            required=False))
    return checks


def _template_checks(label: str, llm, ref: Reference) -> list[Check]:
    """Embedded chat template present, renders to the trained ids, single BOS, end-of-turn ends generation."""
    from ..evaluate.generate import common_prefix
    from .templates import render

    if not llm.chat_template:
        return [Check(label, "chat template embedded", False,
                      "GGUF has no tokenizer.chat_template: Ollama and llama.cpp would prompt it wrongly")]
    checks = [Check(label, "chat template embedded", True, f"{len(llm.chat_template)} chars")]
    mismatches = []
    for i, (conversation, expected) in enumerate(zip(ref.conversations, ref.prompts, strict=True)):
        got = llm.prompt_ids(conversation)
        if got != expected:
            mismatches.append(f"prompt {i}: {len(got)} vs {len(expected)} ids, first difference at "
                              f"{common_prefix(got, expected)}")
    checks.append(Check(
        label, "prompt from GGUF template = trained ids", not mismatches,
        "; ".join(mismatches[:2]) or f"{len(ref.prompts)}/{len(ref.prompts)} prompts identical",
        values={"mismatches": mismatches},
    ))
    # Without the template's own BOS (Ollama's templates never write it), does the runtime add a second one?
    structural = render(llm.chat_template, ref.conversations[0], bos_token="", eos_token=llm.eos_text)
    ids = llm.tokenize(structural)
    doubled = len(ids) > 1 and ids[0] == ids[1] == llm.bos_id
    checks.append(Check(label, "BOS not doubled", not doubled,
                        f"add_bos_token={llm.add_bos}, prompt starts {ids[:2]}, bos id {llm.bos_id}"))
    not_eog = [t for t in ref.end_ids if not llm.is_end(t)]
    checks.append(Check(label, "end-of-turn ends generation", not not_eog,
                        f"end ids {ref.end_ids}" + (f"; llama.cpp does not stop at {not_eog}" if not_eog else "")))
    return checks


def _behaviour_checks(label: str, quant: str, llm, ref: Reference, hf_rows) -> list[Check]:
    """Greedy continuation equality, teacher-forced top-1 agreement, Task API JSON validity."""
    json_check = ref.task_api and ref.trained and quant in KQUANT_NAMES
    rows, outs = [], []
    for prompt, seq in zip(ref.prompts, ref.sequences(), strict=True):
        # teacher-forced first: the greedy run then finds the prompt already in llama.cpp's KV cache
        rows.append(llm.logits(seq)[len(prompt) - 1 :])
        outs.append(llm.greedy(prompt, TASK_API_TOKENS if json_check else GREEDY_TOKENS))
    verdicts = [_greedy_verdict(got, want, hf_row, ref.end_ids[0], TIE[quant])
                for got, want, hf_row in zip(outs, ref.continuations, hf_rows, strict=True)]
    identical, ties = verdicts.count("identical"), verdicts.count("near-tie")
    n = len(verdicts)
    checks = [Check(label, f"greedy {GREEDY_TOKENS} tokens = HF", identical + ties == n,
                    f"{identical}/{n} identical, {ties} diverged at a near-tie (margin <= {TIE[quant]:.2g})",
                    required=quant in WIDE, values={"identical": identical, "near_tie": ties, "n": n})]
    result = agreement(rows, hf_rows, TIE[quant])
    checks.append(Check(label, "top-1 agreement (llama.cpp)", result.passes(TOP1_MIN), result.describe(TOP1_MIN),
                        required=quant == "q8_0", values=asdict(result)))
    if json_check:
        checks.append(_json_check(label, llm, outs, ref))
    return checks


def _greedy_verdict(got: tuple[list[int], bool], want: tuple[list[int], bool], hf_row, end_id: int,
                    tie: float) -> str:
    """'identical' over the first GREEDY_TOKENS, 'near-tie' when the first difference is one, else 'differs'."""
    from ..evaluate.generate import common_prefix

    a, b = got[0][:GREEDY_TOKENS], want[0][:GREEDY_TOKENS]
    if a == b and (len(a) == GREEDY_TOKENS or len(got[0]) == len(want[0])):
        return "identical"
    k = common_prefix(a, b)
    ours = a[k] if k < len(a) else end_id
    theirs = b[k] if k < len(b) else end_id
    return "near-tie" if hf_row[k][theirs] - hf_row[k][ours] <= tie else "differs"


def _json_check(label: str, llm, outs, ref: Reference) -> Check:
    from ..taskapi.score import parse_call

    ours = sum(parse_call(llm.decode(ids)) is not None for ids, _ in outs)
    theirs = sum(parse_call(t) is not None for t in ref.texts)
    return Check(label, "Task API answers are valid JSON", ours >= theirs - 1,
                 f"{ours}/{len(outs)} valid JSON (16-bit model: {theirs}; at most one fewer allowed)",
                 values={"valid_json": ours, "reference_valid_json": theirs})


def _transformers_check(label: str, quant: str, path: Path, ref: Reference, hf_rows) -> Check:
    """The GGUF read back by transformers' own GGUF loader (an independent reader of our tensors)."""
    import torch
    from transformers import AutoModelForCausalLM

    required = quant not in KQUANT_NAMES
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a verification result, not a crash
        return Check(label, "loads in transformers", False, f"{type(exc).__name__}: {str(exc)[:200]}",
                     required=required)
    rows = _continuation_rows(model.eval(), ref)
    # f16/f32 dequantize to exactly the reference weights: every position must agree
    minimum, tie = (1.0, 0.0) if quant in ("f32", "f16") else (TOP1_MIN, TIE[quant])
    result = agreement(rows, hf_rows, tie)
    return Check(label, "transformers top-1 agreement", result.passes(minimum), result.describe(minimum),
                 required=required, values=asdict(result))


def verify_ggufs(run, merged, files: dict[str, tuple[str, Path]]) -> Report:
    """Check each GGUF (label -> (quant, path)) against ``merged``, the in-memory 16-bit model it came from."""
    from ..evaluate.hf_engine import HFModel
    from .adapter import load_tokenizer

    report = Report(criteria=criteria()[1:])
    conversations, task_api = sample_conversations(run)
    hf_model = HFModel(merged, load_tokenizer(run.adapter_dir), kind="merged", source="in-memory merge")
    reference = build_reference(hf_model, conversations, task_api=task_api, trained=bool(run.info.get("steps")))
    hf_rows = hf_logit_rows(hf_model, reference)
    for label, (quant, path) in files.items():
        report.checks += gguf_checks(label, quant, path, reference, hf_rows)
    return report


def criteria() -> list[str]:
    """The pass criteria, spelled out for the report."""
    return [
        f"adapter, merged: reloaded from disk, max |dlogit| vs the in-memory model <= {LOGIT_TOL:g} (float32)",
        "gguf (all): loads in llama.cpp; embedded chat template present and renders the sample conversations to "
        "exactly the token ids of the trained tokenizer; BOS not doubled; every end-of-turn id ends generation",
        f"gguf f32/f16/bf16: llama.cpp's greedy first {GREEDY_TOKENS} tokens equal the HF model's on every "
        f"sample, or first differ where the HF model's own margin is <= {TIE['f16']} logit (a near-tie); "
        "transformers' GGUF loader picks the same top-1 token at every position (f32/f16)",
        f"gguf bf16, q8_0: top-1 agreement >= {TOP1_MIN:.0%} of positions (teacher-forced on the HF greedy "
        "continuation) in llama.cpp (q8_0) and transformers, or every disagreement a near-tie (the engine's "
        "token at least half as likely as the HF model's top token, margin <= ln 2)",
        "gguf q4_k_m/q5_k_m: loads and answers; agreement reported, not required; on a trained Task API run "
        "the answers are valid JSON wherever the 16-bit model's are (at most one fewer)",
    ]
