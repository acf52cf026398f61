"""Faults, measured (the campaigns in benchmarks/faults.py, whose counts BENCHMARKS.md records)."""

from __future__ import annotations

import sys

import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import faults  # noqa: E402


def _clean(result: dict, inputs: int) -> None:
    assert result["inputs"] >= inputs, result
    assert result["failures"] == 0, result["examples"]


def test_dataset_reader_fuzz_thousands_of_inputs():
    result = faults.fuzz_dataset_reader(3000)
    _clean(result, 3000)
    assert result["faults"] > 1000  # most generated files carry a broken line, junk bytes, a BOM or CRLF


def test_config_loader_fuzz_thousands_of_inputs():
    _clean(faults.fuzz_config_loader(3000), 3000)


def test_docs_sync_keeps_the_cache_under_every_server_fault():
    _clean(faults.docs_sync_faults(), 14)


@pytest.mark.slow
def test_sigkill_three_times_then_resume_finishes_the_run():
    result = faults.sigkill_resume(kills=3)
    _clean(result, 4)
    assert result["faults"] == 3  # each kill landed mid-run
