"""`llmops-ft doctor`: can this machine run the workflow, and on what? One verdict, one line per check.

Each check returns ``{"name", "status": ok|warn|fail, "detail", "fix"?, ...facts}``. A ``fail`` means a verb of the
workflow cannot run; a ``warn`` means it runs, slower or with a part missing (no GGUF export, no Unsloth).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .core.result import Result

HELP = """\
Check this machine for the fine-tuning workflow and print one verdict: Python, the llmops-ft package and its data
files, torch and what it computes on (CUDA GPU, its compute capability and bf16 support; or the CPU and whether it
has native bf16: avx512_bf16 / AMX flags and a tiny bf16 matmul), whether Unsloth imports (tried in a fresh
interpreter, the way plan and train decide backend auto; the answer is cached), llama.cpp (llama_cpp, for GGUF
export, verification and chat), the embedded model and where it is cached (LLMOPS_FT_CACHE, default
~/.cache/llmops-ft), and free disk.
Exit codes: 0 usable (warnings name what is missing or slow), 1 a check failed (its name is printed), 2 bad input.
Example: llmops-ft doctor --json"""

PYTHON_MIN = (3, 10)
# An 8B run exports a 16 GB merged model and a 16 GB f16 GGUF before quantizing to ~5 GB: about 40 GB at peak.
DISK_WARN_GIB = 40.0
DISK_FAIL_GIB = 2.0
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
Check = dict[str, Any]


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of doctor."""
    parser.add_argument("--dir", default=".", help="folder whose free disk is checked: where runs and exports go "
                                                   "(default: the current folder)")
    parser.add_argument("--skip-unsloth", action="store_true",
                        help="do not try to import Unsloth (the slowest check the first time: up to a minute)")


def run(args: argparse.Namespace) -> Result:
    """Run every check; ok unless one failed."""
    checks = run_checks(Path(args.dir), unsloth=not args.skip_unsloth)
    failed = [c["name"] for c in checks if c["status"] == "fail"]
    warned = [c["name"] for c in checks if c["status"] == "warn"]
    verdict = verdict_line(checks)
    data = {"ok": not failed, "verdict": verdict, "failed": failed, "warnings": warned, "checks": checks}
    width = max(len(c["name"]) for c in checks)
    lines = [f"{c['status'].upper():4}  {c['name']:<{width}}  {c['detail']}"
             + (f"\n      fix: {c['fix']}" if c.get("fix") and c["status"] != "ok" else "") for c in checks]
    lines.append(verdict)
    return Result(data=data, text="\n".join(lines), exit_code=1 if failed else 0)


def run_checks(workdir: Path, *, unsloth: bool = True) -> list[Check]:
    """Every check in order; a check that raises is reported as failed, never as a traceback."""
    steps: list[tuple[str, Callable[[], Check]]] = [
        ("python", check_python),
        ("package", check_package),
        ("torch", check_torch),
        ("unsloth", check_unsloth if unsloth else lambda: _check("unsloth", "warn", "not checked (--skip-unsloth)")),
        ("llama.cpp", check_llama_cpp),
        ("model cache", check_model_cache),
        ("disk", lambda: check_disk(workdir)),
    ]
    out = []
    for name, step in steps:
        try:
            out.append(step())
        except Exception as exc:  # noqa: BLE001 - a broken install is what doctor is for: report, do not crash
            out.append(_check(name, "fail", f"{type(exc).__name__}: {exc}"))
    return out


def verdict_line(checks: list[Check]) -> str:
    """One line: READY / READY with warnings / NOT READY, the compute device, and the failed checks by name."""
    failed = [c["name"] for c in checks if c["status"] == "fail"]
    warned = [c["name"] for c in checks if c["status"] == "warn"]
    torch_check = next((c for c in checks if c["name"] == "torch"), {})
    device = torch_check.get("device_label", "no torch")
    if failed:
        return f"doctor: NOT READY ({device}): failed: {', '.join(failed)}"
    if warned:
        return f"doctor: READY with warnings ({device}): {', '.join(warned)}"
    return f"doctor: READY ({device})"


def _check(name: str, status: str, detail: str, fix: str | None = None, **facts: Any) -> Check:
    out: Check = {"name": name, "status": status, "detail": detail, **facts}
    if fix:
        out["fix"] = fix
    return out


def check_python() -> Check:
    """The interpreter is new enough for the package."""
    version = platform.python_version()
    ok = sys.version_info[:2] >= PYTHON_MIN
    need = ".".join(map(str, PYTHON_MIN))
    return _check("python", "ok" if ok else "fail", f"Python {version} ({sys.executable})",
                  None if ok else f"use Python {need} or newer", version=version, executable=sys.executable)


def check_package() -> Check:
    """llmops-fine-tuner is installed and carries the data files the verbs read."""
    from .knowledge.resources import resources_dir

    try:
        version = importlib.metadata.version("llmops-fine-tuner")
    except importlib.metadata.PackageNotFoundError:
        version = "not installed (running from a source tree)"
    needed = ["recommendations.yaml", "docs_cache/manifest.json", "configs", "templates"]
    missing = [name for name in needed if not (resources_dir() / name).exists()]
    if missing:
        return _check("package", "fail", f"llmops-fine-tuner {version}: packaged files missing: {', '.join(missing)}",
                      "reinstall the package (a wheel, not a partial copy)", version=version, missing=missing)
    return _check("package", "ok", f"llmops-fine-tuner {version}, data files present", version=version)


def check_torch() -> Check:
    """torch imports; the device it trains on: a CUDA GPU (capability, bf16, memory) or the CPU (bf16 support)."""
    try:
        import torch
    except ImportError as exc:
        return _check("torch", "fail", f"torch does not import ({exc})", _install_hint(), device_label="no torch")
    from .config import detect_cuda

    cuda = detect_cuda()
    facts: dict[str, Any] = {"version": torch.__version__, "cuda_build": torch.version.cuda}
    if cuda is not None:
        major, minor = cuda["compute_capability"]
        precision = "bf16" if cuda["bf16"] else "fp16 (no bf16 before compute capability 8.0)"
        label = f"CUDA {cuda['label']}, sm {major}.{minor}, {cuda['vram_gib']} GiB, {precision}"
        return _check("torch", "ok", f"torch {torch.__version__} on {label}", device_label=label,
                      device="cuda", gpu=cuda["label"], compute_capability=f"{major}.{minor}",
                      vram_gib=cuda["vram_gib"], bf16=cuda["bf16"], **facts)
    cpu = cpu_bf16()
    native = ", ".join(cpu["flags"]) if cpu["flags"] else None
    label = (f"CPU {cpu['model']}, {os.cpu_count()} cores, {cpu['capability']}, bf16 "
             + (f"native ({native})" if native else "emulated: train in float32"))
    if not cpu["matmul_ok"]:
        label = f"CPU {cpu['model']}, {os.cpu_count()} cores, bf16 matmul wrong (error {cpu['matmul_error']:.2g})"
    detail = f"torch {torch.__version__} on {label}; no CUDA GPU: small models only (about 100-500M parameters)"
    if torch.version.cuda:  # a CUDA build without a visible GPU: a driver problem, or GBs of wheels for nothing
        return _check("torch", "warn", detail + f"; this torch is a CUDA {torch.version.cuda} build",
                      "on a GPU machine check the driver (nvidia-smi); on a CPU machine install the CPU build of "
                      "torch first (see the skill's setup section)", device_label=label, device="cpu",
                      bf16=bool(cpu["flags"]), **cpu, **facts)
    status = "ok" if cpu["matmul_ok"] else "warn"
    return _check("torch", status, detail, None if cpu["matmul_ok"] else "train in float32 (the cpu preset does)",
                  device_label=label, device="cpu", bf16=bool(cpu["flags"]), **cpu, **facts)


def cpu_bf16() -> dict[str, Any]:
    """The CPU's model, its native bf16 flags, torch's CPU capability (AVX2, AVX512...), and whether a small bf16
    matmul agrees with fp32 (without the flags bf16 runs emulated: correct, but many times slower than fp32)."""
    import torch

    text = ""
    with contextlib.suppress(OSError):  # not Linux: no flags, the matmul still tells
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    flags = [flag for flag in CPU_BF16_FLAGS if flag in flags_line.split()]
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(64, 64, generator=generator)
    b = torch.randn(64, 64, generator=generator)
    exact = a @ b
    approx = (a.bfloat16() @ b.bfloat16()).float()
    error = float((approx - exact).norm() / exact.norm())
    # bf16 keeps 8 mantissa bits (relative step 2^-8 ~ 0.4%): a correct kernel stays well inside 5%.
    return {"model": model, "flags": flags, "capability": torch.backends.cpu.get_cpu_capability(),
            "matmul_ok": error < 0.05, "matmul_error": error}


def check_unsloth() -> Check:
    """Whether Unsloth imports, answered the way plan and train decide ``backend: auto``: by a real import in a
    fresh interpreter (importing it patches transformers, so never in this process), cached per environment."""
    import importlib.util

    from .plan.backend import unsloth_import_error

    if importlib.util.find_spec("unsloth") is None:
        return _check("unsloth", "warn", "not installed: training uses transformers + peft + trl (backend auto)",
                      _install_hint())
    error = unsloth_import_error()
    if error is None:
        version = importlib.metadata.version("unsloth")
        return _check("unsloth", "ok", f"unsloth {version} imports: backend auto trains with it", version=version)
    fix = "training falls back to transformers + peft + trl (backend auto)"
    if "torchvision" in error or (importlib.util.find_spec("torchvision") and _cpu_torch()):
        fix = "pip uninstall -y torchvision (the one unsloth pulls in does not load against a CPU torch); " + fix
    return _check("unsloth", "warn", f"import unsloth fails: {error}", fix, error=error)


def _cpu_torch() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.version.cuda is None


def check_llama_cpp() -> Check:
    """llama-cpp-python imports and its native library answers (GGUF quantize, verify, chat need it)."""
    try:
        import llama_cpp
    except ImportError as exc:
        return _check("llama.cpp", "warn", f"llama_cpp does not import ({exc}): no GGUF q4_k_m export, "
                                           "verification or chat on GGUF", _install_hint())
    info = llama_cpp.llama_print_system_info()
    info = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    version = getattr(llama_cpp, "__version__", "?")
    return _check("llama.cpp", "ok", f"llama-cpp-python {version} loads", version=version,
                  system_info=" ".join(info.split())[:400])


def check_model_cache() -> Check:
    """Where the embedded model is converted and cached, whether that folder is writable, and what it holds."""
    import importlib.util

    from .engines.models import EMBEDDED_MODELS, cache_dir

    root = cache_dir()
    source = "LLMOPS_FT_CACHE" if os.environ.get("LLMOPS_FT_CACHE") else "default"
    existing = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    writable = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    converted = sorted(name for name in EMBEDDED_MODELS if (root / "models" / name / "config.json").is_file())
    shipped = sorted(name for name, (package, _) in EMBEDDED_MODELS.items() if importlib.util.find_spec(package))
    used = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0
    facts = {"path": str(root), "source": source, "writable": writable, "converted": converted,
             "embedded_available": shipped, "used_bytes": used}
    detail = (f"{root} ({source}), {used / 2**20:.0f} MiB used; embedded model "
              + (", ".join(f"{n} {'converted' if n in converted else 'converted on first use'}" for n in shipped)
                 or "not installed"))
    if not writable:
        return _check("model cache", "fail", f"{root} is not writable", "set LLMOPS_FT_CACHE to a writable folder",
                      **facts)
    if not shipped:
        return _check("model cache", "warn", detail + ": the offline model smollm2-135m is unavailable",
                      _install_hint(), **facts)
    return _check("model cache", "ok", detail, **facts)


def check_disk(workdir: Path) -> Check:
    """Free disk where runs and exports are written and where the cache lives."""
    from .engines.models import cache_dir

    places = {"runs": workdir.resolve()}
    cache = cache_dir()
    places["cache"] = next((p for p in (cache, *cache.parents) if p.exists()), Path("/"))
    free = {label: shutil.disk_usage(path).free / 2**30 for label, path in places.items()}
    lowest = min(free.values())
    detail = ", ".join(f"{free[label]:.1f} GiB free for {label} ({places[label]})" for label in places)
    facts = {"free_gib": {label: round(value, 2) for label, value in free.items()}}
    if lowest < DISK_FAIL_GIB:
        return _check("disk", "fail", detail, f"free at least {DISK_FAIL_GIB:.0f} GiB", **facts)
    if lowest < DISK_WARN_GIB:
        return _check("disk", "warn", detail + f"; an 8B export needs about {DISK_WARN_GIB:.0f} GiB at its peak",
                      "fine for small models; free more space before exporting an 8B model", **facts)
    return _check("disk", "ok", detail, **facts)


def _install_hint() -> str:
    return ("install the tool with its pinned stack: see the setup section of the llmops-fine-tuner skill "
            "(CPU: the CPU build of torch==2.13.0 first)")
