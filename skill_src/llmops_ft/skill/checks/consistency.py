"""Consistency: every hyperparameter value the rendered skill shows equals recommendations.yaml.

Reads the markdown, not the templates: python blocks through ``ast`` (keyword arguments and assignments), YAML
blocks (run-config keys through the run-config schema's ``x-recommendation`` ids), ``--set key=value`` and
``--quant`` in commands, and tables (a column whose header names a parameter, or a row whose first cell does).
Each value is a claim; a claim is compared with the recommendations for its parameter whose condition its context
matches (the row label, column header or line comment first, then the section headings), else the general one.
"""

from __future__ import annotations

import ast
import functools
import itertools
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...knowledge.recommendations import SELF_MATCHING_KINDS, RecommendationSet, condition_parts
from ..markdown import CodeBlock, Doc, Table, cell_value, plain
from ..values import fmt, is_range, member, same, within
from . import Finding

RUN_CONFIG_SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "run_config.json"
VALUE_HEADERS = ("value", "recommended", "default", "ours", "skill value", "start with")


@dataclass
class Claim:
    """A value the skill shows for a parameter, with where and in which context."""

    param: str
    value: Any
    file: str
    line: int
    local: str
    headings: list[str]


# --- reading claims -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def config_key_ids() -> dict[str, str]:
    """Run-config key path (``training.batch_size``) -> recommendation id, from the run-config schema."""
    if not RUN_CONFIG_SCHEMA.exists():
        return {}
    schema = json.loads(RUN_CONFIG_SCHEMA.read_text(encoding="utf-8"))
    found: dict[str, str] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        if "x-recommendation" in node:
            found[path] = node["x-recommendation"]
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}".lstrip("."))

    walk(schema, "")
    return found


def _param_for_config_key(recs: RecommendationSet, key: str) -> str | None:
    rec_id = config_key_ids().get(key)
    if rec_id in recs.entries:
        return recs.entries[rec_id]["param"]
    return recs.name_to_param().get(key.rsplit(".", 1)[-1])


def _comment(line: str) -> str:
    return line.split("#", 1)[1] if "#" in line else ""


def python_claims(recs: RecommendationSet, block: CodeBlock, file: str) -> list[Claim]:
    """Keyword arguments and ``name = value`` assignments with a literal value (unparsable blocks: none)."""
    try:
        tree = ast.parse(block.text)
    except SyntaxError:
        return []  # the commands check reports it
    names = recs.name_to_param()
    lines = block.text.splitlines()
    claims = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in names:
            name, value_node = node.arg, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value_node = node.targets[0].id, node.value
        else:
            continue
        if name not in names:
            continue
        try:
            value = ast.literal_eval(value_node)
        except ValueError:
            continue  # a variable, not a value
        row = value_node.lineno
        param = names[name]
        if param == "warmup_steps" and isinstance(value, float) and 0 < value < 1:
            param = "warmup_fraction"  # transformers 5: a float below 1 in warmup_steps is a fraction of the steps
        claims.append(Claim(param, value, file, block.line + row - 1, _comment(lines[row - 1]), block.headings))
    return claims


def yaml_claims(recs: RecommendationSet, block: CodeBlock, file: str) -> list[Claim]:
    """Run-config keys in a YAML block."""
    import yaml

    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError:
        return []
    lines = block.text.splitlines()
    claims = []
    for key, value in _flatten(data if isinstance(data, dict) else {}):
        param = _param_for_config_key(recs, key)
        if param is None:
            continue
        leaf = key.rsplit(".", 1)[-1]
        row = next((i for i, text in enumerate(lines) if re.match(rf"^\s*{re.escape(leaf)}\s*:", text)), 0)
        claims.append(Claim(param, value, file, block.line + row, _comment(lines[row]) if lines else "",
                            block.headings))
    return claims


def _flatten(data: dict[str, Any], prefix: str = ""):
    for key, value in data.items():
        path = f"{prefix}.{key}".lstrip(".")
        if isinstance(value, dict) and not is_range(value):
            yield from _flatten(value, path)
        else:
            yield path, value


def command_claims(recs: RecommendationSet, text: str, line: int, headings: list[str], file: str) -> list[Claim]:
    """``--set key=value`` overrides and ``--quant`` choices in a command."""
    import yaml

    try:
        tokens = shlex.split(text.replace("\\\n", " "), comments=True)
    except ValueError:
        return []
    claims = []
    for flag, arg in zip(tokens, tokens[1:], strict=False):
        if flag == "--set" and "=" in arg:
            key, raw = arg.split("=", 1)
            param = _param_for_config_key(recs, key)
            value = yaml.safe_load(raw)
            if param is not None and value is not None:  # key=null unsets a key: nothing recommended is shown
                claims.append(Claim(param, value, file, line, "", headings))
    if "--quant" in tokens:
        start = tokens.index("--quant") + 1
        quants = list(itertools.takewhile(lambda t: not t.startswith("-"), tokens[start:]))
        if quants:
            claims.append(Claim("quantization_method", quants[0] if len(quants) == 1 else quants, file, line, "",
                                headings))
    return claims


def _header_param(recs: RecommendationSet, header: str) -> str | None:
    text = plain(header).lower()
    names = recs.name_to_param()
    for code in re.findall(r"`([^`]+)`", header):
        if code in names:
            return names[code]
    for param, spec in recs.params.items():
        if any(re.search(rf"(?<![a-z]){re.escape(h)}(?![a-z])", text) for h in spec["headers"]):
            return param
    return None


def _row_param(recs: RecommendationSet, label: str) -> str | None:
    names = recs.name_to_param()
    return next((names[code] for code in re.findall(r"`([^`(]+?)`", label) if code in names), None)


def table_claims(recs: RecommendationSet, table: Table, file: str) -> list[Claim]:
    """Values in parameter columns (header names a parameter) or in the value column of parameter rows."""
    headers = [plain(h).lower() for h in table.header]
    value_cols = [j for j, h in enumerate(headers) if j > 0 and h in VALUE_HEADERS]
    param_cols = {j: p for j, h in enumerate(table.header) if j > 0 and (p := _header_param(recs, h))}
    claims = []
    for cells, line in zip(table.rows, table.row_lines, strict=True):
        label = cells[0] if cells else ""
        row_param = _row_param(recs, label)
        columns = {j: row_param for j in value_cols} if row_param else {}
        columns.update({j: row_param or p for j, p in param_cols.items() if j not in columns})
        for j, param in columns.items():
            if param is None or j >= len(cells):
                continue
            value = cell_value(cells[j])
            if value is not ...:
                claims.append(Claim(param, value, file, line, f"{table.header[j]} | {plain(label)}", table.headings))
    return claims


def doc_claims(recs: RecommendationSet, doc: Doc, file: str) -> list[Claim]:
    """Every claim in one parsed markdown file."""
    claims: list[Claim] = []
    for block in doc.code_blocks:
        if block.lang in ("python", "py"):
            claims += python_claims(recs, block, file)
        elif block.lang in ("yaml", "yml"):
            claims += yaml_claims(recs, block, file)
        elif block.lang in ("bash", "sh", "shell", "console", ""):
            claims += command_claims(recs, block.text, block.line, block.headings, file)
    for span in doc.inline:
        claims += command_claims(recs, span.text, span.line, span.headings, file)
    for table in doc.tables:
        claims += table_claims(recs, table, file)
    return claims


# --- judging claims -----------------------------------------------------------------------------------------


def _mentions(text: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(word)}(?![A-Za-z0-9])", text, re.I) is not None


def part_matches(recs: RecommendationSet, part: str, text: str) -> bool:
    """Does ``text`` put a value in the case of one condition part (``gpu:24gb``, ``model:8B``)?"""
    kind, _, value = part.partition(":")
    words = recs.contexts.get(part) or ([value] if kind in SELF_MATCHING_KINDS else [])
    return any(_mentions(text, word) for word in words)


def candidates(recs: RecommendationSet, claim: Claim) -> list[dict[str, Any]]:
    """The entries a claim must agree with (one of them)."""
    entries = recs.by_param(claim.param)
    if isinstance(claim.value, list):  # several values shown at once: a documented set of choices covers them
        entries = [e for e in entries if "choices" in condition_parts(e["condition"])] or entries
    for context in (claim.local, " / ".join(claim.headings)):
        scored = [(len(condition_parts(e["condition"])), e) for e in entries if e["condition"] and all(
            part_matches(recs, part, context) for part in condition_parts(e["condition"]))]
        if scored:
            best = max(score for score, _ in scored)
            return [e for score, e in scored if score == best]
    return [e for e in entries if not e["condition"]] or entries


def claim_agrees(value: Any, entry: dict[str, Any]) -> bool:
    """A shown value against one entry: equal; a list equal to a list (a subset of a ``choices`` list); a scalar
    a member of a list entry or inside a range entry; a range equal to a range entry."""
    expected = entry["value"]
    if is_range(value):
        return is_range(expected) and same(value["min"], expected["min"]) and same(value["max"], expected["max"])
    if isinstance(value, list):
        if not isinstance(expected, list):
            return False
        if "choices" in condition_parts(entry["condition"]):
            return all(member(item, expected) for item in value)
        return same(value, expected)
    if isinstance(expected, list):
        return member(value, expected)
    if is_range(expected):
        return within(value, expected["min"], expected["max"])
    return same(value, expected)


def check(recs: RecommendationSet, docs: dict[str, Doc]) -> tuple[list[Finding], int]:
    """(findings, number of claims checked) over the parsed files, keyed by their label."""
    out: list[Finding] = []
    count = 0
    for label, doc in docs.items():
        for claim in doc_claims(recs, doc, label):
            options = candidates(recs, claim)
            if not options:
                continue
            count += 1
            if not any(claim_agrees(claim.value, entry) for entry in options):
                expected = " or ".join(f"{fmt(e['value'])} ({e['id']})" for e in options)
                out.append(Finding("consistency", claim.file, claim.line,
                                   f"{claim.param} = {fmt(claim.value)}, but recommendations.yaml says {expected}"))
    return out, count
