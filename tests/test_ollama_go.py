"""Go's own text/template, with Ollama's chat semantics, renders every Modelfile TEMPLATE we write.

The renderer is tests/go/ollama_render (standard library only), built here with `go build` into pytest's cache.
It puts the Modelfile SYSTEM first when a request has none, collates system messages into .System while keeping
them in .Messages, merges consecutive same-role messages and runs the template with missingkey=zero and
Ollama's function names, currentDate fixed by -date. Against it:

- each family's TEMPLATE equals the model's Jinja template as transformers' apply_chat_template renders it, on
  multi-turn, system, no-system and non-ASCII conversations;
- our Python renderer (export-time verification, where no Go is installed) equals Go, non-ASCII literals too;
- a dated SYSTEM gives the training prompt of the day, with and without a client system message.

Go is required: without it these tests fail (CI installs golang-go in .ci/run), they are never skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from llmops_ft.engines.chat_templates import detect_family, family_by_name
from llmops_ft.export.gotemplate import render_go
from llmops_ft.export.modelfile import (
    OLLAMA_TEMPLATES,
    choose_template,
    modelfile_prompt,
    ollama_prompt,
    read_modelfile,
    render_modelfile,
    with_system,
)
from llmops_ft.export.system_prompt import DATE_SLOT, SystemPrompt, classify
from test_export_modelfile import CASES

GO_SOURCE = Path(__file__).resolve().parent / "go" / "ollama_render"
DAY = dt.date(2027, 3, 9)
TASK_API = "Today is {}. Reply with one Task API call as JSON; use clarify if a detail is missing."

USER = {"role": "user", "content": "Add a task: call the bank tomorrow."}
MULTI = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": '{"action":"list"}'},
         {"role": "user", "content": "now the open ones"}]
NON_ASCII = [{"role": "user", "content": "Füge „Steuererklärung“ hinzu — 日本語 😀"},
             {"role": "assistant", "content": '{"action":"create","title":"Steuererklärung"}'},
             {"role": "user", "content": "Ça marche ? ¿Y mañana?"}]
CLIENT = {"role": "system", "content": "Réponds en JSON, s'il te plaît."}
CONVERSATIONS = {"one turn": [USER], "multi-turn": MULTI, "non-ASCII": NON_ASCII, "system": [CLIENT, USER],
                 "system multi-turn": [CLIENT, *MULTI], "system non-ASCII": [CLIENT, *NON_ASCII]}


@pytest.fixture(scope="session")
def go_render(request) -> Callable[[list[dict], dt.date], list[str]]:
    """render(cases, day): Go's renderings of [{"template", "system", "messages"}] with currentDate = day."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is not installed: these tests render Modelfile TEMPLATEs with Go's own text/template. "
                    "Install it (Debian: apt-get install golang-go; .ci/run does this before make test)")
    cache = Path(request.config.cache.mkdir("ollama-render"))
    env = {**os.environ, "GOCACHE": str(cache / "go-build"), "GOPATH": str(cache / "gopath"), "GOTOOLCHAIN": "local",
           "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}
    binary = cache / "ollama_render"
    built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_SOURCE, env=env, capture_output=True,
                           text=True, timeout=600)
    if built.returncode != 0:
        pytest.fail(f"go build of {GO_SOURCE.name} failed: {built.stderr.strip()}")

    def render(cases: list[dict], day: dt.date = DAY) -> list[str]:
        proc = subprocess.run([str(binary), "-date", day.isoformat()], input=json.dumps(cases), capture_output=True,
                              text=True, check=True, timeout=120)
        results = json.loads(proc.stdout)
        errors = [r["error"] for r in results if "error" in r]
        assert not errors, errors[0]
        return [r["prompt"] for r in results]

    render.binary = binary
    return render


def _apply_chat_template(tokenizer, jinja: str, messages: list[dict], bos: str, eos: str, add_bos: bool) -> str:
    """transformers' rendering, less the BOS that Ollama's tokenizer adds itself when the GGUF says so."""
    text = tokenizer.apply_chat_template(messages, chat_template=jinja, add_generation_prompt=True, tokenize=False,
                                         bos_token=bos, eos_token=eos)
    return text[len(bos):] if add_bos and bos and text.startswith(bos) else text


@pytest.fixture(scope="module")
def tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def _references(smollm2_dir: Path) -> dict[str, tuple]:
    """CASES (unsloth's templates) plus SmolLM2's own: (jinja, family, bos, eos, tokenizer adds BOS)."""
    refs = {case: (jinja, family, bos, eos, add_bos) for case, (jinja, family, _, bos, eos, add_bos) in CASES.items()}
    refs["smollm2"] = ((smollm2_dir / "chat_template.jinja").read_text(), "chatml", "<|im_start|>", "<|im_end|>",
                       False)
    return refs


@pytest.mark.parametrize("modelfile_system", ["Answer as JSON.", None], ids=["SYSTEM", "no SYSTEM"])
@pytest.mark.parametrize("case", [*sorted(CASES), "smollm2"])
def test_go_renders_each_family_like_apply_chat_template(case, modelfile_system, go_render, tokenizer, smollm2_dir):
    jinja, family_name, bos, eos, add_bos = _references(smollm2_dir)[case]
    if case == "smollm2" and modelfile_system is None:  # its template adds its own default system prompt
        modelfile_system = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    family = detect_family(jinja)
    assert family.name == family_name
    _, go = choose_template(family, jinja, system=modelfile_system, bos_token=bos, eos_token=eos, add_bos=add_bos)
    head = [{"role": "system", "content": modelfile_system}] if modelfile_system else []
    expected = {name: _apply_chat_template(tokenizer, jinja, conv if conv[0]["role"] == "system" else head + conv,
                                           bos, eos, add_bos) for name, conv in CONVERSATIONS.items()}
    got = go_render([{"template": go, "system": modelfile_system or "", "messages": conv}
                     for conv in CONVERSATIONS.values()])
    assert dict(zip(CONVERSATIONS, got, strict=True)) == expected
    assert "Steuererklärung" in expected["non-ASCII"] and "Réponds" in expected["system non-ASCII"]


# Conversations on which Ollama's own rules matter: merged same-role turns, several or late system messages.
OLLAMA_RULES = [
    [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    [{"role": "system", "content": "one"}, {"role": "system", "content": "two"}, {"role": "user", "content": "q"}],
    [{"role": "user", "content": "q"}, {"role": "system", "content": "late"}, {"role": "user", "content": "r"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}, {"role": "assistant", "content": "y"}],
    [{"role": "user", "content": ""}],
    [CLIENT, *NON_ASCII],
    NON_ASCII,
]


def _every_template() -> list[str]:
    dated = SystemPrompt(f"Heute ist der {DATE_SLOT} – «{DATE_SLOT}».", dated=True)
    plain = [go for variants in OLLAMA_TEMPLATES.values() for _, go in variants]
    return plain + [with_system(go, dated) for go in plain]


def test_python_renderer_equals_go_on_every_template(go_render):
    systems = ["", "Answer as JSON.", f"Heute ist der {DATE_SLOT} – «{DATE_SLOT}».", "Sé breve. 简短"]
    cases = [{"template": go, "system": system, "messages": conv}
             for go in _every_template() for system in systems for conv in OLLAMA_RULES]
    got = go_render(cases)
    ours = [ollama_prompt(c["template"], c["system"], c["messages"], today=DAY) for c in cases]
    mismatches = [i for i, (a, b) in enumerate(zip(ours, got, strict=True)) if a != b]
    assert not mismatches, (cases[mismatches[0]], ours[mismatches[0]], got[mismatches[0]])
    merged = go_render([{"template": OLLAMA_TEMPLATES["chatml"][0][1], "system": "", "messages": OLLAMA_RULES[1]}])
    assert merged == ["<|im_start|>system\none\n\ntwo<|im_end|>\n<|im_start|>user\nq<|im_end|>\n"
                      "<|im_start|>assistant\n"]


# Literals whose Python rendering used to differ from Go's: non-ASCII, escapes, "}}" in a string, Go's trimming.
LITERALS = [
    '{{ "Grüße, 日本, 😀" }}',
    '{{ if eq .System "Grüße" }}match{{ else }}no match{{ end }}',
    '{{ "\\u00e9\\U0001F600\\x41\\101\\t|\\"q\\"|\\\\" }}',
    '{{ "\\xc3\\xa9" }}',
    "{{ `raw ü \\n` }}",
    '{{ "a}}b" }}|{{ "{{ currentDate }}" }}',
    "x\u00a0 \n {{- .System }} \u3000\t{{- 1 -}} \u00a0y",
    "{{ len .System }}|{{ len \"日本\" }}",
    '{{ print "a" 1 2 "b" currentDate }}|{{ yesterdayDate }}|{{ .Missing }}',
    '{{ $s := "é" }}{{ if eq $s "é" }}{{ $s = print $s "ü" }}{{ end }}{{ $s }}',
]


def test_python_renderer_equals_go_on_non_ascii_literals(go_render):
    cases = [{"template": text + "{{ if .Messages }}{{ end }}", "system": "Grüße", "messages": [USER]}
             for text in LITERALS]
    got = go_render(cases)
    ours = [ollama_prompt(c["template"], c["system"], c["messages"], today=DAY) for c in cases]
    assert ours == got
    assert got[0] == "Grüße, 日本, 😀" and got[1] == "match" and got[3] == "é"  # garbled to 'GrÃ¼Ãe' before
    assert got[6] == "x\u00a0Grüße \u30001\u00a0y"  # Go trims ASCII space only; Python's strip() took U+00A0 too
    assert got[7] == "7|6"  # len counts UTF-8 bytes
    assert render_go('{{ "Grüße" }}', {}) == "Grüße"


@pytest.mark.parametrize("prompt", [TASK_API, "Heute ist {}. Antworte nur mit JSON – kurz.",
                                    "Date: {} (UTC). Treat dates before {} as past."])
@pytest.mark.parametrize("case", ["smollm2", "llama-3", "gemma", "mistral", "phi-3"])
def test_dated_system_gives_the_training_prompt_of_the_day(case, prompt, go_render, tokenizer, smollm2_dir):
    jinja, _, bos, eos, add_bos = _references(smollm2_dir)[case]
    rows = [prompt.format(*[day] * prompt.count("{}")) for day in ("2026-11-24", "2027-01-05", "2026-12-31")]
    trained = classify(rows)
    assert trained.kind == "dated" and trained.system.text == prompt.format(*[DATE_SLOT] * prompt.count("{}"))
    _, go = choose_template(detect_family(jinja), jinja, system=trained.system, bos_token=bos, eos_token=eos,
                            add_bos=add_bos)
    for day in (DAY, dt.date(2028, 2, 29)):
        today = prompt.format(*[day.isoformat()] * prompt.count("{}"))
        for turns in ([USER], NON_ASCII):
            got = go_render([{"template": go, "system": trained.system.text, "messages": turns},
                             {"template": go, "system": trained.system.text, "messages": [CLIENT, *turns]}], day)
            assert got[0] == _apply_chat_template(tokenizer, jinja, [{"role": "system", "content": today}, *turns],
                                                  bos, eos, add_bos)
            assert got[1] == _apply_chat_template(tokenizer, jinja, [CLIENT, *turns], bos, eos, add_bos)
            assert today in got[0] and DATE_SLOT not in got[0] and "Réponds" in got[1] and today not in got[1]


def test_modelfile_prompt_is_what_ollama_builds(go_render, smollm2_dir, tmp_path):
    jinja = (smollm2_dir / "chat_template.jinja").read_text()
    system = SystemPrompt(TASK_API.format(DATE_SLOT), dated=True)
    _, go = choose_template(family_by_name("chatml"), jinja, system=system, bos_token="<|im_start|>",
                            eos_token="<|im_end|>", add_bos=False)
    text = render_modelfile("m-q8_0.gguf", family_by_name("chatml"), go, system.text)
    assert read_modelfile(text) == {"TEMPLATE": go, "SYSTEM": system.text}
    for turns in ([USER], MULTI, [CLIENT, *NON_ASCII]):
        assert modelfile_prompt(text, turns, today=DAY) == go_render(
            [{"template": go, "system": system.text, "messages": turns}])[0]
    assert modelfile_prompt(text, [USER], today=DAY).startswith(
        f"<|im_start|>system\n{TASK_API.format(DAY.isoformat())}<|im_end|>\n<|im_start|>user\n")


def test_characters_ollamas_modelfile_reader_drops_are_refused(go_render):
    from llmops_ft.errors import UserError
    from llmops_ft.export.modelfile import _kept_by_ollama

    probe = "a é 日 😀\t\r\n\u00a0\u200b\u200d\u00ad\ufeff\u2028\x07\x1b\u0301\u3000«»–"
    dropped = json.loads(subprocess.run([str(go_render.binary), "-unprintable"], input=json.dumps([probe]),
                                        capture_output=True, text=True, check=True).stdout)[0]
    assert sorted({ord(c) for c in probe if not _kept_by_ollama(c)}) == sorted(set(dropped))
    assert 0xA0 in dropped and 0x200D in dropped and ord("😀") not in dropped
    with pytest.raises(UserError, match=r"drops \(U\+00A0\); edit them out"):
        render_modelfile("m.gguf", family_by_name("chatml"), "{{ .Prompt }}", "Sé\u00a0breve")
