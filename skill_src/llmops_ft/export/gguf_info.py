"""A fast read of a GGUF header: metadata values and the tensor index (name, type, shape), no tensor data.

`gguf.GGUFReader` builds a numpy view per array element, which takes seconds for a 49k-token vocabulary; this
walks the same layout (GGUF v2/v3, little-endian) with struct and skips array contents it is not asked for.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError

# GGUF value type -> struct format of one scalar (8 = string, 9 = array are handled apart)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


@dataclass
class GGUFInfo:
    """Header of a GGUF file."""

    version: int
    metadata: dict[str, Any]  # arrays are given as their length (int) under the key + ".length"
    tensors: list[tuple[str, str, tuple[int, ...]]]  # (name, ggml type name, shape in ggml order)

    def tensor_types(self) -> dict[str, int]:
        """How many tensors of each ggml type."""
        counts: dict[str, int] = {}
        for _, kind, _ in self.tensors:
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


class _Cursor:
    def __init__(self, buffer) -> None:
        self.buffer, self.pos = buffer, 0

    def take(self, fmt: str):
        value = struct.unpack_from("<" + fmt, self.buffer, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        size = self.take("Q")
        text = bytes(self.buffer[self.pos : self.pos + size]).decode("utf-8", errors="replace")
        self.pos += size
        return text

    def skip_value(self, kind: int) -> None:
        if kind == _STRING:
            size = self.take("Q")  # not `self.pos += self.take(...)`: that adds to the position before the read
            self.pos += size
        elif kind == _ARRAY:
            item, count = self.take("I"), self.take("Q")
            if item in _SCALARS:
                self.pos += struct.calcsize(_SCALARS[item]) * count
            else:
                for _ in range(count):
                    self.skip_value(item)
        else:
            self.pos += struct.calcsize(_SCALARS[kind])


def read_info(path: str | Path) -> GGUFInfo:
    """Parse the header of ``path``; a UserError when it is not a readable GGUF file."""
    import gguf

    path = Path(path)
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            cursor = _Cursor(buffer)
            if bytes(buffer[:4]) != b"GGUF":
                raise UserError("not a GGUF file (bad magic)", file=str(path))
            cursor.pos = 4
            version, n_tensors, n_kv = cursor.take("I"), cursor.take("Q"), cursor.take("Q")
            metadata: dict[str, Any] = {}
            for _ in range(n_kv):
                key, kind = cursor.string(), cursor.take("I")
                if kind == _STRING:
                    metadata[key] = cursor.string()
                elif kind == _ARRAY:
                    start = cursor.pos
                    cursor.take("I")
                    metadata[key + ".length"] = cursor.take("Q")
                    cursor.pos = start
                    cursor.skip_value(kind)
                else:
                    metadata[key] = cursor.take(_SCALARS[kind])
            tensors = []
            for _ in range(n_tensors):
                name, n_dims = cursor.string(), cursor.take("I")
                shape = tuple(cursor.take("Q") for _ in range(n_dims))
                kind, _offset = cursor.take("I"), cursor.take("Q")
                tensors.append((name, gguf.GGMLQuantizationType(kind).name, shape))
    except (struct.error, ValueError, KeyError) as exc:
        raise UserError(f"GGUF header unreadable ({exc})", file=str(path)) from None
    return GGUFInfo(version, metadata, tensors)
