"""`chat.py`: talk to any export (run dir, adapter, merged folder, GGUF, embedded model): one prompt or a loop."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from ..core.commands import add_trust_flag
from ..errors import UserError

HELP = """Chat with a model: greedy answers, stopping at the end-of-turn token.

--model may be a run dir (base + adapter), an adapter dir (--base names its base when the adapter has no
run.json), a merged folder, a .gguf file (llama.cpp, prompt from the GGUF's embedded chat template) or an
embedded model name (smollm2-135m).

With --prompt: one answer (--json prints it with token counts). Without --prompt on a terminal: a conversation
loop (/reset clears it, /exit or Ctrl-D ends it). Without --prompt and with piped stdin: stdin is the prompt.

Examples:
  chat.py --model runs/cpu_smoke/gguf/cpu_smoke-q4_k_m.gguf --prompt "Add a task: call the bank tomorrow"
  chat.py --model runs/cpu_smoke --system "Reply with one Task API call as JSON."
"""


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of chat.py."""
    parser.add_argument("--model", required=True, help="run dir, adapter dir, merged folder, .gguf or model name")
    parser.add_argument("--base", help="base model of a bare adapter dir (default: its adapter_config.json)")
    parser.add_argument("--prompt", help="one user message (else: interactive loop, or stdin when piped)")
    parser.add_argument("--system", help="system prompt (default: the run's training system prompt, if any)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="answer length cap (default 256)")
    add_trust_flag(parser)


def run(args: argparse.Namespace) -> Any:
    """Answer one prompt, or run the loop."""
    from ..core.result import Result
    from ..engines.generate import open_model

    if args.max_new_tokens < 1:
        raise UserError("must be >= 1", field="--max-new-tokens")
    prompt = args.prompt
    interactive = prompt is None and sys.stdin.isatty()
    if prompt is None and not interactive:
        prompt = sys.stdin.read().strip()
        if not prompt:
            raise UserError("no prompt: pass --prompt, pipe text on stdin, or run on a terminal", field="--prompt")
    system = args.system if args.system is not None else _run_system_prompt(args.model)
    model = open_model(args.model, base=args.base, batch_size=1, trust_remote_code=args.trust_remote_code,
                       field="--model")
    try:
        if interactive:
            _loop(model, system, args.max_new_tokens)
            return Result(data={"ok": True}, text="")
        data = answer(model, _messages(system, [], prompt), args.max_new_tokens)
    finally:
        model.close()
    data.update(model=args.model, kind=model.kind, system=system)
    return Result(data=data, text=data["response"])


def answer(model, messages: list[dict[str, str]], max_new_tokens: int) -> dict[str, Any]:
    """One greedy answer with its token counts and timing."""
    from ..engines.generate import generate

    started = time.time()
    (result,) = generate(model, [messages], max_new_tokens)
    seconds = time.time() - started
    return {"response": result.text, "stopped": result.stopped, "prompt_tokens": result.prompt_tokens,
            "new_tokens": len(result.token_ids), "seconds": round(seconds, 2)}


def _messages(system: str | None, history: list[dict[str, str]], prompt: str) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + history + [{"role": "user", "content": prompt}]


def _run_system_prompt(ref: str) -> str | None:
    """The training system prompt recorded in a run dir's run.json, else None."""
    from pathlib import Path

    if (Path(ref) / "run.json").is_file():
        from ..engines.runs import load_run

        return load_run(ref, field="--model").system_prompt
    return None


def _loop(model, system: str | None, max_new_tokens: int) -> None:
    history: list[dict[str, str]] = []
    print(f"chatting with {model.source} ({model.kind}); /reset clears the conversation, /exit ends it")
    while True:
        try:
            prompt = input("you> ").strip()
        except EOFError:
            print()
            return
        if prompt in ("/exit", "/quit"):
            return
        if prompt == "/reset":
            history.clear()
            continue
        if not prompt:
            continue
        reply = answer(model, _messages(system, history, prompt), max_new_tokens)
        suffix = "" if reply["stopped"] else f"  [cut at {max_new_tokens} tokens]"
        print(f"model> {reply['response']}{suffix}")
        history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply["response"]}]
