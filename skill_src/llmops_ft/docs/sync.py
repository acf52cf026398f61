"""Get the raw docs pages (local mirror, saved ``llms-full.txt``, or online), extract facts, replace the cache.

The cache (``docs_cache/``: ``manifest.json``, ``facts/<key>.json``, ``raw/<path>.md``) is replaced as a whole
and only after every page was read and extracted, so a failed fetch leaves the previous cache exactly as it was.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import UserError
from ..io import atomic_dir, atomic_write_bytes, atomic_write_json
from ..knowledge.facts import count_curated, load_facts, load_manifest, validate_facts, validate_manifest
from ..knowledge.pages import DOCS_HOST, DOCS_ROOT, PAGES
from . import markdown
from .drift import diff_facts
from .extract import EXTRACTOR_VERSION, PageFacts, extract_page, load_curated

BASE_URL_ENV = "LLMOPS_DOCS_BASE_URL"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
MAX_BYTES = 5 * 1024 * 1024


# --- reading local sources ------------------------------------------------------------------------------------


def split_llms_full(text: str) -> list[str]:
    """Cut the site's ``llms-full.txt`` into pages: each runs from its ``# Title`` line to the two-blank-line
    separator before the next one. ``# `` lines inside code fences (Python comments) are not page starts."""
    lines = text.replace("\r\n", "\n").split("\n")
    starts, fence = [], None
    for i, line in enumerate(lines):
        match = markdown.FENCE.match(line)
        if fence is None and match:
            fence = match.group(2)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None and line.startswith("# ") and (i == 0 or (i >= 2 and lines[i - 1] == lines[i - 2] == "")):
            starts.append(i)
    pages = []
    for n, start in enumerate(starts):
        end = starts[n + 1] - 2 if n + 1 < len(starts) else len(lines)
        while end > start and lines[end - 1] == "" and n + 1 == len(starts):
            end -= 1
        pages.append("\n".join(lines[start:end]) + "\n")
    return pages


def pages_from_llms_full(text: str, where: str = "llms-full.txt") -> dict[str, bytes]:
    """The twelve pages out of ``llms-full.txt``, found by their titles; UserError names any that are missing."""
    by_title: dict[str, str] = {}
    for page_text in split_llms_full(text):
        by_title.setdefault(page_text.split("\n", 1)[0][2:].strip(), page_text)
    missing = [page.key for page in PAGES if page.title not in by_title]
    if missing:
        raise UserError(f"pages not found by title: {', '.join(missing)}", file=where)
    return {page.key: by_title[page.title].encode("utf-8") for page in PAGES}


def read_source(src: str | Path) -> tuple[str, dict[str, bytes]]:
    """Read a mirror folder (``<path>.md`` per page) or a saved ``llms-full.txt``: (source kind, key -> bytes)."""
    src = Path(src)
    if src.is_file():
        return "llms-full", pages_from_llms_full(_decode(src.read_bytes(), str(src)), str(src))
    if not src.is_dir():
        raise UserError("no such mirror folder or llms-full.txt file", file=str(src))
    raw, missing = {}, []
    for page in PAGES:
        path = src / page.filename
        if path.is_file():
            raw[page.key] = path.read_bytes()
        else:
            missing.append(f"{page.key} ({page.filename})")
    if missing:
        raise UserError(f"mirror lacks {len(missing)} page(s): {', '.join(missing)}", file=str(src))
    return "mirror", raw


def is_markdown_page(body: bytes) -> bool:
    """A docs page starts with its ``# Title`` (after optional YAML front-matter), unlike an HTML error page."""
    text = body.decode("utf-8", errors="replace").lstrip("\ufeff")
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        text = text[end + 5:] if end >= 0 else text
    return text.lstrip("\n").startswith("# ")


def _decode(body: bytes, where: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text (byte {exc.start})", file=where) from None


# --- extraction -----------------------------------------------------------------------------------------------


def extract_all(raw: dict[str, bytes]) -> dict[str, PageFacts]:
    """Extract every page; each page's facts validated against the fact schema (a bad one is a UserError)."""
    curated = load_curated()
    out = {}
    for page in PAGES:
        if not is_markdown_page(raw[page.key]):
            raise UserError("not a GitBook markdown page (no '# Title' first line)", file=page.filename)
        result = extract_page(page.key, _decode(raw[page.key], page.filename), curated)
        validate_facts(result.facts.values(), f"{page.filename} (extracted)", page.key)
        out[page.key] = result
    return out


def merged_facts(extracted: dict[str, PageFacts]) -> dict[str, dict[str, Any]]:
    """All pages' facts in one dict by id, sorted."""
    return dict(sorted((i, f) for result in extracted.values() for i, f in result.facts.items()))


def facts_from_mirror(src: str | Path) -> dict[str, dict[str, Any]]:
    """Facts of a local mirror folder or a saved ``llms-full.txt``, without touching any cache."""
    return merged_facts(extract_all(read_source(src)[1]))


# --- fetching online ------------------------------------------------------------------------------------------


class FetchError(Exception):
    """One failed attempt at a page; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def check_base_url(url: str) -> str:
    """Accept https on the docs host, or http(s) on a loopback host (tests); refuse any other host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not ((parts.scheme == "https" and host == DOCS_HOST) or (parts.scheme in ("http", "https")
                                                               and host in LOOPBACK_HOSTS)):
        raise UserError(f"base URL must be https://{DOCS_HOST}/... (or a loopback host for tests), got {url!r}",
                        field="--base-url")
    return url if url.endswith("/") else url + "/"


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only when it stays on the base URL's scheme and host."""

    def __init__(self, scheme: str, netloc: str) -> None:
        self.origin = (scheme, netloc)

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 (urllib's hook)
        target = urlsplit(newurl)
        if (target.scheme, target.netloc) != self.origin:
            raise FetchError(f"redirect to {target.scheme}://{target.netloc} refused (off the docs host)", False)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(base_url: str) -> urllib.request.OpenerDirector:
    parts = urlsplit(base_url)
    handlers: list[Any] = [_SameOriginRedirects(parts.scheme, parts.netloc)]
    if parts.hostname in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener(*handlers)


def fetch_once(opener: urllib.request.OpenerDirector, url: str, timeout: float, max_bytes: int) -> bytes:
    """One GET of ``url``: the whole body, checked against its Content-Length and ``max_bytes``."""
    request = urllib.request.Request(url, headers={"User-Agent": "llmops-fine-tuner-sync-docs"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            declared = resp.headers.get("Content-Length")
            if declared is not None and not declared.strip().isdigit():
                raise FetchError(f"bad Content-Length {declared[:20]!r}", False)
            if declared is not None and int(declared) > max_bytes:
                raise FetchError(f"{declared} bytes declared, over the {max_bytes}-byte cap", False)
            body = bytearray()
            while chunk := resp.read(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise FetchError(f"body over the {max_bytes}-byte cap", False)
            if declared is not None and len(body) != int(declared):
                raise FetchError(f"truncated: {len(body)} of {declared} bytes", True)
            if not is_markdown_page(bytes(body)):
                raise FetchError("not a GitBook markdown page (no '# Title' first line)", False)
            return bytes(body)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"HTTP {exc.code}", exc.code >= 500 or exc.code == 429) from None
    except urllib.error.URLError as exc:
        raise FetchError(f"connection failed: {exc.reason}", True) from None
    except TimeoutError:
        raise FetchError(f"timed out after {timeout:g} s", True) from None
    except (HTTPException, OSError) as exc:  # a reset or TLS error mid-body
        raise FetchError(f"connection broken: {type(exc).__name__}", True) from None


def fetch_online(
    base_url: str = DOCS_ROOT,
    *,
    timeout: float = 20.0,
    retries: int = 3,
    backoff: float = 1.0,
    max_bytes: int = MAX_BYTES,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, bytes]:
    """GET ``<base_url><page path>.md`` for every page, retrying transient failures with exponential backoff.

    Raises UserError (exit 2) naming every page that failed; returns nothing partial.
    """
    base_url = check_base_url(base_url)
    opener = _opener(base_url)
    raw, failed = {}, []
    for page in PAGES:
        url = base_url + page.filename
        for attempt in range(retries + 1):
            try:
                raw[page.key] = fetch_once(opener, url, timeout, max_bytes)
                break
            except FetchError as exc:
                if not exc.retry or attempt == retries:
                    failed.append(f"{page.key} ({exc}{'' if not exc.retry else f', {attempt + 1} tries'})")
                    break
                sleep(backoff * 2**attempt)
    if failed:
        raise UserError(f"{len(failed)} page(s) failed, cache unchanged: {'; '.join(failed)}", file=base_url)
    return raw


# --- the cache ------------------------------------------------------------------------------------------------


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(
    source: str, raw: dict[str, bytes], extracted: dict[str, PageFacts], previous: dict[str, Any] | None, now: str
) -> dict[str, Any]:
    """The manifest; a page whose bytes did not change keeps its earlier ``fetched_at`` (re-syncs are stable)."""
    before = {p["key"]: p for p in (previous or {}).get("pages", [])}
    pages = []
    for page in PAGES:
        body = raw[page.key]
        digest = hashlib.sha256(body).hexdigest()
        old = before.get(page.key)
        pages.append({
            "key": page.key,
            "path": page.path,
            "url": page.url,
            "fetched_at": old["fetched_at"] if old and old["sha256"] == digest else now,
            "sha256": digest,
            "size": len(body),
            "facts": len(extracted[page.key].facts),
        })
    facts = merged_facts(extracted)
    return {
        "extractor_version": EXTRACTOR_VERSION,
        "source": source,
        "facts_total": len(facts),
        "facts_curated": count_curated(facts),
        "pages": pages,
    }


def write_cache(cache_dir: Path, manifest: dict[str, Any], raw: dict[str, bytes],
                extracted: dict[str, PageFacts]) -> None:
    """Replace ``cache_dir`` as a whole: manifest, ``facts/<key>.json``, ``raw/<path>.md``; other files kept."""
    cache_dir = Path(cache_dir)
    with atomic_dir(cache_dir, force=True) as tmp:
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is a normal repo folder
        if cache_dir.is_dir():
            for entry in cache_dir.iterdir():
                if entry.name not in ("manifest.json", "facts", "raw"):
                    copy = shutil.copytree if entry.is_dir() else shutil.copy2
                    copy(entry, tmp / entry.name)
        for page in PAGES:
            facts = list(extracted[page.key].facts.values())
            atomic_write_json(tmp / "facts" / f"{page.key}.json", facts)
            atomic_write_bytes(tmp / "raw" / page.filename, raw[page.key])
        atomic_write_json(tmp / "manifest.json", manifest)


@dataclass
class SyncOutcome:
    """What a sync did: where from, the drift against the previous cache, and what it could not use."""

    source: str
    written: bool
    manifest: dict[str, Any] | None
    diff: dict[str, list[Any]]
    skipped: dict[str, list[str]]
    note: str = ""


def sync(
    mode: str,
    cache_dir: str | Path,
    *,
    src: str | Path | None = None,
    fetch: Callable[[], dict[str, bytes]] | None = None,
    dry_run: bool = False,
    now: str | None = None,
) -> SyncOutcome:
    """Sync ``cache_dir`` from ``mode`` = "cache" (its own ``raw/``), "from" (``src``) or "online" (``fetch()``)."""
    cache_dir = Path(cache_dir)
    has_cache = (cache_dir / "facts").is_dir()
    old_facts = load_facts(cache_dir) if has_cache else {}
    previous = load_manifest(cache_dir) if (cache_dir / "manifest.json").is_file() else None
    empty = {"added": [], "removed": [], "changed": []}
    if mode == "cache":
        raw_dir = cache_dir / "raw"
        if not raw_dir.is_dir():
            note = "docs_cache/raw/ is absent (it is not committed): the committed facts stand as they are"
            return SyncOutcome("cache", False, previous, empty, {}, note)
        source = previous["source"] if previous else "mirror"
        raw = read_source(raw_dir)[1]
    elif mode == "from":
        source, raw = read_source(src)
    elif mode == "online":
        source, raw = "online", fetch()
    else:
        raise ValueError(mode)
    extracted = extract_all(raw)
    manifest = validate_manifest(build_manifest(source, raw, extracted, previous, now or _utc_now()))
    diff = diff_facts(old_facts, merged_facts(extracted))
    if not dry_run:
        write_cache(cache_dir, manifest, raw, extracted)
    skipped = {key: result.skipped for key, result in extracted.items() if result.skipped}
    return SyncOutcome(source, not dry_run, manifest, diff, skipped)
