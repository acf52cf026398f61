"""Values as the skill shows them: normalise what was read from text or facts, compare, and format.

One module for both directions so the renderer and the harness cannot disagree on what "2e-4" or "True" means.
"""

from __future__ import annotations

import math
import re
from typing import Any

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_NONE = {"none", "null", "~"}


def normalize(value: Any) -> Any:
    """A comparable form: numbers as float, bools as bool, None, strings lower-cased without quotes/backticks/torch."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    text = str(value).strip().strip("`").strip("'\"").strip()
    lowered = text.lower()
    if lowered in _NONE:
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    if _NUMBER.match(text.replace(",", "")):
        return float(text.replace(",", ""))
    return lowered.removeprefix("torch.")


def same(a: Any, b: Any) -> bool:
    """Equal after :func:`normalize` (floats to 1e-9 relative)."""
    a, b = normalize(a), normalize(b)
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def is_range(value: Any) -> bool:
    """True for a ``{min, max}`` mapping."""
    return isinstance(value, dict) and set(value) == {"min", "max"}


def within(value: Any, low: Any, high: Any) -> bool:
    """``low <= value <= high`` for numbers (tolerant at the ends); False for anything else."""
    value, low, high = normalize(value), normalize(low), normalize(high)
    if not all(isinstance(x, float) for x in (value, low, high)):
        return False
    return low - abs(low) * 1e-9 <= value <= high + abs(high) * 1e-9


def member(value: Any, options: list[Any]) -> bool:
    """``value`` equals one of ``options``."""
    return any(same(value, option) for option in options)


def fmt_number(x: float | int) -> str:
    """2e-4 stays 2e-4, 0.05 stays 0.05, 16.0 becomes 16."""
    if isinstance(x, bool):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    if 0 < abs(x) < 1e-3:
        mantissa, exponent = f"{x:.6e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{x:g}"


def fmt(value: Any) -> str:
    """Human form for prose and tables: lists comma-joined, ranges as ``a-b``, None as ``None``."""
    if is_range(value):
        return f"{fmt(value['min'])}-{fmt(value['max'])}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt(item) for item in value)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return fmt_number(value)
    return str(value)


def py(value: Any) -> str:
    """A Python literal: ``2e-4``, ``"q4_k_m"``, ``True``, ``None``, ``["q_proj", ...]``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py(item) for item in value) + "]"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return fmt(value)


def yaml_value(value: Any) -> str:
    """A YAML scalar or flow list: ``2.0e-4`` style numbers YAML reads as floats, ``true``, ``null``."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not value.is_integer() and "e" in fmt_number(value):
        mantissa, exponent = fmt_number(value).split("e")
        return f"{float(mantissa):.1f}e{exponent}"  # PyYAML reads 2e-4 as a string, 2.0e-4 as a float
    return fmt(value)
