"""train/hooks.py: what a run plugs into transformers' Trainer, and the contracts those hooks rely on.

If a transformers or trl upgrade renames an overridden method, changes its arguments or moves the checkpoint
folder, these tests fail by name, instead of a run that silently stops publishing checkpoints or counting tokens.
The hf backend only (Unsloth patches transformers process-wide, see test_train_processes.py).
"""

from __future__ import annotations

import inspect

import pytest
from llmops_ft.train import checkpoints as ckpt
from llmops_ft.train.backends import Environment
from llmops_ft.train.data import to_dataset, tokenize_file
from test_train import TASK_API, tiny_config

CPU = Environment(device="cpu", rank=0, local_rank=0, world_size=1)
BF16 = {"dtype": "bfloat16", "fp16": False, "bf16": True}


def test_the_overridden_methods_and_hooks_keep_their_public_signatures():
    from transformers import Trainer, TrainerCallback
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
    from trl import SFTTrainer

    overridden = {(Trainer, "compute_loss"): ["self", "model", "inputs", "return_outputs", "num_items_in_batch"],
                  (SFTTrainer, "compute_loss"): ["self", "model", "inputs", "return_outputs", "num_items_in_batch"],
                  (Trainer, "training_step"): ["self", "model", "inputs", "num_items_in_batch"]}
    for (cls, name), params in overridden.items():
        assert list(inspect.signature(getattr(cls, name)).parameters) == params, (cls.__name__, name)
    assert callable(SFTTrainer.create_model_card)
    for hook in ("on_train_begin", "on_step_end", "on_log", "on_save"):
        assert list(inspect.signature(getattr(TrainerCallback, hook)).parameters)[:4] == [
            "self", "args", "state", "control"], hook
    assert PREFIX_CHECKPOINT_DIR == "checkpoint"  # PublishCheckpoints looks for output_dir/checkpoint-N


def test_publish_moves_the_saved_checkpoint_and_fails_loudly_when_it_is_elsewhere(tmp_path):
    from llmops_ft.train.hooks import PublishCheckpoints
    from transformers import TrainerControl, TrainerState, TrainingArguments

    checkpoints = tmp_path / "checkpoints"
    staging = ckpt.staging_dir(checkpoints)
    args = TrainingArguments(output_dir=str(staging), use_cpu=True, report_to="none")
    state = TrainerState(global_step=3, is_world_process_zero=True)
    hook = PublishCheckpoints(checkpoints, keep=None)
    with pytest.raises(RuntimeError, match="changed its checkpoint layout"):
        hook.on_save(args, state, TrainerControl())
    saved = staging / "checkpoint-3"
    saved.mkdir(parents=True)
    for name in ckpt.REQUIRED_FILES:
        (saved / name).write_text("x")
    hook.on_save(args, state, TrainerControl())
    assert [p.name for p in ckpt.complete_checkpoints(checkpoints)] == ["checkpoint-3"] and not staging.exists()


def batches(tokenizer, count: int = 4) -> dict[str, dict]:
    """A padded and a padding-free batch of Task API rows, collated by trl as training collates them."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    rows = [{"input_ids": e.input_ids, "labels": e.labels}
            for e in tokenize_file(tokenizer, TASK_API, 256, completion_only=True)[:count]]
    collate = {kind: DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id, padding_free=kind == "flat")
               for kind in ("padded", "flat")}
    return {kind: collator(rows) for kind, collator in collate.items()}


@pytest.mark.parametrize("kind", ["padded", "flat"])
def test_trainable_positions_loss_equals_the_models_own_loss_and_gradient(tiny_model_dir, kind):
    """Same loss and same gradient as transformers' ForCausalLMLoss over the full logits, from fewer positions."""
    import torch
    from llmops_ft.train.hooks import trainable_positions_loss
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    batch = batches(tokenizer)[kind]
    weight = model.model.layers[0].self_attn.q_proj.weight
    targets = int((batch["labels"][:, 1:] != -100).sum())
    for count in (None, torch.tensor(targets)):
        extra = {} if count is None else {"num_items_in_batch": count}
        model.zero_grad()
        full = model(**batch, use_cache=False, **extra).loss
        full.backward()
        expected = weight.grad.clone()
        model.zero_grad()
        ours, outputs = trainable_positions_loss(model, batch, count)
        ours.backward()
        assert ours.item() == pytest.approx(full.item(), rel=1e-5)
        assert torch.allclose(weight.grad, expected, rtol=1e-4, atol=1e-7)
        assert outputs.logits.shape[1] < batch["input_ids"].shape[1]  # only trainable positions reach the head


def test_bf16_autocasts_matmuls_over_float32_weights_on_cpu(tiny_model_dir, tmp_path):
    """precision bf16 on CPU: LoRA, norms and embeddings stay float32 and only the frozen linear layers are stored
    in bf16; the Trainer runs the matmuls under bf16 autocast, in training and in evaluation, the loss is ours and
    finite, and tokens are counted."""
    import torch
    from llmops_ft.train.backends import load_hf
    from llmops_ft.train.checkpoints import StopOnSignal
    from llmops_ft.train.hooks import TokenCounter
    from llmops_ft.train.trainer import build_trainer
    from transformers import AutoTokenizer

    config = tiny_config(tiny_model_dir, TASK_API, tmp_path / "run", max_steps=2, save_steps=100, padding_free=True)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = load_hf(config, str(tiny_model_dir), BF16, CPU)
    kept = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad or "norm" in n or "embed" in n}
    stored = {n: p.dtype for n, p in model.named_parameters() if "base_layer" in n}
    assert set(kept.values()) == {torch.float32} and set(stored.values()) == {torch.bfloat16} and stored
    seen = []
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    layer.base_layer.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    data = to_dataset(tokenize_file(tokenizer, TASK_API, 256, completion_only=True)[:16])
    counter = TokenCounter()
    trainer, _ = build_trainer(model, tokenizer, data, data.select(range(4)), config, precision=BF16, env=CPU,
                               backend="hf",
                               run_dir=tmp_path / "run", stop=StopOnSignal(), callbacks=[], counter=counter,
                               show_progress=False)
    assert trainer.args.bf16 and trainer.own_loss
    output = trainer.train()
    assert seen and set(seen) == {torch.bfloat16}
    assert layer.lora_A["default"].weight.dtype == torch.float32
    assert torch.isfinite(torch.tensor(output.training_loss)) and counter.local > 0
    assert torch.isfinite(torch.tensor(trainer.evaluate()["eval_loss"]))


def test_bf16_weights_stored_once_give_the_losses_and_gradients_autocast_gives(tiny_model_dir):
    """Frozen linear weights stored in bf16 change nothing under CPU autocast: the same loss and gradients, bit for
    bit, as float32 weights that autocast rounds at each matmul."""
    import torch
    from llmops_ft.train.backends import frozen_linears_to_bf16
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    ids = torch.randint(0, 1000, (2, 24))
    results = []
    for stored_in_bf16 in (False, True):
        torch.manual_seed(0)
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
                               LoraConfig(r=8, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
        for name, p in model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(p, std=0.5)  # B starts at zero: make the LoRA path count
        if stored_in_bf16:
            assert frozen_linears_to_bf16(model) > 3  # the LoRA base layers and the frozen linears around them
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        results.append((loss.item(), {n: p.grad for n, p in model.named_parameters() if p.requires_grad}))
    (loss32, grads32), (loss16, grads16) = results
    assert loss16 == loss32 and grads16.keys() == grads32.keys()
    assert all(torch.equal(grads16[n], grads32[n]) for n in grads32)
