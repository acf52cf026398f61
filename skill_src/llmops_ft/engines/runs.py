"""Read a training run dir (run.json + adapter/) and load its base model, tuned model and tokenizer.

The run-dir contract: ``RUN/adapter`` holds ``PeftModel.save_pretrained`` output plus the tokenizer (chat
template included); ``RUN/run.json`` names the base model (a local folder or a hub id) and the training system
prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io import read_json_file
from .model_files import HUB_ID, check_adapter_folder, loading

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
    "chat_template.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
)


@dataclass
class Run:
    """A training run dir as export and evaluate see it.

    ``trust_remote_code`` is what the command line allowed (--trust-remote-code), never what run.json says:
    a run folder may come from someone else. The recorded value is only shown (:func:`trust_note`).
    """

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

    @property
    def recorded_trust_remote_code(self) -> bool:
        """What the run's own config said about running model repository code (shown, not obeyed)."""
        config = self.info.get("config") if isinstance(self.info.get("config"), dict) else {}
        model = config.get("model") if isinstance(config.get("model"), dict) else {}
        return model.get("trust_remote_code") is True


def trust_note(run: Run) -> str | None:
    """A note when run.json recorded trust_remote_code but this command was not given --trust-remote-code."""
    if run.recorded_trust_remote_code and not run.trust_remote_code:
        return ("run.json records trust_remote_code: true; this command runs no code from the model repository "
                "unless you pass --trust-remote-code")
    return None


def load_run(run_dir: str | Path, *, trust_remote_code: bool = False, field: str | None = None) -> Run:
    """Parse ``run_dir`` (or a bare adapter dir with adapter_config.json) into a :class:`Run`.

    Every file is checked before a library reads it: run.json, adapter_config.json and the adapter's
    safetensors; a damaged or incomplete one is a UserError naming the file (and line).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise UserError("run dir not found", file=str(path), field=field)
    run_json = path / "run.json"
    if (path / "adapter_config.json").is_file() and not run_json.is_file():
        return _bare_adapter(path, trust_remote_code)
    if not run_json.is_file():
        raise UserError("not a training run dir (no run.json); pass the output_dir of train.py", file=str(path),
                        field=field)
    info = read_json_file(run_json)
    if not isinstance(info, dict):
        raise UserError("expected a JSON object", file=str(run_json))
    adapter_dir = path / "adapter"
    check_adapter_folder(adapter_dir)
    base = info.get("base_model")
    if not isinstance(base, str) or not base:
        raise UserError("missing or empty", file=str(run_json), field="base_model")
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    system = info.get("system_prompt")
    return Run(
        path=path,
        adapter_dir=adapter_dir,
        base_model=_usable_base(base, config, run_json),
        system_prompt=system if isinstance(system, str) else None,
        backend=info.get("backend") if info.get("backend") in ("hf", "unsloth") else "hf",
        trust_remote_code=trust_remote_code,
        info=info,
    )


def _bare_adapter(path: Path, trust_remote_code: bool) -> Run:
    """An adapter dir without run.json: the base comes from adapter_config.json."""
    config = check_adapter_folder(path)
    base = config.get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise UserError("no base_model_name_or_path; pass a run dir or --base", file=str(path / "adapter_config.json"))
    from .models import resolve_model

    return Run(path=path, adapter_dir=path, base_model=resolve_model(base, field="base_model_name_or_path"),
               trust_remote_code=trust_remote_code, info={"adapter_only": True})


def _usable_base(base: str, config: dict[str, Any], run_json: Path) -> str:
    """The base model reference, re-resolved through the config's model name when the recorded folder moved."""
    from .models import resolve_model

    if Path(base).is_dir() or (not Path(base).is_absolute() and HUB_ID.match(base)):
        return resolve_model(base, field="base_model")
    model = config.get("model") if isinstance(config.get("model"), dict) else {}
    name = model.get("name")
    if isinstance(name, str) and name:
        return resolve_model(name, field="config.model.name")
    raise UserError(f"base model folder {base!r} no longer exists", file=str(run_json), field="base_model")


def load_base(run: Run, dtype: str = "float32"):
    """The base model in full precision: a 4-bit (bitsandbytes) base is dequantized, never merged into."""
    import torch

    from .models import load_causal_lm

    torch_dtype = getattr(torch, dtype)
    model = load_causal_lm(run.base_model, field="base_model", trust_remote_code=run.trust_remote_code,
                           dtype=torch_dtype)
    if getattr(model.config, "quantization_config", None) is not None:
        # A pre-quantized base (e.g. a -bnb-4bit hub repo): bring the weights back to floats first.
        model = model.dequantize().to(torch_dtype)
    model.eval()
    return model


def load_tuned(run: Run, dtype: str = "float32"):
    """Base + adapter as an (unmerged) PeftModel in ``dtype``, eval mode."""
    from peft import PeftModel

    base = load_base(run, dtype)
    with loading(str(run.adapter_dir), "adapter"):
        model = PeftModel.from_pretrained(base, str(run.adapter_dir))
    model.eval()
    return model


def load_tokenizer(path: str | Path, trust_remote_code: bool = False):
    """The tokenizer saved with the adapter (or a model folder), chat template included."""
    from .models import load_auto_tokenizer

    tokenizer = load_auto_tokenizer(str(path), trust_remote_code=trust_remote_code)
    # transformers 5 ignores this for BPE tokenizers (and warns on every load); say what actually happens
    tokenizer.clean_up_tokenization_spaces = False
    if not tokenizer.chat_template:
        raise UserError("tokenizer has no chat template; save it with the adapter", file=str(path))
    return tokenizer
