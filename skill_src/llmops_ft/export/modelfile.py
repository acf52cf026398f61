"""Ollama Modelfile for an exported GGUF: FROM, a TEMPLATE in Ollama's Go-template syntax for the model's chat
template family, a stop parameter per end-of-turn string, and the training system prompt as SYSTEM.

Ollama renders TEMPLATE itself (it does not run the Jinja template embedded in the GGUF), so each family's
template below must produce the same text as the Hugging Face template the model was trained with. BOS is never
written here: Ollama adds it when the GGUF says add_bos_token. A SYSTEM whose date varied by training row holds
DATE_SLOTs; the TEMPLATE, which Ollama does expand, writes currentDate there (see system_prompt.py).

:func:`ollama_prompt` / :func:`modelfile_prompt` build the exact text Ollama feeds the model for a chat, so an
answer "through `ollama run`" can be reproduced with llama.cpp. tests/test_ollama_go.py holds both the templates
and this Python rendering to Go's own text/template.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from typing import Any

from ..engines.chat_templates import Family
from ..errors import UserError
from .system_prompt import DATE_SLOT, SystemPrompt

_DECLARE = "{{- $system := .System }}"  # opens the templates that keep .System in a variable
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
    _DECLARE + _RANGE
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


PROBE_DAY = dt.date(2026, 11, 24)  # what currentDate returns while the probes render
CLIENT_SYSTEM = "Answer as JSON."  # a client's own system message, which replaces SYSTEM
_TURNS = (
    [{"role": "user", "content": "Add a task: call the bank tomorrow."}],
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '{"action":"list"}'},
     {"role": "user", "content": "now the open ones"}],
    [{"role": "user", "content": "Füge „Steuererklärung“ für Montag hinzu — 日本語 ✓"}],
)


def probes(system: SystemPrompt | str | None) -> list[tuple[list[dict[str, str]], list[dict[str, str]]]]:
    """(what an Ollama client sends, what the model was trained on) pairs that both renderings must agree on.

    Without a client system message Ollama puts SYSTEM first (dated: as on PROBE_DAY); a client's own replaces it.
    """
    system = _as_system(system)
    trained = [{"role": "system", "content": system.on(PROBE_DAY)}] if system else []
    client = [{"role": "system", "content": CLIENT_SYSTEM}]
    pairs = []
    for turns in _TURNS:
        pairs += [(list(turns), trained + list(turns)), (client + list(turns), client + list(turns))]
    return pairs


def _as_system(system: SystemPrompt | str | None) -> SystemPrompt | None:
    return SystemPrompt(system) if isinstance(system, str) else system


def with_system(template: str, system: SystemPrompt | str | None) -> str:
    """``template`` (one of OLLAMA_TEMPLATES) made to expand a dated SYSTEM; unchanged for any other SYSTEM.

    Ollama passes SYSTEM through untouched, so the TEMPLATE checks for that exact text and writes the day in its
    DATE_SLOTs with currentDate; any other system text, a client's own, prints as it is.
    """
    system = _as_system(system)
    if system is None or not system.dated:
        return template
    pieces = " currentDate ".join(_go_literal(piece) for piece in system.text.split(DATE_SLOT))
    prologue = (f"{_DECLARE}{{{{- if eq $system {_go_literal(system.text)} }}}}"
                f"{{{{- $system = print {pieces} }}}}{{{{- end }}}}")
    body = template.removeprefix(_DECLARE).replace("$.System", "$system").replace(".System", "$system")
    return prologue + body


def _go_literal(text: str) -> str:
    """A Go string literal for ``text`` (JSON's escapes are a subset of Go's; non-ASCII stays as UTF-8)."""
    return json.dumps(text, ensure_ascii=False)


def choose_template(family: Family, jinja: str, *, system: SystemPrompt | str | None, bos_token: str,
                    eos_token: str, add_bos: bool) -> tuple[str, str]:
    """(variant name, Go template) that renders exactly as the model's Jinja template; UserError if none does.

    Each probe is rendered the way Ollama serves it (SYSTEM first unless the client sends a system message) and
    compared with the Jinja template on what the model was trained with. The Jinja side drops a leading BOS when
    the tokenizer adds one itself (Ollama adds it at tokenization).
    """
    from ..engines.chat_templates import render

    system = _as_system(system)
    pairs = probes(system)
    expected = []
    for _, trained in pairs:
        text = render(jinja, trained, bos_token=bos_token, eos_token=eos_token)
        expected.append(text[len(bos_token):] if add_bos and bos_token and text.startswith(bos_token) else text)
    first_miss = ""
    for name, go in OLLAMA_TEMPLATES[family.name]:
        go = with_system(go, system)
        got = [ollama_prompt(go, system.text if system else None, sent, today=PROBE_DAY) for sent, _ in pairs]
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


def ollama_prompt(template: str, system: str | None, messages: list[dict[str, str]], *,
                  today: dt.date | None = None) -> str:
    """The prompt text Ollama's chat endpoint feeds the model for ``messages`` under a Modelfile's TEMPLATE and
    SYSTEM, ``today`` being the server's date (default: the local date). BOS is not in it: Ollama's tokenizer
    adds it when the GGUF says add_bos_token.

    Ollama's rules: SYSTEM goes first as a system message unless the request opens with one; all system texts
    join with a blank line into .System and stay in .Messages; consecutive messages of one role (tool excepted)
    merge with a blank line. The tests hold this to Ollama's own Go text/template.
    """
    from .gotemplate import render_go

    if not messages:
        raise ValueError("Ollama renders no prompt for an empty chat")
    if messages[0].get("role") != "system" and system:
        messages = [{"role": "system", "content": system}, *messages]
    merged: list[dict[str, Any]] = []
    for message in messages:
        role, content = message.get("role", ""), message.get("content", "")
        if merged and merged[-1]["Role"] == role and role != "tool":
            merged[-1]["Content"] += "\n\n" + content
        else:
            merged.append({"Role": role, "Content": content, "Thinking": "", "Images": [], "ToolCalls": [],
                           "ToolName": "", "ToolCallID": ""})
    collated = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    data = {"System": collated, "Messages": merged, "Tools": None, "Response": "", "Think": False,
            "ThinkLevel": "", "IsThinkSet": False}
    return render_go(template, data, today=today)


def read_modelfile(text: str) -> dict[str, str]:
    '''TEMPLATE and SYSTEM of a Modelfile as render_modelfile writes them (triple-quoted, or one bare line).'''
    found = {}
    for match in re.finditer(r'^(TEMPLATE|SYSTEM)[ \t]+(?:"""(.*?)"""|(.*))$', text, re.M | re.S | re.I):
        found[match.group(1).upper()] = match.group(2) if match.group(2) is not None else match.group(3).strip()
    return found


def modelfile_prompt(modelfile: str, messages: list[dict[str, str]], *, today: dt.date | None = None) -> str:
    """The prompt Ollama builds for ``messages`` from a Modelfile's text (see :func:`ollama_prompt`)."""
    fields = read_modelfile(modelfile)
    if "TEMPLATE" not in fields:
        raise UserError("the Modelfile has no TEMPLATE", field="TEMPLATE")
    return ollama_prompt(fields["TEMPLATE"], fields.get("SYSTEM"), messages, today=today)


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise UserError(f'{what} contains """, which a Modelfile cannot quote; edit it out', field=what)
    dropped = sorted({f"U+{ord(c):04X}" for c in text if not _kept_by_ollama(c)})
    if dropped:
        raise UserError(f"{what} contains characters Ollama's Modelfile reader drops ({', '.join(dropped[:5])}); "
                        "edit them out", field=what)
    return f'"""{text}"""'


def _kept_by_ollama(char: str) -> bool:
    """Whether Ollama's Modelfile reader keeps ``char``: whitespace it parses, and what Go's strconv.IsPrint
    accepts (letters, marks, numbers, punctuation, symbols, ASCII space)."""
    return char in " \t\r\n" or unicodedata.category(char)[0] in "LMNPS"


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
