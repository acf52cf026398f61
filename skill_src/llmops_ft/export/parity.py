"""Parity of a GGUF in llama.cpp with the trained model in Python: the figures, their per-quant bounds, the choice.

The figures are the ones llama.cpp's ``llama-perplexity --kl-divergence`` reports against a reference model's
logits, measured here on held-out chat prompts, teacher-forced on the reference model's own greedy answer:

- KL divergence of the next-token distributions (softmax of the full-vocabulary logits), reference || GGUF:
  its mean, median, 99th and 99.9th percentile and maximum over every answer position;
- "same top p": the share of those positions where both pick the same top token;
- the share of prompts whose greedy answer (token ids, stop included) is identical, and the share "kept":
  identical, or first different where the trained model itself nearly tied (its own token ahead by at most
  NEAR_TIE in log-probability: storing the trained weights in 16 bits, which every GGUF starts from, moves its
  logits about that much).

Each quant type has bounds in ``recommendations.yaml`` (ids ``export.parity.<figure>.<quant>``, basis ``ours``,
the measurement as the reason); a GGUF passes when every gated figure is within its bound. When one fails,
:func:`smallest_passing` names the smallest quant that passes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

# Smallest file first: the order in which a failing quant's replacement is looked for. f16 and bf16 make files
# of one size: between them the one closer to the trained model (lower mean KL) is the smaller choice.
SIZE_ORDER = ("q4_k_m", "q5_k_m", "q8_0", "f16", "bf16", "f32")
SIZE_RANK = {"q4_k_m": 0, "q5_k_m": 1, "q8_0": 2, "f16": 3, "bf16": 3, "f32": 4}
# f32 is at least as exact as f16: it is held to f16's bounds.
BOUND_OF = {"f32": "f16"}
# figure -> (recommendation id prefix, "max" when the figure must stay at or below its bound, "min" at or above)
GATED = {
    "kl_mean": ("export.parity.kl_mean", "max"),
    "kl_p99": ("export.parity.kl_p99", "max"),
    "answers_kept": ("export.parity.answers_kept", "min"),
}
LABELS = {"kl_mean": "mean KL", "kl_p99": "99th-percentile KL", "same_top_p": "same top p",
          "answers_identical": "answers identical", "answers_kept": "answers kept"}
PARITY_CHECK = "parity with the trained model"  # the name of the gate's check in the verification report
NEAR_TIE = 0.1  # log-probability margin of the trained model below which a fork is its own coin flip


@dataclass
class Accumulator:
    """Per-position KL divergences and top-token agreement, and per-prompt answer identity, of one GGUF."""

    kl: list = field(default_factory=list)
    same_top: list = field(default_factory=list)
    identical: list[bool] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)  # reference log-prob margin where a differing answer forks

    def add_positions(self, ref_logprobs, engine_logits) -> None:
        """Compare one prompt's answer positions: reference log-probs vs the engine's raw logits (same shape)."""
        import numpy as np

        ref = np.asarray(ref_logprobs, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            ours = log_softmax(np.asarray(engine_logits, dtype=np.float64))
            # rounding can make a KL of identical distributions a hair below zero
            kl = np.maximum((np.exp(ref) * (ref - ours)).sum(-1), 0.0)
        broken = ~np.isfinite(ours).all(-1)  # NaN / inf logits (damaged weights): as far from the model as it gets
        kl[broken] = np.inf
        self.kl.append(kl)
        self.same_top.append((ref.argmax(-1) == ours.argmax(-1)) & ~broken)

    def add_answer(self, same: bool, margin: float | None = None) -> None:
        """Record whether one greedy answer equals the reference's (and, if not, the margin where it forked)."""
        self.identical.append(same)
        if not same and margin is not None:
            self.margins.append(round(float(margin), 4))

    def figures(self) -> Figures:
        """The summary statistics."""
        import numpy as np

        kl = np.concatenate(self.kl) if self.kl else np.zeros(0)
        top = np.concatenate(self.same_top) if self.same_top else np.zeros(0, dtype=bool)
        n, same = len(self.identical), sum(self.identical)
        ties = sum(m <= NEAR_TIE for m in self.margins)
        answers = dict(prompts=n, answers_identical=_share(same, n), answers_kept=_share(same + ties, n),
                       identical=same, near_ties=ties, fork_margins=sorted(self.margins))
        if not len(kl):
            return Figures(positions=0, **dict.fromkeys(KL_FIELDS, float("nan")), **answers)
        percentiles = np.percentile(kl, [50, 99, 99.9])
        return Figures(positions=int(len(kl)), kl_mean=float(kl.mean()), kl_median=float(percentiles[0]),
                       kl_p99=float(percentiles[1]), kl_p999=float(percentiles[2]), kl_max=float(kl.max()),
                       same_top_p=float(top.mean()), **answers)


KL_FIELDS = ("kl_mean", "kl_median", "kl_p99", "kl_p999", "kl_max", "same_top_p")


def _share(count: int, n: int) -> float:
    return count / n if n else float("nan")


@dataclass
class Figures:
    """What llama-perplexity --kl-divergence reports, plus the share of identical greedy answers."""

    prompts: int
    positions: int
    kl_mean: float
    kl_median: float
    kl_p99: float
    kl_p999: float
    kl_max: float
    same_top_p: float
    answers_identical: float
    answers_kept: float  # identical, or forked at a near-tie of the reference
    identical: int
    near_ties: int
    fork_margins: list[float]  # per differing answer: how much the reference preferred its own token there

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: floats rounded to 6 significant digits, a non-finite one (broken logits) as None."""
        return {k: (float(f"{v:.6g}") if math.isfinite(v) else None) if isinstance(v, float) else v
                for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        """Inverse of :meth:`to_dict` (None back to infinity for the KL figures, NaN otherwise)."""
        return cls(**{k: (math.inf if k.startswith("kl_") else math.nan) if v is None else v for k, v in data.items()})

    def line(self) -> str:
        """One line for the verification table."""
        return (f"mean KL {self.kl_mean:.4g}, p99 KL {self.kl_p99:.4g}, max KL {self.kl_max:.3g}, same top p "
                f"{self.same_top_p:.1%} of {self.positions} positions; answers identical "
                f"{self.identical}/{self.prompts}, {self.near_ties} more forked at a near-tie")


def log_softmax(logits):
    """Row-wise log-softmax of a numpy array (float64 recommended: KL of near-equal models is ~1e-6)."""
    import numpy as np

    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


# ---------------------------------------------------------------- bounds and the gate


def bounds(quant: str) -> dict[str, float]:
    """The gated figures' bounds of ``quant`` (figure -> bound), from recommendations.yaml."""
    from ..knowledge.recommendations import load_recommendations

    entries = load_recommendations()
    kind = BOUND_OF.get(quant, quant)
    return {figure: float(entries[f"{prefix}.{kind}"]["value"]) for figure, (prefix, _) in GATED.items()}


def gate(quant: str, figures: Figures) -> list[str]:
    """One phrase per gated figure outside its bound, e.g. 'mean KL 0.081 > 0.05'; empty when it passes."""
    failed = []
    for figure, bound in bounds(quant).items():
        value = getattr(figures, figure)
        direction = GATED[figure][1]
        ok = value <= bound if direction == "max" else value >= bound
        if not ok:  # NaN (no positions) fails both ways
            sign = ">" if direction == "max" else "<"
            failed.append(f"{LABELS[figure]} {_fmt(figure, value)} {sign} {_fmt(figure, bound)}")
    return failed


def _fmt(figure: str, value: float) -> str:
    return f"{value:.1%}" if figure.startswith("answers") else f"{value:.4g}"


def smallest_passing(entries: dict[str, dict[str, Any]]) -> str | None:
    """The quant with the smallest file among ``entries`` (quant -> {"passes", "figures"}) that passes, else None;
    between files of one size, the lower mean KL."""
    passing = [q for q, e in entries.items() if e.get("passes") and q in SIZE_RANK]

    def key(quant: str) -> tuple[int, float]:
        kl = (entries[quant].get("figures") or {}).get("kl_mean")
        return SIZE_RANK[quant], math.inf if kl is None else kl

    return min(passing, key=key) if passing else None


def larger_than(quant: str) -> list[str]:
    """The quants that make a larger file than ``quant``, smallest first, that a failing quant is replaced by
    (bf16 and f32 are not: f16 is as exact for a run merged in float16, the CPU case)."""
    rank = SIZE_RANK.get(quant, len(SIZE_RANK))
    return [q for q in SIZE_ORDER if SIZE_RANK[q] > rank and q not in ("bf16", "f32")]


def advice(parity: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The rule applied to the measured quants: which failed and why, and the smallest that passes.

    ``parity`` maps quant -> {"passes": bool, "failed": [phrases], ...} (written or only measured).
    """
    chosen = smallest_passing(parity)
    lines = []
    for quant in SIZE_ORDER:
        entry = parity.get(quant)
        if entry is None or entry["passes"] or not entry.get("requested", True):
            continue
        reason = "; ".join(entry["failed"])
        tail = (f"the smallest quant that passes is {chosen} (--quant {chosen})" if chosen
                else "no quant measured passes: the fine-tuned model and its GGUF disagree, check the export")
        lines.append(f"gguf {quant} fails its parity bounds: {reason}; {tail}")
    return {"choice": chosen, "lines": lines}


# ---------------------------------------------------------------- side by side (the demo's table)


def comparison_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per measured quant of an export summary: size, KL, top-1, identical answers, task metric, verdict."""
    rows = []
    for quant in SIZE_ORDER:
        entry = (summary.get("parity") or {}).get(quant)
        if entry is None:
            continue
        fig = entry["figures"]
        rows.append({"quant": quant, "bytes": entry.get("bytes"), "kl_mean": fig["kl_mean"], "kl_p99": fig["kl_p99"],
                     "same_top_p": fig["same_top_p"], "answers_identical": fig["answers_identical"],
                     "answers_kept": fig["answers_kept"],
                     "task": entry.get("task"), "passes": entry["passes"], "requested": entry.get("requested", True),
                     "chosen": quant == (summary.get("advice") or {}).get("choice")})
    return rows


def comparison_table(rows: list[dict[str, Any]]) -> str:
    """A markdown table of :func:`comparison_rows`; one column per task metric (llama.cpp / Python) with a scorer."""
    metrics = next((r["task"] for r in rows if r.get("task")), None) or []
    head = ["quant", "size MiB", "mean KL", "p99 KL", "same top p", "answers identical", "answers kept"]
    head += [f"{m['label']} (llama.cpp / Python)" for m in metrics]
    lines = ["| " + " | ".join([*head, "bounds"]) + " |", "|" + " --- |" * (len(head) + 1)]
    for r in rows:
        cells = [f"`{r['quant']}`", f"{r['bytes'] / 2**20:.1f}" if r["bytes"] else "-", _cell(r["kl_mean"], ".4g"),
                 _cell(r["kl_p99"], ".4g"), _cell(r["same_top_p"], ".1%"), _cell(r["answers_identical"], ".1%"),
                 _cell(r["answers_kept"], ".1%")]
        cells += [f"{m['gguf']:.1%} / {m['python']:.1%}" for m in r.get("task") or []]
        verdict = "within" if r["passes"] else "outside"
        extra = [" (measured, not written)" if not r["requested"] else "", " (chosen)" if r["chosen"] else ""]
        cells.append(verdict + "".join(extra))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def side_by_side(summary: dict[str, Any]) -> dict[str, Any]:
    """What a report needs from a GGUF export summary: the rows and table of every measured quant, the rule's
    choice, the file the Modelfile points at, and whether the only failures are parity bounds (the rule's case:
    a quant outside its bounds, the export otherwise sound)."""
    failed = [c for c in (summary.get("verification") or {}).get("checks", []) if c["required"] and not c["ok"]]
    rows = comparison_rows(summary)
    return {"rows": rows, "table": comparison_table(rows), "choice": (summary.get("advice") or {}).get("choice"),
            "lines": (summary.get("advice") or {}).get("lines", []),
            "modelfile_file": summary.get("modelfile_file") or (summary.get("files") or [None])[0],
            "only_parity_failed": bool(failed) and all(c["name"] == PARITY_CHECK for c in failed)}
