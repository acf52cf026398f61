"""The data files the package reads at run time, found through importlib.resources.

In a source checkout ``llmops_ft/resources/`` holds symlinks to the repository's own files (recommendations.yaml,
templates/, docs_cache/, examples/configs/, examples/task_api/); a wheel carries them as plain files. Only the
maintainer verbs that regenerate these files (sync-docs, render-skill) need the checkout itself.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from ..errors import UserError

_ANCHOR = "docs_cache"  # a symlink in a checkout, a folder in an installed wheel


def resources_dir() -> Path:
    """The package's resources folder (a real folder on disk: wheels are installed unzipped)."""
    return Path(str(importlib.resources.files("llmops_ft") / "resources"))


def resource(name: str) -> Path:
    """The packaged file or folder ``name`` (e.g. ``configs/cpu_smoke.yaml``); UserError when it is missing."""
    path = resources_dir() / name
    if not path.exists():
        raise UserError(f"packaged file {name!r} is missing: reinstall llmops-fine-tuner", file=str(path))
    return path


def source_repo() -> Path | None:
    """The repository checkout the package runs from, or None for an installed wheel."""
    anchor = resources_dir() / _ANCHOR
    return anchor.resolve().parent if anchor.is_symlink() else None


def require_source_repo(verb: str) -> Path:
    """The checkout, for verbs that rewrite the repository's files; UserError for an installed wheel."""
    repo = source_repo()
    if repo is None:
        raise UserError(f"{verb} regenerates files of a llmops-fine-tuner checkout; run it from an editable "
                        "install of a clone (pip install -e .)")
    return repo
