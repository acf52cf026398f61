"""Render the subset of Go's text/template that Ollama TEMPLATEs use, so a Modelfile can be checked here.

Ollama renders a Modelfile's TEMPLATE with Go's text/template, not the model's Jinja template. To prove our
TEMPLATE says what the model was trained on, we render it the way Go would and compare. Supported: text,
``{{ }}`` actions with ``{{-`` / ``-}}`` trimming, ``if`` / ``else if`` / ``else`` / ``end``, ``range $i, $x :=``,
variable declaration (``:=``) and assignment (``=``), fields (``.X``, ``$.X``, ``$v.X``), string and integer
literals, parentheses, and the functions eq, ne, not, and, or, len, slice. Anything else is a ValueError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_TOKEN = re.compile(r'\s*(\(|\)|"(?:[^"\\]|\\.)*"|[^\s()]+)')


@dataclass
class _Node:
    kind: str  # text | print | if | range | set
    value: Any = None  # text, or the pipeline / variable spec
    body: list[_Node] = field(default_factory=list)
    orelse: list[_Node] = field(default_factory=list)


def _lex(template: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)] with Go's trim markers applied to the neighbouring text."""
    parts: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(template):
        text = template[pos : match.start()]
        if match.group(1):
            text = text.rstrip()
        if parts and parts[-1][0] == "trim-next":
            parts.pop()
            text = text.lstrip()
        parts.append(("text", text))
        parts.append(("action", match.group(2).strip()))
        if match.group(3):
            parts.append(("trim-next", ""))
        pos = match.end()
    tail = template[pos:]
    if parts and parts[-1][0] == "trim-next":
        parts.pop()
        tail = tail.lstrip()
    parts.append(("text", tail))
    return [p for p in parts if p != ("text", "")]


def _parse(parts: list[tuple[str, str]], pos: int = 0, stop: tuple[str, ...] = ()) -> tuple[list[_Node], int, str]:
    """Nodes until one of the ``stop`` keywords (returned with the position after it)."""
    nodes: list[_Node] = []
    while pos < len(parts):
        kind, text = parts[pos]
        pos += 1
        if kind == "text":
            nodes.append(_Node("text", text))
            continue
        word = text.split(None, 1)[0] if text else ""
        if word in ("end", "else") and word in stop:
            return nodes, pos, text
        if word == "if":
            node, pos = _if(text[2:].strip(), parts, pos)
            nodes.append(node)
        elif word == "range":
            match = re.fullmatch(r"range\s+(?:(\$\w+)\s*,\s*)?(\$\w+)\s*:=\s*(.+)", text, re.S)
            if not match:
                raise ValueError(f"unsupported range: {text!r}")
            body, pos, _ = _parse(parts, pos, ("end",))
            nodes.append(_Node("range", {"index": match.group(1), "item": match.group(2),
                                         "pipe": match.group(3)}, body))
        elif re.match(r"\$\w+\s*:?=", text):
            name, op, pipe = re.match(r"(\$\w+)\s*(:?=)\s*(.+)", text, re.S).groups()
            nodes.append(_Node("set", {"name": name, "declare": op == ":=", "pipe": pipe}))
        else:
            nodes.append(_Node("print", text))
    if stop:
        raise ValueError(f"missing {{{{ end }}}} (expected one of {stop})")
    return nodes, pos, ""


def _if(condition: str, parts, pos: int) -> tuple[_Node, int]:
    """An if node (``else if`` chains nest as the else branch) and the position after its ``end``."""
    body, pos, closer = _parse(parts, pos, ("else", "end"))
    node = _Node("if", condition, body)
    if closer.startswith("else if"):
        nested, pos = _if(closer[len("else if"):].strip(), parts, pos)
        node.orelse = [nested]
    elif closer == "else":
        node.orelse, pos, _ = _parse(parts, pos, ("end",))
    return node, pos


def _truthy(value: Any) -> bool:
    return bool(value) if value is not None else False


_FUNCS = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truthy(a),
    "and": lambda *xs: next((x for x in xs if not _truthy(x)), xs[-1]),
    "or": lambda *xs: next((x for x in xs if _truthy(x)), xs[-1]),
    "len": len,
    "slice": lambda xs, start=0, stop=None: xs[start:stop],
}


class _Scope:
    def __init__(self, root: Any) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]

    def get(self, name: str) -> Any:
        for frame in reversed(self.frames):
            if name in frame:
                return frame[name]
        raise ValueError(f"undefined variable {name}")

    def assign(self, name: str, value: Any) -> None:
        for frame in reversed(self.frames):
            if name in frame:
                frame[name] = value
                return
        raise ValueError(f"assignment to undeclared {name}")


def _field(value: Any, path: list[str]) -> Any:
    for name in path:
        value = value.get(name) if isinstance(value, dict) else getattr(value, name, None)
    return value


def _eval(tokens: list[str], dot: Any, scope: _Scope) -> Any:
    """Evaluate a tokenized pipeline: a single operand, or a function applied to operands."""
    args, pos = [], 0
    while pos < len(tokens):
        token = tokens[pos]
        if token == "(":
            depth, end = 1, pos + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(tokens[end], 0)
                end += 1
            args.append(("value", _eval(tokens[pos + 1 : end - 1], dot, scope)))
            pos = end
            continue
        args.append(("token", token))
        pos += 1
    values = [v if kind == "value" else _operand(v, dot, scope) for kind, v in args]
    head = args[0]
    if head[0] == "token" and head[1] in _FUNCS:
        return _FUNCS[head[1]](*values[1:])
    if len(values) != 1:
        raise ValueError(f"cannot evaluate {tokens!r}")
    return values[0]


def _operand(token: str, dot: Any, scope: _Scope) -> Any:
    if token in _FUNCS:
        return token
    if token.startswith('"'):
        return bytes(token[1:-1], "utf-8").decode("unicode_escape")
    if re.fullmatch(r"-?\d+", token):
        return int(token)
    if token == ".":
        return dot
    if token.startswith("."):
        return _field(dot, token[1:].split("."))
    if token.startswith("$"):
        name, _, rest = token.partition(".")
        return _field(scope.get(name), rest.split(".") if rest else [])
    raise ValueError(f"unsupported operand {token!r}")


def _pipe(text: str, dot: Any, scope: _Scope) -> Any:
    return _eval(_TOKEN.findall(text), dot, scope)


def _run(nodes: list[_Node], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "print":
            value = _pipe(node.value, dot, scope)
            out.append("" if value is None else str(value).lower() if isinstance(value, bool) else str(value))
        elif node.kind == "set":
            value = _pipe(node.value["pipe"], dot, scope)
            if node.value["declare"]:
                scope.frames[-1][node.value["name"]] = value
            else:
                scope.assign(node.value["name"], value)
        elif node.kind == "if":
            scope.frames.append({})
            _run(node.body if _truthy(_pipe(node.value, dot, scope)) else node.orelse, dot, scope, out)
            scope.frames.pop()
        elif node.kind == "range":
            for index, item in enumerate(_pipe(node.value["pipe"], dot, scope) or []):
                frame = {node.value["item"]: item}
                if node.value["index"]:
                    frame[node.value["index"]] = index
                scope.frames.append(frame)
                _run(node.body, item, scope, out)
                scope.frames.pop()


def render_go(template: str, data: dict[str, Any]) -> str:
    """Render ``template`` with ``data`` as the dot (e.g. {"System": ..., "Messages": [...]})."""
    nodes, _, _ = _parse(_lex(template))
    out: list[str] = []
    _run(nodes, data, _Scope(data), out)
    return "".join(out)
