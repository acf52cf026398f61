"""The adapter export: the LoRA weights, their config and the tokenizer, with a model card."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..engines.runs import ADAPTER_FILES, TOKENIZER_FILES, Run


def write_adapter(run: Run, out: Path) -> list[str]:
    """Copy the adapter weights, its config and the tokenizer into ``out``; write a model card. Returns files."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ADAPTER_FILES + TOKENIZER_FILES:
        src = run.adapter_dir / name
        if src.is_file():
            shutil.copy2(src, out / name)
            written.append(name)
    (out / "README.md").write_text(model_card(run, "adapter"), encoding="utf-8")
    written.append("README.md")
    return written


def model_card(run: Run, kind: str, extra: str = "") -> str:
    """A short model card: what this export is, its base, how it was trained, how to load it."""
    info = run.info
    dataset = info.get("dataset") or {}
    lines = [
        f"# {run.name} ({kind})",
        "",
        f"- base model: `{run.base_model}`",
        f"- training backend: {run.backend}",
        f"- dataset: `{dataset.get('train', '?')}` ({dataset.get('rows', '?')} rows)",
        f"- steps: {info.get('steps', '?')}, final loss: {info.get('final_loss', '?')}",
        f"- system prompt: {run.system_prompt!r}",
        "",
    ]
    if kind == "adapter":
        lines += [
            "Load it with:",
            "",
            "```python",
            "from transformers import AutoModelForCausalLM, AutoTokenizer",
            "from peft import PeftModel",
            "tokenizer = AutoTokenizer.from_pretrained('THIS_DIR')",
            "model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained('BASE'), 'THIS_DIR')",
            "```",
        ]
    return "\n".join(lines) + (("\n" + extra) if extra else "") + "\n"
