"""YARA on every node (the root and each unpacked, carved or decrypted child).

Rules come from `restytriage.rules` (compiled once per process, cached on disk). Each matched rule
becomes one finding carrying the rule's meta: its score from `score` (0-100) or `severity`, its
ATT&CK ids from `attack`/`mitre_att`/... meta, its matched strings with offsets in the details.
Objects are scanned by path when they live on disk, so nothing large is read into memory, and
objects over 256 MiB in overlapping windows (`yara.windowed` says so). VBA
module sources that the ole/ooxml analyzers decompressed are scanned too (module streams are
compressed in the file, so macro text is invisible to rules otherwise); a rule matching in several
places gives one finding listing them.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any
from weakref import WeakKeyDictionary

from restytriage import rules
from restytriage.analysis import Analysis, Context, Item
from restytriage.blob import Blob
from restytriage.findings import severity_of

NAME = "yara"
TYPES = frozenset({"*"})
ORDER = 90

MAX_INSTANCES = 20  # matched string instances kept per rule in the report
MAX_TIMEOUT = 60  # seconds for one object, below the run's own wall-time limit
DESCRIPTION_MAX = 160
# Severity words public packs use, mapped to the finding definitions of data/findings/yara.toml.
SEVERITY_WORDS = {
    "info": "info",
    "informational": "info",
    "low": "low",
    "medium": "medium",
    "moderate": "medium",
    "high": "high",
    "critical": "critical",
}

_per_run: WeakKeyDictionary[Context, rules.RuleSet] = WeakKeyDictionary()  # one look-up per triage run


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    ruleset = _per_run.get(ctx)
    if ruleset is None:
        ruleset = _per_run[ctx] = rules.ruleset_for(ctx.config)
    if item.depth == 0:
        _describe_ruleset(ruleset, out)
    if ruleset.rules is None:
        return out
    variables = externals(item)
    found: dict[
        tuple[str, str], tuple[rules.RuleMatch, list[str]]
    ] = {}  # (namespace, rule) -> (match, scopes)
    saturated: list[str] = []
    scopes: list[tuple[str, Blob, dict[str, str]]] = [("file", item.blob, variables)]
    scopes += [
        (f"VBA module {name}", Blob.of(source.encode("utf-8", "replace")), {**variables, "filetype": "VBA"})
        for name, source in macro_sources(item.metadata)
    ]
    for scope, blob, values in scopes:
        matches = _scan(ruleset, blob, values, scope, ctx, out, saturated)
        if matches is None:
            break
        for match in matches:
            key = (match.namespace, match.rule)
            if key in found:
                found[key][1].append(scope)
            else:
                found[key] = (match, [scope])
    for match, where in found.values():
        _flag_match(match, where, ruleset, out)
    if found:
        names = list(dict.fromkeys(match.rule for match, _ in found.values()))
        out.metadata["matched"] = names
        out.facts["YARA"] = ", ".join(names)
    if saturated:
        out.metadata["too_many_matches"] = saturated
    return out


def _scan(
    ruleset: rules.RuleSet,
    blob: Blob,
    values: dict[str, str],
    scope: str,
    ctx: Context,
    out: Analysis,
    saturated: list[str],
) -> list[rules.RuleMatch] | None:
    """The matches in one scope, or None when scanning must stop (a timeout or a YARA error,
    already reported as a finding)."""
    import yara

    ctx.check_time()
    timeout = max(1, min(MAX_TIMEOUT, int(ctx.deadline - time.monotonic())))
    try:
        scan = ruleset.match(blob, values, timeout)
    except yara.TimeoutError:
        ctx.check_time()  # the run's own deadline: the engine reports limit.time
        out.flag("yara.timeout", f"scan of the {scope} ({blob.size:,} bytes) stopped after {timeout}s")
        return None
    except yara.Error as err:
        out.flag("yara.scan_error", f"{scope}: {err}"[:300])
        return None
    saturated.extend(f"{scope}: {warning}" for warning in scan.saturated)
    if scan.windows:
        out.flag(
            "yara.windowed",
            f"the {scope} ({blob.size:,} bytes) was scanned in {len(scan.windows)} windows of "
            f"{rules.SCAN_WINDOW >> 20} MiB",
        )
    return scan.matches


def macro_sources(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """(module name, source) of the VBA modules an earlier analyzer decompressed (the `macros`
    metadata the ole/ooxml analyzers write). Module streams are compressed in the file, so rules
    about macro text can only see it here."""
    found: dict[tuple[str, str], None] = {}  # ordered, and each module once if two analyzers list it
    for section in metadata.values():
        macros = section.get("macros") if isinstance(section, dict) else None
        modules = macros.get("modules") if isinstance(macros, dict) else None
        for module in modules if isinstance(modules, list) else ():
            source = module.get("source") if isinstance(module, dict) else None
            if isinstance(source, str) and source.strip():
                found[(str(module.get("name", "")), source)] = None
    return list(found)


def externals(item: Item) -> dict[str, str]:
    """LOKI/THOR's variables: base name, folder inside the container, ".ext", identified type."""
    unified = item.name.replace("\\", "/")
    folder, _, filename = unified.rpartition("/")
    return {
        "filename": filename,
        "filepath": item.name[: len(folder)],
        "extension": f".{item.extension}" if item.extension else "",
        "filetype": item.type.upper(),
    }


def _describe_ruleset(ruleset: rules.RuleSet, out: Analysis) -> None:
    """Once per run (on the root): which rules ran and which files were skipped, and why."""
    out.metadata["ruleset"] = {
        "key": ruleset.key[:16],
        "rules": len(ruleset.infos),
        "files": len(ruleset.sources),
        "from_cache": ruleset.from_cache,
        "load_seconds": round(ruleset.compile_seconds, 3),
        "skipped": [str(problem) for problem in ruleset.problems],
        "warnings": list(ruleset.warnings),
    }
    if ruleset.problems:
        shown = "; ".join(str(p) for p in ruleset.problems[:3])
        more = f" (+{len(ruleset.problems) - 3} more)" if len(ruleset.problems) > 3 else ""
        out.flag(
            "yara.rules_skipped",
            f"{len(ruleset.problems)} rule file(s) skipped: {shown}{more}",
            details={"skipped": [asdict(p) for p in ruleset.problems]},
        )


def _flag_match(match: rules.RuleMatch, scopes: list[str], ruleset: rules.RuleSet, out: Analysis) -> None:
    meta = dict(match.meta)
    finding_id, score = grade(meta)
    description = str(meta.get("description", "")).strip()
    if len(description) > DESCRIPTION_MAX:
        description = description[: DESCRIPTION_MAX - 1] + "…"
    strings = matched_strings(match.strings)
    where = ", ".join(f"{s['identifier']}@{s['instances'][0]['offset']:#x}" for s in strings[:4])
    if len(strings) > 4:
        where += f", +{len(strings) - 4} more"
    place = "" if scopes[0] == "file" else f" in {scopes[0]}"
    out.flag(
        finding_id,
        (f"{description} - " if description else "")
        + (f"matched{place} {where}" if where else f"matched{place} (condition only)"),
        title=f"YARA {match.rule}",
        score=score,
        techniques=rules.techniques_of(meta),
        details={
            "rule": match.rule,
            "namespace": match.namespace,
            "source": ruleset.sources.get(match.namespace, ""),
            "scopes": scopes,  # "file" and/or "VBA module X"; strings are those of the first
            "tags": list(match.tags),
            "meta": meta,
            "strings": strings,
        },
    )


def grade(meta: dict[str, Any]) -> tuple[str, int | None]:
    """The finding id (and score override) a rule's meta asks for.

    A numeric `score` (THOR, YARA Forge, signature-base) or numeric `severity` (Elastic) is the
    finding's score; a severity word takes the score of its definition; no grade: `yara.match`.
    """
    for key in ("score", "severity"):
        value = meta.get(key)
        number = _number(value)
        if number is not None:
            number = max(0, min(100, number))
            return f"yara.match_{severity_of(number)}", number
        if isinstance(value, str) and value.strip().lower() in SEVERITY_WORDS:
            return f"yara.match_{SEVERITY_WORDS[value.strip().lower()]}", None
    return "yara.match", None


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def matched_strings(found: list[rules.MatchedString]) -> list[dict[str, Any]]:
    """Matched string identifiers with offsets and truncated data: each identifier keeps its first
    instance, and further instances fill up to MAX_INSTANCES per rule in identifier order."""
    present = [(string.identifier, list(string.instances)) for string in found if string.instances]
    spare = max(0, MAX_INSTANCES - len(present))
    result: list[dict[str, Any]] = []
    for identifier, instances in present:
        extra = min(len(instances) - 1, spare)
        spare -= extra
        result.append(
            {
                "identifier": identifier,
                "count": len(instances),
                "instances": [_instance(i) for i in instances[: 1 + extra]],
            }
        )
    return result


def _instance(instance: rules.MatchedInstance) -> dict[str, Any]:
    data: bytes = instance.matched_data[: rules.MAX_MATCH_DATA]
    entry: dict[str, Any] = {"offset": instance.offset, "length": instance.matched_length}
    entry.update(shown_bytes(data))
    if instance.matched_length > len(data):
        entry["truncated"] = True
    if instance.xor_key:
        entry["xor_key"] = instance.xor_key
    return entry


def shown_bytes(data: bytes) -> dict[str, str]:
    """Printable ASCII as text, printable UTF-16LE decoded, anything else as hex."""

    def printable(text: bytes) -> bool:
        return all(32 <= b < 127 or b in (9, 10, 13) for b in text)

    if data and printable(data):
        return {"data": data.decode("ascii"), "encoding": "ascii"}
    if len(data) >= 4 and len(data) % 2 == 0 and not any(data[1::2]) and printable(data[0::2]):
        return {"data": data[0::2].decode("ascii"), "encoding": "utf-16le"}
    return {"data": data.hex(), "encoding": "hex"}
