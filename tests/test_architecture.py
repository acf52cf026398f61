"""The package's dependency direction: the import-linter layer contract holds, and no two sibling modules or
subpackages import each other (imports inside functions count: grimp reads every import statement)."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def _lint_imports() -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports (import-linter) is not installed in this environment: run make setup"
    return subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_layer_contract_holds():
    proc = _lint_imports()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _mutual_pairs(graph, parent: str) -> list[tuple[str, str]]:
    children = sorted(graph.find_children(parent))
    pairs = []
    for a, b in itertools.combinations(children, 2):
        if (graph.direct_import_exists(importer=a, imported=b, as_packages=True)
                and graph.direct_import_exists(importer=b, imported=a, as_packages=True)):
            pairs.append((a, b))
    for child in children:
        pairs += _mutual_pairs(graph, child)
    return pairs


def test_no_two_siblings_import_each_other():
    graph = grimp.build_graph("llmops_ft", cache_dir=None)
    assert len(graph.modules) > 50  # the whole package was read, not an empty graph
    assert _mutual_pairs(graph, "llmops_ft") == []


def test_a_mutual_import_would_be_found(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclepkg"
    (pkg / "a").mkdir(parents=True)
    (pkg / "b").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("def f():\n    from ..b import g\n")
    (pkg / "b" / "__init__.py").write_text("from ..a import f\ng = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclepkg", cache_dir=None)
    assert _mutual_pairs(graph, "cyclepkg") == [("cyclepkg.a", "cyclepkg.b")]


MAX_FUNCTION_LINES = 60  # issue 14: no function over 60 lines in the package


def _long_functions(root: Path, limit: int) -> list[str]:
    import ast

    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_the_package_runs_over_60_lines():
    assert _long_functions(REPO / "skill_src" / "llmops_ft", MAX_FUNCTION_LINES) == []


def test_a_long_function_would_be_found(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (tmp_path / "m.py").write_text(f"def short():\n    return 1\n\n\ndef long():\n{body}\n")
    assert _long_functions(tmp_path, MAX_FUNCTION_LINES) == ["m.py:5 long (61 lines)"]
