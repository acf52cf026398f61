"""Scoring of predicted Task API calls against targets (evaluate uses these; keep the names).

A call's fields are its key=value pairs except ``action``; a list value (tags) gives one pair per element, so a
partly right tag list earns partial credit. Values compare as canonical JSON (1, 1.0, "1" and true all differ).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..scoring import Scorer
from .schema import is_valid

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate key")
    return dict(pairs)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_call(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` (surrounding whitespace and one code fence allowed), or None.

    Strict otherwise: no trailing text, no duplicate keys, no NaN/Infinity, and it must be an object.
    """
    if not isinstance(text, str):
        return None
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def field_pairs(call: dict[str, Any] | None) -> Counter:
    """The multiset of (key, canonical JSON value) pairs of ``call`` without ``action``."""
    pairs: Counter = Counter()
    for key, value in (call or {}).items():
        if key == "action":
            continue
        for item in value if isinstance(value, list) else [value]:
            pairs[(key, json.dumps(item, sort_keys=True, ensure_ascii=False))] += 1
    return pairs


def _canonical(call: dict[str, Any]) -> str:
    # not ``pred == target``: Python has True == 1 == 1.0, JSON does not
    return json.dumps(call, sort_keys=True, ensure_ascii=False)


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall, F1; a call with no fields against a target with none scores 1.0."""
    if tp + fp + fn == 0:
        return 1.0, 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def wrong_fields(pred: dict[str, Any] | None, target: dict[str, Any]) -> list[str]:
    """The keys (``action`` included) whose values differ between ``pred`` and ``target``; a missing or extra key
    counts as wrong. An answer that is not JSON has every field wrong: it is reported as ``(not JSON)``."""
    if pred is None:
        return ["(not JSON)"]
    keys = sorted(set(pred) | set(target))
    return [k for k in keys if k not in pred or k not in target
            or json.dumps(pred[k], sort_keys=True) != json.dumps(target[k], sort_keys=True)]


def score_example(pred_text: str, target_text: str) -> dict[str, Any]:
    """Score one prediction against its target call (the target must be a valid call).

    Returns valid_json, schema_valid, action_match, exact_match (same keys and JSON values; list order counts),
    the target and
    predicted actions, field tp/fp/fn and field precision/recall/f1.
    """
    target = parse_call(target_text)
    if target is None or not is_valid(target):
        raise UserError(f"target is not a valid Task API call: {target_text[:200]!r}", field="target")
    pred = parse_call(pred_text)
    pred_pairs, target_pairs = field_pairs(pred), field_pairs(target)
    tp = sum((pred_pairs & target_pairs).values())
    fp = sum(pred_pairs.values()) - tp
    fn = sum(target_pairs.values()) - tp
    precision, recall, f1 = _prf(tp, fp, fn)
    return {
        "valid_json": pred is not None,
        "schema_valid": pred is not None and is_valid(pred),
        "action_match": pred is not None and pred.get("action") == target["action"],
        "exact_match": pred is not None and _canonical(pred) == _canonical(target),
        "pred_action": pred.get("action") if pred is not None else None,
        "target_action": target["action"],
        "wrong_fields": wrong_fields(pred, target),
        "tp": tp, "fp": fp, "fn": fn,
        "precision": precision, "recall": recall, "f1": f1,
    }


def _reason(s: dict[str, Any]) -> str:
    if not s["valid_json"]:
        return "invalid JSON"
    if not s["action_match"]:
        return f"action {s['pred_action']!r} instead of {s['target_action']!r}"
    if not s["schema_valid"]:
        return "breaks the schema"
    return f"fields differ ({s['fp']} wrong or extra, {s['fn']} missing)"


def score_all(preds: Sequence[str], targets: Sequence[str], max_disagreements: int = 20) -> dict[str, Any]:
    """Aggregate scores over paired predictions and targets.

    Rates are fractions of ``n``; field precision/recall/F1 are micro-averaged (pairs summed over all
    examples). ``per_action`` breaks accuracy down by target action; ``disagreements`` lists the first
    ``max_disagreements`` inexact predictions with their index, reason, prediction and target;
    ``field_errors`` counts, per key, the answers that get it wrong.
    """
    if len(preds) != len(targets):
        raise UserError(f"{len(preds)} predictions for {len(targets)} targets", field="preds")
    if not targets:
        raise UserError("nothing to score", field="targets")
    scores = [score_example(p, t) for p, t in zip(preds, targets, strict=True)]
    n = len(scores)
    tp, fp, fn = (sum(s[k] for s in scores) for k in ("tp", "fp", "fn"))
    precision, recall, f1 = _prf(tp, fp, fn)
    per_action: dict[str, dict[str, Any]] = {}
    for action in sorted({s["target_action"] for s in scores}):
        group = [s for s in scores if s["target_action"] == action]
        per_action[action] = {
            "n": len(group),
            "action_accuracy": sum(s["action_match"] for s in group) / len(group),
            "exact_match_rate": sum(s["exact_match"] for s in group) / len(group),
        }
    misses = [i for i, s in enumerate(scores) if not s["exact_match"]]
    field_errors = Counter(k for s in scores for k in s["wrong_fields"])
    return {
        "n": n,
        "valid_json_rate": sum(s["valid_json"] for s in scores) / n,
        "schema_valid_rate": sum(s["schema_valid"] for s in scores) / n,
        "action_accuracy": sum(s["action_match"] for s in scores) / n,
        "exact_match_rate": sum(s["exact_match"] for s in scores) / n,
        "field_precision": precision,
        "field_recall": recall,
        "field_f1": f1,
        "per_action": per_action,
        # how many answers get each field wrong, most often wrong first
        "field_errors": dict(sorted(field_errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        "n_disagreements": len(misses),
        "disagreements": [
            {"index": i, "reason": _reason(scores[i]), "pred": preds[i], "target": targets[i]}
            for i in misses[:max_disagreements]
        ],
    }


def _valid_call(call: Any) -> bool:
    return isinstance(call, dict) and is_valid(call)


METRICS = (
    ("valid JSON", "valid_json_rate"),
    ("schema valid", "schema_valid_rate"),
    ("action accuracy", "action_accuracy"),
    ("exact call match", "exact_match_rate"),
    ("field F1", "field_f1"),
)
# Registered in pyproject.toml under the entry-point group llmops_ft.scorers.
SCORER = Scorer("task_api", parse=parse_call, is_valid=_valid_call, score_all=score_all, metrics=METRICS)
