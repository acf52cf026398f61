"""`llmops-ft init-config`: write a starter run config from a shipped preset into the user's project.

The presets are the package's own run configs (Colab T4 QLoRA, A100 LoRA, CPU); the copy keeps their comments,
points ``dataset.path`` and ``output_dir`` at folders relative to where the user runs ``llmops-ft``, and is validated
like any run config before it is written.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ..core.result import Result
from ..errors import UserError
from ..io import atomic_write_text, check_output_free
from ..knowledge.resources import resource
from .loader import load_config, yaml_loader

HELP = """\
Write a starter run config (YAML) for a GPU class from the presets shipped with the package, ready for
`llmops-ft plan`, `llmops-ft train` and `--set key=value` overrides. Presets: t4 (Colab T4 16 GB: QLoRA 4-bit,
fp16, batch 2 x 8), a100 (A100 80 GB: 16-bit LoRA, bf16), cpu (the embedded SmolLM2-135M on a CPU, no download).
dataset.path and output_dir are relative to the folder you run llmops-ft from (not to the config file).
An existing file is kept unless --force. Exit codes: 0 written, 2 bad input.
Example: llmops-ft init-config --gpu t4 --out my.yaml --data runs/prep"""

# --gpu choice -> shipped preset (resources/configs/<name>.yaml)
PRESETS: dict[str, str] = {"t4": "colab_t4_qlora", "a100": "a100_lora", "cpu": "cpu_smoke"}
DEFAULT_DATA = "runs/prep"
_PLAIN_SCALAR = re.compile(r"^[\w./~-]+$")


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of init-config."""
    parser.add_argument("--gpu", choices=sorted(PRESETS), help="GPU class the config is for (t4, a100, cpu)")
    parser.add_argument("--out", help="config file to write, e.g. my.yaml")
    parser.add_argument("--data", default=DEFAULT_DATA,
                        help=f"prepared dataset folder (llmops-ft prep --out) to train on (default {DEFAULT_DATA})")
    parser.add_argument("--output-dir", help="where train writes the run (default runs/<name of --out>)")
    parser.add_argument("--model", help="model to fine-tune instead of the preset's (hub id, local folder, or "
                                        "smollm2-135m, the embedded one)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    parser.add_argument("--list", action="store_true", help="list the presets and exit")


def run(args: argparse.Namespace) -> Result:
    """List the presets, or write one as a starter config."""
    if args.list:
        presets = [describe_preset(gpu) for gpu in PRESETS]
        lines = [f"{p['gpu']:<5} {p['preset']:<15} {p['model']} on {p['hardware']}: {p['summary']}" for p in presets]
        return Result(data={"ok": True, "presets": presets}, text="\n".join(lines))
    if not args.gpu or not args.out:
        raise UserError("init-config needs --gpu (t4, a100 or cpu) and --out FILE, or --list", field="--gpu/--out")
    out = Path(args.out)
    output_dir = args.output_dir or f"runs/{out.stem}"
    text = starter_config(args.gpu, data=args.data, output_dir=output_dir, model=args.model, out_name=args.out)
    config = _validated(text, args.out)
    check_output_free(out, args.force)
    atomic_write_text(out, text)
    preset = describe_preset(args.gpu)
    data = {"ok": True, "path": str(out), "gpu": args.gpu, "preset": preset["preset"],
            "model": config["model"]["name"], "dataset_path": config["dataset"]["path"],
            "output_dir": config["output_dir"], "hardware": config["hardware"]}
    lines = [f"wrote {out} from preset {preset['preset']} ({preset['summary']})",
             f"  model {config['model']['name']}, dataset.path {config['dataset']['path']}, "
             f"output_dir {config['output_dir']} (relative to the folder you run llmops-ft from)",
             f"next: llmops-ft plan --config {args.out} --gpu {config['hardware']}"]
    return Result(data=data, text="\n".join(lines))


def describe_preset(gpu: str) -> dict[str, Any]:
    """What the preset for ``gpu`` is: its name, model, hardware and the first line of its comment."""
    import yaml

    name = PRESETS[gpu]
    text = resource(f"configs/{name}.yaml").read_text(encoding="utf-8")
    raw = yaml.load(text, Loader=yaml_loader())
    first = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), name)
    return {"gpu": gpu, "preset": name, "model": raw["model"]["name"], "hardware": raw.get("hardware", "auto"),
            "summary": first.rstrip(".")}


def starter_config(gpu: str, *, data: str, output_dir: str, model: str | None = None,
                   out_name: str = "my.yaml") -> str:
    """The preset's YAML text with a new header, ``dataset.path``, ``output_dir`` and optionally ``model.name``."""
    name = PRESETS[gpu]
    lines = resource(f"configs/{name}.yaml").read_text(encoding="utf-8").splitlines()
    comment = [line for line in lines if line.startswith("#")]
    body = lines[len(comment):] if lines[: len(comment)] == comment else [ln for ln in lines if not ln.startswith("#")]
    hardware = describe_preset(gpu)["hardware"]
    header = [
        f"# Starter run config from `llmops-ft init-config --gpu {gpu}` (preset {name}).",
        comment[0] if comment else f"# {name}",
        "# dataset.path and output_dir are relative to the folder you run llmops-ft from.",
        f"# Check it:  llmops-ft plan --config {out_name} --gpu {hardware}",
        "# Any key left out gets the recommended value; override one with --set key=value.",
    ]
    body = _set_scalar(body, "dataset", "path", data)
    body = _set_scalar(body, None, "output_dir", output_dir)
    if model:
        body = _set_scalar(body, "model", "name", model)
    return "\n".join(header + body) + "\n"


def _set_scalar(lines: list[str], section: str | None, key: str, value: str) -> list[str]:
    """Replace ``key``'s value (top level, or two-space indented under ``section:``); the line's comment goes."""
    scalar = value if _PLAIN_SCALAR.match(value) else json.dumps(value)
    inside = section is None
    for i, line in enumerate(lines):
        if section is not None and line and not line[0].isspace():
            inside = line.split("#")[0].strip() == f"{section}:"
            continue
        prefix = f"{key}:" if section is None else f"  {key}:"
        if inside and line.startswith(prefix):
            return [*lines[:i], f"{prefix} {scalar}", *lines[i + 1:]]
    raise UserError(f"preset has no {section + '.' if section else ''}{key} to set", field=key)


def _validated(text: str, label: str) -> dict[str, Any]:
    """The resolved config of ``text`` (every problem as one UserError naming the key), checked before writing."""
    import yaml

    raw = yaml.load(text, Loader=yaml_loader())
    try:
        return load_config(None, base=raw)
    except UserError as exc:
        raise UserError(f"the starter config would not load: {exc}", file=label) from exc
