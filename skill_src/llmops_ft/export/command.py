"""`export.py`: a training run -> adapter, merged 16-bit model, or GGUF (+ Ollama Modelfile), each verified."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.commands import add_force_flag, add_trust_flag

HELP = """Export a training run (train.py's output_dir) and prove the export behaves like the trained model.

  --to adapter   the PEFT adapter + tokenizer (chat template) + model card
  --to merged    adapter merged into the float base, saved in 16-bit safetensors (never merged into 4-bit)
  --to gguf      GGUF files for llama.cpp / Ollama: f16, bf16, q8_0 by the built-in converter (Llama, Mistral,
                 Qwen2, Qwen3, SmolLM2), q4_k_m / q5_k_m by llama.cpp's quantizer; tokenizer, chat template and
                 special tokens embedded. --ollama adds a Modelfile (FROM the smallest --quant that
                 passed verification, else the first) whose TEMPLATE is checked to render exactly like
                 the model's chat template, and prints the `ollama create` command.

Verification (default on below 2 GiB, --verify / --no-verify to choose) reloads the export: adapter and merged
must match the in-memory model's logits within 1e-3; each GGUF is run in llama.cpp and transformers with prompts
built from its own embedded chat template. Each GGUF's parity with the trained model (base + adapter in Python)
is measured on held-out prompts (--eval-data FILE, else the run's val split; --verify-rows, default 50): mean and
99th-percentile KL divergence of the next-token distributions, same top token share, identical greedy answers,
and the task's scores when a scorer reads the data. A quant outside its bounds fails the export and the export
names the smallest quant that passes. The report lands in OUT/verify.json; exit code 1 when a check fails.

Examples:
  export.py --run runs/cpu_smoke --to gguf --quant q4_k_m q8_0 --out runs/cpu_smoke/gguf --ollama
  export.py --run runs/cpu_smoke --to merged --out runs/cpu_smoke/merged --force
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of export.py."""
    from .verify import PARITY_ROWS

    parser.add_argument("--run", required=True, help="training run dir (holds run.json and adapter/)")
    parser.add_argument("--to", required=True, choices=("adapter", "merged", "gguf"), help="what to export")
    parser.add_argument("--quant", nargs="+", metavar="Q",
                        help="GGUF types: f16 bf16 q8_0 q4_k_m q5_k_m f32 (default: the skill's recommendation)")
    parser.add_argument("--out", required=True, help="output dir, new or empty (an earlier export there is kept "
                                                      "unless --force)")
    parser.add_argument("--name", help="model name for files and `ollama create` (default: the run dir's name)")
    parser.add_argument("--ollama", action="store_true", help="write an Ollama Modelfile beside the GGUF")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                        help="verify the export (default: on when it is under 2 GiB)")
    parser.add_argument("--eval-data", metavar="FILE",
                        help="JSONL chat rows to measure GGUF parity on (default: the run's val split)")
    parser.add_argument("--verify-rows", type=int, default=PARITY_ROWS, metavar="N",
                        help=f"held-out prompts GGUF parity is measured on (default {PARITY_ROWS})")
    add_force_flag(parser, "replace export's own files in an existing output dir")
    add_trust_flag(parser, "the base model", "the run's run.json never turns it on")


def run(args: argparse.Namespace) -> Any:
    """Run the export and format its summary."""
    from ..core.result import Result
    from .pipeline import export

    summary = export(args.run, args.to, args.out, quants=args.quant, ollama=args.ollama, verify=args.verify,
                     force=args.force, name=args.name, eval_data=args.eval_data, verify_rows=args.verify_rows,
                     trust_remote_code=args.trust_remote_code)
    return Result(data={k: v for k, v in summary.items() if k != "verification_table"},
                  text=render(summary), exit_code=0 if summary["ok"] else 1)


def render(summary: dict[str, Any]) -> str:
    """The human summary: files, method, verification table, the Ollama command."""
    lines = [f"export {summary['kind']} -> {summary['out']} ({summary['seconds']} s)"]
    lines += [f"  {name}" for name in summary["files"]]
    lines.append(f"method: {summary['method']}")
    lines += [f"note: {note}" for note in summary.get("notes", [])]
    if summary.get("verification_table"):
        lines += ["", summary["verification_table"], ""]
        if summary.get("parity"):
            from .parity import comparison_rows, comparison_table

            lines += ["parity with the trained model:", comparison_table(comparison_rows(summary)), ""]
        lines.append("verification passed" if summary["ok"] else "VERIFICATION FAILED: do not ship this export")
        lines += (summary.get("advice") or {}).get("lines", [])
    else:
        lines.append("not verified (--no-verify, or larger than 2 GiB: pass --verify)")
    if summary.get("ollama"):
        lines += ["", "import into Ollama:", f"  {summary['ollama']['command']}"]
        if summary["ollama"].get("note"):
            lines.append(f"note: {summary['ollama']['note']}")
    return "\n".join(lines)
