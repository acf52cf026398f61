"""Scoring of Task API predictions on hand-made cases: every number is worked out by hand in the comments."""

from __future__ import annotations

import pytest
from llmops_ft.errors import UserError
from llmops_ft.taskapi.score import field_pairs, parse_call, score_all, score_example

TARGET = '{"action":"create","title":"Write Q3 report","project":"finance","due":"2026-03-06","priority":"high"}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('  {"action":"delete","id":3}\n', {"action": "delete", "id": 3}),
        ('```json\n{"action":"delete","id":3}\n```', {"action": "delete", "id": 3}),
        ('```\n{"action":"delete","id":3}```', {"action": "delete", "id": 3}),
        ('{"action":"delete","id":3} and more', None),  # trailing text
        ('{"action":"delete","id":3', None),  # cut off
        ('{"action":"delete","action":"create"}', None),  # duplicate key
        ('{"action":"delete","id":NaN}', None),
        ('["delete", 3]', None),  # not an object
        ("Sure! Here is the call.", None),
        ("", None),
    ],
)
def test_parse_call(text, expected):
    assert parse_call(text) == expected


def test_exact_prediction_scores_one():
    s = score_example(" " + TARGET + "\n", TARGET)
    assert (s["valid_json"], s["schema_valid"], s["action_match"], s["exact_match"]) == (True, True, True, True)
    assert (s["tp"], s["fp"], s["fn"], s["f1"]) == (4, 0, 0, 1.0)


def test_key_order_does_not_matter_but_json_types_do():
    reordered = '{"priority":"high","due":"2026-03-06","project":"finance","title":"Write Q3 report","action":"create"}'
    assert score_example(reordered, TARGET)["exact_match"]
    as_bool = score_example('{"action":"complete","id":true}', '{"action":"complete","id":1}')
    assert not as_bool["exact_match"] and not as_bool["schema_valid"] and as_bool["fn"] == 1


def test_code_fenced_prediction_is_valid():
    s = score_example("```json\n" + TARGET + "\n```", TARGET)
    assert s["valid_json"] and s["exact_match"]


def test_missing_field():
    # 3 of the 4 target fields, nothing extra: precision 1, recall 3/4, F1 = 2*0.75/1.75 = 6/7
    pred = '{"action":"create","title":"Write Q3 report","project":"finance","priority":"high"}'
    s = score_example(pred, TARGET)
    assert s["schema_valid"] and s["action_match"] and not s["exact_match"]
    assert (s["tp"], s["fp"], s["fn"]) == (3, 0, 1)
    assert s["precision"] == 1.0 and s["recall"] == 0.75 and s["f1"] == pytest.approx(6 / 7)


def test_wrong_value_counts_as_one_extra_and_one_missing():
    pred = TARGET.replace("2026-03-06", "2026-03-07")
    s = score_example(pred, TARGET)
    assert (s["tp"], s["fp"], s["fn"]) == (3, 1, 1) and s["f1"] == pytest.approx(0.75)


def test_wrong_action():
    s = score_example('{"action":"delete","id":12}', '{"action":"complete","id":12}')
    assert s["valid_json"] and s["schema_valid"] and not s["action_match"] and not s["exact_match"]
    assert (s["pred_action"], s["target_action"]) == ("delete", "complete")
    assert s["f1"] == 1.0  # the id is right; the action is scored on its own


def test_invalid_json():
    s = score_example('{"action": "create", "title": ', TARGET)
    assert not s["valid_json"] and not s["schema_valid"] and not s["action_match"] and not s["exact_match"]
    assert (s["tp"], s["fp"], s["fn"], s["precision"], s["recall"], s["f1"]) == (0, 0, 4, 0.0, 0.0, 0.0)


def test_valid_json_that_breaks_the_schema():
    s = score_example('{"action":"create","title":"Write Q3 report","colour":"red"}', TARGET)
    assert s["valid_json"] and not s["schema_valid"] and s["action_match"]
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 3)


def test_tags_earn_partial_credit():
    assert sorted(field_pairs({"action": "create", "title": "x", "tags": ["bug", "ux"]})) == [
        ("tags", '"bug"'), ("tags", '"ux"'), ("title", '"x"')]
    s = score_example('{"action":"create","title":"x","tags":["bug","data"]}',
                      '{"action":"create","title":"x","tags":["bug","ux"]}')
    assert (s["tp"], s["fp"], s["fn"]) == (2, 1, 1)


def test_no_fields_on_either_side_is_perfect():
    s = score_example('{"action":"list"}', '{"action":"list"}')
    assert s["exact_match"] and (s["precision"], s["recall"], s["f1"]) == (1.0, 1.0, 1.0)


def test_bad_target_is_a_user_error():
    with pytest.raises(UserError, match="target"):
        score_example(TARGET, '{"action":"create"}')


def test_score_all_aggregates_micro_averaged():
    targets = [TARGET, '{"action":"complete","id":12}', '{"action":"list","project":"hiring"}',
               '{"action":"clarify","question":"Which task should I delete? Please give its id."}']
    preds = [
        TARGET,  # exact: tp 4
        '{"action":"delete","id":12}',  # wrong action, id right: tp 1
        "```json\n{\"action\":\"list\",\"project\":\"sales\"}\n```",  # fenced, wrong project: fp 1, fn 1
        "I am not sure",  # invalid: fn 1
    ]
    r = score_all(preds, targets)
    assert r["n"] == 4
    assert r["valid_json_rate"] == 0.75 and r["schema_valid_rate"] == 0.75
    assert r["action_accuracy"] == 0.5 and r["exact_match_rate"] == 0.25
    # micro: tp 5, fp 1, fn 2 -> precision 5/6, recall 5/7, F1 = 10/13
    assert r["field_precision"] == pytest.approx(5 / 6) and r["field_recall"] == pytest.approx(5 / 7)
    assert r["field_f1"] == pytest.approx(10 / 13)
    assert r["per_action"]["complete"] == {"n": 1, "action_accuracy": 0.0, "exact_match_rate": 0.0}
    assert r["per_action"]["list"] == {"n": 1, "action_accuracy": 1.0, "exact_match_rate": 0.0}
    assert r["n_disagreements"] == 3
    assert [d["index"] for d in r["disagreements"]] == [1, 2, 3]
    assert [d["reason"] for d in r["disagreements"]] == [
        "action 'delete' instead of 'complete'", "fields differ (1 wrong or extra, 1 missing)", "invalid JSON"]
    assert len(score_all(preds, targets, max_disagreements=1)["disagreements"]) == 1


def test_score_all_rejects_mismatched_lengths_and_empty_input():
    with pytest.raises(UserError, match="2 predictions for 1 targets"):
        score_all([TARGET, TARGET], [TARGET])
    with pytest.raises(UserError, match="nothing to score"):
        score_all([], [])


def test_field_errors_count_each_wrong_missing_or_extra_key():
    from llmops_ft.taskapi.score import score_all, wrong_fields

    target = {"action": "create", "title": "Pay rent", "due": "2026-12-04", "priority": "high"}
    assert wrong_fields({"action": "create", "title": "Pay rent", "due": "2026-12-05"}, target) == ["due", "priority"]
    assert wrong_fields({**target, "tags": ["home"]}, target) == ["tags"]
    assert wrong_fields(None, target) == ["(not JSON)"]
    scores = score_all(
        ['{"action":"create","title":"Pay rent","due":"2026-12-05","priority":"high"}', "not json",
         '{"action":"list","project":"ops"}'],
        ['{"action":"create","title":"Pay rent","due":"2026-12-04","priority":"high"}', '{"action":"list"}',
         '{"action":"list","project":"ops"}'])
    assert scores["field_errors"] == {"(not JSON)": 1, "due": 1}
