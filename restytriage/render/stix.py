"""STIX 2.1 export, built with the `stix2` library so its own checks validate every object.

The bundle holds: a File for every node (hashes, name, size, `contains_refs` for the unpacked tree),
a MalwareAnalysis with the verdict, a Malware object when the verdict is not clean, Indicators for
the IOCs and for the YARA and Sigma matches, the ATT&CK attack patterns (with their real ATT&CK STIX
ids, so threat-intel platforms merge them), and the relationships between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from restytriage import attack
from restytriage.model import IOC, Finding, Node, Report, walk

RESULT = {"malicious": "malicious", "suspicious": "suspicious", "clean": "benign"}


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def ioc_pattern(ioc: IOC) -> str | None:
    value = _quote(ioc.value)
    patterns = {
        "url": f"[url:value = '{value}']",
        "domain": f"[domain-name:value = '{value}']",
        "hostname": f"[domain-name:value = '{value}']",
        "ip": f"[{'ipv6' if ':' in ioc.value else 'ipv4'}-addr:value = '{value}']",
        "email": f"[email-addr:value = '{value}']",
        "md5": f"[file:hashes.MD5 = '{value}']",
        "sha1": f"[file:hashes.'SHA-1' = '{value}']",
        "sha256": f"[file:hashes.'SHA-256' = '{value}']",
        "filename": f"[file:name = '{value}']",
        "filepath": f"[file:name = '{_quote(ioc.value.replace(chr(92), '/').rsplit('/', 1)[-1])}']",
        "registry": f"[windows-registry-key:key = '{value}']",
        "mac": f"[mac-addr:value = '{value.lower().replace('-', ':')}']",
        "user_agent": f"[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = '{value}']",
    }
    return patterns.get(ioc.type)


def _is_rule_match(finding: Finding) -> bool:
    return finding.id.startswith("yara.") or "sigma" in finding.id


def build_bundle(reports: Sequence[Report]) -> Any:
    import stix2

    objects: dict[str, Any] = {}
    for report in reports:
        objects.update({obj.id: obj for obj in _report_objects(stix2, report)})
    return stix2.Bundle(objects=list(objects.values()))


def _report_objects(stix2: Any, report: Report) -> list[Any]:
    files: dict[str, Any] = {}  # node id -> File
    for node in sorted(walk(report.root), key=lambda n: -n.depth):  # children before parents
        files[node.id] = stix2.File(
            name=node.name or node.sha256,
            size=node.size,
            hashes={"MD5": node.md5, "SHA-1": node.sha1, "SHA-256": node.sha256},
            contains_refs=sorted({files[c.id].id for c in node.children}) or None,
        )
    root_file = files[report.root.id]
    objects: list[Any] = []
    analysis = stix2.MalwareAnalysis(
        product="restytriage",
        version=report.tool.version,
        result=RESULT[report.verdict],
        result_name=f"score {report.score}/100: " + ("; ".join(report.reasons) or "no findings"),
        sample_ref=root_file.id,
        analysis_sco_refs=sorted({f.id for f in files.values()}),
        submitted=report.generated,
    )
    objects.append(analysis)
    patterns = {
        t.id: stix2.AttackPattern(
            id=attack.stix_id(t.id) or None,
            name=t.name,
            external_references=[
                {"source_name": "mitre-attack", "external_id": t.id, "url": attack.url(t.id)}
            ],
        )
        for t in report.techniques
    }
    objects += patterns.values()
    target = analysis
    if report.verdict != "clean":
        target = stix2.Malware(name=report.file.name, is_family=False, sample_refs=[root_file.id])
        objects.append(target)
        objects.append(stix2.Relationship(analysis, "static-analysis-of", target))
        objects += [stix2.Relationship(target, "uses", p) for p in patterns.values()]
    indicators = [_ioc_indicator(stix2, ioc, report) for ioc in report.iocs]
    indicators += [
        _match_indicator(stix2, node, finding, report)
        for node in walk(report.root)
        for finding in node.findings
        if _is_rule_match(finding)
    ]
    for indicator, techniques in (i for i in indicators if i is not None):
        objects.append(indicator)
        if target is not analysis:
            objects.append(stix2.Relationship(indicator, "indicates", target))
        objects += [
            stix2.Relationship(indicator, "indicates", patterns[t]) for t in techniques if t in patterns
        ]
    objects += files.values()
    return objects


def _ioc_indicator(stix2: Any, ioc: IOC, report: Report) -> tuple[Any, list[str]] | None:
    pattern = ioc_pattern(ioc)
    if pattern is None:
        return None
    indicator = stix2.Indicator(
        name=f"{ioc.type}: {ioc.value}"[:250],
        description=f"seen in node {ioc.node}: {ioc.context}",
        pattern=pattern,
        pattern_type="stix",
        valid_from=report.generated,
        indicator_types=["malicious-activity" if report.verdict == "malicious" else "anomalous-activity"],
    )
    return indicator, []


def _match_indicator(stix2: Any, node: Node, finding: Finding, report: Report) -> tuple[Any, list[str]]:
    indicator = stix2.Indicator(
        name=finding.title[:250],
        description=f"{finding.evidence} (node {node.id} {node.name})"[:1000],
        pattern=f"[file:hashes.'SHA-256' = '{node.sha256}']",
        pattern_type="stix",
        valid_from=report.generated,
        indicator_types=["malicious-activity" if finding.score >= 50 else "anomalous-activity"],
        labels=[finding.id],
    )
    return indicator, [t.upper() for t in finding.techniques]


def render_stix(reports: Sequence[Report]) -> str:
    return build_bundle(reports).serialize(pretty=True)
