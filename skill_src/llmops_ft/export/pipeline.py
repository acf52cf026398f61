"""export(): run dir -> adapter | merged 16-bit | GGUF files (+ Ollama Modelfile), verified, written atomically.

Every check that can fail fast (run dir, quant names, architecture, tokenizer, chat-template family, free disk)
runs before any model is loaded. Output goes to a temp dir beside ``out`` that is renamed into place at the end.
"""

from __future__ import annotations

import functools
import json
import math
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..engines.chat_templates import FAMILY_NAMES, default_system_prompt, detect_family
from ..engines.runs import (
    ADAPTER_FILES,
    TOKENIZER_FILES,
    Run,
    load_base,
    load_run,
    load_tokenizer,
    load_tuned,
    trust_note,
)
from ..errors import UserError
from ..io import atomic_dir, atomic_write_json, check_output_dir
from . import verify as checks
from .adapter import model_card, write_adapter
from .gguf_convert import OUTTYPES, convert, estimate_bytes, read_hparams
from .gguf_vocab import adds_bos, tokenizer_spec
from .merge import merge_run
from .modelfile import choose_template, ollama_command, probes, render_modelfile
from .parity import smallest_passing
from .quantize import KQUANTS, quantize, tensor_types
from .system_prompt import training_system

KINDS = ("adapter", "merged", "gguf")
QUANTS = (*OUTTYPES, *KQUANTS)
AUTO_VERIFY_LIMIT = 2 << 30  # verify by default when the export is under 2 GiB
DISK_MARGIN = 1.2


def export(
    run_dir: str,
    to: str,
    out: str,
    *,
    quants: list[str] | None = None,
    ollama: bool = False,
    verify: bool | None = None,
    force: bool = False,
    name: str | None = None,
    eval_data: str | None = None,
    verify_rows: int = checks.PARITY_ROWS,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Export a training run; returns the summary (also OUT/export.json). GGUF parity: on eval_data, else val."""
    started = time.time()
    run = load_run(run_dir, trust_remote_code=trust_remote_code)
    out_path = Path(out)
    output = _output_rules(to, run)
    check_output_dir(out_path, force=force, **output)
    quants = _quants(to, quants)
    name = _model_name(name or run.name)
    tokenizer = load_tokenizer(run.adapter_dir, run.trust_remote_code)
    template = _ollama_template(to, tokenizer, run) if ollama else None
    if to == "gguf":
        tokenizer_spec(run.adapter_dir)
        if Path(run.base_model).is_dir():
            read_hparams(Path(run.base_model))
    n_params = count_params(run.base_model)
    size = _export_bytes(run, to, quants, n_params)
    _check_disk(out_path, to, quants, size, n_params)
    verify = size < AUTO_VERIFY_LIMIT if verify is None else verify
    heldout = _heldout(run, to, verify, eval_data, verify_rows)

    with atomic_dir(out_path, force, **output) as tmp:
        if to == "adapter":
            summary, report = _adapter(run, tmp, verify)
        elif to == "merged":
            summary, report = _merged(run, tmp, verify)
        else:
            summary, report = _gguf(run, tmp, quants, name, heldout, out_path.parent)
        if ollama:
            summary["ollama"] = _write_modelfile(tmp, out_path, _modelfile_file(summary), template, name, report)
        summary.update(
            ok=report is None or report.ok,
            kind=to,
            out=str(out_path),
            run=str(run.path),
            base_model=run.base_model,
            verified=report is not None,
            seconds=round(time.time() - started, 1),
        )
        if note := trust_note(run):
            summary.setdefault("notes", []).append(note)
        if report is not None:
            summary["verification"] = report.to_dict()
            summary["verification_table"] = report.table()
            atomic_write_json(tmp / "verify.json", report.to_dict())
        atomic_write_json(tmp / "export.json", {k: v for k, v in summary.items() if k != "verification_table"})
    return summary


def _output_rules(to: str, run: Run) -> dict[str, Any]:
    """How export writes OUT (io.atomic_dir): only this kind's own files, never over the run or its base."""
    reports = ("README.md", "verify.json", "export.json")
    files = {"adapter": (*ADAPTER_FILES, *TOKENIZER_FILES),
             "merged": ("*.safetensors", "model.safetensors.index.json", "config.json", "generation_config.json",
                        *TOKENIZER_FILES),
             "gguf": ("*.gguf", "Modelfile")}.get(to, ())
    return {"owner": f"export --to {to}", "may_write": (*files, *reports), "inputs": [run.path, run.base_model]}


# ---------------------------------------------------------------- preflight


def _quants(to: str, quants: list[str] | None) -> list[str]:
    if to not in KINDS:
        raise UserError(f"--to must be one of {', '.join(KINDS)}", field="--to")
    if to != "gguf":
        if quants:
            raise UserError("--quant applies to --to gguf only", field="--quant")
        return []
    if not quants:
        from ..knowledge.recommendations import recommended

        quants = [recommended("export.gguf_quantization")]
    normalized = []
    for quant in quants:
        q = quant.lower()
        if q not in QUANTS:
            raise UserError(
                f"quantization {quant!r} is not built in (choose {', '.join(QUANTS)}); llama.cpp's llama-quantize "
                f"makes others from the f16 GGUF: llama-quantize MODEL-f16.gguf MODEL-{q}.gguf {q.upper()}",
                field="--quant",
            )
        if q not in normalized:
            normalized.append(q)
    return normalized


def _ollama_template(to: str, tokenizer, run: Run) -> dict[str, Any]:
    """Family, SYSTEM and the Go TEMPLATE variant that renders like the model's template (fails fast)."""
    if to != "gguf":
        raise UserError("--ollama needs --to gguf (Ollama imports the GGUF file)", field="--ollama")
    family = detect_family(tokenizer.chat_template)
    if family is None:
        raise UserError(
            f"the chat template is not one of the known families ({', '.join(FAMILY_NAMES)}), so no Ollama TEMPLATE "
            "can be written for it; export without --ollama and write the Modelfile TEMPLATE by hand",
            field="--ollama",
        )
    tokens = {"bos_token": tokenizer.bos_token or "", "eos_token": tokenizer.eos_token or ""}
    # the system prompt the training rows had, else the one the template inserts by itself (SmolLM2's, Qwen's)
    trained = training_system(run.info, run.path)
    system, note = trained.modelfile_system(default_system_prompt(tokenizer.chat_template, family, **tokens))
    variant, go = choose_template(family, tokenizer.chat_template, system=system, add_bos=adds_bos(tokenizer),
                                  **tokens)
    return {"family": family, "variant": variant, "go": go, "system": system, "note": note,
            "training_system": trained.to_dict()}


def _model_name(name: str) -> str:
    """A name Ollama accepts: lowercase letters, digits, '.', '_' and '-'."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return cleaned or "model"


def count_params(model_ref: str) -> int | None:
    """Parameter count from the safetensors headers of a local model folder (None for a hub id)."""
    folder = Path(model_ref)
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    from safetensors import safe_open

    total = 0
    for file in files:
        with safe_open(str(file), framework="pt") as fh:
            total += sum(math.prod(fh.get_slice(key).get_shape()) for key in fh.keys())
    return total


def _export_bytes(run: Run, to: str, quants: list[str], n_params: int | None) -> int:
    """Estimated bytes of the finished export (what --verify's automatic default looks at)."""
    if to == "adapter":
        return sum(f.stat().st_size for f in run.adapter_dir.iterdir() if f.is_file())
    if n_params is None:
        return AUTO_VERIFY_LIMIT  # unknown size: no automatic verification
    if to == "merged":
        return n_params * 2
    return sum(estimate_bytes(n_params, q) for q in quants)


def _check_disk(out: Path, to: str, quants: list[str], export_bytes: int, n_params: int | None) -> None:
    """Refuse early when the disk cannot hold the export and its temporary files (x1.2)."""
    if n_params is None:
        return
    scratch = 0
    if to == "gguf":  # the 16-bit merged folder, and an f16 GGUF when only K-quants were asked for
        scratch = n_params * 2 * (2 if not any(q in ("f16", "bf16") for q in quants) else 1)
    need = int((export_bytes + scratch) * DISK_MARGIN)
    parent = out.parent if out.parent.exists() else Path.cwd()
    free = shutil.disk_usage(parent).free
    if free < need:
        raise UserError(f"not enough free disk: the export needs about {_size(need)}, {_size(free)} free",
                        file=str(parent))


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


# ---------------------------------------------------------------- the three kinds


def _adapter(run: Run, tmp: Path, verify: bool):
    files = write_adapter(run, tmp)
    summary = {"files": files, "method": "PEFT adapter copied with its tokenizer and chat template"}
    if not verify:
        return summary, None
    from peft import PeftModel

    report = checks.Report(criteria=checks.criteria()[:1])
    reference = load_tuned(run)
    reloaded = PeftModel.from_pretrained(load_base(run), str(tmp)).eval()
    sequences = _sample_ids(run, tmp)
    same = sequences == _sample_ids(run, run.adapter_dir)
    report.checks.append(checks.Check("adapter", "tokenizer + chat template saved", same,
                                      f"{len(sequences)} sample prompts tokenize "
                                      + ("identically" if same else "differently") + " from the export"))
    report.checks.append(checks.check_reload("adapter", reference, reloaded, sequences))
    return summary, report


def _merged(run: Run, tmp: Path, verify: bool):
    merged, method, dtype = merge_run(run, tmp)
    files = sorted(p.name for p in tmp.iterdir())
    summary = {"files": files, "method": method, "dtype": dtype}
    if not verify:
        return summary, None
    import torch
    from transformers import AutoModelForCausalLM

    report = checks.Report(criteria=checks.criteria()[:1])
    reloaded = AutoModelForCausalLM.from_pretrained(str(tmp), dtype=torch.float32).eval()
    sequences = _sample_ids(run, tmp)
    report.checks.append(checks.check_reload("merged", merged, reloaded, sequences))
    report.checks.append(checks.check_merge_drift(merged, load_tuned(run), sequences))
    return summary, report


def _sample_ids(run: Run, tokenizer_dir: Path) -> list[list[int]]:
    """Token ids of the sample conversations, rendered by the exported tokenizer."""
    tokenizer = load_tokenizer(tokenizer_dir)
    conversations, _ = checks.sample_conversations(run)
    return [
        tokenizer(tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False),
                  add_special_tokens=False)["input_ids"]
        for c in conversations
    ]


def _gguf(run: Run, tmp: Path, quants: list[str], name: str, heldout, work_parent: Path):
    """Merge into a temporary 16-bit folder, write each GGUF (Unsloth's writer where usable, else ours), verify.

    ``heldout`` is (examples, source) to measure parity on, or None: not verified.
    """
    missing = _unsloth_gguf_missing(run)
    work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-work.", dir=work_parent) as scratch:
        work = Path(scratch)
        merged, _, dtype = merge_run(run, work / "merged")
        conversions = {} if missing else _unsloth_gguf(run, work, tmp, quants, name)
        ours = [q for q in quants if q not in conversions]
        conversions.update(_own_gguf(work, tmp, ours, name, dtype))
        files = [f"{name}-{q}.gguf" for q in quants]
        targets = {f"gguf {q}": (q, tmp / f) for q, f in zip(quants, files, strict=True)}
        report = None
        if heldout is not None:
            make = functools.partial(_scratch_gguf, work, tmp, name, dtype)
            report = checks.verify_ggufs(run, merged, targets, examples=heldout[0], source=heldout[1], make=make)
    if missing:
        note = "GGUF written by the built-in converter; Unsloth's save_pretrained_gguf needs " + ", ".join(missing)
        note += " (missing here)"
    else:
        note = f"GGUF written by Unsloth's save_pretrained_gguf ({', '.join(ours) or 'all'} by the built-in one)"
    (tmp / "README.md").write_text(model_card(run, "gguf", _gguf_card(quants, files, conversions)), encoding="utf-8")
    summary = {"files": files, "method": "built-in HF->GGUF converter (gguf package) + llama.cpp quantizer",
               "merged_dtype": dtype, "conversions": conversions, "notes": [note]}
    if report is not None:
        summary.update(_parity_summary(report, quants, files))
    return summary, report


def _own_gguf(work: Path, tmp: Path, quants: list[str], name: str, dtype: str) -> dict[str, Any]:
    """Our converter for f32/f16/bf16/q8_0; K-quants by llama.cpp from an f16 (bf16 for bf16 runs) GGUF."""
    conversions: dict[str, Any] = {}
    for quant in (q for q in quants if q in OUTTYPES):
        conversions[quant] = _report_dict(convert(work / "merged", tmp / f"{name}-{quant}.gguf", quant, name=name))
    for quant in (q for q in quants if q in KQUANTS):
        source_type, source = _kquant_source(work, tmp, name, dtype)
        types = quantize(source, tmp / f"{name}-{quant}.gguf", quant)
        conversions[quant] = {"tensor_types": types, "from": source_type}
    return conversions


def _kquant_source(work: Path, tmp: Path, name: str, dtype: str) -> tuple[str, Path]:
    """The 16-bit GGUF K-quants are made from (f16; bf16 for bf16 runs): the exported one, else one in ``work``."""
    source_type = "bf16" if dtype == "bfloat16" else "f16"
    source = tmp / f"{name}-{source_type}.gguf"
    if not source.is_file():
        source = work / f"{name}-{source_type}.gguf"
        if not source.is_file():
            convert(work / "merged", source, source_type, name=name)
    return source_type, source


def _scratch_gguf(work: Path, tmp: Path, name: str, dtype: str, quant: str) -> Path:
    """A quant that was not asked for, written to the scratch folder only: measured to name one that passes."""
    dst = work / f"{name}-{quant}.gguf"
    if not dst.is_file():
        if quant in OUTTYPES:
            convert(work / "merged", dst, quant, name=name)
        else:
            quantize(_kquant_source(work, tmp, name, dtype)[1], dst, quant)
    return dst


def _parity_summary(report, quants: list[str], files: list[str]) -> dict[str, Any]:
    """summary["parity"] (quant -> entry, requested or only measured) and the rule's advice, with the file the
    Modelfile points at: the smallest requested quant that passes its bounds (else the first requested)."""
    parity = {entry["quant"]: entry for entry in report.parity.values()}
    chosen = smallest_passing({q: parity[q] for q in quants if q in parity})
    result: dict[str, Any] = {"parity": parity, "advice": report.advice}
    if chosen:
        result["modelfile_file"] = files[quants.index(chosen)]
    return result


def _heldout(run: Run, to: str, verify: bool, eval_data: str | None, rows: int):
    """(examples, source) GGUF parity is measured on, read before any model loads; None when not measured."""
    if eval_data and to != "gguf":
        raise UserError("--eval-data applies to --to gguf (the parity check of each GGUF)", field="--eval-data")
    if rows < 1:
        raise UserError("must be at least 1", field="--verify-rows")
    if to != "gguf" or not verify:
        return None
    return checks.heldout_examples(run, eval_data, rows)


def _modelfile_file(summary: dict[str, Any]) -> str:
    return summary.get("modelfile_file") or summary["files"][0]


def _unsloth_gguf_missing(run: Run) -> list[str]:
    """What Unsloth's save_pretrained_gguf needs that is missing here (empty: use it)."""
    import importlib.util

    import torch

    return [what for what, ok in (
        ("the unsloth training backend", run.backend == "unsloth"),
        ("CUDA", torch.cuda.is_available()),
        ("unsloth", importlib.util.find_spec("unsloth") is not None),
        ("a llama.cpp build (llama-quantize)", shutil.which("llama-quantize") is not None),
    ) if not ok]


def _unsloth_gguf(run: Run, work: Path, tmp: Path, quants: list[str], name: str) -> dict[str, Any]:
    """Unsloth's own GGUF writer (CUDA + llama.cpp); returns the quants it produced, moved to our names."""
    from unsloth import FastLanguageModel  # not exercised by the CPU test suite: needs CUDA and llama.cpp

    model, tokenizer = FastLanguageModel.from_pretrained(str(run.adapter_dir), load_in_4bit=False)
    model.save_pretrained_gguf(str(work / "unsloth"), tokenizer, quantization_method=quants)
    made = {}
    for quant in quants:
        hits = sorted(p for p in work.rglob("*.gguf") if p.name.lower().endswith(f".{quant}.gguf"))
        if hits:
            shutil.move(str(hits[0]), tmp / f"{name}-{quant}.gguf")
            made[quant] = {"tensor_types": tensor_types(tmp / f"{name}-{quant}.gguf"), "by": "unsloth"}
    return made


def _report_dict(report) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(report)
    data["path"] = Path(data["path"]).name
    return data


def _gguf_card(quants: list[str], files: list[str], conversions: dict[str, Any]) -> str:
    lines = ["## Files", ""]
    for quant, file in zip(quants, files, strict=True):
        types = conversions[quant].get("types") or conversions[quant].get("tensor_types")
        lines.append(f"- `{file}`: tensor types {json.dumps(types)}")
    return "\n".join(lines)


def _write_modelfile(tmp: Path, out: Path, first_file: str, template: dict[str, Any], name: str, report) -> dict:
    """Modelfile beside the GGUF (FROM the smallest requested quant that passed verification, else the first
    requested) and the `ollama create` command."""
    system = template["system"].text if template["system"] else None
    text = render_modelfile(first_file, template["family"], template["go"], system)
    (tmp / "Modelfile").write_text(text, encoding="utf-8")
    if report is not None:  # choose_template already refused a TEMPLATE that renders differently
        report.checks.append(checks.Check(
            "ollama", "Modelfile TEMPLATE renders like the chat template", True,
            f"variant {template['variant']}: {len(probes(template['system']))} probe conversations render "
            "byte-identical from the Go TEMPLATE and from the Jinja template"))
    result = {"modelfile": str(out / "Modelfile"), "family": template["family"].name,
              "variant": template["variant"], "system": system, "training_system": template["training_system"],
              "command": ollama_command(name, str(out / "Modelfile"))}
    if template["note"]:
        result["note"] = template["note"]
    return result
