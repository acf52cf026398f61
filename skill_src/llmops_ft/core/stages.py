"""Named stages run in order with one verdict each, stopping at the first failure (the smoke test and the demo)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import UserError

Stage = tuple[str, Callable[[dict[str, Any]], str]]


def run_stages(stages: list[Stage], state: dict[str, Any], *, announce: str | None = None) -> list[dict[str, Any]]:
    """Call each stage with ``state``; a stage returns a one-line detail or raises.

    Returns [{stage, ok, seconds, detail}], ending at the first failure: a UserError gives its own line, any other
    exception its type, message and the line that raised (bugs are verdicts too). With ``announce`` (a prefix),
    each stage's start and end are printed as they happen.
    """
    verdicts = []
    for name, stage in stages:
        if announce:
            print(f"{announce}: {name} ...", flush=True)
        started = time.perf_counter()
        try:
            detail, ok = stage(state), True
        except UserError as exc:
            detail, ok = str(exc), False
        except Exception as exc:
            where = traceback.format_exc(limit=2).splitlines()[-3].strip()
            detail, ok = f"{type(exc).__name__}: {exc} | {where}", False
        seconds = round(time.perf_counter() - started, 2)
        verdicts.append({"stage": name, "ok": ok, "seconds": seconds, "detail": detail})
        if announce:
            print(f"{announce}: {name}: {'ok' if ok else 'FAILED'} in {seconds:.1f} s — {detail}", flush=True)
        if not ok:
            break
    return verdicts
