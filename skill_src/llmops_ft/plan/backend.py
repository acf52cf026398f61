"""The one backend decision: ``plan`` and ``train`` both call :func:`choose_backend`, which really imports Unsloth.

"Installed" is not "usable": unsloth can be on disk and still fail to import (a torchvision built for another
torch, no GPU with UNSLOTH_DISABLE_CPU_FALLBACK=1, ...). So the answer comes from an import:

- train imports it here, in its own process (``in_process=True``): Unsloth must patch transformers before
  transformers is used, and the run needs the module anyway;
- everyone else (the plan verb, the smoke test) imports it in a fresh interpreter, since importing it here would
  patch transformers for the caller.

An import takes 10-50 s, so the answer is kept for the process, and on disk (LLMOPS_FT_CACHE) under a
fingerprint of what decides it: the interpreter, the versions of the packages involved and the environment
variables Unsloth reads. Any change there probes again.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from ..errors import UserError

PROBE_TIMEOUT_S = 600
# Whatever changes whether `import unsloth` works: a new version of any of these probes again.
PACKAGES = ("unsloth", "unsloth_zoo", "torch", "torchvision", "transformers", "trl", "peft", "accelerate",
            "bitsandbytes", "triton", "xformers", "datasets")
ENV_VARS = ("CUDA_VISIBLE_DEVICES", "UNSLOTH_DISABLE_CPU_FALLBACK", "HIP_VISIBLE_DEVICES")
_ANSWERS: dict[str, str | None] = {}  # this process: fingerprint -> None (imports) or the one-line import error
_IN_PROCESS: dict[str, bool] = {}  # "answered": this process imported unsloth itself (or tried to)


def choose_backend(requested: str, *, in_process: bool = False, here: bool = True) -> tuple[str, str | None]:
    """(backend, note) for the config's ``backend``: ``hf``; ``unsloth`` when it imports (else a UserError with
    the import error); ``auto``: unsloth when it imports, else hf with the reason in the note.

    ``here``: the run is for this machine. For another one (``plan --gpu t4`` on a laptop) nothing here can say
    whether unsloth imports there: ``unsloth`` is taken at its word and ``auto`` is planned as hf, the backend
    that needs more memory. Once this process has imported (or failed to import) unsloth itself, that answer
    holds for every later call: train decides first, so its plan is for the backend it runs.
    """
    if requested == "hf":
        return "hf", None
    if not here and not (_IN_PROCESS.get("answered") or "unsloth" in sys.modules):
        if requested == "unsloth":
            return "unsloth", "planned for another machine: unsloth must import there, or training stops"
        return "hf", ("backend auto planned as hf (the larger footprint): whether unsloth imports on that machine "
                      "is only known there, and with unsloth the run needs less")
    error = unsloth_import_error(in_process=in_process)
    if error is None:
        return "unsloth", None
    if requested == "unsloth":
        raise UserError(f"the config asks for unsloth, and it does not import here: {error}; fix the install "
                        "(llmops-ft doctor says how), or set backend: auto (falls back to hf) or hf",
                        field="backend")
    return "hf", f"unsloth does not import here ({error}); planning and training use the transformers + peft backend"


def unsloth_import_error(*, in_process: bool = False) -> str | None:
    """None when ``import unsloth`` works, else its error as one line (cached: see the module docstring)."""
    if in_process:
        _IN_PROCESS["answered"] = True
    if "unsloth" in sys.modules:
        return None
    if importlib.util.find_spec("unsloth") is None:
        return "ModuleNotFoundError: No module named 'unsloth' (not installed)"
    key = fingerprint()
    if key in _ANSWERS and not (in_process and _ANSWERS[key] is None):
        return _ANSWERS[key]
    stored = _stored(key)
    if stored is not None and not in_process:
        _ANSWERS[key] = stored["error"]
        return stored["error"]
    error = _import_here() if in_process else _import_elsewhere()
    _ANSWERS[key] = error
    _store(key, error)
    return error


def fingerprint() -> str:
    """What decides whether unsloth imports, as one string."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    env = {name: os.environ.get(name) for name in ENV_VARS}
    return json.dumps({"python": sys.executable, "prefix": sys.prefix, "host": platform.node(), "versions": versions,
                       "env": env}, sort_keys=True)


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def _import_here() -> str | None:
    try:
        importlib.import_module("unsloth")
    except Exception as exc:  # unsloth raises many kinds (ImportError, RuntimeError, NotImplementedError)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return None


def _import_elsewhere() -> str | None:
    try:
        proc = subprocess.run([sys.executable, "-c", "import unsloth"], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    except subprocess.TimeoutExpired:
        return f"import unsloth did not finish in {PROBE_TIMEOUT_S} s"
    except OSError as exc:
        return f"could not start {sys.executable}: {exc}"
    return None if proc.returncode == 0 else _one_line(proc.stderr)


def _cache_file() -> Any:
    from ..engines.models import cache_dir

    return cache_dir() / "unsloth-import.json"


def _stored(key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    entry = data.get(key) if isinstance(data, dict) else None
    return entry if isinstance(entry, dict) and "error" in entry else None


def _store(key: str, error: str | None) -> None:
    """Remember the answer for this fingerprint (best effort: a read-only cache only costs the next probe)."""
    from ..io import atomic_write_json

    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data = data if isinstance(data, dict) else {}
    data[key] = {"error": error}
    try:
        atomic_write_json(_cache_file(), dict(list(data.items())[-8:]))
    except OSError:
        pass
