"""Dataset preparation: read, detect, check, normalise, dedupe, split, and count tokens with the chat template."""

from .prep import prepare
from .tokens import assistant_token_mask, render_chat

__all__ = ["prepare", "assistant_token_mask", "render_chat"]
