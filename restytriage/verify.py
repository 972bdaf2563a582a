"""Hold the tool to a manifest of expectations (samples_manifest.json or an analyst's own corpus).

Each entry names a file, its sha256 and what the report must say: the verdict, techniques and
findings that must appear, findings that must not, and facts (key, substring) some node must show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restytriage.config import Config
from restytriage.engine import triage
from restytriage.model import Report, walk


@dataclass(frozen=True)
class Difference:
    file: str
    aspect: str  # verdict, technique, finding, absent, fact, sha256, missing
    expected: str
    actual: str


def load_manifest(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text("utf-8"))
    entries = data["samples"] if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of samples")
    return entries


def differences(entry: dict[str, Any], report: Report) -> Iterator[Difference]:
    """How a report departs from one manifest entry's expectations."""
    name = entry["file"]
    expected = entry.get("expected", {})
    nodes = list(walk(report.root))
    finding_ids = {f.id for n in nodes for f in n.findings}
    techniques = {t.id for t in report.techniques}
    if "verdict" in expected and report.verdict != expected["verdict"]:
        yield Difference(
            name,
            "verdict",
            expected["verdict"],
            f"{report.verdict} ({report.score}: {'; '.join(report.reasons[:3])})",
        )
    for technique in expected.get("techniques", []):
        if technique.upper() not in techniques:
            yield Difference(name, "technique", technique, ", ".join(sorted(techniques)) or "none")
    for finding in expected.get("findings", []):
        if finding not in finding_ids:
            yield Difference(name, "finding", finding, "not raised")
    for finding in expected.get("absent", []):
        if finding in finding_ids:
            yield Difference(name, "absent", f"no {finding}", "raised")
    for key, needle in expected.get("facts", []):
        shown = [n.facts[key] for n in nodes if key in n.facts]
        if not any(needle.lower() in value.lower() for value in shown):
            yield Difference(name, "fact", f"{key} ~ {needle}", "; ".join(shown)[:200] or "no such fact")


def verify(
    manifest: Path, directory: Path | None = None, config: Config | None = None
) -> tuple[int, list[Difference]]:
    """Triage every listed file (looked up in `directory`, default the manifest's folder)."""
    folder = directory or manifest.parent
    found: list[Difference] = []
    entries = load_manifest(manifest)
    for entry in entries:
        path = folder / entry["file"]
        if not path.is_file():
            found.append(Difference(entry["file"], "missing", str(path), "no such file"))
            continue
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        if entry.get("sha256") and sha256 != entry["sha256"]:
            found.append(Difference(entry["file"], "sha256", entry["sha256"], sha256))
        found.extend(differences(entry, triage(path, config)))
    return len(entries), found
