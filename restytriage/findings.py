"""The table of finding definitions: every finding's title, score and ATT&CK ids live in data.

Each analyzer owns one TOML file in `data/findings/` (`[finding-id]` tables with `title`, `score`,
optional `techniques` and `description`); this module merges them into one table and is the only
way code creates a Finding, so a score or technique is never written in code.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from restytriage.model import Finding, Severity


@dataclass(frozen=True)
class Definition:
    id: str
    title: str
    score: int
    techniques: tuple[str, ...]
    description: str
    source: str  # the TOML file that defines it


def severity_of(score: int) -> Severity:
    if score <= 0:
        return "info"
    if score < 20:
        return "low"
    if score < 50:
        return "medium"
    if score < 80:
        return "high"
    return "critical"


@cache
def definitions() -> dict[str, Definition]:
    table: dict[str, Definition] = {}
    folder = resources.files("restytriage") / "data" / "findings"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        for fid, spec in tomllib.loads(entry.read_text("utf-8")).items():
            if fid in table:
                raise ValueError(f"finding {fid} defined twice ({table[fid].source}, {entry.name})")
            table[fid] = Definition(
                id=fid,
                title=spec["title"],
                score=int(spec["score"]),
                techniques=tuple(spec.get("techniques", ())),
                description=spec.get("description", ""),
                source=entry.name,
            )
    return table


def make(
    finding_id: str,
    analyzer: str,
    evidence: str = "",
    *,
    details: dict[str, Any] | None = None,
    title: str | None = None,
    score: int | None = None,
    techniques: list[str] | tuple[str, ...] | None = None,
) -> Finding:
    """A Finding from its definition. Overrides exist for data-driven findings (a YARA rule's or a
    Sigma rule's own title, score and techniques), not for hand-tuning in analyzers."""
    spec = definitions()[finding_id]
    final_score = spec.score if score is None else max(0, min(100, int(score)))
    return Finding(
        id=finding_id,
        title=title or spec.title,
        severity=severity_of(final_score),
        score=final_score,
        analyzer=analyzer,
        techniques=sorted(set(spec.techniques) | set(techniques or ())),
        evidence=evidence,
        details=details or {},
    )


def catalogue() -> str:
    """Every finding as a Markdown table per analyzer, with ATT&CK names: docs/findings.md, which
    the tests keep equal to this."""
    from restytriage import attack

    lines = [
        "# Findings",
        "",
        "Every finding a report can carry, generated from `restytriage/data/findings/*.toml` by",
        "`python docs/make_findings_table.py` (a test keeps this page current). The score is what the",
        "finding alone contributes to the verdict, a noisy-OR over distinct findings (README, How it",
        "works); YARA and Sigma findings take the rule's own score and techniques when it has them.",
    ]
    by_source: dict[str, list[Definition]] = {}
    for definition in definitions().values():
        by_source.setdefault(definition.source, []).append(definition)
    for source, listed in by_source.items():
        lines += [
            "",
            f"## {source.removesuffix('.toml')}",
            "",
            "| id | score | title | ATT&CK | what it means |",
        ]
        lines.append("|---|---|---|---|---|")
        for d in listed:
            techniques = "<br>".join(f"{t} {attack.name(t)}" for t in d.techniques)
            description = d.description.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{d.id}` | {d.score} | {d.title} | {techniques} | {description} |")
    return "\n".join(lines) + "\n"
