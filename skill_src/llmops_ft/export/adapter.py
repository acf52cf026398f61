"""Read a training run dir (run.json + adapter/) and export its adapter: PEFT weights, tokenizer, model card.

The run-dir contract: ``RUN/adapter`` holds ``PeftModel.save_pretrained`` output plus the tokenizer (chat
template included); ``RUN/run.json`` names the base model (a local folder or a hub id) and the training system
prompt.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
    "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
)


@dataclass
class Run:
    """A training run dir as export and evaluate see it."""

    path: Path
    adapter_dir: Path
    base_model: str
    system_prompt: str | None = None
    backend: str = "hf"
    trust_remote_code: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """A short model name for file names and `ollama create`."""
        return self.path.resolve().name


def load_run(run_dir: str | Path) -> Run:
    """Parse ``run_dir`` (or a bare adapter dir with adapter_config.json) into a :class:`Run`."""
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError("run dir not found", file=str(path))
    run_json = path / "run.json"
    if (path / "adapter_config.json").is_file() and not run_json.is_file():
        return _bare_adapter(path)
    if not run_json.is_file():
        raise UserError("not a training run dir (no run.json); pass the output_dir of train.py", file=str(path))
    try:
        info = json.loads(run_json.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON: {exc.msg}", file=str(run_json), line=exc.lineno) from None
    adapter_dir = path / "adapter"
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise UserError(f"adapter incomplete: missing {', '.join(missing)}", file=str(adapter_dir))
    base = info.get("base_model")
    if not isinstance(base, str) or not base:
        raise UserError("missing or empty", file=str(run_json), field="base_model")
    config = info.get("config") or {}
    return Run(
        path=path,
        adapter_dir=adapter_dir,
        base_model=_usable_base(base, config, run_json),
        system_prompt=info.get("system_prompt"),
        backend=info.get("backend", "hf"),
        trust_remote_code=bool((config.get("model") or {}).get("trust_remote_code", False)),
        info=info,
    )


def _bare_adapter(path: Path) -> Run:
    """An adapter dir without run.json: the base comes from adapter_config.json."""
    config = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    if not base:
        raise UserError("no base_model_name_or_path; pass a run dir or --base", file=str(path / "adapter_config.json"))
    from ..models import resolve_model

    return Run(path=path, adapter_dir=path, base_model=resolve_model(base), info={"adapter_only": True})


def _usable_base(base: str, config: dict[str, Any], run_json: Path) -> str:
    """The base model reference, re-resolved through the config's model name when the recorded folder moved."""
    from ..models import resolve_model

    if Path(base).is_dir() or (not Path(base).is_absolute() and base.count("/") == 1):
        return base
    name = (config.get("model") or {}).get("name")
    if name:
        return resolve_model(name)
    raise UserError(f"base model folder {base!r} no longer exists", file=str(run_json), field="base_model")


def load_base(run: Run, dtype: str = "float32"):
    """The base model in full precision: a 4-bit (bitsandbytes) base is dequantized, never merged into."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch_dtype = getattr(torch, dtype)
    try:
        config = AutoConfig.from_pretrained(run.base_model, trust_remote_code=run.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            run.base_model, dtype=torch_dtype, trust_remote_code=run.trust_remote_code
        )
    except OSError as exc:
        raise UserError(f"cannot load the base model {run.base_model!r} ({str(exc).splitlines()[0]})",
                        file=str(run.path / "run.json"), field="base_model") from None
    quant = getattr(config, "quantization_config", None)
    if quant is not None:
        # A pre-quantized base (e.g. a -bnb-4bit hub repo): bring the weights back to floats first.
        model = model.dequantize().to(torch_dtype)
    model.eval()
    return model


def load_tuned(run: Run, dtype: str = "float32"):
    """Base + adapter as an (unmerged) PeftModel in ``dtype``, eval mode."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base(run, dtype), str(run.adapter_dir))
    model.eval()
    return model


def load_tokenizer(path: str | Path):
    """The tokenizer saved with the adapter (or a model folder), chat template included."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    # transformers 5 ignores this for BPE tokenizers (and warns on every load); say what actually happens
    tokenizer.clean_up_tokenization_spaces = False
    if not tokenizer.chat_template:
        raise UserError("tokenizer has no chat template; save it with the adapter", file=str(path))
    return tokenizer


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
