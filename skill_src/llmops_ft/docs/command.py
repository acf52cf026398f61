"""`sync_docs.py`: refresh docs_cache/ from the Unsloth docs and report the facts that drifted."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..core.result import Result
from ..errors import UserError
from ..knowledge.pages import DOCS_ROOT
from ..knowledge.resources import require_source_repo
from .drift import citing_recommendations, drift_rows, drift_table, has_drift
from .sync import BASE_URL_ENV, MAX_BYTES, check_base_url, fetch_online, sync

HELP = """Refresh docs_cache/ (manifest + facts per Unsloth docs page) and print the facts that changed.

Pick one source:
  --from-cache     re-extract from docs_cache/raw/ (not committed; when absent the committed facts stand)
  --from PATH      a local mirror laid out like ../shared/unsloth-docs/ (<page path>.md), or a saved llms-full.txt
  --online         fetch <page URL>.md for every page from https://unsloth.ai/docs/ (timeouts, retries, 5 MB cap)

The cache is replaced only when every page was read: on any failure it stays as it was and the failed pages
are named. The drift table lists each fact added, removed or changed, and the recommendations
(skill_src/recommendations.yaml) that cite it.

exit status: 0 no drift; 3 drift found (cache updated, or not with --dry-run); 2 error (cache untouched)."""


def configure(parser: argparse.ArgumentParser) -> None:
    """Add sync_docs.py's options."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-cache", action="store_true", help="re-extract from docs_cache/raw/")
    source.add_argument("--from", dest="src", metavar="PATH", help="local mirror folder or saved llms-full.txt")
    source.add_argument("--online", action="store_true", help="fetch every page from the docs site")
    parser.add_argument("--cache", default=None, metavar="DIR", help="cache folder (default: docs_cache/)")
    parser.add_argument("--dry-run", action="store_true", help="report drift without writing the cache")
    online = parser.add_argument_group("online fetching")
    online.add_argument("--base-url", default=None,
                        help=f"docs root (default {DOCS_ROOT}, or ${BASE_URL_ENV}); only the docs host or loopback")
    online.add_argument("--timeout", type=float, default=20.0, help="seconds per request (default 20)")
    online.add_argument("--retries", type=int, default=3, help="retries per page on transient errors (default 3)")
    online.add_argument("--backoff", type=float, default=1.0, help="first retry delay in s, doubling (default 1)")
    online.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="size cap per page (default 5 MB)")


def _shown(path: Path) -> str:
    """A path as the user should see it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace) -> Result:
    """Sync the cache from the chosen source; exit 3 on drift."""
    cache = Path(args.cache) if args.cache else require_source_repo("sync-docs") / "docs_cache"
    if args.online:
        base_url = check_base_url(args.base_url or os.environ.get(BASE_URL_ENV) or DOCS_ROOT)
        if args.timeout <= 0 or args.retries < 0 or args.max_bytes <= 0:
            raise UserError("--timeout and --max-bytes must be positive, --retries not negative", field="--timeout")

        def fetch() -> dict[str, bytes]:
            return fetch_online(base_url, timeout=args.timeout, retries=args.retries, backoff=args.backoff,
                                max_bytes=args.max_bytes)

        outcome = sync("online", cache, fetch=fetch, dry_run=args.dry_run)
    elif args.src:
        outcome = sync("from", cache, src=args.src, dry_run=args.dry_run)
    else:
        outcome = sync("cache", cache, dry_run=args.dry_run)

    try:
        cited, cited_note = citing_recommendations(), ""
    except UserError as exc:  # the docs cache is refreshed even while recommendations.yaml is being edited
        cited, cited_note = {}, f"recommendations not read ({exc}); the drift table cannot name them"
    rows = drift_rows(outcome.diff, cited)
    drift = has_drift(outcome.diff)
    manifest = outcome.manifest or {}
    data = {
        "ok": True,
        "source": outcome.source,
        "cache": _shown(cache),
        "written": outcome.written,
        "note": " ".join(n for n in (outcome.note, cited_note) if n),
        "facts_total": manifest.get("facts_total"),
        "facts_curated": manifest.get("facts_curated"),
        "pages": [{k: p[k] for k in ("key", "facts", "sha256", "fetched_at")} for p in manifest.get("pages", [])],
        "drift": rows,
        "skipped": outcome.skipped,
        "exit_code": 3 if drift else 0,
    }
    lines = []
    if outcome.note:
        lines.append(f"sync-docs: {outcome.note}")
    else:
        lines.append(f"sync-docs: {len(manifest['pages'])} pages from {outcome.source}: {manifest['facts_total']} "
                     f"facts ({manifest['facts_curated']} curated) -> "
                     + (_shown(cache) if outcome.written else "not written (--dry-run)"))
        for key, reasons in outcome.skipped.items():
            for reason in reasons:
                lines.append(f"  not used ({key}): {reason}")
        counts = {kind: len(outcome.diff[kind]) for kind in ("added", "removed", "changed")}
        lines.append("drift: " + (", ".join(f"{n} {kind}" for kind, n in counts.items()) if drift else "none"))
        if drift:
            lines.append(drift_table(rows))
    if cited_note:
        lines.append(f"sync-docs: warning: {cited_note}")
    return Result(data=data, text="\n".join(lines), exit_code=data["exit_code"])
