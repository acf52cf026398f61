"""Ollama Modelfile for an exported GGUF: FROM, a TEMPLATE in Ollama's Go-template syntax for the model's chat
template family, a stop parameter per end-of-turn string, and the training system prompt as SYSTEM.

Ollama renders TEMPLATE itself (it does not run the Jinja template embedded in the GGUF), so each family's
template below must produce the same text as the Hugging Face template the model was trained with. BOS is never
written here: Ollama adds it when the GGUF says add_bos_token.
"""

from __future__ import annotations

from ..errors import UserError
from .templates import Family

# `$last` marks the final message: after a final user turn the template opens the assistant turn.
_LAST = "{{- $last := eq (len (slice $.Messages $i)) 1 }}"

OLLAMA_TEMPLATES: dict[str, str] = {
    "chatml": (
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{- range $i, $m := .Messages }}" + _LAST +
        '{{- if eq $m.Role "user" }}<|im_start|>user\n{{ $m.Content }}<|im_end|>\n'
        "{{ if $last }}<|im_start|>assistant\n{{ end }}"
        '{{- else if eq $m.Role "assistant" }}<|im_start|>assistant\n{{ $m.Content }}'
        "{{ if not $last }}<|im_end|>\n{{ end }}"
        "{{- end }}{{- end }}"
    ),
    "llama3": (
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{- range $i, $m := .Messages }}" + _LAST +
        '{{- if eq $m.Role "user" }}<|start_header_id|>user<|end_header_id|>\n\n{{ $m.Content }}<|eot_id|>'
        "{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}"
        '{{- else if eq $m.Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ $m.Content }}'
        "{{ if not $last }}<|eot_id|>{{ end }}"
        "{{- end }}{{- end }}"
    ),
    "mistral": (
        # Mistral's v0.3-style template puts the system prompt at the head of the last user turn.
        "{{- range $i, $m := .Messages }}" + _LAST +
        '{{- if eq $m.Role "user" }}[INST] {{ if and $.System $last }}{{ $.System }}\n\n{{ end }}'
        "{{ $m.Content }}[/INST]"
        '{{- else if eq $m.Role "assistant" }} {{ $m.Content }}{{ if not $last }}</s>{{ end }}'
        "{{- end }}{{- end }}"
    ),
    "gemma": (
        # Gemma has no system role: the system prompt opens the first user turn.
        "{{- $system := .System }}"
        "{{- range $i, $m := .Messages }}" + _LAST +
        '{{- if eq $m.Role "user" }}<start_of_turn>user\n'
        "{{ if $system }}{{ $system }}\n\n{{ $system = \"\" }}{{ end }}{{ $m.Content }}<end_of_turn>\n"
        "{{ if $last }}<start_of_turn>model\n{{ end }}"
        '{{- else if eq $m.Role "assistant" }}<start_of_turn>model\n{{ $m.Content }}'
        "{{ if not $last }}<end_of_turn>\n{{ end }}"
        "{{- end }}{{- end }}"
    ),
    "phi3": (
        "{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
        "{{- range $i, $m := .Messages }}" + _LAST +
        '{{- if eq $m.Role "user" }}<|user|>\n{{ $m.Content }}<|end|>\n'
        "{{ if $last }}<|assistant|>\n{{ end }}"
        '{{- else if eq $m.Role "assistant" }}<|assistant|>\n{{ $m.Content }}'
        "{{ if not $last }}<|end|>\n{{ end }}"
        "{{- end }}{{- end }}"
    ),
}


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise UserError(f'{what} contains """, which a Modelfile cannot quote; edit it out', field=what)
    return f'"""{text}"""'


def render_modelfile(gguf_name: str, family: Family, system: str | None) -> str:
    """The Modelfile text for the GGUF file ``gguf_name`` (a path relative to the Modelfile)."""
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {_quoted(OLLAMA_TEMPLATES[family.name], 'TEMPLATE')}"]
    lines += [f'PARAMETER stop "{stop}"' for stop in family.end_of_turn]
    if system:
        lines.append(f"SYSTEM {_quoted(system, 'system prompt')}")
    return "\n".join(lines) + "\n"


def ollama_command(model_name: str, modelfile_path: str) -> str:
    """The command that imports the export into Ollama."""
    return f"ollama create {model_name} -f {modelfile_path}"
