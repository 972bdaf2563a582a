"""The report model: the only thing renderers read, and the source of the published JSON schema.

msgspec Structs keep start-up and encoding fast; `json_schema()` generates `docs/report.schema.json`.
Bump SCHEMA_VERSION on any change a consumer could notice (a field renamed, removed or retyped).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

SCHEMA_VERSION = "1.0"

Verdict = Literal["clean", "suspicious", "malicious"]
Severity = Literal["info", "low", "medium", "high", "critical"]


class Finding(msgspec.Struct):
    """One observation about a node, defined in `findings.toml` and raised by an analyzer."""

    id: str  # e.g. "lnk.office_startup_write"
    title: str
    severity: Severity
    score: int  # 0-100: how strongly this alone points to malice
    analyzer: str
    techniques: list[str] = []  # ATT&CK ids, e.g. ["T1137.001"]
    evidence: str = ""
    details: dict[str, Any] = {}


class IOC(msgspec.Struct):
    type: str  # url, domain, ip, email, hash, filename, filepath, registry, user_agent, mac, hostname
    value: str
    context: str = ""  # where it was seen: "lnk command line", "VBA module ThisDocument", ...
    node: str = ""  # the node path it came from (filled by the engine)


class AnalyzerError(msgspec.Struct):
    analyzer: str
    message: str


class Node(msgspec.Struct):
    """One object in the unpacked tree: the root file, or something found inside its parent."""

    id: str  # tree position: "0", "0.1", "0.1.3"
    name: str  # as the parent names it (sanitised for display, never used as a disk path)
    path: str  # location inside the parent: member path, stream path, "overlay@0x400", ...
    depth: int
    size: int
    md5: str
    sha1: str
    sha256: str
    type: str  # identified by content: "zip", "lnk", "ole", "pe", ...
    description: str = ""
    extension: str = ""  # the claimed extension, lower-case, without dot
    offset: int | None = None  # where it sat in its parent, when carved
    labels: list[str] = []  # roles inferred from context, e.g. "decoy"
    duplicate_of: str | None = None  # id of an identical node analysed earlier in this tree
    facts: dict[str, str] = {}  # the key facts analyzers chose to show first ("command line": ...)
    metadata: dict[str, Any] = {}  # per analyzer: {"zip": {...}, "yara": {...}}
    findings: list[Finding] = []
    iocs: list[IOC] = []
    errors: list[AnalyzerError] = []
    children: list[Node] = []


class Technique(msgspec.Struct):
    id: str
    name: str
    findings: list[str]  # ids of the findings that point to it


class FileSummary(msgspec.Struct):
    name: str
    size: int
    md5: str
    sha1: str
    sha256: str
    type: str


class Stats(msgspec.Struct):
    nodes: int
    bytes_unpacked: int
    duration_s: float
    limits_hit: list[str]


class Tool(msgspec.Struct):
    name: str
    version: str


class Report(msgspec.Struct):
    schema_version: str
    tool: Tool
    generated: str  # ISO 8601 UTC
    file: FileSummary
    verdict: Verdict
    score: int  # 0-100
    reasons: list[str]  # the findings that decided the verdict, strongest first
    techniques: list[Technique]
    iocs: list[IOC]
    stats: Stats
    root: Node


def walk(node: Node):
    """Every node of a tree, parents before children, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray):
        return obj.hex()
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)


def to_json(report: Report) -> bytes:
    return _encoder.encode(report)


def from_json(data: bytes | str) -> Report:
    return msgspec.json.decode(data, type=Report)


def to_builtins(value: Any) -> Any:
    """Plain JSON-able Python data (analyzer metadata may hold bytes, datetimes, tuples)."""
    return msgspec.to_builtins(value, enc_hook=_enc_hook)


def json_schema() -> dict[str, Any]:
    schema = msgspec.json.schema(Report)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"restytriage report, schema version {SCHEMA_VERSION}"
    return schema


def clean_text(text: str) -> str:
    """Text that always encodes: undecodable bytes smuggled in as surrogates become \\xNN escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _only_escapes(text) else None
        if raw is not None:
            return raw.decode("utf-8", "backslashreplace")
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _only_escapes(text: str) -> bool:
    return all(not 0xD800 <= ord(ch) <= 0xDFFF or 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def sanitized(report: Report) -> Report:
    """The report with every string made encodable (attacker-made names need not be valid text)."""
    try:
        to_json(report)
        return report
    except UnicodeEncodeError:
        return msgspec.convert(_clean(msgspec.to_builtins(report, enc_hook=_enc_hook)), Report)
