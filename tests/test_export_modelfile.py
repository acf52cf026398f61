"""Ollama Modelfiles: for each chat-template family the Go TEMPLATE we write renders byte-identical to the model's
Jinja template (rendered here by our Python Go-template renderer; test_ollama_go.py holds it to Go itself), stop
parameters are right, SYSTEM is the system prompt the training rows had (shared, or dated and rebuilt with
currentDate), and a template or prompt a Modelfile cannot carry is refused with one line.

Reference Jinja templates of the families come from two real sources read in place, never copied: SmolLM2's
template (the embedded model) and the template strings in the installed unsloth package's chat_templates.py
(parsed with ast: importing unsloth would patch transformers for the whole test session).
"""

from __future__ import annotations

import ast
import datetime as dt
import importlib.util
import json
from pathlib import Path

import pytest
from llmops_ft.engines.chat_templates import default_system_prompt, detect_family, family_by_name, render
from llmops_ft.errors import UserError
from llmops_ft.export.gotemplate import render_go
from llmops_ft.export.modelfile import (
    PROBE_DAY,
    choose_template,
    modelfile_prompt,
    ollama_command,
    probes,
    read_modelfile,
    render_modelfile,
)
from llmops_ft.export.system_prompt import DATE_SLOT, SystemPrompt, classify, training_system


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


TASK_API = "Today is {}. Reply with one Task API call as JSON; use clarify if a detail is missing."


@pytest.mark.parametrize(("prompts", "kind", "system"), [
    ([TASK_API.format("2026-11-24")] * 3, "shared", TASK_API.format("2026-11-24")),
    ([TASK_API.format(d) for d in ("2026-11-24", "2027-02-28", "2026-11-24")], "dated", TASK_API.format(DATE_SLOT)),
    ([f"Le {d} : réponds. Avant {d} = passé." for d in ("2026-01-02", "2026-01-03")], "dated",
     f"Le {DATE_SLOT} : réponds. Avant {DATE_SLOT} = passé."),
    ([None, None], "none", None),
    ([TASK_API.format("2026-11-24"), None], "mixed", None),
    (["Today is Tuesday 2026-11-24.", "Today is Wednesday 2026-11-25."], "varied", None),  # weekday differs too
    (["Reply as JSON.", "Reply as YAML."], "varied", None),
    (["Due 2026-11-24, start 2026-11-20.", "Due 2026-11-25, start 2026-11-21."], "varied", None),  # two days
    (["Today is 2026-13-40.", "Today is 2026-13-41."], "varied", None),  # not calendar dates
    ([], "unknown", None),
])
def test_training_rows_decide_the_system_prompt(prompts, kind, system):
    trained = classify(prompts)
    assert trained.kind == kind
    assert (trained.system.text if trained.system else None) == system
    assert (trained.rows_with, trained.rows_without) == (sum(p is not None for p in prompts),
                                                         sum(p is None for p in prompts))
    assert (trained.note() is None) == (kind in ("shared", "none"))


def test_dated_system_prompt_expands_to_the_day():
    system = classify([TASK_API.format("2026-11-24"), TASK_API.format("2026-12-01")]).system
    assert system.dated and system.on(dt.date(2027, 1, 5)) == TASK_API.format("2027-01-05")
    assert SystemPrompt("fixed 2026-01-01").on(dt.date(2027, 1, 5)) == "fixed 2026-01-01"


def _run_dir(root: Path, rows: list[dict], *, recorded: str | None = None) -> tuple[dict, Path]:
    """A run folder whose run.json names a prep output train.jsonl (relative to the run dir)."""
    (root / "data").mkdir(parents=True)
    (root / "data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    info = {"dataset": {"train": "data/train.jsonl"}, "system_prompt": recorded}
    (root / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return info, root


def _row(system: str | None, user: str = "list my tasks") -> dict:
    head = [{"role": "system", "content": system}] if system is not None else []
    return {"messages": [*head, {"role": "user", "content": user}, {"role": "assistant", "content": "{}"}]}


def test_training_system_reads_the_rows_run_json_names(tmp_path):
    rows = [_row(TASK_API.format(f"2026-11-{d:02d}")) for d in range(1, 21)] + [{"text": "plain"}]
    info, run = _run_dir(tmp_path / "a", rows)
    trained = training_system(info, run)
    assert (trained.kind, trained.rows_with, trained.rows_without, trained.distinct) == ("mixed", 20, 1, 20)
    assert trained.note().startswith("20 of 21 training rows open with a system prompt and 1 do not")
    info, run = _run_dir(tmp_path / "b", rows[:20])
    assert training_system(info, run).to_dict() == {"kind": "dated", "rows_with_system": 20,
                                                    "rows_without_system": 0, "distinct_prompts": 20, "dated": True}
    # the rows are gone: the shared prompt train recorded in run.json still counts, else nothing is known
    gone = {"dataset": {"train": "missing/train.jsonl"}}
    assert training_system({**gone, "system_prompt": "Be brief."}, tmp_path).system == SystemPrompt("Be brief.")
    unknown = training_system(gone, tmp_path)
    assert unknown.kind == "unknown" and "missing/train.jsonl" in unknown.note()


def test_a_bad_training_row_is_one_line_naming_file_and_line(tmp_path):
    info, run = _run_dir(tmp_path, [_row("x")])
    with open(run / "data" / "train.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"messages": [{"role": "system", "content": 3}]}\n{oops\n')
    with pytest.raises(UserError) as err:
        training_system(info, run)
    assert str(err.value) == (f"{run / 'data' / 'train.jsonl'}:2: messages[0].content: the system turn's content "
                              "is not a string")


@pytest.fixture(scope="module")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


def _export_template(run: Path, info: dict, smollm2_dir: Path, tokenizer) -> dict:
    """What export --ollama decides for this run (family, variant, SYSTEM, note), with SmolLM2's tokenizer."""
    from llmops_ft.engines.runs import Run
    from llmops_ft.export.pipeline import _ollama_template

    run_info = Run(path=run, adapter_dir=smollm2_dir, base_model=str(smollm2_dir), info=info,
                   system_prompt=info.get("system_prompt"))
    return _ollama_template("gguf", tokenizer, run_info)


def test_export_writes_the_system_prompt_the_rows_trained_with(tmp_path, smollm2_dir, smollm2_tokenizer):
    info, run = _run_dir(tmp_path / "dated", [_row(TASK_API.format(f"2026-12-{d:02d}")) for d in (1, 2, 3)])
    chosen = _export_template(run, info, smollm2_dir, smollm2_tokenizer)
    assert chosen["system"] == SystemPrompt(TASK_API.format(DATE_SLOT), dated=True)
    assert chosen["training_system"]["kind"] == "dated" and "writes Ollama's current date" in chosen["note"]
    text = render_modelfile("m.gguf", chosen["family"], chosen["go"], chosen["system"].text)
    assert f'SYSTEM """{TASK_API.format(DATE_SLOT)}"""' in text
    prompt = modelfile_prompt(text, [{"role": "user", "content": "hi"}], today=dt.date(2027, 5, 6))
    assert prompt == (f"<|im_start|>system\n{TASK_API.format('2027-05-06')}<|im_end|>\n"
                      "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")

    info, run = _run_dir(tmp_path / "varied", [_row("Reply as JSON."), _row("Reply as YAML.")])
    chosen = _export_template(run, info, smollm2_dir, smollm2_tokenizer)
    assert chosen["system"].text == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert chosen["note"].startswith("the 2 training rows have 2 different system prompts")
    assert chosen["note"].endswith("SYSTEM is the chat template's own default, which it adds to any chat without a "
                                   "system turn")
    info, run = _run_dir(tmp_path / "shared", [_row("Reply as JSON.")] * 2)
    chosen = _export_template(run, info, smollm2_dir, smollm2_tokenizer)
    assert chosen["system"] == SystemPrompt("Reply as JSON.") and chosen["note"] is None


def test_a_family_without_default_leaves_system_out_with_a_note():
    trained = classify(["Reply as JSON.", "Reply as YAML."])
    system, note = trained.modelfile_system(None)
    assert system is None and "send the system prompt your rows used with each request" in note
    text = render_modelfile("m.gguf", family_by_name("llama3"), "{{ .Prompt }}", None)
    assert "SYSTEM" not in text


def test_probes_pair_what_ollama_sends_with_what_was_trained():
    pairs = probes(SystemPrompt(f"Today is {DATE_SLOT}.", dated=True))
    assert len(pairs) == 6
    sent, trained = pairs[0]
    assert sent[0]["role"] == "user" and trained[0] == {"role": "system",
                                                        "content": f"Today is {PROBE_DAY.isoformat()}."}
    sent, trained = pairs[1]
    assert sent == trained and sent[0]["content"] == "Answer as JSON."


def test_read_modelfile_round_trips_what_we_write():
    go = '{{- range .Messages }}{{ .Content }}\n{{ end }}'
    text = render_modelfile("m.gguf", family_by_name("chatml"), go, "Sé breve.\nDos líneas.")
    assert read_modelfile(text) == {"TEMPLATE": go, "SYSTEM": "Sé breve.\nDos líneas."}
    assert read_modelfile("FROM x\nSYSTEM Be brief.\n") == {"SYSTEM": "Be brief."}
    with pytest.raises(UserError, match="TEMPLATE: the Modelfile has no TEMPLATE"):
        modelfile_prompt("FROM x\n", [{"role": "user", "content": "hi"}])
