#!/usr/bin/env python3
"""Fault campaigns, counted: fuzz the dataset reader and the config loader, SIGKILL training and resume, nest
JSON 200,000 deep and break JSON arrays, damage model and run folders, give mistyped or unreachable model ids.

Each campaign returns {"campaign", "inputs", "faults", "failures", "examples"}: a failure is any outcome other
than success or a one-line UserError (a traceback, a broken invariant, a run that does not finish).
tests/test_faults.py and tests/test_bad_input.py run them with assertions; benchmarks/run.py records the counts
in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "skill_src"))


def _campaign(name: str) -> dict[str, Any]:
    return {"campaign": name, "inputs": 0, "faults": 0, "failures": 0, "examples": []}


def _fail(result: dict[str, Any], what: str) -> None:
    result["failures"] += 1
    if len(result["examples"]) < 5:
        result["examples"].append(what[:300])


def fuzz_dataset_reader(examples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Generated input files (valid rows, broken JSON, wrong types, binary junk, BOM, CRLF, mixed formats) into
    prep: every outcome is a report with total == kept + rejected + duplicates, or a one-line UserError."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from llmops_ft.data import prepare
    from llmops_ft.errors import UserError

    result = _campaign("dataset reader fuzz (prep)")
    text = st.text(max_size=20)
    row = st.one_of(
        st.fixed_dictionaries({"instruction": text, "output": text}, optional={"input": text | st.none()}),
        st.fixed_dictionaries({"messages": st.lists(st.fixed_dictionaries(
            {"role": st.sampled_from(["system", "user", "assistant", "bot", ""]), "content": text | st.integers()}),
            max_size=4)}),
        st.fixed_dictionaries({"prompt": text, "completion": text}),
        st.fixed_dictionaries({"text": text}),
        st.fixed_dictionaries({"prompt": text, "chosen": text, "rejected": text}),
        st.dictionaries(text, text | st.integers() | st.none(), max_size=3),
    )
    line = st.one_of(
        row.map(lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8")),
        st.binary(max_size=40),
        st.sampled_from([b"", b"{", b"[1,2]", b"null", b'"str"', b"\xff\xfe", b"{\"instruction\": 1}"]),
    )
    files = st.tuples(
        st.lists(line, min_size=0, max_size=12),
        st.sampled_from([b"\n", b"\r\n"]),
        st.booleans(),  # BOM
        st.sampled_from([".jsonl", ".json", ".csv"]),
    )

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(files)
    def one(spec):
        lines, newline, bom, suffix = spec
        data = (b"\xef\xbb\xbf" if bom else b"") + newline.join(lines)
        result["inputs"] += 1
        result["faults"] += int(any(not _is_json_object(x) for x in lines) or bom or newline == b"\r\n")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"input{suffix}"
            path.write_bytes(data)
            try:
                report = prepare([path], Path(tmp) / "out", force=True)
            except UserError as exc:
                if "\n" in str(exc) or not str(exc):
                    _fail(result, f"multi-line or empty error for {data[:80]!r}: {exc!s:.100}")
                return
            except Exception as exc:  # noqa: BLE001 - the point is to count these
                _fail(result, f"{type(exc).__name__}: {exc!s:.100} for {data[:80]!r}")
                return
            if report["total"] != report["kept"] + report["rejected"] + report["duplicates"]:
                _fail(result, f"accounting broken: {report['total']} != kept+rejected+duplicates for {data[:80]!r}")

    random.seed(seed)
    one()
    return result


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw.decode("utf-8")), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def fuzz_config_loader(examples: int = 2000) -> dict[str, Any]:
    """Generated YAML texts and --set overrides into load_config: a resolved config or one ConfigError line."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from llmops_ft.config import ConfigError, load_config

    result = _campaign("config loader fuzz")
    words = st.sampled_from(["model", "name", "lora", "r", "training", "batch_size", "dtype", "hardware", "t4",
                             "bfloat16", "-1", "0", "1e-4", "nan", "[", "]", "{", "}", ":", "- x", "\t", "'", "&a",
                             "*a", "!!python/object", "dataset", "path", "~", "yes", "2.0"])
    yaml_text = st.lists(st.tuples(st.integers(0, 4), st.lists(words, max_size=4)), max_size=10).map(
        lambda rows: "\n".join("  " * indent + " ".join(parts) for indent, parts in rows))
    overrides = st.lists(st.text(max_size=20) | st.sampled_from(
        ["lora.r=0", "training.max_steps=5", "model.dtype=bfloat16", "hardware=t4", "x.y=1", "lora.r"]), max_size=3)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(yaml_text, overrides)
    def one(text, sets):
        result["inputs"] += 1
        result["faults"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "cfg.yaml"
            path.write_text("model:\n  name: m\ndataset:\n  path: d\nhardware: cpu\n" + text, encoding="utf-8")
            try:
                load_config(str(path), sets)
            except ConfigError as exc:
                if "\n" in str(exc) or not str(exc):
                    _fail(result, f"multi-line or empty error: {exc!s:.100}")
            except Exception as exc:  # noqa: BLE001
                _fail(result, f"{type(exc).__name__}: {exc!s:.100} for {text[:80]!r} {sets!r}")

    one()
    return result


def sigkill_resume(kills: int = 3, max_steps: int = 24, seed: int = 0, workdir: str | None = None) -> dict[str, Any]:
    """Train a tiny model, SIGKILL it at a random step `kills` times and resume each time with --resume auto;
    the run must end with max_steps steps, one metrics row per step and a loadable adapter."""
    from llmops_ft.data import prepare
    from llmops_ft.engines.models import build_tiny_llama

    result = _campaign(f"SIGKILL training at random steps x{kills}, resume")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp)
        model = build_tiny_llama(work / "tiny")
        prepare([REPO / "examples" / "task_api" / "train.jsonl"], work / "prep", force=True)
        config = work / "cfg.yaml"
        config.write_text(json.dumps({
            "model": {"name": str(model), "max_seq_length": 128, "load_in_4bit": False},
            "dataset": {"path": str(work / "prep")},
            "training": {"max_steps": max_steps, "batch_size": 2, "grad_accum": 1, "learning_rate": 1e-2,
                         "warmup_steps": 2, "optim": "adamw_torch", "gradient_checkpointing": False,
                         "logging_steps": 1, "save_steps": 2},
            "backend": "hf", "hardware": "cpu", "output_dir": str(work / "run"),
        }))
        cmd = [sys.executable, str(REPO / "scripts" / "train.py"), "--config", str(config), "--resume", "auto"]
        metrics = work / "run" / "metrics.jsonl"
        for _ in range(kills):
            target = rng.randint(3, max_steps - 3)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            deadline = time.time() + 300
            while proc.poll() is None and time.time() < deadline and _last_step(metrics) < target:
                time.sleep(0.05)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                result["faults"] += 1
            result["inputs"] += 1
        done = subprocess.run(cmd, capture_output=True, text=True)
        result["inputs"] += 1
        steps = [row["step"] for row in map(json.loads, metrics.read_text().splitlines()) if "loss" in row]
        if done.returncode != 0:
            _fail(result, f"final resume exited {done.returncode}: {done.stderr.strip()[-200:]}")
        elif steps != list(range(1, max_steps + 1)):
            _fail(result, f"metrics steps after resumes are {steps}")
        else:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            run = json.loads((work / "run" / "run.json").read_text())
            if run.get("steps") != max_steps:
                _fail(result, f"run.json says {run.get('steps')} steps, expected {max_steps}")
            PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(model)), str(work / "run" / "adapter"))
    return result


def _last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):
            continue
    return 0


def docs_sync_faults(rounds: int = 2) -> dict[str, Any]:
    """docs sync against a loopback server that times out, answers 500, truncates, serves a huge page, HTML, or a
    redirect off the host, on each page in turn: the cache stays byte-identical and the failing page is named."""
    import contextlib
    import io
    import shutil

    from llmops_ft.cli import main
    from llmops_ft.docs.faultserver import faulty_docs_server
    from llmops_ft.knowledge.pages import PAGES

    result = _campaign("docs sync against a faulty loopback server")
    modes = ["500", "sleep", "truncate", "huge", "huge-unsized", "html", "redirect-off"]
    docs = REPO.parent / "shared" / "unsloth-docs"
    cap = 3 * max((docs / page.filename).stat().st_size for page in PAGES)  # every page fits; 40x ("huge") does not
    with tempfile.TemporaryDirectory() as tmp, faulty_docs_server(docs) as server:
        cache = Path(tmp) / "cache"
        shutil.copytree(REPO / "docs_cache" / "facts", cache / "facts")
        shutil.copy2(REPO / "docs_cache" / "manifest.json", cache / "manifest.json")
        before = {p: p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}
        for i in range(rounds * len(modes)):
            mode, page = modes[i % len(modes)], PAGES[i % len(PAGES)]
            server.behaviour = {"docs/" + page.filename: mode}
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(["sync-docs", "--online", "--base-url", server.base_url, "--cache", str(cache),
                             "--timeout", "0.3", "--retries", "1", "--backoff", "0.01", "--max-bytes", str(cap)])
            result["inputs"] += 1
            result["faults"] += 1
            after = {p: p.read_bytes() for p in sorted(cache.rglob("*")) if p.is_file()}
            if code != 2 or page.key not in err.getvalue() or after != before:
                _fail(result, f"{mode} on {page.key}: exit {code}, cache {'kept' if after == before else 'CHANGED'}, "
                              f"stderr {err.getvalue().strip()[-150:]!r}")
    return result


def _cli(argv: list[str]) -> tuple[Any, str]:
    """Run one verb in this process: (exit code, or the exception that escaped, and what went to stderr)."""
    import contextlib
    import io

    from llmops_ft.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: Any = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception as exc:  # noqa: BLE001 - a traceback: what the campaigns count
            code = f"{type(exc).__name__}: {exc!s:.150}"
    return code, err.getvalue()


def _one_line_error(code: Any, stderr: str, verb: str, *names: str) -> str | None:
    """None when the outcome is exit 2 with one `verb: error:` line naming one of ``names``; else what is wrong."""
    errors = [line for line in stderr.splitlines() if line.startswith(f"{verb}: error:")]
    if code != 2:
        return f"exit {code!r}"
    if "Traceback" in stderr or len(errors) != 1:
        return f"{len(errors)} error lines, traceback: {'Traceback' in stderr}"
    if names and not any(name in errors[0] for name in names):
        return f"the error does not name {names[0]}: {errors[0][:160]}"
    return None


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def fuzz_nesting_and_arrays(examples: int = 400) -> dict[str, Any]:
    """Values nested from 1 to 200,000 deep in JSON lines and JSON arrays, and arrays cut short or with junk
    bytes, into prep and into the JSON lines reader evaluate and train use: every outcome is a report whose
    counts add up (an intact array reads back exactly as json.loads reads it), or one UserError line naming the
    file (and, for a broken array, a line inside it)."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from llmops_ft.data import prepare
    from llmops_ft.data.examples import read_examples
    from llmops_ft.errors import UserError

    result = _campaign("nesting depth and JSON arrays (prep, evaluate and train readers)")
    depth = st.one_of(st.integers(1, 120), st.integers(90, 2500), st.just(200_000))
    row = st.one_of(
        depth.map(lambda d: b'{"text": ' + _nested(d) + b"}"),
        depth.map(lambda d: b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": '
                  + _nested(d) + b"}]}"),
        st.sampled_from([b'{"text": "fine"}', b'{"messages": [{"role": "user", "content": "q"}, '
                                               b'{"role": "assistant", "content": "a"}]}']),
    )
    array = st.tuples(st.lists(row, min_size=1, max_size=6), st.sampled_from(["intact", "cut", "junk", "trailing"]),
                      st.integers(0, 10**6), st.sampled_from([b"\n", b"\r\n", b""]))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.one_of(st.tuples(st.just("jsonl"), st.lists(row, min_size=1, max_size=6)),
                     st.tuples(st.just("json"), array)))
    def one(spec):
        kind, body = spec
        result["inputs"] += 1
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"in.{kind}"
            if kind == "jsonl":
                data, damage = b"\n".join(body) + b"\n", "deep" if any(len(r) > 250 for r in body) else "none"
            else:
                rows, damage, at, newline = body
                data = b"[" + newline + (b"," + newline).join(rows) + newline + b"]"
                cut = at % max(1, len(data) - 1)
                if damage == "cut":
                    data = data[:cut]
                elif damage == "junk":
                    data = data[:cut] + b"\x00}{" + data[cut:]
                elif damage == "trailing":
                    data += b" junk"
            result["faults"] += int(damage != "intact" and damage != "none" or b"[[[[" in data)
            path.write_bytes(data)
            _check_one_input(result, path, data, kind, prepare, read_examples, UserError)

    one()
    return result


def _check_one_input(result, path: Path, data: bytes, kind: str, prepare, read_examples, UserError) -> None:
    """One generated input through prep and (JSON lines) through evaluate's reader."""
    lines = data.count(b"\n") + 1
    try:
        report = prepare([path], path.parent / "out", force=True)
    except UserError as exc:
        where = str(exc).split(": ", 1)[0]
        line = where.rsplit(":", 1)[-1] if where.count(":") else ""
        if "\n" in str(exc) or str(path) not in str(exc) or (line.isdigit() and not 1 <= int(line) <= lines):
            _fail(result, f"prep error {exc!s:.120} for {data[:60]!r}")
    except Exception as exc:  # noqa: BLE001
        _fail(result, f"prep {type(exc).__name__}: {exc!s:.100} for {data[:60]!r}")
    else:
        if report["total"] != report["kept"] + report["rejected"] + report["duplicates"]:
            _fail(result, f"accounting broken for {data[:60]!r}")
        if kind == "json" and data.rstrip().endswith(b"]") and report["total"] != len(json.loads(data)):
            _fail(result, f"array read as {report['total']} rows, json.loads reads {len(json.loads(data))}")
    if kind == "jsonl":
        try:
            read_examples(path)
        except UserError as exc:
            if "\n" in str(exc) or str(path) not in str(exc):
                _fail(result, f"evaluate reader error {exc!s:.120}")
        except Exception as exc:  # noqa: BLE001
            _fail(result, f"evaluate reader {type(exc).__name__}: {exc!s:.100}")


# Damages to one file of a model folder or run folder; each leaves the folder unusable or, rarely, harmless.
def _damages(rng: random.Random, data: bytes, name: str) -> dict[str, bytes | None]:
    cut = rng.randrange(1, max(2, len(data)))
    found = {"truncated": data[:cut], "empty": b"", "deleted": None,
             "junk": bytes(rng.randrange(256) for _ in range(64))}
    if name.endswith(".json"):
        value = json.loads(data)
        found.update({"a JSON list": b"[]", "null": b"null", "nested 200,000 deep": _nested(200_000)})
        if isinstance(value, dict) and value:
            key = rng.choice(sorted(value))
            found[f"without {key}"] = json.dumps({k: v for k, v in value.items() if k != key}).encode()
            found[f"{key} = 'x'"] = json.dumps({**value, key: "x"}).encode()
    else:  # safetensors: a header cut or scrambled
        header = int.from_bytes(data[:8], "little")
        found["header cut"] = data[: 8 + header // 2]
        found["header scrambled"] = data[:8] + bytes(rng.randrange(256) for _ in range(header)) + data[8 + header:]
    return found


def _tiny_run(work: Path) -> tuple[Path, Path]:
    """A tiny random Llama folder and a run folder holding a fresh LoRA adapter of it (real peft files)."""
    from llmops_ft.engines.models import build_tiny_llama
    from llmops_ft.io import atomic_write_json
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = build_tiny_llama(work / "tiny")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(base)),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    run = work / "run"
    model.save_pretrained(str(run / "adapter"))
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(str(run / "adapter"))
    atomic_write_json(run / "run.json", {"base_model": str(base), "backend": "hf", "steps": 0,
                                         "config": {"model": {"name": str(base), "trust_remote_code": False}}})
    return base, run


def model_folder_faults(rounds: int = 1, seed: int = 0, workdir: str | None = None) -> dict[str, Any]:
    """Damage one file of a model or run folder (config.json, safetensors, tokenizer files, generation config,
    run.json, adapter files: cut, emptied, deleted, junk, wrong JSON, a key missing or mistyped, nested 200,000
    deep) and run every verb that reads it: exit 0, or exit 2 with one line naming the file or its folder."""
    import shutil

    result = _campaign("damaged model and run folders (chat, evaluate, export, prep --model)")
    rng = random.Random(seed)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp)
        base, run = _tiny_run(work)
        data = work / "eval.jsonl"
        data.write_text('{"text": "a short text"}\n{"text": "another one"}\n', encoding="utf-8")
        base_verbs = [["chat", "--model", str(base), "--prompt", "hi", "--max-new-tokens", "1"],
                      ["evaluate", "--base", str(base), "--tuned", str(base), "--data", str(data)],
                      ["prep", str(data), "--model", str(base), "--out", "{out}"],
                      ["export", "--run", str(run), "--to", "gguf", "--quant", "f16", "--no-verify", "--out", "{out}"]]
        run_verbs = [["chat", "--model", str(run), "--prompt", "hi", "--max-new-tokens", "1"],
                     ["export", "--run", str(run), "--to", "adapter", "--no-verify", "--out", "{out}"],
                     ["evaluate", "--base", str(base), "--tuned", str(run), "--data", str(data)]]
        targets = [(base / name, base_verbs) for name in ("config.json", "model.safetensors", "tokenizer.json",
                                                          "tokenizer_config.json", "generation_config.json")]
        targets += [(run / "run.json", run_verbs)] + [(run / "adapter" / name, run_verbs) for name in (
            "adapter_config.json", "adapter_model.safetensors", "tokenizer.json")]
        for _ in range(rounds):
            for path, verbs in targets:
                original = path.read_bytes()
                for damage, damaged in _damages(rng, original, path.name).items():
                    _write_or_delete(path, damaged)
                    argv = [a.replace("{out}", str(work / "out")) for a in rng.choice(verbs)]
                    code, stderr = _cli(argv)
                    result["inputs"] += 1
                    result["faults"] += 1
                    problem = None if code == 0 else _one_line_error(code, stderr, argv[0], path.name,
                                                                     str(path.parent))
                    if problem:
                        _fail(result, f"{argv[0]} with {path.parent.name}/{path.name} {damage}: {problem}")
                    shutil.rmtree(work / "out", ignore_errors=True)
                path.write_bytes(original)
    return result


def _write_or_delete(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink()
    else:
        path.write_bytes(data)


def hub_id_faults(examples: int = 150, workdir: str | None = None) -> dict[str, Any]:
    """Mistyped model names and hub ids not in the local cache, with the hub offline, into every verb that takes
    a model (chat, evaluate, prep --model, train's model.name, a run whose base_model is one): exit 2, one line
    naming the value, no traceback, no network."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from llmops_ft.io import user_path

    result = _campaign("mistyped or unreachable model ids, hub offline (chat, evaluate, prep, train, export)")
    os.environ["HF_HUB_OFFLINE"] = "1"
    part = st.text(st.sampled_from("abcXYZ019-_. /~é"), min_size=1, max_size=12)
    ids = st.one_of(part, st.tuples(part, part).map("/".join), st.sampled_from([
        "someone/not-a-model", "HuggingFaceTB/SmolLM2-135M-Instruct-typo", "smollm2-135M", "smolm2-135m",
        "./models/missing", "a/b/c", "unsloth/llama-3-8b-bnb-4bit"]))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        work = Path(tmp)
        data = work / "eval.jsonl"
        data.write_text('{"text": "a short text"}\n', encoding="utf-8")
        _tiny_run(work)  # a real adapter, whose run.json gets each id as its base model

        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(ids, st.integers(0, 4))
        def one(name, verb):
            if name.strip() in ("smollm2-135m",) or user_path(name.strip()).exists():
                return  # a real model or an existing path: not a mistyped id
            result["inputs"] += 1
            result["faults"] += 1
            argv = _hub_argv(work, data, name, verb)
            code, stderr = _cli(argv)
            problem = _one_line_error(code, stderr, argv[0])
            if problem:
                _fail(result, f"{argv[0]} with {name!r}: {problem}")

        one()
    return result


def _hub_argv(work: Path, data: Path, name: str, verb: int) -> list[str]:
    """The command line of one hub-id trial (``verb``: which verb takes the id)."""
    if verb == 0:
        return ["chat", f"--model={name}", "--prompt", "hi"]
    if verb == 1:
        return ["evaluate", f"--base={name}", f"--tuned={name}", "--data", str(data)]
    if verb == 2:
        return ["prep", str(data), f"--model={name}", "--out", str(work / "out")]
    if verb == 3:
        config = work / "cfg.yaml"
        config.write_text(json.dumps({"model": {"name": name}, "dataset": {"path": str(data)}, "backend": "hf",
                                      "hardware": "cpu", "output_dir": str(work / "trained")}), encoding="utf-8")
        return ["train", "--config", str(config), "--dry-run"]
    (work / "run" / "run.json").write_text(json.dumps({"base_model": name, "config": {"model": {"name": name}}}))
    return ["export", "--run", str(work / "run"), "--to", "adapter", "--out", str(work / "out")]


def gpu_suite() -> dict[str, Any]:
    """The smoke test on a CUDA GPU, where it adds the unsloth-4bit stage: its stages run and those that failed.

    Without a GPU nothing is measured and the row says so (the test suite on a GPU is run by hand: `make test`).
    """
    import torch

    result = _campaign("smoke test (and test suite) on a CUDA GPU")
    if not torch.cuda.is_available():
        return {**result, "inputs": "not measured: no CUDA GPU here", "faults": "-", "failures": "-"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "smoke_test.py"), "--json"], capture_output=True,
                          text=True, timeout=1800)
    stages = json.loads(proc.stdout)["stages"] if proc.stdout.strip() else []
    result["inputs"] = len(stages)
    for stage in stages:
        if not stage["ok"]:
            _fail(result, f"{stage['stage']}: {stage['detail']}")
    if "unsloth-4bit" not in [s["stage"] for s in stages]:
        _fail(result, "no unsloth-4bit stage on a CUDA machine")
    return result


def run_all(scale: float = 1.0) -> list[dict[str, Any]]:
    """Every campaign; ``scale`` multiplies the generated-input counts."""
    return [
        fuzz_dataset_reader(int(2000 * scale)),
        fuzz_config_loader(int(3000 * scale)),
        sigkill_resume(),
        docs_sync_faults(),
        fuzz_nesting_and_arrays(int(400 * scale)),
        model_folder_faults(),
        hub_id_faults(int(150 * scale)),
        gpu_suite(),
    ]


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=2))
