"""Fuzz the config loader: whatever the input, the result is a valid resolved config or a ConfigError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llmops_ft.config import ConfigError, load_config, load_schema
from llmops_ft.config.loader import schema_paths

KNOWN_KEYS = sorted({part for path in schema_paths(load_schema()) for part in path})
KNOWN_PATHS = sorted(".".join(path) for path in schema_paths(load_schema()))
VALID = {"model": {"name": "m"}, "dataset": {"path": "d"}, "hardware": "cpu"}

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(["auto", "t4", "cpu", "bfloat16", "float16", "unsloth", "adamw_8bit", "linear", "hf"])
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8) | st.integers(-3, 3)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=20,
)
sections = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=8), values, max_size=6)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(load) -> None:
    """``load()`` either raises ConfigError with a one-line message, or returns a config that reloads unchanged."""
    try:
        config = load()
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message and exc.problems
        return
    json.dumps(config)
    assert load_config(None, base=config) == config


@FUZZ
@given(sections)
def test_random_nested_dicts(raw):
    check(lambda: load_config(None, base=raw))


@FUZZ
@given(st.dictionaries(st.sampled_from(["model", "dataset", "lora", "training"]), values, max_size=3))
def test_random_sections_over_a_valid_config(raw):
    check(lambda: load_config(None, base={**VALID, **raw}))


def yaml_dump(raw) -> str:
    import yaml

    return yaml.safe_dump({**VALID, **{str(k): v for k, v in raw.items()}}, allow_unicode=True)


@FUZZ
@given(st.text(max_size=200) | sections.map(yaml_dump))
def test_random_yaml_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    check(lambda: load_config(path))


@FUZZ
@given(st.lists(st.text(max_size=30) | st.builds("{}={}".format, st.sampled_from(KNOWN_PATHS), st.text(max_size=10)),
                max_size=4))
def test_random_overrides(overrides):
    check(lambda: load_config(None, overrides, base=VALID))
