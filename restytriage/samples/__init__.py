"""The inert sample set: replicas of the RestyLink chain and of hostile-input cases, built in code.

Each module here that defines `SAMPLES: list[Sample]` contributes samples; `build_all()` writes them,
`manifest()` describes them (samples_manifest.json is its output, checked by the tests). Builders must
be deterministic (fixed timestamps, no randomness without a fixed seed) so hashes are stable.
Nothing here is functional malware: macros, commands and binaries only carry the strings and
structure analysts look for.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

MANIFEST_NAME = "samples_manifest.json"


@dataclass(frozen=True)
class Sample:
    name: str  # the file name written (may carry a double extension or odd characters)
    build: Callable[[], bytes]
    imitates: str  # what real-world file it stands for
    verdict: str  # expected: clean / suspicious / malicious
    techniques: tuple[str, ...] = ()  # ATT&CK ids the report must contain
    findings: tuple[str, ...] = ()  # finding ids that must appear somewhere in the tree
    absent: tuple[str, ...] = ()  # finding ids that must not appear (false-positive guards)
    facts: tuple[tuple[str, str], ...] = ()  # (fact key, substring) the tree must show somewhere


@cache
def all_samples() -> tuple[Sample, ...]:
    found: list[Sample] = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.extend(getattr(module, "SAMPLES", ()))
    names = [s.name for s in found]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate sample names: {sorted(duplicates)}")
    return tuple(sorted(found, key=lambda s: s.name))


def build_all(dest: Path) -> list[tuple[Sample, Path]]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for sample in all_samples():
        path = dest / sample.name
        path.write_bytes(sample.build())
        written.append((sample, path))
    return written


def manifest_entry(sample: Sample, data: bytes) -> dict[str, Any]:
    return {
        "file": sample.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "imitates": sample.imitates,
        "expected": {
            "verdict": sample.verdict,
            "techniques": sorted(sample.techniques),
            "findings": sorted(sample.findings),
            "absent": sorted(sample.absent),
            "facts": [list(f) for f in sample.facts],
        },
    }


def manifest() -> dict[str, Any]:
    return {
        "description": "Inert replicas built by restytriage.samples; regenerate with "
        "`python -m restytriage.samples manifest`. Each entry gives what the tool must report.",
        "samples": [manifest_entry(s, s.build()) for s in all_samples()],
    }


def write_manifest(path: Path) -> None:
    path.write_text(json.dumps(manifest(), indent=2, ensure_ascii=False) + "\n", "utf-8")
