"""Ollama Modelfiles: for each chat-template family the Go TEMPLATE we write renders byte-identical to the model's
Jinja template (rendered here by our Go-template renderer), stop parameters and SYSTEM are right, and a template we
cannot reproduce is refused with one line.

Reference Jinja templates of the families come from two real sources read in place, never copied: SmolLM2's
template (the embedded model) and the template strings in the installed unsloth package's chat_templates.py
(parsed with ast: importing unsloth would patch transformers for the whole test session).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
from llmops_ft.errors import UserError
from llmops_ft.export.gotemplate import render_go
from llmops_ft.export.modelfile import choose_template, ollama_command, render_modelfile
from llmops_ft.export.templates import default_system_prompt, detect_family, family_by_name, render


def _unsloth_templates() -> dict[str, str]:
    source = Path(importlib.util.find_spec("unsloth").origin).parent / "chat_templates.py"
    found = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            found[node.targets[0].id] = node.value.value
    return found


UNSLOTH = _unsloth_templates()
# (reference template, family, variant we expect, bos text, eos text, tokenizer adds BOS)
CASES = {
    "chatml": (UNSLOTH["chatml_template"], "chatml", "chatml", "", "<|im_end|>", False),
    "llama-3": (UNSLOTH["llama3_template"], "llama3", "llama3", "<|begin_of_text|>", "<|eot_id|>", True),
    "phi-3": (UNSLOTH["phi3_template"], "phi3", "phi3", "<s>", "<|endoftext|>", False),
    "gemma": (UNSLOTH["gemma_template"], "gemma", "gemma-1", "<bos>", "<eos>", True),
    "mistral": (UNSLOTH["mistral_template"], "mistral", "mistral-v1", "<s>", "</s>", True),
}
STOPS = {
    "chatml": ["<|im_end|>", "<|im_start|>"],
    "llama3": ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"],
    "phi3": ["<|end|>", "<|user|>", "<|endoftext|>"],
    "gemma": ["<end_of_turn>", "<start_of_turn>"],
    "mistral": ["</s>", "[INST]", "[/INST]"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_family_gets_a_template_that_renders_identically(case):
    jinja, family_name, variant, bos, eos, add_bos = CASES[case]
    family = detect_family(jinja)
    assert family is not None and family.name == family_name
    name, go = choose_template(family, jinja, system="Answer as JSON.", bos_token=bos, eos_token=eos,
                               add_bos=add_bos)
    assert name == variant
    text = render_modelfile(f"m-{case}.gguf", family, go, "Answer as JSON.")
    lines = text.splitlines()
    assert lines[0] == f"FROM ./m-{case}.gguf" and lines[1].startswith('TEMPLATE """')
    assert [line.split('"')[1] for line in lines if line.startswith("PARAMETER stop")] == STOPS[family_name]
    assert lines[-1] == 'SYSTEM """Answer as JSON."""'
    assert bos not in go or not bos  # Ollama adds BOS itself; the TEMPLATE never writes it


def test_smollm2_template_gets_its_default_system_prompt(smollm2_dir):
    jinja = (smollm2_dir / "chat_template.jinja").read_text()
    family = family_by_name("chatml")
    system = default_system_prompt(jinja, family, bos_token="<|im_start|>", eos_token="<|im_end|>")
    assert system == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    name, go = choose_template(family, jinja, system=system, bos_token="<|im_start|>", eos_token="<|im_end|>",
                               add_bos=False)
    assert name == "chatml"
    # Without SYSTEM the template would drop the line SmolLM2 always saw in training: the renders then differ.
    with pytest.raises(UserError, match="no Ollama TEMPLATE we have reproduces this chatml-family"):
        choose_template(family, jinja, system=None, bos_token="<|im_start|>", eos_token="<|im_end|>",
                        add_bos=False)


def test_a_template_no_variant_reproduces_is_refused():
    odd = ("{% for m in messages %}<|im_start|>{{ m['role'] }}:\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
           "{% if add_generation_prompt %}<|im_start|>assistant:\n{% endif %}")
    with pytest.raises(UserError) as err:
        choose_template(detect_family(odd), odd, system=None, bos_token="", eos_token="", add_bos=False)
    message = str(err.value)
    assert "chatml renders '\\nAdd a task: call" in message and "template has ':\\nAdd a task" in message
    assert "write the Modelfile TEMPLATE by hand" in message
    assert detect_family("{{ messages }}") is None


def test_system_prompt_with_triple_quotes_is_refused():
    with pytest.raises(UserError, match='contains """'):
        render_modelfile("m.gguf", family_by_name("chatml"), "{{ .Prompt }}", 'say """hi"""')
    assert ollama_command("task-bot", "out/Modelfile") == "ollama create task-bot -f out/Modelfile"


def test_go_renderer_follows_go_semantics():
    data = {"System": "", "Messages": [{"Role": "user", "Content": "a"}, {"Role": "assistant", "Content": "b"}]}
    assert render_go("x  {{- .System -}}  y", data) == "xy"
    assert render_go('{{ if .System }}S{{ else if eq (len .Messages) 2 }}two{{ else }}other{{ end }}', data) == "two"
    loop = '{{ $n := 0 }}{{ range $i, $m := .Messages }}{{ $n = $i }}{{ $m.Role }}{{ end }}|{{ $n }}'
    assert render_go(loop, data) == "userassistant|1"
    assert render_go("{{ len (slice .Messages 1) }}{{ and 1 0 }}{{ or 0 \"z\" }}{{ not .System }}", data) == "10ztrue"
    with pytest.raises(ValueError, match="missing"):
        render_go("{{ if .System }}x", data)


def test_jinja_renderer_matches_transformers(smollm2_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": "again"}]
    for template in (tokenizer.chat_template, UNSLOTH["llama3_template"], UNSLOTH["gemma_template"]):
        ours = render(template, conversation, bos_token="<s>", eos_token="</s>")
        theirs = tokenizer.apply_chat_template(conversation, chat_template=template, add_generation_prompt=True,
                                               tokenize=False, bos_token="<s>", eos_token="</s>")
        assert ours == theirs
