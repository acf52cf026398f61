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
_RANGE = "{{- range $i, $m := .Messages }}" + _LAST
_END = "{{- end }}{{- end }}"


# Turn shapes with «slots» filled per family (plain replace: the slots never occur in Go template syntax).
_OWN_SYSTEM_TURN = (
    "{{- if .System }}«system»{{ .System }}«end»{{ end }}" + _RANGE
    + '{{- if eq $m.Role "user" }}«user»{{ $m.Content }}«end»{{ if $last }}«assistant»{{ end }}'
    + '{{- else if eq $m.Role "assistant" }}«assistant»{{ $m.Content }}{{ if not $last }}«end»{{ end }}' + _END
)
_SYSTEM_IN_FIRST_USER_TURN = (
    "{{- $system := .System }}" + _RANGE
    + '{{- if eq $m.Role "user" }}«user»{{ if $system }}{{ $system }}«joiner»{{ $system = "" }}{{ end }}'
    + "{{ $m.Content }}«user_end»{{ if $last }}«assistant»{{ end }}"
    + '{{- else if eq $m.Role "assistant" }}«assistant»{{ $m.Content }}{{ if not $last }}«end»{{ end }}' + _END
)


def _fill(shape: str, **slots: str) -> str:
    for name, value in slots.items():
        shape = shape.replace(f"«{name}»", value)
    return shape


# family -> variants (name, Ollama Go template); the first whose render equals the model's Jinja template wins.
OLLAMA_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "chatml": (("chatml", _fill(_OWN_SYSTEM_TURN, system="<|im_start|>system\n", user="<|im_start|>user\n",
                                assistant="<|im_start|>assistant\n", end="<|im_end|>\n")),),
    "llama3": (("llama3", _fill(_OWN_SYSTEM_TURN, system="<|start_header_id|>system<|end_header_id|>\n\n",
                                user="<|start_header_id|>user<|end_header_id|>\n\n",
                                assistant="<|start_header_id|>assistant<|end_header_id|>\n\n", end="<|eot_id|>")),),
    "phi3": (("phi3", _fill(_OWN_SYSTEM_TURN, system="<|system|>\n", user="<|user|>\n", assistant="<|assistant|>\n",
                            end="<|end|>\n")),),
    "gemma": tuple(
        (name, _fill(_SYSTEM_IN_FIRST_USER_TURN, user="<start_of_turn>user\n", joiner=joiner,
                     user_end="<end_of_turn>\n", assistant="<start_of_turn>model\n", end="<end_of_turn>\n"))
        for name, joiner in (("gemma-3", "\n\n"), ("gemma-1", " "))
    ),
    "mistral": (
        # v0.3: the system prompt heads the LAST user turn, "[/INST]" without a space, answers after a space
        ("mistral-v3", _RANGE + '{{- if eq $m.Role "user" }}[INST] {{ if and $.System $last }}{{ $.System }}\n\n'
                       '{{ end }}{{ $m.Content }}[/INST]{{- else if eq $m.Role "assistant" }} {{ $m.Content }}'
                       "{{ if not $last }}</s>{{ end }}" + _END),
        ("mistral-v1", _fill(_SYSTEM_IN_FIRST_USER_TURN, user="[INST] ", joiner=" ", user_end=" [/INST]", assistant="",
                             end="</s>")),
    ),
}


def probes(system: str | None) -> list[list[dict[str, str]]]:
    """Conversations both renderings must agree on: one turn, and a multi-turn exchange."""
    head = [{"role": "system", "content": system}] if system else []
    return [
        head + [{"role": "user", "content": "Add a task: call the bank tomorrow."}],
        head + [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '{"action":"list"}'},
                {"role": "user", "content": "now the open ones"}],
    ]


def choose_template(family: Family, jinja: str, *, system: str | None, bos_token: str, eos_token: str,
                    add_bos: bool) -> tuple[str, str]:
    """(variant name, Go template) that renders exactly as the model's Jinja template; UserError if none does.

    The Jinja side drops a leading BOS when the tokenizer adds one itself (Ollama adds it at tokenization).
    """
    from .gotemplate import render_go
    from .templates import render

    expected = []
    for conversation in probes(system):
        text = render(jinja, conversation, bos_token=bos_token, eos_token=eos_token)
        expected.append(text[len(bos_token):] if add_bos and bos_token and text.startswith(bos_token) else text)
    first_miss = ""
    for name, go in OLLAMA_TEMPLATES[family.name]:
        got = [render_go(go, {"System": system or "", "Messages": _ollama_messages(c)}) for c in probes(system)]
        if got == expected:
            return name, go
        if not first_miss:
            i = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b)
            at = next((k for k, (a, b) in enumerate(zip(got[i], expected[i], strict=False)) if a != b),
                      min(len(got[i]), len(expected[i])))
            first_miss = f"{name} renders {got[i][at:at + 30]!r} where the model's template has " \
                         f"{expected[i][at:at + 30]!r}"
    raise UserError(
        f"no Ollama TEMPLATE we have reproduces this {family.name}-family chat template ({first_miss}); export "
        "without --ollama and write the Modelfile TEMPLATE by hand",
        field="--ollama",
    )


def _ollama_messages(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation as Ollama passes it to a template (.Role/.Content; the system prompt goes in .System)."""
    return [{"Role": m["role"], "Content": m["content"]} for m in conversation if m["role"] != "system"]


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise UserError(f'{what} contains """, which a Modelfile cannot quote; edit it out', field=what)
    return f'"""{text}"""'


def render_modelfile(gguf_name: str, family: Family, template: str, system: str | None) -> str:
    """The Modelfile text for the GGUF file ``gguf_name`` (a path relative to the Modelfile)."""
    lines = [f"FROM ./{gguf_name}", f"TEMPLATE {_quoted(template, 'TEMPLATE')}"]
    lines += [f'PARAMETER stop "{stop}"' for stop in family.end_of_turn]
    if system:
        lines.append(f"SYSTEM {_quoted(system, 'system prompt')}")
    return "\n".join(lines) + "\n"


def ollama_command(model_name: str, modelfile_path: str) -> str:
    """The command that imports the export into Ollama."""
    return f"ollama create {model_name} -f {modelfile_path}"
