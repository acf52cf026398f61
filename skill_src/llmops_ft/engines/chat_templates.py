"""Chat templates: render a Hugging Face (Jinja) template the way transformers does, and tell its family.

The family decides the Ollama TEMPLATE, the stop tokens and the end-of-turn token written into a GGUF. The
renderer is used on the template embedded in a GGUF, so what we check is what llama.cpp / Ollama users get.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import UserError


@dataclass(frozen=True)
class Family:
    """A chat-template family: how to recognise it and how its turns end."""

    name: str
    markers: tuple[str, ...]  # every marker appears in the Jinja template of this family
    end_of_turn: tuple[str, ...]  # strings that end an assistant turn (Ollama stop parameters)
    system_block: str | None = None  # regex capturing a system turn's text in a rendered prompt


FAMILIES: tuple[Family, ...] = (
    Family("llama3", ("<|start_header_id|>", "<|eot_id|>"), ("<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"),
           r"<\|start_header_id\|>system<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>"),
    Family("gemma", ("<start_of_turn>", "<end_of_turn>"), ("<end_of_turn>", "<start_of_turn>")),
    Family("phi3", ("<|user|>", "<|end|>", "<|assistant|>"), ("<|end|>", "<|user|>", "<|endoftext|>")),
    Family("chatml", ("<|im_start|>", "<|im_end|>"), ("<|im_end|>", "<|im_start|>"),
           r"<\|im_start\|>system\n(.*?)<\|im_end\|>"),
    Family("mistral", ("[INST]", "[/INST]"), ("</s>", "[INST]", "[/INST]")),
)
FAMILY_NAMES = tuple(f.name for f in FAMILIES)


def detect_family(template: str | None) -> Family | None:
    """The family whose markers all appear in ``template`` (first match in FAMILIES order), else None."""
    if not template:
        return None
    for family in FAMILIES:
        if all(marker in template for marker in family.markers):
            return family
    return None


def family_by_name(name: str) -> Family:
    """The family called ``name`` (KeyError-free: a UserError lists the known ones)."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise UserError(f"unknown chat template family {name!r}; known: {', '.join(FAMILY_NAMES)}")


def _generation_extension():
    """Jinja extension for transformers' ``{% generation %}`` blocks: render the body unchanged."""
    from jinja2 import nodes
    from jinja2.ext import Extension

    class GenerationTag(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    return GenerationTag


@functools.lru_cache(maxsize=16)
def _compile(template: str):
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    # Same environment settings as transformers' apply_chat_template, so renders match byte for byte.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_generation_extension(), loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render(
    template: str,
    messages: list[dict[str, Any]],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    """Render a chat template as transformers' apply_chat_template(tokenize=False) would."""
    return _compile(template).render(
        messages=messages, add_generation_prompt=add_generation_prompt, bos_token=bos_token, eos_token=eos_token
    )


def default_system_prompt(template: str, family: Family | None, **tokens: str) -> str | None:
    """The system text a template inserts when the conversation has none (e.g. SmolLM2's), else None."""
    if family is None or family.system_block is None:
        return None
    rendered = render(template, [{"role": "user", "content": "\x00"}], **tokens)
    match = re.search(family.system_block, rendered.split("\x00")[0], re.S)
    return match.group(1) if match else None
