"""The sample set and samples_manifest.json: deterministic, complete, and the tool meets every entry."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from restytriage.engine import triage
from restytriage.samples import MANIFEST_NAME, all_samples, manifest
from restytriage.verify import differences, load_manifest

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = load_manifest(ROOT / MANIFEST_NAME)


def test_manifest_is_generated_from_the_sample_builders() -> None:
    on_disk = json.loads((ROOT / MANIFEST_NAME).read_text("utf-8"))
    assert on_disk == manifest(), "run `python -m restytriage.samples manifest` and commit the result"


def test_builders_are_deterministic() -> None:
    for sample in all_samples():
        assert hashlib.sha256(sample.build()).digest() == hashlib.sha256(sample.build()).digest(), sample.name


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_tool_meets_manifest(entry: dict, built_samples: dict[str, Path]) -> None:
    path = built_samples[entry["file"]]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    report = triage(path)
    assert list(differences(entry, report)) == []
