"""Model + LoRA setup, one function per backend, with the same LoRA semantics in both.

``unsloth``: FastLanguageModel.from_pretrained (load_in_4bit, dtype=None = auto on a GPU) and get_peft_model
with Unsloth's gradient checkpointing; Unsloth patches transformers process-wide, so it is imported before
anything else touches transformers. ``hf``: transformers + peft (+ bitsandbytes 4-bit). Both read safetensors
only, keep trust_remote_code off unless the config asks, and raise UserError for a target module the model
does not have.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import UserError

BACKENDS = ("unsloth", "hf")


@dataclass
class Environment:
    """Where this process runs: device, distributed rank and world size."""

    device: str  # "cuda" | "cpu"
    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes the run dir."""
        return self.rank == 0


def environment() -> Environment:
    """Device and torchrun/accelerate ranks (WORLD_SIZE, RANK, LOCAL_RANK)."""
    import torch

    return Environment(
        device="cuda" if torch.cuda.is_available() else "cpu",
        rank=int(os.environ.get("RANK", "0")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        world_size=int(os.environ.get("WORLD_SIZE", "1")),
    )


def choose_backend(name: str) -> tuple[str, str | None]:
    """(backend, note) by the plan's own decision (plan.backend.choose_backend), importing unsloth into this process.

    ``auto`` is unsloth when it imports, else hf with the reason in the note; ``unsloth`` that does not import is
    a UserError carrying the import error. Importing here, first, is deliberate: unsloth must patch transformers
    before transformers is used, and the plan made afterwards in this process reuses the answer.
    """
    from ..plan.backend import choose_backend as decide

    return decide(name, in_process=True)


def torch_dtype(name: str) -> Any:
    """torch dtype from its config name."""
    import torch

    return {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}[name]


def weights_dtype(precision: dict[str, Any], device: str) -> str:
    """The dtype the base weights load in: float32 on CPU (bf16 there is the Trainer's autocast: the residual
    stream, norms and LoRA weights stay fp32, and only the frozen linear layers are then stored in bf16, see
    frozen_linears_to_bf16), else the run's."""
    return "float32" if device == "cpu" else precision["dtype"]


def check_target_modules(model: Any, targets: list[str]) -> None:
    """UserError naming ``lora.target_modules`` when a target is not a module name of this model."""
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in targets if t not in names]
    if missing:
        linear = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                         if type(module).__name__ in ("Linear", "Linear4bit") and "." in name})
        raise UserError(f"not in this model: {', '.join(missing)} (its linear layers: {', '.join(linear)})",
                        field="lora.target_modules")


def lora_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """LoRA settings shared by both backends."""
    lora = config["lora"]
    return {
        "r": lora["r"],
        "lora_alpha": lora["alpha"],
        "lora_dropout": lora["dropout"],
        "target_modules": list(lora["target_modules"]),
        "use_rslora": lora["use_rslora"],
        "bias": "none",
    }


def load_unsloth(config: dict[str, Any], base: str, precision: dict[str, Any], env: Environment) -> Any:
    """A PEFT model from Unsloth's FastLanguageModel."""
    from unsloth import FastLanguageModel

    model_cfg = config["model"]
    # dtype=None lets Unsloth pick fp16/bf16 on a GPU (the same rule as resolve_precision); on CPU or when the
    # config names a dtype, pass it so the run uses what run.json records.
    dtype = None if (model_cfg["dtype"] == "auto" and env.device == "cuda") else torch_dtype(
        weights_dtype(precision, env.device))
    extra = {"device_map": {"": env.local_rank}} if env.device == "cuda" and env.world_size > 1 else {}
    model, _tokenizer = FastLanguageModel.from_pretrained(
        model_name=base,
        max_seq_length=model_cfg["max_seq_length"],
        dtype=dtype,
        load_in_4bit=model_cfg["load_in_4bit"],
        trust_remote_code=model_cfg["trust_remote_code"],
        use_safetensors=True,
        **extra,
    )
    check_target_modules(model, config["lora"]["target_modules"])
    checkpointing = config["training"]["gradient_checkpointing"]
    return FastLanguageModel.get_peft_model(
        model,
        **lora_kwargs(config),
        use_gradient_checkpointing=checkpointing if checkpointing == "unsloth" else bool(checkpointing),
        random_state=config["training"]["seed"],
        max_seq_length=model_cfg["max_seq_length"],
    )


def load_hf(config: dict[str, Any], base: str, precision: dict[str, Any], env: Environment) -> Any:
    """A PEFT model from transformers + peft; 4-bit NF4 through bitsandbytes when ``load_in_4bit``."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    model_cfg = config["model"]
    dtype = torch_dtype(weights_dtype(precision, env.device))
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": model_cfg["trust_remote_code"],
                              "use_safetensors": True}
    if model_cfg["load_in_4bit"]:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
        kwargs["device_map"] = {"": env.local_rank} if env.device == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    except OSError as exc:
        raise UserError(f"cannot load the model: {str(exc).splitlines()[0]}", file=base, field="model.name") from None
    model.config.use_cache = False
    if config["training"]["padding_free"]:
        from .varlen import use_varlen_attention

        use_varlen_attention(model)  # without flash-attn, attention per example instead of a dense block mask
    if model_cfg["load_in_4bit"]:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=bool(config["training"]["gradient_checkpointing"]),
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    check_target_modules(model, config["lora"]["target_modules"])
    torch.manual_seed(config["training"]["seed"])  # LoRA A init, as Unsloth's random_state
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", **lora_kwargs(config)))
    if env.device == "cpu" and precision["bf16"] and not model_cfg["load_in_4bit"]:
        frozen_linears_to_bf16(model)
    return model


def frozen_linears_to_bf16(model: Any) -> int:
    """Store the frozen linear layers in bfloat16 once, for bf16 autocast on CPU; return how many.

    Autocast rounds a float32 weight to bfloat16 for every matmul, at every step; stored rounded, the matmuls
    are the same, so losses and gradients are bit-identical and a step skips those casts. The LoRA weights, the
    norms, the embeddings and an LM head tied to them stay float32 (the embedding lookup is not autocast).
    """
    import torch

    tied = {id(model.get_input_embeddings().weight)}
    count = 0
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and not module.weight.requires_grad and id(module.weight) not in tied:
            module.to(torch.bfloat16)
            count += 1
    return count


def load_model(backend: str, config: dict[str, Any], base: str, precision: dict[str, Any], env: Environment) -> Any:
    """The PEFT model of ``backend``."""
    loader = load_unsloth if backend == "unsloth" else load_hf
    return loader(config, base, precision, env)


def unsloth_response_mask(tokenizer: Any, instruction: str, response: str) -> Any:
    """Unsloth's train_on_responses_only as a function of a batch {"input_ids", "labels"} -> {"labels"}.

    Given existing labels it keeps them only inside the assistant spans it finds, so applied after prep's mask
    the result is where both agree.
    """
    from unsloth import train_on_responses_only

    return train_on_responses_only(None, instruction_part=instruction, response_part=response,
                                   tokenizer=tokenizer, return_function=True)
