#!/usr/bin/env python3
"""Fault campaigns, counted: fuzz the dataset reader and the config loader, SIGKILL training and resume.

Each campaign returns {"campaign", "inputs", "faults", "failures", "examples"}: a failure is any outcome other
than success or a one-line UserError (a traceback, a broken invariant, a run that does not finish).
tests/test_faults.py runs them with assertions; benchmarks/run.py records the counts in BENCHMARKS.md.
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


def run_all(scale: float = 1.0) -> list[dict[str, Any]]:
    """Every campaign; ``scale`` multiplies the generated-input counts."""
    return [
        fuzz_dataset_reader(int(2000 * scale)),
        fuzz_config_loader(int(3000 * scale)),
        sigkill_resume(),
        docs_sync_faults(),
    ]


if __name__ == "__main__":
    print(json.dumps(run_all(), indent=2))
