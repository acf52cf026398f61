"""prep property: whatever rows come in, every one is accounted for (kept, rejected or a duplicate)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmops_ft.data import prepare
from llmops_ft.errors import UserError
from llmops_ft.io import read_jsonl

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
alpaca_row = st.fixed_dictionaries(
    {"instruction": st.sampled_from(["q", "q ", " q", "ask"]) | text, "output": st.sampled_from(["a", "a\n"]) | text},
    optional={"input": text | st.none(), "history": st.lists(st.lists(text, min_size=2, max_size=2), max_size=2),
              "extra": text},
)
junk = st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.dictionaries(text, text, max_size=2),
                 st.fixed_dictionaries({"instruction": st.integers() | text}))
rows = st.lists(alpaca_row | junk, min_size=1, max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows, seed=st.integers(0, 2**31), fraction=st.sampled_from([0.0, 0.1, 0.5]))
def test_every_row_is_kept_rejected_or_a_duplicate(rows, seed, fraction):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        try:
            report = prepare(path, Path(tmp) / "out", fmt="alpaca", seed=seed, val_fraction=fraction)
        except UserError as exc:
            assert "no valid row" in str(exc)  # the only whole-input failure a list of JSON values can cause
            return
        out = Path(tmp) / "out"
        counted = {name: len(list(read_jsonl(out / f"{name}.jsonl"))) for name in ("train", "val", "rejects",
                                                                                   "duplicates")}
    assert report["total"] == len(rows) == report["kept"] + report["rejected"] + report["duplicates"]
    assert (counted["train"], counted["val"]) == (report["train"], report["val"])
    assert (counted["rejects"], counted["duplicates"]) == (report["rejected"], report["duplicates"])
    assert report["train"] + report["val"] == report["kept"]
    if fraction and report["kept"] >= 2:
        assert report["val"] >= 1 and report["train"] >= 1
