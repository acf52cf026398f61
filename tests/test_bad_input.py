"""Bad input is one line naming file, line and field, never a traceback (issue 11): nesting depth, JSON arrays
with syntax errors (read in bounded memory by ijson), damaged or incomplete model and run folders, and model
ids that are mistyped or not reachable while the hub is offline. The fault campaigns (benchmarks/faults.py)
run the same classes with generated inputs; small runs of them are here too."""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from conftest import REPO
from llmops_ft.cli import main
from llmops_ft.data import readers
from llmops_ft.errors import UserError
from llmops_ft.io import MAX_JSON_DEPTH, json_lines, loads_bounded, read_jsonl

sys.path.insert(0, str(REPO / "benchmarks"))
import faults  # noqa: E402

DEEP = 200_000


def cli(capsys, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- nesting depth -----------------------------------------------------------------------------------------------


def test_a_line_nested_200000_deep_is_a_reject_with_its_line_not_a_recursion_error(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "also fine"}\n{"text": ' + nested(DEEP) + "}\n", encoding="utf-8")
    code, _ = cli(capsys, "prep", data, "--out", tmp_path / "out")
    assert code == 0
    rejects = list(read_jsonl(tmp_path / "out" / "rejects.jsonl"))
    assert [(r["line"], r["reason"]) for r in rejects] == [(3, f"invalid JSON: nested deeper than {MAX_JSON_DEPTH} "
                                                                "levels")]
    data.write_text('{"text": ' + nested(DEEP) + "}\n", encoding="utf-8")
    code, err = cli(capsys, "prep", data, "--out", tmp_path / "out2")
    assert code == 2 and error_line(err).startswith(f"prep: error: {data}:1: no valid row")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 5000])
def test_the_depth_limit_is_exact(depth):
    text = '{"text": ' + nested(depth - 1) + "}"  # the outer object is one level
    if depth <= MAX_JSON_DEPTH:
        assert loads_bounded(text) == json.loads(text)
    else:
        with pytest.raises(ValueError, match="nested deeper than"):
            loads_bounded(text)


def test_every_jsonl_reader_says_which_line_is_too_deep(tmp_path):
    from llmops_ft.data.examples import read_examples
    from llmops_ft.train.data import read_rows

    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "ok"}\n\n{"text": ' + nested(DEEP) + "}\n", encoding="utf-8")
    entries = list(json_lines(data))
    assert [(e.line, e.blank, bool(e.error)) for e in entries] == [(1, False, False), (2, True, False),
                                                                   (3, False, True)]
    for read in (lambda p: read_examples(p), lambda p: list(read_rows(p)), lambda p: list(read_jsonl(p))):
        with pytest.raises(UserError, match=rf"d.jsonl:3: invalid JSON: nested deeper than {MAX_JSON_DEPTH}"):
            read(data)


def test_a_csv_cell_nested_too_deep_is_a_reject(tmp_path, capsys):
    data = tmp_path / "in.csv"
    cell = nested(DEEP).replace('"', '""')
    data.write_text(f'messages,text\n"{cell}",\n,"plain row"\n', encoding="utf-8")
    assert cli(capsys, "prep", data, "--out", tmp_path / "out", "--format", "text")[0] == 0
    (reject,) = read_jsonl(tmp_path / "out" / "rejects.jsonl")
    assert reject["line"] == 2 and "nested deeper than" in reject["reason"]


# --- JSON arrays -------------------------------------------------------------------------------------------------


def test_a_syntax_error_in_a_json_array_names_its_line(tmp_path, capsys):
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(50)]
    text = json.dumps(rows, indent=2).splitlines()
    bad = 4 * 29 + 4  # the "output" line of element 29 (4 lines an element, after the "[")
    assert text[bad - 1].strip().startswith('"output"')
    text[bad - 1] = text[bad - 1].replace('"a29"', "a29")
    data = tmp_path / "in.json"
    data.write_text("\n".join(text), encoding="utf-8")
    code, err = cli(capsys, "prep", data, "--out", tmp_path / "out")
    assert code == 2 and error_line(err).startswith(f"prep: error: {data}:{bad}: invalid JSON")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("body", "line", "message"), [
    (b'[\n{"text": "a"},\n{"text": "b"}', 3, "the array is not closed"),
    (b'[\n{"text": "a"},\n{"text": "b"},\n]', 4, "invalid JSON"),
    (b'[\n{"text": "a"}\n] trailing', 3, "invalid JSON: trailing garbage"),
    (b'[\n{"text": "a"},\n{"text": ' + nested(DEEP).encode() + b"}\n]", 3, "nested deeper than"),
    (b'[\n{"text": "\xc3\x28"}\n]', 2, "not valid UTF-8"),
])
def test_broken_json_arrays_are_one_line_with_the_line(tmp_path, capsys, body, line, message):
    data = tmp_path / "in.json"
    data.write_bytes(body)
    code, err = cli(capsys, "prep", data, "--out", tmp_path / "out")
    assert code == 2
    shown = error_line(err)
    assert shown.startswith(f"prep: error: {data}:{line}: ") and message in shown, shown


def test_a_broken_array_fails_at_the_break_in_bounded_memory(tmp_path):
    """The old reader kept buffering the rest of the file before failing; ijson stops at the break."""
    data = tmp_path / "big.json"
    element = json.dumps({"instruction": "q", "output": "x" * 2000})
    with open(data, "w", encoding="utf-8") as fh:
        fh.write("[\n" + element + ",\n" + element.replace('"q"', "q") + ",\n")
        for _ in range(10_000):  # ~20 MB after the break
            fh.write(element + ",\n")
        fh.write(element + "\n]\n")
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"big.json:3: invalid JSON"):
        list(readers._json_array_records(data))
    seconds, peak = time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20 and seconds < 2, (peak, seconds)


def test_array_elements_keep_their_start_lines_and_values(tmp_path):
    rows = [{"text": "a"}, [1, 2], "s", 3.5, None, {"nested": {"x": [True]}}]
    data = tmp_path / "in.json"
    data.write_text("[\n" + ",\n".join(json.dumps(r, indent=1) for r in rows) + "\n]", encoding="utf-8")
    records = list(readers._json_array_records(data))
    assert [r.value for r in records] == rows
    assert [r.line for r in records] == [2, 5, 9, 10, 11, 12]


# --- damaged model and run folders -------------------------------------------------------------------------------


@pytest.fixture()
def model_copy(tiny_model_dir, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGES = {
    "config.json cut": (lambda m: _truncate(m / "config.json", 40), "config.json:"),
    "config.json a list": (lambda m: (m / "config.json").write_text("[]"), "config.json: expected a JSON object"),
    "config.json without model_type": (
        lambda m: (m / "config.json").write_text(json.dumps({"hidden_size": 64})), "config.json: model_type: missing"),
    "config.json hidden_size a string": (lambda m: (m / "config.json").write_text(
        (m / "config.json").read_text().replace('"hidden_size": 64', '"hidden_size": "x"')), "cannot load the model"),
    "safetensors cut": (lambda m: _truncate(m / "model.safetensors", 100_000), "model.safetensors: truncated"),
    "safetensors header junk": (lambda m: (m / "model.safetensors").write_bytes(b"\x10" + b"\x00" * 7 + b"{junk"),
                                "model.safetensors: not a complete safetensors file"),
    "pickle weights only": (lambda m: (m / "model.safetensors").rename(m / "pytorch_model.bin"),
                            "holds only pickle weights (pytorch_model.bin)"),
    "tokenizer.json cut": (lambda m: _truncate(m / "tokenizer.json", 1000), "tokenizer.json:"),
    "tokenizer.json wrong field": (lambda m: (m / "tokenizer.json").write_text(json.dumps(
        {**json.loads((m / "tokenizer.json").read_text()), "padding": "x"})), "cannot load the tokenizer"),
    "tokenizer_config.json cut": (lambda m: _truncate(m / "tokenizer_config.json", 20), "tokenizer_config.json:"),
    "no tokenizer files": (lambda m: [p.unlink() for p in m.glob("tokenizer*")], "no tokenizer files"),
    "generation_config.json null": (lambda m: (m / "generation_config.json").write_text("null"),
                                    "generation_config.json: expected a JSON object"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_model_folder_is_one_line_naming_the_file(model_copy, capsys, damage):
    hurt, expected = DAMAGES[damage]
    hurt(model_copy)
    code, err = cli(capsys, "chat", "--model", model_copy, "--prompt", "hi", "--max-new-tokens", "1")
    assert code == 2
    assert expected in error_line(err)


def test_config_json_values_the_gguf_converter_needs_are_checked(model_copy):
    from llmops_ft.export.gguf_convert import read_hparams

    config = json.loads((model_copy / "config.json").read_text())
    for key, value, message in (("num_attention_heads", None, "missing or not a whole number"),
                                ("hidden_size", "64", "missing or not a whole number"),
                                ("rope_parameters", [1], "expected an object")):
        broken = {**config, key: value} if value is not None else {k: v for k, v in config.items() if k != key}
        (model_copy / "config.json").write_text(json.dumps(broken))
        with pytest.raises(UserError, match=message) as err:
            read_hparams(model_copy)
        assert err.value.field == key and "config.json" in err.value.file


def test_a_damaged_run_folder_is_one_line_naming_the_file(tmp_path, capsys):
    import shutil

    work = tmp_path / "w"
    work.mkdir()
    base, run = faults._tiny_run(work)
    checks = {
        "run.json": (lambda: _truncate(run / "run.json", 10), "run.json:"),
        "adapter_config.json": (lambda: (run / "adapter" / "adapter_config.json").write_text("{}"),
                                "adapter_config.json: peft_type: not a PEFT adapter config"),
        "adapter_model.safetensors": (lambda: _truncate(run / "adapter" / "adapter_model.safetensors", 200),
                                      "adapter_model.safetensors:"),
    }
    for name, (hurt, expected) in checks.items():
        pristine = tmp_path / "pristine"
        shutil.copytree(run, pristine, dirs_exist_ok=True)
        hurt()
        for argv in (["chat", "--model", run, "--prompt", "hi"],
                     ["export", "--run", run, "--to", "adapter", "--out", tmp_path / "out"]):
            code, err = cli(capsys, *argv)
            assert code == 2, (name, argv[0])
            assert expected in error_line(err), (name, argv[0])
        shutil.rmtree(run)
        shutil.copytree(pristine, run)


# --- model ids while the hub is offline --------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--base", "--tuned"])
def test_evaluate_with_a_hub_id_not_in_the_cache_while_offline(tmp_path, capsys, monkeypatch, tiny_model_dir, flag):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "eval.jsonl"
    data.write_text('{"text": "hello"}\n', encoding="utf-8")
    models = {"--base": str(tiny_model_dir), "--tuned": str(tiny_model_dir), flag: "someone/not-a-model"}
    code, err = cli(capsys, "evaluate", *[x for kv in models.items() for x in kv], "--data", data)
    assert code == 2
    line = error_line(err)
    assert line.startswith(f"evaluate: error: someone/not-a-model: {flag}: ") and "not in the local Hugging Face " \
        "cache" in line


@pytest.mark.parametrize("name", ["smollm2-135M", "a/b/c", "./models/missing", "~no-such-user-here/x"])
def test_mistyped_model_names_are_one_line(capsys, name):
    code, err = cli(capsys, "chat", f"--model={name}", "--prompt", "hi")
    assert code == 2 and f"{name}: --model:" in error_line(err)


def test_load_failures_of_the_libraries_become_one_line_and_bugs_do_not():
    from llmops_ft.engines.model_files import load_failure, loading

    with pytest.raises(UserError, match="m: cannot load the model: We couldn't connect"):
        with loading("m"):
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
    assert "--trust-remote-code" in load_failure(ValueError("... set the option `trust_remote_code=True` ..."))
    with pytest.raises(AttributeError):  # a bug of ours stays a traceback: it must be seen and fixed
        with loading("m"):
            raise AttributeError("'NoneType' object has no attribute 'x'")


# --- the campaigns, small (their full counts are in BENCHMARKS.md) -----------------------------------------------


def test_nesting_and_array_campaign():
    result = faults.fuzz_nesting_and_arrays(150)
    assert result["inputs"] >= 150 and result["faults"] > 50 and result["failures"] == 0, result["examples"]


def test_hub_id_campaign(tmp_path):
    result = faults.hub_id_faults(40, workdir=str(tmp_path))
    assert result["inputs"] >= 30 and result["failures"] == 0, result["examples"]


@pytest.mark.slow
def test_model_folder_campaign(tmp_path):
    result = faults.model_folder_faults(workdir=str(tmp_path))
    assert result["inputs"] >= 60 and result["failures"] == 0, result["examples"]
