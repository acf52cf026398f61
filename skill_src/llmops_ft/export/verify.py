"""Prove an export behaves like the trained model before calling it done.

- adapter / merged: reloaded from disk, max |logit difference| against the in-memory model <= 1e-3 (float32).
- GGUF, in llama.cpp (what Ollama runs): prompts built from the GGUF's own embedded chat template must tokenize
  to exactly the ids the trained model saw; BOS must not be doubled; the end-of-turn token must end generation.
  Parity with the trained model in Python (base + adapter) on held-out prompts, with the figures llama.cpp's
  ``llama-perplexity --kl-divergence`` reports (see parity.py), each gated by the quant's bounds. Files our own
  converter wrote (f32/f16/bf16/q8_0) are also read back by transformers' GGUF loader.

Each criterion is a Check (required or informational) in a report written as JSON and a short text table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..scoring import Scorer

LOGIT_TOL = 1e-3
TOP1_MIN = 0.95
# A flip is a near-tie when the reference preferred its token by at most this many logits: 16-bit engines round
# activations (noise ~0.05 logit), quantized ones more; ln 2 = "the engine's pick was at least half as likely".
TIE = {"bf16": 0.1, "q8_0": math.log(2)}
TRANSFORMERS_READ = ("f32", "f16", "bf16", "q8_0")  # written by our converter (K-quants: by llama.cpp)
ANSWER_TOKENS = 64  # the longest Task API answer in the example data is 54 tokens
PARITY_ROWS = 50  # held-out prompts a GGUF's parity is measured on (about 0.4 s each per quant here)
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
    """All checks of one export; for GGUF also the parity entry of each file and the rule's advice."""

    checks: list[Check] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    heldout: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, dict[str, Any]] = field(default_factory=dict)  # check label -> parity entry
    advice: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every required check passed."""
        return all(c.ok for c in self.checks if c.required)

    def failures(self) -> list[Check]:
        """The required checks that failed."""
        return [c for c in self.checks if c.required and not c.ok]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"ok": self.ok, "criteria": self.criteria, "checks": [asdict(c) for c in self.checks]}
        if self.parity:
            data.update(heldout=self.heldout, parity=self.parity, advice=self.advice)
        return data

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


def sample_conversations(run) -> tuple[list[list[dict[str, str]]], Scorer | None]:
    """Up to SAMPLE_SIZE prompts from the run's own data (val, else train), and the task scorer its answers fit."""
    from ..data.examples import read_examples
    from ..scoring import scorer_for

    dataset = run.info.get("dataset") or {}
    for key in ("val", "train"):
        path = dataset.get(key)
        if path and Path(path).is_file():
            examples, _ = read_examples(path, limit=SAMPLE_SIZE)
            if examples:
                return [e.prompt for e in examples], scorer_for([e.target for e in examples])
    system = [{"role": "system", "content": run.system_prompt}] if run.system_prompt else []
    return [system + [{"role": "user", "content": p}] for p in SAMPLE_PROMPTS[:SAMPLE_SIZE]], None


# ---------------------------------------------------------------- adapter / merged


def max_logit_diff(model_a, model_b, sequences: list[list[int]]) -> float:
    """Largest |logit difference| between two HF models over all positions of ``sequences`` (float32)."""
    from ..engines.hf import sequence_logits

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
    from ..engines.hf import sequence_logits

    result = agreement(sequence_logits(merged, sequences), sequence_logits(tuned, sequences), tie=0.0)
    return Check("merged", "16-bit merge vs float32 adapter", True,
                 f"max |dlogit| {result.max_abs_logit_diff:.2e}, top-1 agreement {result.strict:.1%} of "
                 f"{result.positions} positions", required=False,
                 values={"max_abs_logit_diff": result.max_abs_logit_diff, "top1_agreement": result.strict})


# ---------------------------------------------------------------- GGUF: held-out prompts and the reference


def heldout_examples(run, eval_data: str | None = None, limit: int = PARITY_ROWS) -> tuple[list, str]:
    """The held-out chat examples GGUF parity is measured on (first ``limit``), and where they come from.

    ``eval_data`` when given; else the run's val split; else its train split; else SAMPLE_PROMPTS (no targets).
    """
    from ..data.examples import Example, read_examples
    from ..errors import UserError

    if eval_data:
        examples = [e for e in read_examples(eval_data)[0] if e.prompt][:limit]
        if not examples:
            raise UserError("no chat rows (messages with a user turn) to verify the GGUF with", file=eval_data)
        return examples, f"{eval_data} (--eval-data)"
    dataset = run.info.get("dataset") or {}
    for key in ("val", "train"):
        path = dataset.get(key)
        if path and Path(path).is_file():
            examples = [e for e in read_examples(path)[0] if e.prompt][:limit]
            if examples:
                return examples, f"the run's {key} split ({path})"
    system = [{"role": "system", "content": run.system_prompt}] if run.system_prompt else []
    prompts = [Example(0, system + [{"role": "user", "content": p}], None) for p in SAMPLE_PROMPTS]
    return prompts, "built-in sample prompts (the run records no data split)"


@dataclass
class Reference:
    """The trained model in Python on the held-out prompts: ids, greedy answers, answer-position log-probs."""

    conversations: list[list[dict[str, str]]]
    prompts: list[list[int]]
    continuations: list[tuple[list[int], bool]]
    texts: list[str]
    end_ids: list[int]
    logprobs: list  # per prompt: log-softmax rows (answer tokens + the end token when it stopped) x vocab
    scorer: Scorer | None = None
    targets: list[str | None] = field(default_factory=list)
    source: str = ""

    def sequences(self) -> list[list[int]]:
        """prompt + greedy answer (+ the end token where the answer stopped): what every GGUF is teacher-forced on."""
        return [p + ids + ([self.end_ids[0]] if stopped else [])
                for p, (ids, stopped) in zip(self.prompts, self.continuations, strict=True)]

    def n_ctx(self) -> int:
        """A llama.cpp context that holds the longest prompt and answer (small: logits_all allocates n_ctx x vocab)."""
        need = max(len(p) for p in self.prompts) + ANSWER_TOKENS + 1
        return max(512, -(-need // 256) * 256)

    def task_scores(self, texts: list[str]) -> dict[str, Any] | None:
        """The task scorer's figures for ``texts`` (None when no scorer accepts the held-out targets)."""
        return self.scorer.score_all(texts, self.targets) if self.scorer else None


def build_reference(hf_model, examples, source: str = "") -> Reference:
    """Run the trained model (an engines.hf.HFModel) once: greedy answers, then their log-probs, batched."""
    from ..engines.hf import answer_logprobs
    from ..scoring import scorer_for

    conversations = [e.prompt for e in examples]
    targets = [e.target for e in examples]
    prompts = [hf_model.prompt_ids(c) for c in conversations]
    continuations = hf_model.generate_ids(prompts, ANSWER_TOKENS)
    texts = [hf_model.decode(ids) for ids, _ in continuations]
    scorer = scorer_for(targets) if all(t is not None for t in targets) else None
    ref = Reference(conversations, prompts, continuations, texts, hf_model.end_ids, [], scorer, targets, source)
    ref.logprobs = answer_logprobs(hf_model.model, ref.sequences(), [len(p) - 1 for p in prompts],
                                   batch_size=hf_model.batch_size)
    return ref


def _answer_rows(model, ref: Reference, n: int) -> list:
    """An HF model's raw logits at the answer positions of the first ``n`` reference sequences."""
    from ..engines.hf import sequence_logits

    seqs = ref.sequences()[:n]
    rows = sequence_logits(model, seqs)
    return [r[len(p) - 1 : len(s) - 1] for p, s, r in zip(ref.prompts, seqs, rows, strict=False)]


# ---------------------------------------------------------------- GGUF: agreement (transformers reader, merge drift)


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


# ---------------------------------------------------------------- GGUF: the checks of one file


def gguf_checks(label: str, quant: str, path: Path, ref: Reference, merged_rows,
                requested: bool = True) -> tuple[list[Check], dict[str, Any] | None]:
    """Every check of one GGUF file and its parity entry (None when llama.cpp cannot load it).

    A quant measured only to find one that passes (``requested=False``) gets informational checks.
    """
    from ..engines.llama import LlamaCppModel
    from ..errors import UserError

    try:
        llm = LlamaCppModel(path, n_ctx=ref.n_ctx(), logits_all=True)
    except UserError as exc:
        return [Check(label, "loads in llama.cpp", False, str(exc), required=requested)], None
    try:
        checks = [Check(label, "loads in llama.cpp", True, f"{path.name}, {path.stat().st_size / 2**20:.1f} MiB",
                        required=requested)]
        checks += _template_checks(label, llm, ref)
        entry = _parity_entry(quant, path, llm, ref, requested)
    finally:
        llm.close()
    checks.append(_parity_check(label, entry, required=requested))
    if not requested:
        for check in checks:
            check.required = False
    elif quant in TRANSFORMERS_READ and all(c.ok for c in checks if c.required):
        checks.append(_transformers_check(label, quant, path, ref, merged_rows))
    return checks, entry


def _template_checks(label: str, llm, ref: Reference) -> list[Check]:
    """Embedded chat template present, renders to the trained ids, single BOS, end-of-turn ends generation."""
    from ..engines.chat_templates import render
    from ..engines.sequences import common_prefix

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


def _parity_entry(quant: str, path: Path, llm, ref: Reference, requested: bool) -> dict[str, Any]:
    """Teacher-forced KL / top token on every answer position, then the greedy answer, prompt by prompt."""
    from . import parity

    acc = parity.Accumulator()
    texts = []
    for i, (prompt, seq) in enumerate(zip(ref.prompts, ref.sequences(), strict=True)):
        # greedy first: teacher-forcing on the reference's answer then re-evaluates only what follows a fork
        got, want = llm.greedy(prompt, ANSWER_TOKENS), ref.continuations[i]
        acc.add_positions(ref.logprobs[i], llm.continuation_logits(prompt, seq[len(prompt) :]))
        acc.add_answer(got == want, None if got == want else _fork_margin(got, want, ref.logprobs[i], ref.end_ids))
        texts.append(llm.decode(got[0]))
    figures = acc.figures()
    failed = parity.gate(quant, figures)
    return {"quant": quant, "file": path.name, "bytes": path.stat().st_size, "requested": requested,
            "figures": figures.to_dict(), "bounds": parity.bounds(quant), "failed": failed, "passes": not failed,
            "task": _task(ref, texts)}


def _fork_margin(got, want, logprobs, end_ids: list[int]) -> float | None:
    """How much more likely the reference found its own token where the two greedy answers first differ."""
    from ..engines.sequences import common_prefix

    k = common_prefix(got[0], want[0])
    if k >= len(logprobs):
        return None
    ours = got[0][k] if k < len(got[0]) else end_ids[0]
    theirs = want[0][k] if k < len(want[0]) else end_ids[0]
    return float(logprobs[k][theirs] - logprobs[k][ours])


def _task(ref: Reference, texts: list[str]) -> list[dict[str, Any]] | None:
    """The task scorer's metrics in llama.cpp and in Python on the same prompts (None without a scorer)."""
    ours, theirs = ref.task_scores(texts), ref.task_scores(ref.texts)
    if ours is None:
        return None
    keys = ref.scorer.metrics or tuple((k, k) for k, v in ours.items() if isinstance(v, float))
    return [{"label": label, "key": key, "gguf": ours[key], "python": theirs[key]} for label, key in keys]


def _parity_check(label: str, entry: dict[str, Any], required: bool) -> Check:
    from .parity import PARITY_CHECK, Figures

    figures = Figures.from_dict(entry["figures"])
    bounds = ", ".join(f"{k} {v:g}" for k, v in entry["bounds"].items())
    detail = figures.line() + (f"; outside the {entry['quant']} bounds: " + "; ".join(entry["failed"])
                               if entry["failed"] else f"; within the {entry['quant']} bounds ({bounds})")
    return Check(label, PARITY_CHECK, entry["passes"], detail, required=required,
                 values={k: entry[k] for k in ("figures", "bounds", "failed", "task")})


def _transformers_check(label: str, quant: str, path: Path, ref: Reference, merged_rows) -> Check:
    """Our converter's tensors read back by transformers' own GGUF loader (an independent reader)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a verification result, not a crash
        return Check(label, "loads in transformers", False, f"{type(exc).__name__}: {str(exc)[:200]}")
    rows = _answer_rows(model.eval(), ref, len(merged_rows))
    # f16/f32 dequantize to exactly the merged 16-bit weights: every position must agree
    minimum, tie = (1.0, 0.0) if quant in ("f32", "f16") else (TOP1_MIN, TIE[quant])
    result = agreement(rows, merged_rows, tie)
    return Check(label, "transformers top-1 agreement", result.passes(minimum), result.describe(minimum),
                 values=asdict(result))


# ---------------------------------------------------------------- GGUF: every file, and the rule


def verify_ggufs(run, merged, files: dict[str, tuple[str, Path]], *, examples: list | None = None,
                 source: str = "", make: Callable[[str], Path] | None = None) -> Report:
    """Check each GGUF (label -> (quant, path)) against the trained model (base + adapter, float32, in Python).

    ``merged`` is the in-memory 16-bit merge the files were converted from (the transformers reader's reference).
    ``make(quant)`` writes another quant when one fails its bounds: the larger ones are measured until one passes.
    """
    from ..engines.hf import HFModel
    from ..engines.runs import load_tokenizer, load_tuned
    from . import parity

    if examples is None:
        examples, source = heldout_examples(run)
    tuned = load_tuned(run, "float32").merge_and_unload()
    hf_model = HFModel(tuned, load_tokenizer(run.adapter_dir), kind="run", source="base + adapter", batch_size=16)
    reference = build_reference(hf_model, examples, source)
    hf_model.close()
    del tuned
    merged_rows = _answer_rows(merged, reference, SAMPLE_SIZE)
    report = Report(criteria=criteria()[1:], heldout={"source": source, "prompts": len(examples),
                                                       "positions": sum(len(r) for r in reference.logprobs),
                                                       "scorer": reference.scorer.name if reference.scorer else None})
    for label, (quant, path) in files.items():
        checks, entry = gguf_checks(label, quant, path, reference, merged_rows)
        report.checks += checks
        if entry is not None:
            report.parity[label] = entry
    if make is not None:
        _measure_larger(report, reference, make)
    report.advice = parity.advice({e["quant"]: e for e in report.parity.values()})
    return report


def _measure_larger(report: Report, ref: Reference, make: Callable[[str], Path]) -> None:
    """When a requested quant fails its bounds, measure the quants between it and the smallest one that passes
    (all larger ones when none passes), smallest first, until one passes: the rule names the smallest that does."""
    from . import parity

    measured = {e["quant"]: e for e in report.parity.values()}
    rank = parity.SIZE_RANK
    failing = [q for q, e in measured.items() if e["requested"] and not e["passes"] and q in rank]
    passing = [q for q, e in measured.items() if e["passes"] and q in rank]
    if not failing:
        return
    ceiling = min((rank[q] for q in passing), default=len(rank))
    for quant in parity.larger_than(min(failing, key=rank.__getitem__)):
        if rank[quant] >= ceiling:
            return
        if quant in measured:
            continue
        label = f"gguf {quant} (measured, not written)"
        checks, entry = gguf_checks(label, quant, make(quant), ref, [], requested=False)
        report.checks += checks
        if entry is not None:
            report.parity[label] = entry
            if entry["passes"]:
                return


def criteria() -> list[str]:
    """The pass criteria, spelled out for the report."""
    return [
        f"adapter, merged: reloaded from disk, max |dlogit| vs the in-memory model <= {LOGIT_TOL:g} (float32)",
        "gguf (all): loads in llama.cpp; embedded chat template present and renders the held-out conversations to "
        "exactly the token ids of the trained tokenizer; BOS not doubled; every end-of-turn id ends generation",
        "gguf parity, against the trained model in Python (base + adapter, float32) on held-out prompts (--eval-data,"
        f" else the run's val split; first {PARITY_ROWS}): teacher-forced on its greedy answer, the KL divergence of "
        "the next-token distributions (full vocabulary) at every answer position, its mean and 99th percentile, the "
        f"share of positions with the same top token, and the share of prompts whose greedy answer ({ANSWER_TOKENS} "
        "tokens at most) is identical; mean KL, 99th-percentile KL and answers identical must be within the quant's "
        "bounds (recommendations.yaml, export.parity.*)",
        "gguf f32/f16 (our converter): transformers' GGUF loader picks the same top-1 token as the 16-bit merge at "
        f"every position; bf16/q8_0: >= {TOP1_MIN:.0%} of positions, or every disagreement a near-tie (margin <= ln 2)",
        "a quant outside its bounds fails the export; when no requested quant passes, the larger ones are measured "
        "and the smallest that passes is named",
    ]
