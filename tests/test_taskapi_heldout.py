"""The hand-written held-out set (examples/task_api/heldout.jsonl): canonical calls, out of the generator's reach.

The generator writes only words of its own vocabulary (vocab.py, dates.py, one-letter typos of those) around
slot values from its lists, so a row holding a word outside that set, or a value outside those lists, is a row
it cannot write. Nothing here reads the model: the set must stay unseen by training and by recipe tuning.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from llmops_ft.io import read_jsonl
from llmops_ft.taskapi import dates, vocab
from llmops_ft.taskapi.generate import user_messages
from llmops_ft.taskapi.schema import ACTIONS, encode_call, schema_errors

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "task_api"
SYSTEM = re.compile(r"^Today is (\d{4}-\d{2}-\d{2})\. Reply with one Task API call as JSON; "
                    r"use clarify if a detail is missing\.$")
STRING_KEYS = ("title", "assignee", "project", "tag", "text")
DATE_KEYS = ("due", "due_after", "due_before")


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return list(read_jsonl(EXAMPLE / "heldout.jsonl"))


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    return [row for split in ("train", "eval") for row in read_jsonl(EXAMPLE / f"{split}.jsonl")]


def _calls(row: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in row["messages"] if m["role"] == "assistant"]


def _values(call: dict) -> list[str]:
    """The strings a call copies from the request: title, names, project, tags, comment text."""
    return [call[k] for k in STRING_KEYS if k in call] + list(call.get("tags", []))


def _strings(value: object) -> list[str]:
    """Every string inside ``value`` (nested lists, tuples and dict values)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [s for item in value for s in _strings(item)]
    return []


def _vocabulary_strings() -> list[str]:
    """Every string of vocab.py's lists plus every date phrase dates.py writes (sampled over many days)."""
    found = [s for name in dir(vocab) if name.isupper() for s in _strings(getattr(vocab, name))]
    rng = random.Random(0)
    for offset in range(0, 3 * 366, 3):
        today = dt.date(2025, 1, 1) + dt.timedelta(days=offset)
        found += [dates.date_phrase(rng, today)[0] for _ in range(20)]
    return found + ["from now"]  # generate._due turns "in 3 days" into "3 days from now"


def _typos(word: str) -> set[str]:
    """The one-letter swaps, drops and doubles generate.typo can make of ``word``."""
    out = set()
    for j in range(1, len(word) - 1):
        out |= {word[:j] + word[j + 1] + word[j] + word[j + 2:], word[:j] + word[j + 1:], word[:j] + word[j] + word[j:]}
    return out


def _generator_words() -> set[str]:
    words = {w for s in _vocabulary_strings() for w in re.findall(r"[a-z]+", s.lower())}
    return words | {t for w in words if len(w) >= 4 for t in _typos(w)}


def test_rows_are_valid_canonical_calls_with_their_own_date(heldout):
    assert len(heldout) >= 40
    todays = set()
    for i, row in enumerate(heldout, 1):
        roles = [m["role"] for m in row["messages"]]
        assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * (len(roles) // 2), i
        match = SYSTEM.match(row["messages"][0]["content"])
        assert match, (i, row["messages"][0])
        today = dt.date.fromisoformat(match.group(1))
        todays.add(today)
        calls = _calls(row)
        for m, call in zip(row["messages"][2::2], calls, strict=True):
            assert schema_errors(call) == [], (i, call)
            assert m["content"] == encode_call(call), (i, "not canonical")
        assert all(c["action"] == "clarify" for c in calls[:-1]), (i, "a second turn only follows a question")
        for key in DATE_KEYS:
            if key in calls[-1]:
                ahead = (dt.date.fromisoformat(calls[-1][key]) - today).days
                assert 0 <= ahead <= 366, (i, key, "dates are today or later, within a year")
    assert len(todays) >= 30, "each request has its own reference date"


def test_covers_every_action_clarify_and_relative_dates(heldout):
    finals = Counter(_calls(row)[-1]["action"] for row in heldout)
    assert set(finals) == set(ACTIONS) and min(finals.values()) >= 4, finals
    assert sum(len(_calls(row)) == 2 for row in heldout) >= 3, "some questions are answered in a second turn"
    dated = [row for row in heldout if any(k in _calls(row)[-1] for k in DATE_KEYS)]
    relative = [row for row in dated if not re.search(r"\d{4}-\d{2}-\d{2}", row["messages"][1]["content"])]
    assert len(relative) >= 12, len(relative)


def test_clarifying_questions_are_the_apis_fixed_ones(heldout):
    fixed = set(vocab.ASK_ID.values()) | {vocab.ASK_TITLE}
    templated = [re.escape(q).replace(r"\{n\}", r"[1-9]\d*") for q in (vocab.ASK_ASSIGNEE, vocab.ASK_TEXT,
                                                                      vocab.ASK_CHANGE)]
    for row in heldout:
        for call in _calls(row):
            if call["action"] == "clarify":
                q = call["question"]
                assert q in fixed or any(re.fullmatch(p, q) for p in templated), q


def test_values_are_in_no_generator_list_and_no_generated_request(heldout, generated):
    """Titles, names, projects, tags and comment texts: new to vocab.py and to train/eval."""
    known = {s.casefold() for s in _vocabulary_strings()}
    said = "\n".join(m for row in generated for m in user_messages(row))
    values = {v for row in heldout for call in _calls(row) for v in _values(call)}
    assert len(values) >= 40
    for value in sorted(values):
        assert value.casefold() not in known, f"{value!r} is in the generator's vocabulary"
        assert not re.search(rf"(?<![\w-]){re.escape(value.casefold())}(?![\w-])", said), \
            f"{value!r} appears in train/eval"


def test_generator_cannot_write_these_requests(heldout, generated):
    """No held-out message is in train/eval, and every row has a word the generator never writes."""
    generated_msgs = {m for row in generated for m in user_messages(row)}
    reachable = _generator_words()
    for i, row in enumerate(heldout, 1):
        assert not generated_msgs.intersection(user_messages(row)), i
        words = set(re.findall(r"[a-z]+", " ".join(user_messages(row))))
        assert words - reachable, (i, "every word of this row is one the generator writes")


def test_the_generator_vocabulary_check_can_fail():
    """The reachability check itself: generated requests are all reachable, so it does tell them apart."""
    reachable = _generator_words()
    from llmops_ft.taskapi.generate import generate

    train, _ = generate(seed=11, n_train=200, n_eval=1)
    unreachable = [m for row in train for m in user_messages(row) if set(re.findall(r"[a-z]+", m)) - reachable]
    assert unreachable == []
