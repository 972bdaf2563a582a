"""From findings to a verdict: one score per finding id, combined as independent evidence.

score = 100 * (1 - prod(1 - s_i/100)) over the distinct signals (finding id and title, the strongest
instance of each), so two medium signals outweigh one, repeats of the same signal do not pile up, and one
decisive finding (score >= 70) is enough for "malicious" on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from restytriage import attack
from restytriage.model import Finding, Technique, Verdict

MALICIOUS_AT = 70
SUSPICIOUS_AT = 30
MAX_REASONS = 8


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    score: int
    reasons: list[str]


def strongest(found: Iterable[Finding]) -> list[Finding]:
    """One finding per signal (id and title: each YARA or Sigma rule is its own), strongest first."""
    best: dict[tuple[str, str], Finding] = {}
    for item in found:
        key = (item.id, item.title)
        if key not in best or item.score > best[key].score:
            best[key] = item
    return sorted(best.values(), key=lambda f: (-f.score, f.id))


def decide(found: Iterable[Finding]) -> Outcome:
    distinct = [f for f in strongest(found) if f.score > 0]
    remaining = 1.0
    for item in distinct:
        remaining *= 1 - min(item.score, 100) / 100
    score = round(100 * (1 - remaining))
    label = label_of(score)
    reasons = [f"{f.title} ({f.score})" for f in distinct if f.score >= 10][:MAX_REASONS]
    if not reasons and label != "clean":  # many weak signals made it: name them, not nothing
        reasons = [f"{f.title} ({f.score})" for f in distinct[:MAX_REASONS]]
    return Outcome(label, score, reasons)


def label_of(score: int) -> Verdict:
    return "malicious" if score >= MALICIOUS_AT else "suspicious" if score >= SUSPICIOUS_AT else "clean"


def techniques(found: Iterable[Finding]) -> list[Technique]:
    by_id: dict[str, list[str]] = {}
    for item in found:
        for tid in item.techniques:
            ids = by_id.setdefault(tid.upper(), [])
            if item.id not in ids:
                ids.append(item.id)
    return [Technique(id=tid, name=attack.name(tid), findings=ids) for tid, ids in sorted(by_id.items())]
