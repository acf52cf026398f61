"""The Task API example: schema, generator determinism, committed files, split disjointness, date arithmetic."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from llmops_ft.errors import UserError
from llmops_ft.io import read_jsonl
from llmops_ft.taskapi import command, vocab
from llmops_ft.taskapi.command import render_jsonl
from llmops_ft.taskapi.generate import generate, user_messages
from llmops_ft.taskapi.schema import ACTIONS, encode_call, load_schema, schema_errors

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "task_api"
SYSTEM = re.compile(r"^Today is (\d{4}-\d{2}-\d{2})\. Reply with one Task API call as JSON; "
                    r"use clarify if a detail is missing\.$")
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


@pytest.fixture(scope="module")
def committed() -> dict[str, list[dict]]:
    return {split: list(read_jsonl(EXAMPLE / f"{split}.jsonl")) for split in ("train", "eval")}


def _today(row: dict) -> dt.date:
    match = SYSTEM.match(row["messages"][0]["content"])
    assert match, row["messages"][0]
    return dt.date.fromisoformat(match.group(1))  # no weekday: Ollama's currentDate gives the date only


def _calls(row: dict) -> list[dict]:
    return [json.loads(m["content"]) for m in row["messages"] if m["role"] == "assistant"]


def test_schema_is_valid_and_strict():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(load_schema())
    assert schema_errors({"action": "create", "title": "Write Q3 report", "due": "2026-03-06"}) == []
    assert schema_errors({"action": "list"}) == []
    assert schema_errors({"action": "create"}) == ["(call): 'title' is a required property"]
    assert schema_errors({"action": "delete", "id": 3, "title": "x"}) == [
        "(call): Additional properties are not allowed ('title' was unexpected)"]
    bad_day = {"action": "create", "title": "x", "due": "2026-02-30"}
    assert schema_errors(bad_day) == ["due: '2026-02-30' is not a 'date'"]
    assert schema_errors({"action": "update", "id": 4}) != []  # an update must change something
    assert schema_errors({"action": "assign", "id": 4}) == ["(call): 'assignee' is a required property"]
    assert schema_errors({"action": "complete", "id": True}) != []  # JSON true is not an id
    assert schema_errors({"action": "archive", "id": 1}) != []
    assert schema_errors({"action": "create", "title": "x", "tags": ["bug", "bug"]}) != []


def test_sizes_and_every_action_in_both_splits(committed):
    assert len(committed["train"]) >= 500 and len(committed["eval"]) >= 100
    for rows in committed.values():
        finals = Counter(_calls(row)[-1]["action"] for row in rows)
        assert set(finals) == set(ACTIONS)
        assert any(len(_calls(row)) == 2 for row in rows), "some conversations ask, then answer"


def test_every_target_is_a_valid_canonical_call(committed):
    for split, rows in committed.items():
        for i, row in enumerate(rows, 1):
            roles = [m["role"] for m in row["messages"]]
            assert roles[0] == "system" and roles[1:] == ["user", "assistant"] * (len(roles) // 2), (split, i)
            _today(row)
            for m in row["messages"][2::2]:
                call = json.loads(m["content"])
                assert schema_errors(call) == [], (split, i, call)
                assert m["content"] == encode_call(call) and m["content"].startswith('{"action":"'), (split, i)
            first = _calls(row)[0]
            if len(roles) > 3:  # a second turn only follows a clarifying question
                assert first["action"] == "clarify", (split, i)


def test_values_are_copied_from_the_user_not_invented(committed):
    """Every string the call carries (title, name, project, tags, comment) is in the user's words."""
    checked = 0
    for rows in committed.values():
        for row in rows:
            said = " ".join(m["content"] for m in row["messages"] if m["role"] == "user")
            call = _calls(row)[-1]
            for key in ("title", "assignee", "project", "text", "tag"):
                if key in call:
                    assert call[key] in said, (key, call, said)
                    checked += 1
            for tag in call.get("tags", []):
                assert tag in said, (tag, said)
    assert checked > 500


def test_eval_is_disjoint_from_train_and_holds_out_titles(committed):
    train_msgs = {m for row in committed["train"] for m in user_messages(row)}
    eval_msgs = [m for row in committed["eval"] for m in user_messages(row)]
    assert not train_msgs.intersection(eval_msgs)
    held = set(vocab.held_out(vocab.TITLES))
    train_titles = {c.get("title") for row in committed["train"] for c in _calls(row)}
    eval_titles = {c.get("title") for row in committed["eval"] for c in _calls(row)}
    assert not held & train_titles  # held-out titles never reach training
    assert len(held & eval_titles) >= 5


def _expected_date(phrase: str, today: dt.date) -> dt.date | None:
    """An independent reading of the documented date rules for the unambiguous phrase kinds."""
    if phrase == "the day after tomorrow":
        return today + dt.timedelta(days=2)
    if phrase in ("tomorrow", "tmrw"):
        return today + dt.timedelta(days=1)
    if m := re.fullmatch(r"(?:in )?(\w+) (day|week)s?(?: from now)?", phrase):
        n = 1 if m.group(1) == "a" else NUMBERS.index(m.group(1)) if m.group(1) in NUMBERS else int(m.group(1))
        return today + dt.timedelta(days=n * (7 if m.group(2) == "week" else 1))
    if phrase in ("today", "tonight", "end of day today"):
        return today
    if m := WEEKDAY_DATE.fullmatch(phrase):
        day = _expected_date(m.group("rest"), today)
        assert day is not None and day.strftime("%A").startswith(m.group("wd")), (phrase, today, day)
        return day
    if m := re.fullmatch(r"(?:on )?(?:the )?(\d+)(?:st|nd|rd|th)", phrase):
        day = today
        while day.day != int(m.group(1)):
            day += dt.timedelta(days=1)
        return day
    if m := re.fullmatch(rf"(?:next |this )?({'|'.join(WEEKDAYS)})", phrase.lower()):
        ahead = (WEEKDAYS.index(m.group(1)) - today.weekday()) % 7 or 7
        return today + dt.timedelta(days=ahead)
    if phrase in ("end of month", "the end of the month", "end of this month"):
        nxt = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return nxt - dt.timedelta(days=1)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", phrase):
        return dt.date.fromisoformat(phrase)
    if m := MONTH_DAY.fullmatch(phrase):
        month = next(i for i, name in enumerate(MONTHS, 1) if name.startswith(m.group("m1") or m.group("m2")))
        day = int(m.group("d1") or m.group("d2"))
        this_year = dt.date(today.year, month, day) if (month, day) != (2, 29) else None
        return this_year if this_year and this_year >= today else dt.date(today.year + 1, month, day)
    return None


NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
MONTH_DAY = re.compile(r"(?P<m1>[A-Z][a-z]+) (?P<d1>\d+)(?:st|nd|rd|th)?"
                       r"|(?:the )?(?P<d2>\d+)(?:st|nd|rd|th)? (?:of )?(?P<m2>[A-Z][a-z]+)")
# "Friday the 6th", "Friday 6th", "Fri March 6", "Friday, March 6": a weekday beside the day it names
WEEKDAY_DATE = re.compile(r"(?P<wd>[A-Z][a-z]+day|Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?: the |, | )"
                          r"(?P<rest>\d+(?:st|nd|rd|th)|[A-Z][a-z]+ \d+)")
DUE_PHRASE = re.compile(
    r"(?:due date|deadline|due|by|to|until|for|than|before) "
    r"(the day after tomorrow|today|tonight|end of day today|tomorrow|tmrw|"
    r"(?:in )?(?:\d+|a|one|two|three|four|five|six|seven|eight|nine|ten) (?:days?|weeks?)(?: from now)?|"
    r"[A-Z][a-z]+day the \d+(?:st|nd|rd|th)|[A-Z][a-z]+day \d+(?:st|nd|rd|th)|[A-Z][a-z]+day, [A-Z][a-z]+ \d+|"
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]+ \d+|"
    r"(?:next |this )?[A-Z][a-z]+day|end of month|"
    r"the end of the month|end of this month|\d{4}-\d{2}-\d{2}|[A-Z][a-z]+ \d+(?:st|nd|rd|th)?|"
    r"(?:the )?\d+(?:st|nd|rd|th)? (?:of )?[A-Z][a-z]+|(?:on )?the \d+(?:st|nd|rd|th))(?=$|[ ,.;!])"
)


def test_relative_dates_follow_the_documented_rules(committed):
    checked = Counter()
    for rows in committed.values():
        for row in rows:
            call, text = _calls(row)[-1], row["messages"][1]["content"]
            dates = [call[k] for k in ("due", "due_before") if k in call]
            phrases = DUE_PHRASE.findall(text)
            if len(dates) != 1 or len(phrases) != 1 or "due_after" in call:
                continue
            expected = _expected_date(phrases[0], _today(row))
            if expected is not None:
                assert dates[0] == expected.isoformat(), (text, call, _today(row))
                checked[phrases[0]] += 1
    assert sum(checked.values()) >= 150, checked


def test_generate_is_deterministic_and_seeded():
    a = generate(seed=3, n_train=60, n_eval=20)
    b = generate(seed=3, n_train=60, n_eval=20)
    c = generate(seed=4, n_train=60, n_eval=20)
    assert render_jsonl(a[0]) == render_jsonl(b[0]) and render_jsonl(a[1]) == render_jsonl(b[1])
    assert render_jsonl(a[0]) != render_jsonl(c[0])
    assert len({_today(row) for row in a[0]}) > 40  # the reference date varies per conversation


def test_committed_files_equal_regeneration(tmp_path):
    script = EXAMPLE / "generate.py"
    done = subprocess.run([sys.executable, str(script), "--out", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == ["train.jsonl", "eval.jsonl"]
    for name in ("train.jsonl", "eval.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLE / name).read_bytes(), f"regenerate {name}"


def test_generator_keeps_other_files_unless_forced(tmp_path):
    argv = ["--out", str(tmp_path), "--n-train", "20", "--n-eval", "5"]
    (tmp_path / "train.jsonl").write_text("mine\n")
    refused = subprocess.run([sys.executable, str(EXAMPLE / "generate.py"), *argv],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "train.jsonl" in refused.stderr and "--force" in refused.stderr
    assert (tmp_path / "train.jsonl").read_text() == "mine\n"
    assert not (tmp_path / "eval.jsonl").exists()  # nothing half-written

    parser = argparse.ArgumentParser()
    command.configure(parser)
    forced = command.run(parser.parse_args([*argv, "--force"]))
    assert forced.data["written"] == ["train.jsonl", "eval.jsonl"]
    assert len((tmp_path / "train.jsonl").read_text().splitlines()) == 20
    again = command.run(parser.parse_args(argv))
    assert again.data["written"] == [] and again.data["unchanged"] == ["train.jsonl", "eval.jsonl"]
    with pytest.raises(UserError, match="at least 1"):
        command.run(parser.parse_args([*argv, "--n-eval", "0"]))


@pytest.mark.parametrize("seed", [0, 1, 2, 99])
def test_other_seeds_give_valid_disjoint_splits(seed):
    train, evals = generate(seed=seed, n_train=120, n_eval=40)
    assert (len(train), len(evals)) == (120, 40)
    train_msgs = {m for row in train for m in user_messages(row)}
    assert not train_msgs.intersection(m for row in evals for m in user_messages(row))
    for row in train + evals:
        for call in _calls(row):
            assert schema_errors(call) == []
