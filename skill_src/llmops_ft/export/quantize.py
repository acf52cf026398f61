"""K-quants (q4_k_m, q5_k_m) through llama.cpp's own quantizer, as exposed by llama-cpp-python.

llama.cpp picks a type per tensor (the "_m" mixes keep some tensors at higher precision) and falls back to a
legacy type for tensors whose rows are not a multiple of 256 (the K-quant super-block); the resulting mix is
read back from the file and reported.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

from ..errors import UserError

KQUANTS = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M", "q5_k_m": "LLAMA_FTYPE_MOSTLY_Q5_K_M"}


def quantize(src: Path, dst: Path, quant: str, threads: int | None = None) -> dict[str, int]:
    """Quantize the f16/bf16 GGUF ``src`` into ``dst`` as ``quant``; return {tensor type: count} of the result."""
    import ctypes

    try:
        import llama_cpp
    except ImportError:
        raise UserError(f"{quant} needs llama-cpp-python (pip install llama-cpp-python) for llama.cpp's quantizer",
                        field="--quant") from None
    if quant not in KQUANTS:
        raise UserError(f"llama.cpp quantization {quant!r} is not offered; choose one of {', '.join(KQUANTS)}",
                        field="--quant")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, KQUANTS[quant])
    params.nthread = threads or os.cpu_count() or 2
    # llama.cpp logs a line or two per tensor (the type mix is reported instead): capture it all, at every level
    # (a Llama(verbose=False) earlier in the process leaves llama-cpp-python's logger at ERROR, which would hide
    # the quantizer's own reason for a failure, logged below ERROR)
    logger = logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with _captured_stderr() as log:
            status = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    finally:
        logger.setLevel(level)
    if status != 0 or not dst.is_file():
        last = (log.text.strip().splitlines() or [""])[-1]
        raise UserError(f"llama.cpp's quantizer failed ({status}) making {quant}: {last}", file=str(src))
    return tensor_types(dst)


class _Log:
    text = ""


@contextmanager
def _captured_stderr() -> Iterator[_Log]:
    """Capture what native code writes to file descriptor 2 and what Python writes to sys.stderr (llama-cpp-python
    prints llama.cpp's log from a Python callback); the text lands in the yielded log."""
    log, python_side = _Log(), io.StringIO()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with redirect_stderr(python_side):
                yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            log.text = sink.read().decode("utf-8", "replace") + python_side.getvalue()


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type a GGUF holds."""
    from .gguf_info import read_info

    return read_info(path).tensor_types()
