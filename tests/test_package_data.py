"""The wheel carries every file the verbs read at run time, byte for byte as the repository has it.

``skill_src/llmops_ft/resources/`` holds symlinks to the repository's files; this test is the check that keeps the
packaged copies in sync (a file the package-data patterns miss, or a stale build, fails here).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from llmops_ft.knowledge.resources import resource, resources_dir, source_repo

REPO = Path(__file__).resolve().parents[1]
# packaged name -> (repository folder or file, the files of it the package reads)
PACKAGED = {
    "recommendations.yaml": ("skill_src/recommendations.yaml", None),
    "templates": ("skill_src/templates", "**/*.j2"),
    "docs_cache": ("docs_cache", "**/*.json"),
    "configs": ("examples/configs", "*.yaml"),
    "task_api": ("examples/task_api", "*.json*"),
}


def _expected() -> dict[str, bytes]:
    files = {}
    for name, (source, pattern) in PACKAGED.items():
        src = REPO / source
        if pattern is None:
            files[f"llmops_ft/resources/{name}"] = src.read_bytes()
            continue
        for path in sorted(src.glob(pattern)):
            if path.is_file() and "raw" not in path.relative_to(src).parts:
                files[f"llmops_ft/resources/{name}/{path.relative_to(src).as_posix()}"] = path.read_bytes()
    return files


def test_the_checkout_reads_the_repository_files_through_the_symlinks():
    assert source_repo() == REPO
    for name, (source, _) in PACKAGED.items():
        assert (resources_dir() / name).is_symlink()
        assert (resources_dir() / name).resolve() == (REPO / source).resolve()
    assert resource("configs/cpu_smoke.yaml").read_bytes() == (REPO / "examples/configs/cpu_smoke.yaml").read_bytes()


def test_the_wheel_holds_every_packaged_file_byte_for_byte(built_wheel):
    expected = _expected()
    assert len(expected) > 20  # templates, facts and configs were all found
    with zipfile.ZipFile(built_wheel) as whl:
        names = set(whl.namelist())
        missing = sorted(set(expected) - names)
        assert missing == []
        differ = [n for n, data in expected.items() if whl.read(n) != data]
        assert differ == []
        extra = sorted(n for n in names if n.startswith("llmops_ft/resources/") and n not in expected)
        assert extra == []  # nothing unlisted (raw docs pages, scripts) rides along
        assert "llmops_ft/schemas/run_config.json" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = whl.read(entry_points).decode()
        assert "llmops-ft = llmops_ft.cli:main" in text and "task_api = llmops_ft.taskapi.score:SCORER" in text
