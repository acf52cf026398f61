"""Load a run config: YAML file (+ base dict) + `--set key=value` overrides -> validated, fully resolved dict.

Every problem is collected before anything is raised, so the user fixes the config in one pass: unknown keys
(with a did-you-mean), wrong types and ranges from the jsonschema, duplicate YAML keys, non-finite numbers and
the cross-field rules. Defaults are filled from the schema: a literal ``default`` or an ``x-recommendation`` id
read from skill_src/recommendations.yaml, the one source of truth for recommended values.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .gpus import default_load_in_4bit, resolve_precision
from .problems import ConfigError, Problem

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "run_config.json"

KeyPath = tuple[str, ...]


@functools.lru_cache(maxsize=1)
def yaml_loader() -> type:
    """PyYAML's SafeLoader that also reads ``1e-4`` as a float (YAML 1.1 wants ``1.0e-4``; users write both)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    exponent_float = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", exponent_float, list("-+0123456789"))
    return Loader


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The run-config jsonschema."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_config(path: str | Path | None, overrides: Iterable[str] = (), *, base: dict | None = None) -> dict:
    """The fully resolved run config (every key present, defaults filled), validated against the schema.

    Layers, later wins: ``base`` (a dict, e.g. a resolved config or a test's config), the YAML file at ``path``,
    then ``overrides`` such as ``training.max_steps=20`` (values parsed as YAML scalars).
    Raises ConfigError listing every problem at once, each naming its key path (and line in the file).
    """
    label = str(path) if path is not None else "config"
    raw: dict[str, Any] = copy.deepcopy(base) if base is not None else {}
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        raise ConfigError.single("", "the base config must be a mapping", file=label)
    if path is not None:
        from_file, lines, duplicates = _read_yaml(Path(path))
        problems += duplicates
        raw = _deep_merge(raw, from_file)
    for override in overrides:
        key_path, value = _parse_override(override, label)
        problems += _apply_override(raw, key_path, value)
        lines.pop(key_path, None)

    _empty_sections_to_mappings(raw)
    problems += _unknown_keys(raw, load_schema())
    problems += _schema_problems(raw)
    problems += _non_finite_numbers(raw)
    problems += _cross_field_problems(raw, {p.path for p in problems})
    if problems:
        located = [_with_line(p, lines) for p in problems]
        raise ConfigError(sorted(located, key=lambda p: (p.line is None, p.line or 0, p.path)), file=label)

    config = _fill_defaults(raw, load_schema())
    if "output_dir" not in raw:
        config["output_dir"] = f"runs/{Path(path).stem}" if path is not None else "runs/run"
    if "warmup_steps" in raw.get("training", {}) and "warmup_fraction" not in raw.get("training", {}):
        if config["training"]["warmup_steps"] is not None:
            config["training"]["warmup_fraction"] = None
    if "load_in_4bit" not in raw["model"]:
        from ..knowledge.recommendations import load_recommendations

        entry = load_recommendations()["model.load_in_4bit"]
        config["model"]["load_in_4bit"] = default_load_in_4bit(config["hardware"], entry["value"], entry["hardware"])
    return config


# --- reading -------------------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[KeyPath, int], list[Problem]]:
    """(mapping, key path -> 1-based line, duplicate-key problems) of a YAML file; ConfigError when unreadable."""
    import yaml

    label = str(path)
    if not path.exists():
        raise ConfigError.single("", "config file not found", file=label)
    if not path.is_file():
        raise ConfigError.single("", "config path is not a file", file=label)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single("", f"cannot read config: {exc}", file=label) from None
    try:
        node = yaml.compose(text, Loader=yaml_loader())
        data = yaml.load(text, Loader=yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([Problem("", f"YAML syntax error: {what}")], file=label, line=line) from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a date like 2024-13-45, deeply nested input
        raise ConfigError.single("", f"cannot parse YAML: {exc}", file=label) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.single("", f"the config must be a mapping of sections (got {_type_name(data)})", file=label)
    lines: dict[KeyPath, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        _walk_nodes(node, (), lines, duplicates)
    return data, lines, duplicates


def _walk_nodes(node: Any, prefix: KeyPath, lines: dict[KeyPath, int], duplicates: list[Problem]) -> None:
    """Record the line of every mapping key; PyYAML keeps the last of duplicate keys silently, so report them."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        key_path = (*prefix, key)
        line = key_node.start_mark.line + 1
        if key in seen:
            duplicates.append(Problem(".".join(key_path), "duplicate key (the earlier value would be ignored)", line))
        seen.add(key)
        lines[key_path] = line
        _walk_nodes(value_node, key_path, lines, duplicates)


def _deep_merge(under: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged onto ``under`` (mappings merged key by key, anything else replaced)."""
    merged = dict(under)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _parse_override(text: str, label: str) -> tuple[KeyPath, Any]:
    """``"a.b=value"`` -> (("a", "b"), value parsed as a YAML scalar)."""
    import yaml

    key, sep, value_text = str(text).partition("=")
    key_path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(key_path):
        raise ConfigError.single("--set", f"expected key.path=value (got {text!r})", file=label)
    try:
        value = yaml.load(value_text, Loader=yaml_loader()) if value_text.strip() else None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        raise ConfigError.single(key, f"--set value is not valid YAML: {value_text!r}", file=label) from None
    return key_path, value


def _apply_override(raw: dict[str, Any], key_path: KeyPath, value: Any) -> list[Problem]:
    """Set ``key_path`` in ``raw`` (creating sections); a problem when a parent is not a mapping."""
    node = raw
    for depth, key in enumerate(key_path[:-1]):
        child = node.setdefault(key, {})
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            parent = ".".join(key_path[: depth + 1])
            return [Problem(".".join(key_path), f"--set cannot go inside {parent}, which is not a section")]
        node = child
    node[key_path[-1]] = value
    return []


def _empty_sections_to_mappings(raw: dict[str, Any]) -> None:
    """``lora:`` with every child commented out parses as null: read it as an empty section."""
    for name, spec in load_schema()["properties"].items():
        if spec.get("type") == "object" and name in raw and raw[name] is None:
            raw[name] = {}


# --- validation ----------------------------------------------------------------------------------------------


def _unknown_keys(raw: Any, schema: dict[str, Any], prefix: KeyPath = ()) -> list[Problem]:
    """Keys the schema does not define, each with a did-you-mean from its siblings or from any known key path."""
    if not isinstance(raw, dict) or "properties" not in schema:
        return []
    problems = []
    for key, value in raw.items():
        name = str(key)
        if name in schema["properties"]:
            problems += _unknown_keys(value, schema["properties"][name], (*prefix, name))
            continue
        problems.append(Problem(".".join((*prefix, name)), "unknown key" + _did_you_mean(name, prefix, schema)))
    return problems


def _did_you_mean(name: str, prefix: KeyPath, schema: dict[str, Any]) -> str:
    siblings = list(schema["properties"])
    close = difflib.get_close_matches(name, siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {'.'.join((*prefix, close[0]))}?)"
    # A key put in the wrong section (training.r, learning_rate at the top): match the last part of every path.
    everywhere = {path[-1]: ".".join(path) for path in schema_paths(load_schema())}
    close = difflib.get_close_matches(name, list(everywhere), n=1, cutoff=0.75)
    if close:
        return f" (did you mean {everywhere[close[0]]}?)"
    return f" (allowed here: {', '.join(siblings)})"


def schema_paths(schema: dict[str, Any], prefix: KeyPath = ()) -> Iterator[KeyPath]:
    for key, spec in schema.get("properties", {}).items():
        yield (*prefix, key)
        yield from schema_paths(spec, (*prefix, key))


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    base = jsonschema.Draft202012Validator
    # A float like 2.0 is not an integer here: batch sizes and step counts reach range() and torch as ints.
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(base, type_checker=checker)(load_schema())


def _schema_problems(raw: dict[str, Any]) -> list[Problem]:
    problems = []
    for error in _validator().iter_errors(raw):
        if error.validator == "additionalProperties":  # reported by _unknown_keys, with a did-you-mean
            continue
        key_path = [str(part) for part in error.absolute_path]
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else "?"
            problems.append(Problem(".".join([*key_path, missing]), "required key is missing"))
            continue
        problems.append(Problem(".".join(key_path), _describe(error)))
    return sorted(problems, key=lambda p: p.path)


def _describe(error: Any) -> str:
    """One short sentence for a jsonschema error."""
    got = f" (got {_show(error.instance)})"
    kind, bound = error.validator, error.validator_value
    if kind == "type":
        wanted = " or ".join(bound) if isinstance(bound, list) else bound
        return f"expected {wanted}{got}"
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return f"must be {sign} {bound}{got}"
    if kind == "enum":
        choices = ", ".join(_show(c) for c in bound)
        close = difflib.get_close_matches(str(error.instance), [str(c) for c in bound], n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close and isinstance(error.instance, str) else ""
        return f"must be one of {choices}{got}{hint}"
    if kind == "minLength":
        return "must not be empty"
    if kind == "minItems":
        return f"must list at least {bound} item(s)"
    if kind == "uniqueItems":
        return f"has duplicate items{got}"
    return error.message


def _non_finite_numbers(raw: Any, prefix: KeyPath = ()) -> list[Problem]:
    """.nan and .inf pass every jsonschema bound (comparisons with NaN are false): reject them explicitly."""
    if isinstance(raw, dict):
        return [p for key, value in raw.items() for p in _non_finite_numbers(value, (*prefix, str(key)))]
    if isinstance(raw, list):
        return [p for item in raw for p in _non_finite_numbers(item, prefix)]
    if isinstance(raw, float) and not math.isfinite(raw):
        return [Problem(".".join(prefix), f"must be a finite number (got {raw})")]
    return []


def _cross_field_problems(raw: dict[str, Any], invalid: set[str]) -> list[Problem]:
    """Rules between keys, checked where each key involved is valid on its own (``invalid``: paths with problems)."""

    def valid(*paths: str) -> bool:
        return not any(path == bad or path.startswith(bad + ".") or bad.startswith(path + ".")
                       for path in paths for bad in invalid)

    problems = []
    training = raw.get("training") if isinstance(raw.get("training"), dict) else {}
    if (valid("training.warmup_steps", "training.warmup_fraction") and training.get("warmup_steps") is not None
            and training.get("warmup_fraction") is not None):
        problems.append(Problem("training.warmup_steps", "set warmup_steps or warmup_fraction, not both"))
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    hardware, dtype = raw.get("hardware", "auto"), model.get("dtype", "auto")
    if valid("hardware", "model.dtype") and hardware != "auto" and dtype != "auto":
        try:
            resolve_precision({"model": {"dtype": dtype}}, hardware)
        except ConfigError as exc:
            problems += exc.problems
    return problems


def _with_line(problem: Problem, lines: dict[KeyPath, int]) -> Problem:
    if problem.line is not None or not problem.path:
        return problem
    line = lines.get(tuple(problem.path.split(".")))
    return Problem(problem.path, problem.message, line)


# --- defaults ------------------------------------------------------------------------------------------------


def _fill_defaults(raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with every schema key present: given values kept, the rest from ``default``/``x-recommendation``."""
    from ..knowledge.recommendations import recommended

    config: dict[str, Any] = {}
    for key, spec in schema["properties"].items():  # in schema order, so run.json reads like the docs
        if spec.get("type") == "object":
            config[key] = _fill_defaults(raw.get(key, {}), spec)
        elif key in raw:
            config[key] = copy.deepcopy(raw[key])
        elif "x-recommendation" in spec and key != "load_in_4bit":  # 4-bit depends on the hardware: see load_config
            config[key] = copy.deepcopy(recommended(spec["x-recommendation"]))
        elif "default" in spec:
            config[key] = copy.deepcopy(spec["default"])
    return config


def _show(value: Any) -> str:
    """A value as the user would type it, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
