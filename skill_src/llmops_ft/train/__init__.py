"""Training: ``train(config, *, resume="auto", dry_run=False, force=False) -> summary`` (see pipeline.py).

Modules: data (rows -> ids + assistant-only labels, fail-fast check), backends (unsloth / hf model + LoRA),
trainer (SFTTrainer with every argument from the config), hooks (its subclass and callbacks: public hooks
only), checkpoints (atomic, resume, signals), metrics (metrics.jsonl, loss.png, MFU), runinfo (run.json,
model card), command (the CLI).
Heavy libraries are imported inside functions, so importing this package is cheap.
"""

from .pipeline import train

__all__ = ["train"]
