"""Values in code: ``name = literal`` statements and keyword arguments, from code blocks and inline spans.

The docs show fragments (``r = 16, # comment``, ``....`` for elided arguments, a snippet missing a comma): a
fragment is parsed as the keyword arguments it is, else as statements, else in bracket-balanced pieces.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from typing import Any

RANK_NAMES = {"r", "rank", "lora_rank"}
# What ast.literal_eval raises on an expression or on hostile input (docs are untrusted).
LITERAL_ERRORS = (ValueError, TypeError, SyntaxError, RecursionError, MemoryError)
_PLACEHOLDER = re.compile(r"^\s*\.{3,}\s*,?\s*$", re.MULTILINE)  # the docs' `....` for "other arguments"


@dataclass
class Assignment:
    """``name = value`` from code: the literal value (or the expression node when it is not a literal)."""

    name: str
    node: ast.expr
    comment: str

    def literal(self) -> Any:
        """The literal value; one of ``LITERAL_ERRORS`` when the value is an expression."""
        value = ast.literal_eval(self.node)
        if isinstance(value, tuple) and len(value) == 1:  # `x = 1,` parsed as a statement
            value = value[0]
        return value


def _parse_fragment(code: str) -> tuple[ast.AST | None, int]:
    """Parse code as keyword arguments (``r = 16,`` fragments) or else as statements.

    Returns the tree (None when neither parses) and the line offset of ``code`` inside the parsed source.
    """
    for source, offset in ((f"f(\n{code}\n)", 1), (code, 0)):
        try:
            return ast.parse(source), offset
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return None, 0


def _chunks(code: str) -> list[str]:
    """Split unparseable code into bracket-balanced line groups, each parsed on its own."""
    out, current, depth = [], [], 0
    for line in code.split("\n"):
        current.append(line)
        depth += sum(line.count(c) for c in "([{") - sum(line.count(c) for c in ")]}")
        if depth <= 0:
            out.append("\n".join(current))
            current, depth = [], 0
    if current:
        out.append("\n".join(current))
    return out


def _comments(code: str, offset: int) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                comments[tok.start[0] + offset] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return comments


def assignments(code: str) -> list[Assignment]:
    """Every ``name = value`` (statement or keyword argument) in a code block or span, in source order."""
    code = _PLACEHOLDER.sub("", code)
    tree, offset = _parse_fragment(code)
    pieces = [(tree, offset, code)] if tree is not None else [(*_parse_fragment(c), c) for c in _chunks(code)]
    found = []
    for piece, offset, source in pieces:
        if piece is None:
            continue
        comments = _comments(source, offset)
        nodes = sorted(
            (n for n in ast.walk(piece) if isinstance(n, (ast.Assign, ast.keyword))),
            key=lambda n: (n.lineno, n.col_offset),
        )
        for node in nodes:
            if isinstance(node, ast.keyword) and node.arg:
                found.append(Assignment(node.arg, node.value, comments.get(node.lineno, "")))
            elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                found.append(Assignment(node.targets[0].id, node.value, comments.get(node.lineno, "")))
    return found


def rank_ratio(node: ast.expr) -> float | None:
    """``lora_alpha`` as a multiple of the rank: ``r`` -> 1, ``r * 2`` / ``2 * lora_rank`` -> 2."""
    if isinstance(node, ast.Name) and node.id in RANK_NAMES:
        return 1
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = rank_ratio(node.left), rank_ratio(node.right)
        if isinstance(node.left, ast.Constant) and right is not None:
            return node.left.value * right
        if isinstance(node.right, ast.Constant) and left is not None:
            return left * node.right.value
    return None
