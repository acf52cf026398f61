"""Content keys of prepared rows: exact-duplicate detection and a seeded, order-independent train/val split.

The key hashes the row's content with whitespace runs collapsed, so rows that differ only in spacing or line
endings are duplicates; the kept row keeps its original text. The split hashes the same key with the seed: the
same row lands in the same split whatever its position, and no pass over the data is needed beforehand.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_BYTES = 16


def _squash(text: str) -> str:
    return " ".join(text.split())


def content_key(row: dict[str, Any]) -> bytes:
    """A 16-byte digest of the row's whitespace-normalised content (roles, texts, tool calls, tools)."""
    if "text" in row:
        canonical = _squash(row["text"])
    else:
        turns = [
            [m["role"], _squash(m["content"]), m.get("tool_calls"), m.get("tool_call_id"), m.get("name")]
            for m in row["messages"]
        ]
        canonical = json.dumps([turns, row.get("tools")], ensure_ascii=False, sort_keys=True)
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=KEY_BYTES).digest()


def split_draw(key: bytes, seed: int) -> float:
    """A number in [0, 1) fixed by the row's content and the seed; rows below the val fraction go to val."""
    digest = hashlib.blake2b(key, digest_size=8, key=str(seed).encode("ascii")).digest()
    return int.from_bytes(digest, "big") / 2**64
