"""Shared fixtures: the public corpus (optional) and a private cache folder for every test run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Compiled-rule and report caches go to a throwaway folder, never the user's cache.
    os.environ["RESTYTRIAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("public corpus (../shared/corpus) not present")
    return CORPUS


@pytest.fixture(scope="session")
def built_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from restytriage.samples import build_all

    folder = tmp_path_factory.mktemp("samples")
    return {sample.name: path for sample, path in build_all(folder)}
