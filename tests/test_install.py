"""The skill as a user gets it: the plugin through the real `claude` CLI, the tool from the wheel in a fresh venv,
and the workflow SKILL.md shows, run from a scratch project that is not this repository.

The CLI is the pinned npm package, installed with npm into `.cache/claude-code` (gitignored). When npm cannot
reach its registry the test fails and says so: it is never skipped. Every `claude` call runs under a temp HOME.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLAUDE_VERSION = "2.1.328"
CLAUDE_PACKAGE = f"@anthropic-ai/claude-code@{CLAUDE_VERSION}"
CLAUDE_DIR = REPO / ".cache" / "claude-code"
PLUGIN = MARKETPLACE = "llmops-fine-tuner"
SKILL_PATH = ".claude/skills/llmops-fine-tuner"
# No telemetry, no update check, no account: plugin validate / marketplace / install / details work offline.
CLAUDE_ENV = {"DISABLE_TELEMETRY": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1"}


def _manifests() -> tuple[dict, dict]:
    plugin = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8"))
    market = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text(encoding="utf-8"))
    return plugin, market


def test_plugin_and_marketplace_are_versioned_with_the_package():
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    plugin, market = _manifests()
    entry = next(p for p in market["plugins"] if p["name"] == PLUGIN)
    assert plugin["name"] == PLUGIN and market["name"] == MARKETPLACE
    assert plugin["version"] == entry["version"] == market["metadata"]["version"] == version
    assert entry["source"] == "./"  # the plugin is the repository: its pyproject installs the tool
    assert entry["description"] == plugin["description"] and len(market["metadata"]["description"]) > 40
    assert plugin["skills"] == [f"./{SKILL_PATH}"] and (REPO / SKILL_PATH / "SKILL.md").is_file()
    license_text = plugin["license"]
    assert f'license = {{ text = "{license_text}" }}' in pyproject


# --- the real claude CLI ------------------------------------------------------------------------------------------


def _claude_version(exe: Path, home: Path) -> str:
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **CLAUDE_ENV, "HOME": str(home)})
    return proc.stdout.strip()


@pytest.fixture(scope="module")
def claude_exe(tmp_path_factory) -> Path:
    """The pinned claude CLI, installed with npm on first use (a registry that cannot be reached fails the test)."""
    exe = CLAUDE_DIR / "node_modules" / ".bin" / "claude"
    home = tmp_path_factory.mktemp("claude-version-home")
    if exe.exists() and _claude_version(exe, home).startswith(CLAUDE_VERSION):
        return exe
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(f"npm is not installed: this test installs the real claude CLI with `npm install {CLAUDE_PACKAGE}`")
    CLAUDE_DIR.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([npm, "install", "--prefix", str(CLAUDE_DIR), "--no-audit", "--no-fund", CLAUDE_PACKAGE],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"npm could not install {CLAUDE_PACKAGE} (is the npm registry reachable?):\n"
                    + (proc.stderr or proc.stdout)[-1500:])
    version = _claude_version(exe, home)
    assert version.startswith(CLAUDE_VERSION), f"npm installed claude {version!r}, not {CLAUDE_VERSION}"
    return exe


def claude(exe: Path, home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the claude CLI under ``home``; fail with its output when it exits non-zero."""
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **CLAUDE_ENV, "HOME": str(home)})
    assert proc.returncode == 0, f"claude {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_claude_validates_the_repository_with_no_error_and_no_warning(claude_exe, tmp_path):
    # `validate .` reads the marketplace and the plugin it lists (the repository itself); --strict fails on warnings
    text = claude(claude_exe, tmp_path, "plugin", "validate", str(REPO)).stdout
    assert "Validation passed" in text and "warning" not in text.lower() and "error" not in text.lower(), text
    for target, kind in ((REPO, "marketplace"), (REPO / ".claude-plugin" / "plugin.json", "plugin")):
        report = json.loads(claude(claude_exe, tmp_path, "plugin", "validate", "--strict", "--json",
                                   str(target)).stdout)
        results = [report["manifest"], *report["contents"]]
        assert report["success"] is True and report["manifest"]["type"] == kind
        assert [(r["errors"], r["warnings"]) for r in results] == [([], [])] * len(results)
        assert report["directory"]["findings"] == []  # README, license, icon: nothing the plugin directory refuses
        assert report["provides"]["skills"] == [f"{PLUGIN}:llmops-fine-tuner"]


@pytest.fixture(scope="module")
def plugin_source(tmp_path_factory) -> Path:
    """The repository's files as a clone has them (tracked and new, not ignored): no .venv, no caches.

    A local-path marketplace is copied whole into the plugin cache, so the checkout itself (with its .venv) would
    cost gigabytes; a clone is what `/plugin marketplace add <owner>/<repo>` fetches.
    """
    out = tmp_path_factory.mktemp("marketplace") / "llmops-fine-tuner"
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src, dst = REPO / name, out / name
        if not (src.exists() or src.is_symlink()):
            continue  # deleted in the working tree
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return out


def install_plugin(exe: Path, home: Path, source: Path, project: Path) -> Path:
    """Add the marketplace, install the plugin into ``project`` (project scope); return the installed folder."""
    claude(exe, home, "plugin", "marketplace", "add", str(source), cwd=project)
    result = json.loads(claude(exe, home, "plugin", "install", f"{PLUGIN}@{MARKETPLACE}", "--scope", "project",
                               "--json", cwd=project).stdout)
    assert result["outcome"] == "ok", result
    assert json.loads((project / ".claude" / "settings.json").read_text())["enabledPlugins"] == {
        f"{PLUGIN}@{MARKETPLACE}": True}
    installed = json.loads(claude(exe, home, "plugin", "list", "--json", cwd=project).stdout)
    entry = next(p for p in installed if p["id"] == f"{PLUGIN}@{MARKETPLACE}")
    assert entry["enabled"] and entry["scope"] == "project" and entry["version"] == _manifests()[0]["version"]
    details = claude(exe, home, "plugin", "details", PLUGIN, cwd=project).stdout
    assert re.search(r"Skills \(1\)\s+llmops-fine-tuner\b", details), details
    folder = Path(entry["installPath"])
    assert (folder / SKILL_PATH / "SKILL.md").read_bytes() == (REPO / SKILL_PATH / "SKILL.md").read_bytes()
    return folder


# --- the tool from the wheel, in a fresh venv ---------------------------------------------------------------------


def _pip(venv: Path, *args: str) -> None:
    # This interpreter's pip installs into the venv (--python): the venv needs no pip of its own.
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args],
                          capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert proc.returncode == 0, f"pip {' '.join(args)}:\n{proc.stderr[-3000:]}"


def make_venv(wheel: Path, root: Path) -> Path:
    """A fresh venv with the wheel and its [export] extra, the way the skill's setup section installs the tool.

    torch 2.13.0 first (its CPU build, from pip's cache), then the wheel, both under the frozen stack; the
    torchvision unsloth pulls in is removed (it breaks `import unsloth` on a CPU torch). Only llmops_ft is
    byte-compiled at install time, so running the verbs writes no __pycache__ into the installed package.
    """
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    constraints = str(REPO / "constraints.txt")
    _pip(venv, "install", "-q", "--no-compile", "-c", constraints, "torch==2.13.0")
    _pip(venv, "install", "-q", "--no-compile", "-c", constraints, f"{wheel}[export]")
    _pip(venv, "uninstall", "-q", "-y", "torchvision")
    package = Path(_venv_python(venv, "import llmops_ft; print(llmops_ft.__file__)").strip()).parent
    assert venv in package.parents, f"llmops_ft imports from {package}, not from the venv"
    subprocess.run([str(venv / "bin" / "python"), "-m", "compileall", "-q", str(package)], check=True, timeout=300)
    return venv


def _venv_python(venv: Path, code: str, cwd: Path | None = None, env: dict | None = None) -> str:
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (folders too: a file added or removed changes theirs)."""
    out = {".": (0, root.lstat().st_mtime_ns)}
    for path in root.rglob("*"):
        st = path.lstat()
        out[path.relative_to(root).as_posix()] = (st.st_size if path.is_file() else 0, st.st_mtime_ns)
    return out


def write_dataset(path: Path) -> int:
    """A small alpaca dataset of the user's own (60 rows, all distinct); returns the row count."""
    rows = [{"instruction": f"Convert {c} degrees Celsius to Fahrenheit.", "input": "",
             "output": f"{c} degrees Celsius is {c * 9 / 5 + 32:g} degrees Fahrenheit."} for c in range(-10, 110, 2)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


# --- the workflow SKILL.md shows, from a scratch project ----------------------------------------------------------

TINY = "models/tiny"
EVAL_ROWS = 3  # prep holds out about 10% of the 60 rows; evaluate the first 3
TRAIN_STEPS = 16
# The smoke test's settings for the tiny random model: a few steps at a high rate make the loss visibly fall.
TRAIN_SETS = ["--set", f"training.max_steps={TRAIN_STEPS}", "--set", "training.learning_rate=0.02",
              "--set", "training.warmup_steps=2", "--set", "training.logging_steps=1", "--set", "training.save_steps=8"]


def shown_commands(skill_md: Path) -> list[list[str]]:
    """Each `llmops-ft ...` line of SKILL.md's shell blocks, split as the shell would, in order."""
    import shlex

    from llmops_ft.skill.checks.commands import SHELL_LANGS, command_lines
    from llmops_ft.skill.markdown import parse

    out = []
    for block in parse(skill_md).code_blocks:
        if block.lang in SHELL_LANGS:
            out += [shlex.split(text, comments=True) for _, text in command_lines(block.text)
                    if text.startswith("llmops-ft ")]
    return out


def workflow(skill_md: Path) -> dict[str, list[str]]:
    """SKILL.md's workflow commands, by step, turned to the tiny model on a CPU with a few steps.

    Only values change (the model, the GPU preset, the quantization the tiny model's 64-wide rows allow, the row
    limit); the verbs and flags are SKILL.md's, plus --json and the training overrides.
    """
    shown = shown_commands(skill_md)

    def first(verb: str, *, lacks: tuple[str, ...] = ()) -> list[str]:
        found = [c for c in shown if c[1] == verb and not set(lacks) & set(c)]
        assert found, f"SKILL.md shows no `llmops-ft {verb}` command without {lacks}: {shown}"
        return list(found[0][1:])

    export = first("export")
    quant = export[export.index("--quant") + 1]
    evaluate = first("evaluate")
    base = evaluate[evaluate.index("--base") + 1]
    values = {"smollm2-135m": TINY, base: TINY, quant: "f16", "t4": "cpu", "50": str(EVAL_ROWS)}

    def tiny(argv: list[str]) -> list[str]:
        return [re.sub(re.escape(quant), "f16", a) if a.endswith(".gguf") else values.get(a, a) for a in argv]

    steps = {
        "doctor": first("doctor") if any(c[1] == "doctor" for c in shown) else ["doctor"],
        "prep": tiny(first("prep")),
        "init-config": [*tiny(first("init-config")), "--model", TINY],
        "plan": tiny(first("plan")),
        "train": [*first("train", lacks=("--dry-run", "--set")), *TRAIN_SETS],
        "export": tiny(export),
        "evaluate": [*tiny(evaluate), "--max-new-tokens", "8"],
        "chat": [*tiny(first("chat")), "--max-new-tokens", "8"],
    }
    assert "--gpu" in steps["init-config"] and steps["init-config"][steps["init-config"].index("--gpu") + 1] == "cpu"
    return {name: [*argv, "--json"] for name, argv in steps.items()}


def run_verb(venv: Path, project: Path, env: dict, argv: list[str], expect: int = 0) -> dict:
    """`llmops-ft ARGV` from the scratch project; its --json object."""
    start = time.monotonic()
    proc = subprocess.run([str(venv / "bin" / "llmops-ft"), *argv], cwd=project, env=env, capture_output=True,
                          text=True, timeout=900)
    print(f"llmops-ft {argv[0]}: {time.monotonic() - start:.1f} s")  # shown with -s or on failure
    assert proc.returncode == expect, f"llmops-ft {' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def user_env(venv: Path, home: Path) -> dict:
    """The user's shell: the venv's bin first on PATH, a home of its own, offline; the embedded model's cache reused."""
    from llmops_ft.engines.models import cache_dir

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "HOME": str(home),
            "VIRTUAL_ENV": str(venv), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "LLMOPS_FT_CACHE": str(cache_dir())}


@pytest.mark.slow
def test_a_user_project_installs_the_plugin_and_runs_the_workflow(built_wheel, claude_exe, plugin_source,
                                                                   tmp_path):
    home, project = tmp_path / "home", tmp_path / "project"
    home.mkdir()
    project.mkdir()
    plugin_folder = install_plugin(claude_exe, home, plugin_source, project)
    venv = make_venv(built_wheel, tmp_path)
    package = Path(_venv_python(venv, "import llmops_ft; print(llmops_ft.__file__)").strip()).parent
    untouched = {root: snapshot(root) for root in (package, plugin_folder, plugin_source)}

    env = user_env(venv, home)
    rows = write_dataset(project / "data" / "train.jsonl")
    _venv_python(venv, f"from llmops_ft.engines.models import build_tiny_llama; build_tiny_llama({TINY!r})",
                 cwd=project, env=env)
    steps = workflow(plugin_folder / SKILL_PATH / "SKILL.md")
    results = {name: run_verb(venv, project, env, argv) for name, argv in steps.items()}

    check_doctor(results["doctor"])
    check_prep_and_config(results, project, rows, venv, env, steps["init-config"])
    check_training(results, project)
    check_exports(results, project, venv, env)
    for root, before in untouched.items():
        assert snapshot(root) == before, f"the workflow wrote into {root.name}"
    assert not (project / "llmops_ft").exists() and sorted(p.name for p in project.iterdir()) == [
        ".claude", "data", "exports", "models", "my.yaml", "runs"]


def check_doctor(report: dict) -> None:
    """The machine check passes and names every part it checked."""
    names = [c["name"] for c in report["checks"]]
    assert names == ["python", "package", "torch", "unsloth", "llama.cpp", "model cache", "disk"]
    assert report["ok"] is True and report["failed"] == [] and report["verdict"].startswith("doctor: READY")
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["package"]["status"] == "ok" and re.fullmatch(r"\d+\.\d+\.\d+", by_name["package"]["version"])
    assert by_name["unsloth"]["status"] == "ok" and by_name["llama.cpp"]["status"] == "ok"


def check_prep_and_config(results: dict, project: Path, rows: int, venv: Path, env: dict, init: list[str]) -> None:
    """Prep kept the user's rows; the starter config points at project-relative folders and is not overwritten."""
    import yaml

    prep = results["prep"]
    assert prep["total"] == rows and prep["kept"] == rows and prep["rejected"] == 0
    assert prep["train"] + prep["val"] == rows and prep["val"] >= EVAL_ROWS
    assert len((project / "runs" / "prep" / "val.jsonl").read_text().splitlines()) == prep["val"]
    config = yaml.safe_load((project / "my.yaml").read_text())
    assert (config["dataset"]["path"], config["output_dir"], config["model"]["name"]) == ("runs/prep", "runs/my", TINY)
    assert results["init-config"]["path"] == "my.yaml" and results["plan"]["verdict"] == "fits"
    before = (project / "my.yaml").read_bytes()
    refused = run_verb(venv, project, env, init, expect=2)
    assert refused["ok"] is False and "--force" in refused["error"]
    assert (project / "my.yaml").read_bytes() == before


def check_training(results: dict, project: Path) -> None:
    """The run: Unsloth trained it (it imports in the fresh venv), every step logged, finite losses, the loss falls."""
    train = results["train"]
    assert train["backend"] == "unsloth" and train["hardware"] == "cpu"
    assert train["steps"] == TRAIN_STEPS and math.isfinite(train["final_loss"])
    run = project / "runs" / "my"
    by_step = {row["step"]: row["loss"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
               if "loss" in row and "step" in row}
    assert sorted(by_step) == list(range(1, TRAIN_STEPS + 1))  # logging_steps=1: one loss per step
    losses = [by_step[step] for step in sorted(by_step)]
    assert all(math.isfinite(x) and x > 0 for x in losses)
    quarter = TRAIN_STEPS // 4
    assert sum(losses[-quarter:]) < sum(losses[:quarter]), losses
    assert (run / "run.json").is_file() and (run / "adapter").is_dir()


def check_exports(results: dict, project: Path, venv: Path, env: dict) -> None:
    """The GGUF and its Modelfile exist, verified; llama.cpp loads the GGUF; evaluate and chat answered."""
    export = results["export"]
    assert export["ok"] is True
    out = project / "exports" / "task-api"
    gguf = out / "task-api-f16.gguf"
    modelfile = (out / "Modelfile").read_text()
    assert gguf.stat().st_size > 1_000_000 and re.search(r"^FROM \S*task-api-f16\.gguf$", modelfile, re.M)
    assert "TEMPLATE" in modelfile and "PARAMETER stop" in modelfile
    verify = json.loads((out / "verify.json").read_text())
    assert verify["ok"] is True
    vocab = json.loads((project / TINY / "config.json").read_text())["vocab_size"]
    loaded = json.loads(_venv_python(venv, (
        "import json, llama_cpp\n"
        f"m = llama_cpp.Llama(model_path={str(gguf)!r}, n_ctx=128, verbose=False)\n"
        "print(json.dumps({'n_vocab': m.n_vocab(), 'arch': m.metadata.get('general.architecture')}))"), env=env))
    assert loaded == {"n_vocab": vocab, "arch": "llama"}
    report = json.loads((project / "runs" / "eval" / "report.json").read_text())
    assert report["n"] == results["evaluate"]["n"] == EVAL_ROWS and report["data"] == "runs/prep/val.jsonl"
    base, tuned = report["models"]["base"], report["models"]["tuned"]
    assert (base["model"], tuned["model"]) == (TINY, "runs/my")
    # no task scorer for this data: held-out loss; a few steps on rows like these must lower it
    assert report["mode"] == "loss" and math.isfinite(tuned["loss"]) and tuned["loss"] < base["loss"]
    chat = results["chat"]
    assert isinstance(chat["response"], str) and chat["response"].strip()
