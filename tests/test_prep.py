"""prep: reading, format detection, normalisation, rejects, dedupe, split, and the one-line errors.

Real datasets come from ../shared/datasets (read there); malformed inputs are written here in tmp dirs.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest
from llmops_ft import cli
from llmops_ft.data import prepare, readers
from llmops_ft.data.formats import validator
from llmops_ft.errors import UserError
from llmops_ft.io import read_jsonl


def write_jsonl(path: Path, rows: list, newline: str = "\n") -> Path:
    path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + newline for r in rows).encode("utf-8"))
    return path


def outputs(out: Path) -> dict[str, list]:
    return {name: list(read_jsonl(out / f"{name}.jsonl")) for name in ("train", "val", "rejects", "duplicates")}


def chat(question: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(["prep", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_counts(report: dict) -> None:
    assert report["total"] == report["kept"] + report["rejected"] + report["duplicates"]
    assert report["kept"] == report["train"] + report["val"]


# --- the real public datasets -------------------------------------------------------------------------------


def test_alpaca_demo_is_detected_normalised_and_deduped(shared, tmp_path):
    source = shared / "datasets" / "alpaca_en_demo.json"
    report = prepare(source, tmp_path / "out", seed=7)
    raw = json.loads(source.read_text(encoding="utf-8"))
    assert report["format"] == "alpaca" and not report["format_given"]
    assert report["detected_from"] == ["instruction", "input", "output"]
    assert report["total"] == len(raw) == 999
    assert_counts(report)
    assert report["rejected"] == 0
    files = outputs(tmp_path / "out")
    assert len(files["train"]) == report["train"] and len(files["val"]) == report["val"]
    assert 0.05 < report["val"] / report["kept"] < 0.15
    check = validator("prepared")
    for row in files["train"] + files["val"]:
        check.validate(row)
    # Every listed duplicate really repeats the row it names (JSON array elements are listed by start line).
    starts = [r.line for r in readers._json_array_records(source)]
    by_line = dict(zip(starts, raw, strict=True))
    assert len(files["duplicates"]) == report["duplicates"] > 0
    for dup in files["duplicates"]:
        a, b = by_line[dup["line"]], by_line[dup["duplicate_of"]["line"]]
        assert dup["line"] > dup["duplicate_of"]["line"]
        assert [" ".join(a[k].split()) for k in sorted(a)] == [" ".join(b[k].split()) for k in sorted(b)]
    # The first row, normalised: instruction (+ input) as the user turn, output as the assistant's.
    first = raw[0]
    kept = {r["messages"][0]["content"]: r for r in files["train"] + files["val"]}
    assert kept[first["instruction"]]["messages"] == [
        {"role": "user", "content": first["instruction"]},
        {"role": "assistant", "content": first["output"]},
    ]


def test_c4_text_rows_are_kept_byte_for_byte(shared, tmp_path):
    source = shared / "datasets" / "c4_demo.jsonl"
    report = prepare(source, tmp_path / "out")
    assert (report["format"], report["detected_from"], report["total"]) == ("text", ["text"], 300)
    assert_counts(report)
    files = outputs(tmp_path / "out")
    written = sorted(r["text"] for r in files["train"] + files["val"])
    assert written == sorted({r["text"] for r in read_jsonl(source)})


def test_json_array_reader_across_chunk_boundaries(shared, monkeypatch):
    source = shared / "datasets" / "alpaca_en_demo.json"
    monkeypatch.setattr(readers, "CHUNK", 97)  # forces re-reads mid-string, mid-escape and mid-UTF-8 sequence
    rows = [r.value for r in readers._json_array_records(source)]
    assert rows == json.loads(source.read_text(encoding="utf-8"))


# --- split ----------------------------------------------------------------------------------------------------


def test_split_is_deterministic_for_a_seed_and_independent_of_order(tmp_path):
    rows = [chat(f"question {i}", f"answer {i}") for i in range(400)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    write_jsonl(tmp_path / "b.jsonl", rows[::-1])
    prepare(tmp_path / "a.jsonl", tmp_path / "a1", seed=1)
    prepare(tmp_path / "a.jsonl", tmp_path / "a2", seed=1)
    prepare(tmp_path / "b.jsonl", tmp_path / "b1", seed=1)
    prepare(tmp_path / "a.jsonl", tmp_path / "a3", seed=2)
    assert (tmp_path / "a1/val.jsonl").read_bytes() == (tmp_path / "a2/val.jsonl").read_bytes()
    assert (tmp_path / "a1/train.jsonl").read_bytes() == (tmp_path / "a2/train.jsonl").read_bytes()

    def val_set(name: str) -> set[str]:
        return {r["messages"][0]["content"] for r in read_jsonl(tmp_path / name / "val.jsonl")}

    assert val_set("a1") == val_set("b1")
    assert val_set("a1") != val_set("a3")
    assert 20 < len(val_set("a1")) < 60


def test_small_dataset_still_gets_a_val_row(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat(f"q{i}", f"a{i}") for i in range(3)])
    for seed in range(10):
        report = prepare(tmp_path / "d.jsonl", tmp_path / f"o{seed}", seed=seed, val_fraction=0.1)
        assert (report["train"], report["val"]) == (2, 1)
        files = outputs(tmp_path / f"o{seed}")
        assert len(files["train"]) == 2 and len(files["val"]) == 1
    report = prepare(tmp_path / "d.jsonl", tmp_path / "none", val_fraction=0.0)
    assert (report["train"], report["val"]) == (3, 0)


# --- rows that are rejected, kept or deduplicated --------------------------------------------------------------


def test_malformed_rows_become_rejects_with_line_and_reason(tmp_path):
    long_answer = "x" * 100_000
    lines = [
        json.dumps(chat("hello", "world")),  # 1 kept
        '{"messages": [{"role": "user", "content": "broken"',  # 2 broken JSON
        json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]}),  # 3
        json.dumps(chat("empty answer", "   ")),  # 4 empty answer
        json.dumps(chat("hello", "world")).replace('"world"', '"world "'),  # 5 duplicate of 1 (whitespace)
        json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "part one, "},
                                                                {"type": "text", "text": "part two"}]},
                                 {"role": "assistant", "content": "parts"}]}),  # 6 content parts
        json.dumps(chat("long", long_answer)),  # 7 a 100k-character row
        "",  # 8 blank line: not a row
        json.dumps(["not", "an", "object"]),  # 9
        json.dumps({"messages": [{"role": "user", "content": "only a question"}]}),  # 10 no assistant
        json.dumps({"messages": [{"role": "user", "content": "x"},
                                 {"role": "assistant", "content": [{"type": "image_url", "image_url": "u"}]}]}),
    ]
    data = "\n".join(lines).encode("utf-8") + b"\n" + b'{"messages": "\xff\xfe"}\n'  # 12 invalid UTF-8
    (tmp_path / "m.jsonl").write_bytes(data)
    report = prepare(tmp_path / "m.jsonl", tmp_path / "out")
    assert_counts(report)
    assert (report["total"], report["kept"], report["rejected"], report["duplicates"]) == (11, 3, 7, 1)
    assert report["blank_lines"] == 1
    files = outputs(tmp_path / "out")
    reasons = {r["line"]: r["reason"] for r in files["rejects"]}
    assert sorted(reasons) == [2, 3, 4, 9, 10, 11, 12]
    assert reasons[2].startswith("invalid JSON")
    assert reasons[3].startswith("messages[1].role: 'bot' is not one of")
    assert reasons[4] == "messages[1].content: empty assistant answer"
    assert "not a JSON object" in reasons[9]
    assert reasons[10] == "messages: no assistant turn to learn from"
    assert reasons[11] == "messages[1].content[0].type: 'text' was expected"  # image parts are not text
    assert reasons[12].startswith("not valid UTF-8")
    assert all(r["source"] == str(tmp_path / "m.jsonl") for r in files["rejects"])
    rejected_rows = {r["line"]: r["row"] for r in files["rejects"]}
    assert rejected_rows[3]["messages"][1]["role"] == "bot"  # the original row, as it was
    assert files["duplicates"] == [{"source": str(tmp_path / "m.jsonl"), "line": 5,
                                    "duplicate_of": {"source": str(tmp_path / "m.jsonl"), "line": 1}}]
    kept = {r["messages"][0]["content"]: r["messages"] for r in files["train"] + files["val"]}
    assert kept["hello"][1]["content"] == "world"  # the first occurrence is kept with its own text
    assert kept["part one, part two"][1]["content"] == "parts"
    assert kept["long"][1]["content"] == long_answer


def test_unicode_bom_and_crlf_are_preserved_byte_for_byte(tmp_path):
    texts = [
        "emoji 👩‍👩‍👧 🚀 and a flag 🇸🇪",
        "RTL: שלום עולם / مرحبا بالعالم",
        "NBSP\u00a0here, narrow\u202fone, ZWJ\u200d, line sep\u2028",
        "combining: e\u0301 vs \u00e9, n\u0303, Z\u0335\u0321a\u0336lgo",
        "tabs\tand\r\nwindows newlines\r\n  kept  ",
    ]
    rows = [chat(t, t[::-1] + "!") for t in texts]
    path = tmp_path / "u.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + "".join(json.dumps(r, ensure_ascii=False) + "\r\n" for r in rows).encode())
    report = prepare(path, tmp_path / "out", val_fraction=0.0)
    assert (report["kept"], report["rejected"]) == (5, 0)
    written = [r["messages"] for r in read_jsonl(tmp_path / "out" / "train.jsonl")]
    assert written == [r["messages"] for r in rows]
    raw = (tmp_path / "out" / "train.jsonl").read_bytes()
    for text in texts:
        assert json.dumps(text, ensure_ascii=False).encode("utf-8") in raw


def test_sharegpt_with_system_and_function_calls(tmp_path):
    row = {
        "conversations": [
            {"from": "system", "value": "You manage tasks."},
            {"from": "human", "value": "Create a task 'pay rent'."},
            {"from": "function_call", "value": json.dumps({"name": "create", "arguments": {"title": "pay rent"}})},
            {"from": "observation", "value": '{"id": 7}'},
            {"from": "gpt", "value": "Created task 7."},
        ],
        "tools": json.dumps([{"name": "create", "parameters": {"type": "object"}}]),
        "id": "abc",
    }
    bad = {"conversations": [{"from": "human", "value": "q"}, {"from": "robot", "value": "a"}]}
    write_jsonl(tmp_path / "s.jsonl", [row, bad])
    report = prepare(tmp_path / "s.jsonl", tmp_path / "out", val_fraction=0.0)
    assert (report["format"], report["detected_from"]) == ("sharegpt", ["conversations", "tools"])
    assert report["ignored_fields"] == {"id": 1}
    out = outputs(tmp_path / "out")
    assert out["train"] == [{
        "messages": [
            {"role": "system", "content": "You manage tasks."},
            {"role": "user", "content": "Create a task 'pay rent'."},
            {"role": "assistant", "content": "",
             "tool_calls": [{"type": "function", "function": {"name": "create", "arguments": {"title": "pay rent"}}}]},
            {"role": "tool", "content": '{"id": 7}'},
            {"role": "assistant", "content": "Created task 7."},
        ],
        "tools": [{"name": "create", "parameters": {"type": "object"}}],
    }]
    assert out["rejects"][0]["line"] == 2 and "conversations[1].from" in out["rejects"][0]["reason"]


def test_prompt_completion_plain_and_conversational(tmp_path):
    rows = [
        {"prompt": "2+2?", "completion": "4"},
        {"prompt": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "3+3?"}],
         "completion": [{"role": "assistant", "content": "6"}]},
        {"prompt": "no answer", "completion": ""},
    ]
    write_jsonl(tmp_path / "p.jsonl", rows)
    report = prepare(tmp_path / "p.jsonl", tmp_path / "out", val_fraction=0.0)
    assert (report["format"], report["kept"], report["rejected"]) == ("prompt-completion", 2, 1)
    out = outputs(tmp_path / "out")
    assert out["train"][0] == chat("2+2?", "4")
    assert out["train"][1]["messages"][0] == {"role": "system", "content": "Be terse."}
    assert out["rejects"][0]["reason"] == "completion: is empty or only whitespace"


def test_csv_with_bom_crlf_quoted_newlines_and_a_short_row(tmp_path):
    csv_text = (
        "instruction,input,output\r\n"
        'Summarise,"line one\r\nline two",Two lines.\r\n'
        "Translate to French,cat,chat\r\n"
        "Only two,fields\r\n"
        'Quote "this",,"She said ""hi"""\r\n'
    )
    (tmp_path / "d.csv").write_bytes(codecs.BOM_UTF8 + csv_text.encode("utf-8"))
    report = prepare(tmp_path / "d.csv", tmp_path / "out", val_fraction=0.0)
    assert (report["format"], report["kept"], report["rejected"]) == ("alpaca", 3, 1)
    out = outputs(tmp_path / "out")
    assert out["train"][0]["messages"][0]["content"] == "Summarise\n\nline one\r\nline two"
    assert out["train"][2]["messages"] == [{"role": "user", "content": 'Quote "this"'},
                                           {"role": "assistant", "content": 'She said "hi"'}]
    assert out["rejects"][0]["line"] == 5 and "2 fields but the header has 3" in out["rejects"][0]["reason"]


def test_parquet_and_folder_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    rows = [chat(f"q{i}", f"a{i}") for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), folder / "sub" / "part.parquet")
    write_jsonl(folder / "more.jsonl", [chat("q9", "a9")])
    (folder / "README.md").write_text("notes", encoding="utf-8")
    report = prepare(folder, tmp_path / "out", val_fraction=0.0)
    assert (report["format"], report["kept"]) == ("messages", 6)
    assert [f["records"] for f in report["inputs"]] == [1, 5]  # sorted: more.jsonl, sub/part.parquet
    assert report["skipped_files"] == [{"source": str(folder / "README.md"), "reason": "unsupported extension '.md'"}]
    assert outputs(tmp_path / "out")["train"][1:] == rows


def test_no_dedupe_keeps_duplicates(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), chat("q", "a"), {"text": "t"}])
    with pytest.raises(UserError, match="mixed formats"):
        prepare(tmp_path / "d.jsonl", tmp_path / "o1")
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), chat("q", "a")])
    assert prepare(tmp_path / "d.jsonl", tmp_path / "o2", dedupe=False)["kept"] == 2
    assert prepare(tmp_path / "d.jsonl", tmp_path / "o3")["kept"] == 1


def test_memory_stays_bounded_on_a_large_file(tmp_path):
    import tracemalloc

    answer = "lorem-ipsum-" * 2000  # ~24 KB a row, ~24 MB a file (few words: tracemalloc slows str.split)
    with open(tmp_path / "big.jsonl", "w", encoding="utf-8") as fh:
        for i in range(1000):
            fh.write(json.dumps(chat(f"question {i}", answer + str(i))) + "\n")
    rows = [{"instruction": f"q{i}", "input": "", "output": answer + str(i)} for i in range(1000)]
    (tmp_path / "big.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    del rows
    for name in ("big.jsonl", "big.json"):
        tracemalloc.start()
        report = prepare(tmp_path / name, tmp_path / f"out-{name}")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert report["kept"] == 1000
        size = (tmp_path / name).stat().st_size
        assert size > 20 * 2**20 and peak < 6 * 2**20, f"{name}: peak {peak / 2**20:.1f} MiB for {size} bytes"


# --- inputs that are unusable as a whole: one line, file and line, exit 2, nothing written ------------------


def unusable_inputs(tmp: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (input, expected location prefix, expected message part)."""
    cases: dict[str, tuple[Path, str, str]] = {}

    def case(name: str, filename: str, data: bytes, where: str, message: str) -> None:
        path = tmp / filename
        path.write_bytes(data)
        cases[name] = (path, f"{path}{where}", message)

    case("binary", "bin.jsonl", bytes(range(256)) * 10, ":1:", "not a text file")
    case("empty", "empty.jsonl", b"", ":", "empty file")
    case("whitespace", "ws.json", b" \n\r\n ", ":", "empty file")
    case("empty array", "arr.json", b"[ ]", ":", "empty: no rows")
    case("mixed", "mixed.jsonl", (json.dumps(chat("q", "a")) + "\n" + json.dumps({"text": "t"}) + "\n").encode(),
         ":2:", "mixed formats")
    case("preference", "pref.jsonl", json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}).encode(),
         ":1: chosen:", "preference data")
    case("no valid row", "bad.jsonl", b'{"messages": []}\n{"messages": 3}\n', ":1:", "no valid row")
    case("unknown format", "unk.jsonl", b'{"question": "q", "answer": "a"}\n', ":1:", "matches no known format")
    case("csv missing column", "miss.csv", b"instruction,input\nq,i\nq2,i2\n", ":2:", "'output' is a required")
    case("utf-8 in array", "u.json", b'[\n{"text": "ok"},\n{"text": "\xff"}\n]', ":3:", "not valid UTF-8")
    case("broken array", "b.json", b'[\n{"text": "ok"},\n{"text": oops}\n]', ":3:", "invalid JSON")
    case("json object", "obj.json", b'{\n "text": "a"\n}\n', ":1:", "not a JSON array")
    case("unsupported", "data.txt", b"hello", ":", "unsupported file type")
    case("csv utf-8", "u.csv", b"text\nfine\n\xff\xfe\n", ":3:", "not valid UTF-8")
    cases["missing"] = (tmp / "nope.jsonl", f"{tmp / 'nope.jsonl'}:", "no such file")
    cases["hub offline"] = (Path("someone/some-dataset"), "someone/some-dataset:", "HF_HUB_OFFLINE")
    return cases


def test_unusable_inputs_give_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, (path, where, message) in unusable_inputs(tmp_path).items():
        out = tmp_path / f"out-{name.replace(' ', '-')}"
        code, stdout, stderr = run_cli([path, "--out", out], capsys)
        assert code == 2, name
        assert stderr.count("\n") == 1 and "Traceback" not in stderr, (name, stderr)
        assert stderr.startswith(f"prep: error: {where}"), (name, stderr)
        assert message in stderr, (name, stderr)
        assert not out.exists(), name


def test_strict_fails_on_a_reject_and_existing_output_needs_force(tmp_path, capsys):
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), chat("q2", "")])
    code, _, err = run_cli([tmp_path / "d.jsonl", "--out", tmp_path / "o", "--strict"], capsys)
    assert code == 2 and f"{tmp_path / 'd.jsonl'}:2: --strict: 1 of 2 rows rejected" in err
    code, out, _ = run_cli([tmp_path / "d.jsonl", "--out", tmp_path / "o", "--json"], capsys)
    result = json.loads(out)
    assert code == 0 and result["ok"] and (result["kept"], result["rejected"]) == (1, 1)
    before = (tmp_path / "o" / "report.json").read_bytes()
    code, _, err = run_cli([tmp_path / "d.jsonl", "--out", tmp_path / "o", "--seed", "5"], capsys)
    assert code == 2 and "output exists; pass --force" in err
    assert (tmp_path / "o" / "report.json").read_bytes() == before
    code, out, _ = run_cli([tmp_path / "d.jsonl", "--out", tmp_path / "o", "--seed", "5", "--force"], capsys)
    assert code == 0 and "1 rejected" in out and str(tmp_path / "o" / "rejects.jsonl") in out
    assert json.loads((tmp_path / "o" / "report.json").read_text())["seed"] == 5


def test_script_help_imports_nothing_heavy(repo):
    code = (
        "import sys, runpy; sys.argv = ['prep.py', '--help']\n"
        "try:\n    runpy.run_path('scripts/prep.py', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'jsonschema') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60)
    assert "--max-seq-length" in done.stdout and "rejects.jsonl" in done.stdout
    assert "HEAVY []" in done.stdout


def test_explicit_format_rejects_other_rows_instead_of_failing(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a"), {"text": "plain"}, {"prompt": "p", "completion": "c"}])
    report = prepare(tmp_path / "d.jsonl", tmp_path / "out", fmt="messages", val_fraction=0.0)
    assert (report["format"], report["format_given"], report["kept"], report["rejected"]) == ("messages", True, 1, 2)
    reasons = [r["reason"] for r in outputs(tmp_path / "out")["rejects"]]
    assert reasons == ["needs a 'messages' (or 'conversations') list of {role, content}"] * 2


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"fmt": "chatml"}, "--format"),
    ({"val_fraction": 1.0}, "--val-fraction"),
    ({"val_fraction": -0.1}, "--val-fraction"),
    ({"max_seq_length": 0}, "--max-seq-length"),
])
def test_bad_options_name_the_flag(tmp_path, kwargs, field):
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a")])
    with pytest.raises(UserError) as err:
        prepare(tmp_path / "d.jsonl", tmp_path / "out", **kwargs)
    assert err.value.field == field and not (tmp_path / "out").exists()
