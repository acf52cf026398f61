"""Dataset formats: recognise a row's format from its fields, check it against its jsonschema, normalise it.

Every format becomes ``{"messages": [{"role", "content", ...}], ...}`` except ``text``, which stays
``{"text": ...}``. Text is never altered: contents are copied as they are, joined only where the format itself
splits one turn into parts (alpaca's instruction + input, a list of text content parts).
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from pathlib import Path
from typing import Any

FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion", "text")
# The fields each format reads, in the order reports list them. Anything else in a row is counted as ignored.
FIELDS: dict[str, tuple[str, ...]] = {
    "alpaca": ("instruction", "input", "output", "system", "history"),
    "sharegpt": ("conversations", "system", "tools"),
    "messages": ("messages", "conversations", "tools"),
    "prompt-completion": ("prompt", "completion", "system"),
    "text": ("text",),
}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
}
MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"
MAX_REASON = 300


class RowError(ValueError):
    """A row that cannot be used; the message is the reject reason (it names the field)."""


def signature(row: Any) -> str | None:
    """The format a row's fields point to, ``"preference"`` for chosen/rejected pairs, or None if unknown."""
    if not isinstance(row, dict):
        return None
    if "chosen" in row and "rejected" in row:
        return "preference"
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        turns = row["conversations"]
        first = turns[0] if isinstance(turns, list) and turns else None
        return "messages" if isinstance(first, dict) and "role" in first else "sharegpt"
    if "instruction" in row:
        return "alpaca"
    if "prompt" in row or "completion" in row:
        return "prompt-completion"
    if "text" in row:
        return "text"
    return None


def detected_fields(fmt: str, row: dict[str, Any]) -> list[str]:
    """The fields of ``row`` that format ``fmt`` reads (what detection was based on)."""
    return [name for name in FIELDS[fmt] if name in row]


def schema_path(fmt: str) -> Path:
    """The jsonschema file that checks rows of ``fmt`` (or ``prepared`` for prep's output rows)."""
    return SCHEMA_DIR / f"dataset_{fmt.replace('-', '_')}.json"


@functools.cache
def validator(fmt: str):
    """A jsonschema validator for ``fmt``, with the other dataset schemas available to ``$ref``."""
    import jsonschema
    from referencing import Registry, Resource

    resources = []
    for path in sorted(SCHEMA_DIR.glob("dataset_*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    schema = json.loads(schema_path(fmt).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=Registry().with_resources(resources))


def check_schema(fmt: str, row: Any) -> None:
    """Raise :class:`RowError` with the most relevant schema error of ``row``, naming its field."""
    check = validator(fmt)
    if check.is_valid(row):
        return
    from jsonschema.exceptions import best_match

    error = best_match(check.iter_errors(row))
    where = _json_path(error.absolute_path)
    if error.validator == "pattern" and error.validator_value == "\\S":
        message = "is empty or only whitespace"
    elif error.validator == "minItems" and error.validator_value == 1:
        message = "is empty"
    elif error.validator == "type" and not where:
        message = f"row is not a JSON object (got {type(row).__name__})"
    elif error.validator in ("anyOf", "oneOf") and "x-error" in error.schema:
        message = error.schema["x-error"]  # our wording: jsonschema's would print the whole value
    else:
        message = error.message
    raise RowError(_clip(f"{where}: {message}" if where else message))


def _json_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def normalise(fmt: str, row: Any, ignored: Counter) -> dict[str, Any]:
    """Check ``row`` against the schema of ``fmt`` and return it as a prepared row; count unread fields."""
    check_schema(fmt, row)
    for name in row:
        if name not in FIELDS[fmt]:
            ignored[name] += 1
    if fmt == "text":
        return {"text": row["text"]}
    messages, tools = NORMALISERS[fmt](row, ignored)
    check_conversation(messages)
    out: dict[str, Any] = {"messages": messages}
    if tools:
        out["tools"] = tools
    return out


def check_conversation(messages: list[dict[str, Any]]) -> None:
    """The rules a chat must meet to be trained on: system first only, and a non-empty assistant answer."""
    for i, message in enumerate(messages):
        if message["role"] == "system" and i > 0:
            raise RowError(f"messages[{i}].role: a system message may only come first")
        if message["role"] == "assistant" and not message["content"].strip() and not message.get("tool_calls"):
            raise RowError(f"messages[{i}].content: empty assistant answer")
    turns = [m["role"] for m in messages if m["role"] != "system"]
    if "assistant" not in turns:
        raise RowError("messages: no assistant turn to learn from")
    if turns[0] != "user":
        raise RowError(f"messages: the first turn after the system prompt must be the user's, not {turns[0]!r}")


def _system(row: dict[str, Any]) -> list[dict[str, Any]]:
    system = row.get("system")
    return [{"role": "system", "content": system}] if system else []


def _alpaca(row: dict[str, Any], ignored: Counter) -> tuple[list[dict[str, Any]], None]:
    messages = _system(row)
    for question, answer in row.get("history") or []:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    prompt = row["instruction"] + (f"\n\n{row['input']}" if row.get("input") else "")
    messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": row["output"]}]
    return messages, None


def _parse_json_field(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise RowError(f"{where}: not valid JSON ({exc.msg})") from exc


def _sharegpt(row: dict[str, Any], ignored: Counter) -> tuple[list[dict[str, Any]], list | None]:
    messages = _system(row)
    for i, turn in enumerate(row["conversations"]):
        for name in turn:
            if name not in ("from", "value"):
                ignored[f"conversations[].{name}"] += 1
        role = SHAREGPT_ROLES[turn["from"]]
        if turn["from"] != "function_call":
            messages.append({"role": role, "content": turn["value"]})
            continue
        call = _parse_json_field(turn["value"], f"conversations[{i}].value")
        if not isinstance(call, dict) or not isinstance(call.get("name"), str):
            raise RowError(f"conversations[{i}].value: a function_call needs a JSON object with a 'name'")
        function = {"name": call["name"], "arguments": call.get("arguments", {})}
        tool_call = {"type": "function", "function": function}
        messages.append({"role": "assistant", "content": "", "tool_calls": [tool_call]})
    tools = _parse_json_field(row.get("tools"), "tools") or None
    if tools is not None and not (isinstance(tools, list) and all(isinstance(t, dict) for t in tools)):
        raise RowError("tools: must be a JSON list of tool definitions")
    return messages, tools


def _messages(row: dict[str, Any], ignored: Counter) -> tuple[list[dict[str, Any]], list | None]:
    key = "messages" if "messages" in row else "conversations"
    return [_message(m, f"{key}[{i}]", ignored) for i, m in enumerate(row[key])], row.get("tools") or None


def _message(message: dict[str, Any], where: str, ignored: Counter) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, list):
        # Chat templates concatenate text parts with nothing between them; so do we.
        content = "".join(part["text"] for part in content)
    out: dict[str, Any] = {"role": message["role"], "content": content or ""}
    for name, value in message.items():
        if name not in MESSAGE_KEYS:
            ignored[f"{where.split('[')[0]}[].{name}"] += 1
        elif name not in ("role", "content") and value not in (None, [], ""):
            out[name] = value
    return out


def _prompt_completion(row: dict[str, Any], ignored: Counter) -> tuple[list[dict[str, Any]], None]:
    messages = _system(row)
    for name, role in (("prompt", "user"), ("completion", "assistant")):
        value = row[name]
        if isinstance(value, str):
            messages.append({"role": role, "content": value})
        else:
            messages += [_message(m, f"{name}[{i}]", ignored) for i, m in enumerate(value)]
    return messages, None


NORMALISERS = {
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "messages": _messages,
    "prompt-completion": _prompt_completion,
}
