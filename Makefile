# The README's two commands are `make demo` and `make test`; both build .venv first when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup test lint demo skill skill-online bench smoke clean

setup: $(STAMP)

# Idempotent: re-runs only when the pins change. torch goes in first from the pin so no CUDA build is pulled;
# unsloth drags in a torchvision that cannot load against the CPU torch and breaks `import unsloth`: removed.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[export,dev]'
	$(PY) -m pip uninstall -q -y torchvision || true
	$(PY) -c "import unsloth, llama_cpp, transformers, trl, peft; print('setup ok: unsloth', unsloth.__version__)"
	touch $(STAMP)

lint: setup
	$(VENV)/bin/ruff check skill_src scripts tests benchmarks examples
	$(VENV)/bin/lint-imports --no-cache

test: setup lint
	$(PY) scripts/render_skill.py --check
	$(PY) scripts/check_skill.py
	$(PY) -m pytest -q tests

demo: setup
	$(PY) scripts/demo.py

skill: setup
	$(PY) scripts/sync_docs.py --from-cache || test $$? -eq 3
	$(PY) scripts/render_skill.py
	$(PY) scripts/check_skill.py

skill-online: setup
	$(PY) scripts/sync_docs.py --online || test $$? -eq 3
	$(PY) scripts/render_skill.py
	$(PY) scripts/check_skill.py

smoke: setup
	$(PY) scripts/smoke_test.py

bench: setup
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
