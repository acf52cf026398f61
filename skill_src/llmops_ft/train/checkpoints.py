"""Checkpoints that are either complete or absent, the newest-complete lookup, and stop-on-signal.

The Trainer writes a checkpoint into ``checkpoints/.staging/checkpoint-N`` and we rename it to
``checkpoints/checkpoint-N`` once every rank has written its part: a checkpoint under its final name is always
complete, so a run killed mid-save (kill -9, a lost Colab session) resumes from the previous one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Any

from ..errors import UserError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STAGING = ".staging"
# What makes a checkpoint resumable: the trainer state plus the LoRA weights and the optimizer.
REQUIRED_FILES = ("trainer_state.json", "adapter_model.safetensors", "optimizer.pt", "scheduler.pt")


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step N of a ``checkpoint-N`` folder, else None."""
    match = CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` holds every file a resume needs."""
    path = Path(path)
    return path.is_dir() and all((path / name).is_file() for name in REQUIRED_FILES)


def complete_checkpoints(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """Complete ``checkpoint-N`` folders under ``checkpoints_dir``, oldest first."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if checkpoint_step(p) is not None and is_complete(p)]
    return sorted(found, key=checkpoint_step)


def newest_complete(checkpoints_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    found = complete_checkpoints(checkpoints_dir)
    return found[-1] if found else None


def resolve_resume(resume: str, checkpoints_dir: Path) -> Path | None:
    """The checkpoint to resume from: ``auto`` (newest complete, or none), ``never``, or an explicit folder."""
    if resume == "never":
        return None
    if resume == "auto":
        return newest_complete(checkpoints_dir)
    path = Path(resume)
    if not path.is_dir():
        raise UserError("checkpoint folder not found", file=resume, field="--resume")
    if not is_complete(path):
        missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
        raise UserError(f"incomplete checkpoint (missing {', '.join(missing)})", file=resume, field="--resume")
    return path


def staging_dir(checkpoints_dir: Path) -> Path:
    """Where the Trainer writes a checkpoint before it is published."""
    return checkpoints_dir / STAGING


def publish(staged: Path, checkpoints_dir: Path, keep: int | None) -> Path:
    """Rename a fully written ``staged`` checkpoint into ``checkpoints_dir`` and keep the newest ``keep``."""
    final = checkpoints_dir / staged.name
    if final.exists():  # the same step saved twice (a signal at a save step): the newer copy wins
        shutil.rmtree(final)
    os.replace(staged, final)
    with contextlib.suppress(OSError):  # only when empty: another rank's part may still be on its way
        staged.parent.rmdir()
    if keep is not None:
        for old in complete_checkpoints(checkpoints_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def clear_staging(checkpoints_dir: Path) -> None:
    """Remove half-written checkpoints left by a killed run."""
    shutil.rmtree(staging_dir(checkpoints_dir), ignore_errors=True)


class StopOnSignal:
    """SIGTERM/SIGINT set a flag; the trainer saves a checkpoint at the end of the current step and stops.

    A second signal of the same kind falls back to the default behaviour (exit now), so an impatient user is
    never stuck. ``signum`` is the signal that asked to stop, or None.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopOnSignal:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            os.kill(os.getpid(), signum)
            return
        self.signum = signum
        print(f"received {signal.Signals(signum).name}: saving a checkpoint at the end of this step, then stopping",
              flush=True)
