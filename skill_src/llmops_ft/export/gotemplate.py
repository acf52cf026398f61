"""Render the subset of Go's text/template that Ollama TEMPLATEs use, so a Modelfile can be checked here.

Ollama renders a Modelfile's TEMPLATE with Go's text/template, not the model's Jinja template. To prove our
TEMPLATE says what the model was trained on, we render it the way Go would and compare. Supported: text,
``{{ }}`` actions with ``{{-`` / ``-}}`` trimming, ``if`` / ``else if`` / ``else`` / ``end``, ``range $i, $x :=``,
variable declaration (``:=``) and assignment (``=``), fields (``.X``, ``$.X``, ``$v.X``), string literals
(interpreted, with Go's escapes, and raw), integer literals, parentheses, the functions eq, ne, not, and, or, len,
slice, print, and Ollama's currentDate / yesterdayDate. Anything else is a ValueError.

Go's rules where Python's differ: trimming removes only ASCII space, tab, CR and LF; ``len`` of a string counts
UTF-8 bytes; a missing value prints ``<no value>``. The tests hold this renderer to Go's own text/template.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

# An action runs to the first "}}" outside a string literal (Go lexes "}}" inside quotes as text).
_STRING = r'"(?:[^"\\\n]|\\.)*"|`[^`]*`'
_ACTION = re.compile(r"\{\{(-[ \t\r\n])?((?:" + _STRING + r"|[^\"`])*?)([ \t\r\n]-)?\}\}", re.S)
_TOKEN = re.compile(r"\s*(\(|\)|" + _STRING + r"|[^\s()]+)")
_GO_SPACE = " \t\r\n"  # what Go's trim markers remove (Python's strip() also removes Unicode spaces)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


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
            text = text.rstrip(_GO_SPACE)
        if parts and parts[-1][0] == "trim-next":
            parts.pop()
            text = text.lstrip(_GO_SPACE)
        parts.append(("text", text))
        parts.append(("action", match.group(2).strip()))
        if match.group(3):
            parts.append(("trim-next", ""))
        pos = match.end()
    tail = template[pos:]
    if parts and parts[-1][0] == "trim-next":
        parts.pop()
        tail = tail.lstrip(_GO_SPACE)
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


def _len(value: Any) -> int:
    return len(value.encode("utf-8")) if isinstance(value, str) else len(value)


def _slice(value: Any, start: int = 0, stop: int | None = None) -> Any:
    if isinstance(value, str):
        raise ValueError("slice of a string is not supported (Go slices its bytes)")
    return value[start:stop]


def _print(*values: Any) -> str:
    """Go's print (fmt.Sprint): a space between two operands only when neither is a string."""
    out = ""
    for i, value in enumerate(values):
        if i and not isinstance(value, str) and not isinstance(values[i - 1], str):
            out += " "
        out += _text(value)
    return out


def _text(value: Any) -> str:
    if value is None:
        return "<no value>"
    return str(value).lower() if isinstance(value, bool) else str(value)


_FUNCS = {
    "eq": lambda a, *bs: any(a == b for b in bs),
    "ne": lambda a, b: a != b,
    "not": lambda a: not _truthy(a),
    "and": lambda *xs: next((x for x in xs if not _truthy(x)), xs[-1]),
    "or": lambda *xs: next((x for x in xs if _truthy(x)), xs[-1]),
    "len": _len,
    "slice": _slice,
    "print": _print,
}


def _functions(today: dt.date) -> dict[str, Any]:
    """The built-ins plus Ollama's date functions, which read ``today`` (Ollama's take the server's clock)."""
    yesterday = today - dt.timedelta(days=1)
    return {**_FUNCS, "currentDate": lambda *_: today.isoformat(), "yesterdayDate": lambda *_: yesterday.isoformat()}


class _Scope:
    def __init__(self, root: Any, funcs: dict[str, Any]) -> None:
        self.frames: list[dict[str, Any]] = [{"$": root}]
        self.funcs = funcs

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
    head = args[0]
    if head[0] == "token" and head[1] in scope.funcs:
        values = [v if kind == "value" else _operand(v, dot, scope) for kind, v in args[1:]]
        return scope.funcs[head[1]](*values)
    if len(args) != 1:
        raise ValueError(f"cannot evaluate {tokens!r}")
    return head[1] if head[0] == "value" else _operand(head[1], dot, scope)


def _operand(token: str, dot: Any, scope: _Scope) -> Any:
    if token in scope.funcs:  # a function named as an argument is called without arguments, as in Go
        return scope.funcs[token]()
    if token[0] in '"`':
        return go_string(token)
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


def go_string(literal: str) -> str:
    r"""The value of a Go string literal: raw (`...`, CRs dropped) or interpreted, with Go's escapes.

    Decoded as UTF-8 bytes, as Go does: ``\x`` and octal escapes are bytes, ``\u`` / ``\U`` are code points.
    """
    if literal.startswith("`"):
        return literal[1:-1].replace("\r", "")
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] != "\\":
            out += body[i].encode("utf-8")
            i += 1
            continue
        match = _ESCAPE.match(body, i)
        if match is None:
            raise ValueError(f"invalid escape in Go string {literal!r}")
        i = match.end()
        kind, digits = match.group(1)[0], match.group(1)[1:]
        if kind in _ESCAPES:
            out += _ESCAPES[kind].encode("utf-8")
        elif kind in "uU":
            out += _code_point(int(digits, 16), literal)
        else:  # \xhh and \ooo are single bytes
            number = int(digits, 16) if kind == "x" else int(kind + digits, 8)
            if number > 255:
                raise ValueError(f"octal escape above 255 in Go string {literal!r}")
            out.append(number)
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"Go string {literal!r} is not UTF-8 text") from None


_ESCAPE = re.compile(r'\\([abfnrtv\\"]|x[0-9a-fA-F]{2}|[0-7][0-7]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})')


def _code_point(number: int, literal: str) -> bytes:
    if number > 0x10FFFF or 0xD800 <= number < 0xE000:
        raise ValueError(f"escape is not a Unicode code point in Go string {literal!r}")
    return chr(number).encode("utf-8")


def _pipe(text: str, dot: Any, scope: _Scope) -> Any:
    return _eval(_TOKEN.findall(text), dot, scope)


def _run(nodes: list[_Node], dot: Any, scope: _Scope, out: list[str]) -> None:
    for node in nodes:
        if node.kind == "text":
            out.append(node.value)
        elif node.kind == "print":
            out.append(_text(_pipe(node.value, dot, scope)))
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


def render_go(template: str, data: dict[str, Any], *, today: dt.date | None = None) -> str:
    """Render ``template`` with ``data`` as the dot (e.g. {"System": ..., "Messages": [...]}).

    ``today`` is what currentDate returns (default: the local date, as on the Ollama server).
    """
    nodes, _, _ = _parse(_lex(template))
    out: list[str] = []
    _run(nodes, data, _Scope(data, _functions(today or dt.date.today())), out)
    return "".join(out)
