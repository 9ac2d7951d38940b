"""The benchmark's modules import, with the packages CI installs: nothing else in the suite
runs bench/, and a broken import there would otherwise surface only in a benchmark run."""

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
# Settings and URL modules are loaded by Django from a benchmark's own process.
MODULES = sorted(
    path.stem
    for path in BENCH.glob("*.py")
    if path.stem != "__init__" and not path.stem.endswith(("_settings", "_urls"))
)


@pytest.mark.parametrize("module", MODULES)
def test_a_benchmark_module_imports(module: str) -> None:
    importlib.import_module(f"bench.{module}")
