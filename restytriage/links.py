"""Where a document reaches outside itself: link targets and the field codes that follow them.

Shared by the document analyzers (ooxml, pdf, rtf), which find targets in different places
(relationships, actions, field instructions, macro formulas) and judge them the same way:
- `classify_target` says what a target is as the client would resolve it (a web URL, an SMB or
  WebDAV share, a local path, a mail address, another protocol handler);
- `add_link_iocs` records its IOCs on an Analysis;
- `judge_fields` and `report_dde` report Word and RTF field instructions: DDE/DDEAUTO commands and
  fields that fetch remote content. Their findings are named after the calling analyzer
  (`<analyzer>.dde`, ...), which defines them in its own table.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from restytriage.analysis import Analysis, excerpt

MAX_LISTED = 200  # fields and DDE commands kept in the metadata
URL = re.compile(r"""(?:https?|ftp)://[^\s'"<>()\\]{3,300}""", re.IGNORECASE)
# Field instructions that fetch content from another file or a URL when the field updates.
FETCHING_FIELDS = frozenset({"INCLUDEPICTURE", "INCLUDETEXT", "LINK", "IMPORT", "INCLUDE", "RD"})
_FIELD_TARGET = re.compile(r'^\s*\S+\s+(?:"([^"]*)"|(\S+))')
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
WEB_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})


# --- link targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkTarget:
    """Where a link, relationship or action points, as the client would resolve it."""

    kind: str  # "web", "unc" (SMB/WebDAV share), "local", "mail", "protocol" (other URI scheme), "relative"
    host: str = ""
    scheme: str = ""


def classify_target(target: str) -> LinkTarget:
    text = target.strip().strip('"').strip()
    unified = text.replace("\\", "/")
    if unified.startswith("//") and not unified.startswith("///"):
        return LinkTarget("unc", _share_host(unified[2:]))
    match = _SCHEME.match(text)
    if not match:
        return LinkTarget("relative")
    scheme = match.group(1).lower()
    if len(scheme) == 1:  # a drive letter: C:\...
        return LinkTarget("local", scheme=scheme)
    if scheme in WEB_SCHEMES:
        return LinkTarget("web", _url_host(text), scheme)
    if scheme == "file":
        after = unified[len("file:") :]
        # file:////host/share and file://host/share reach a share; file:///C:/ and file://localhost/ stay local.
        if after.startswith("////"):
            return LinkTarget("unc", _share_host(after.lstrip("/")), scheme)
        if after.startswith("//") and not after.startswith("///"):
            host = _share_host(after[2:])
            if host and host.lower() != "localhost" and not re.fullmatch(r"[A-Za-z][:|]", host):
                return LinkTarget("unc", host, scheme)
        return LinkTarget("local", scheme=scheme)
    if scheme == "mailto":
        return LinkTarget("mail", scheme=scheme)
    return LinkTarget("protocol", scheme=scheme)


def _share_host(path: str) -> str:
    host = path.split("/", 1)[0]
    # WebDAV through the SMB redirector: \\host@SSL@443\DavWWWRoot\...
    return host.split("@", 1)[0]


def _url_host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # malformed IPv6 literal or port
        return ""


def add_link_iocs(out: Analysis, target: str, context: str) -> LinkTarget:
    """Record a link target's IOCs (URL or share path, and its host) and say what kind it is."""
    link = classify_target(target)
    value = target.strip()
    if link.kind == "web":
        out.ioc("url", value, context)
    elif link.kind == "unc":
        out.ioc("filepath", value, context)
    elif link.kind == "mail":
        out.ioc("email", value[len("mailto:") :].split("?", 1)[0], context)
    if link.host:
        out.ioc(_host_type(link.host), link.host, context)
    return link


def _host_type(host: str) -> str:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "domain" if "." in host else "hostname"
    return "ip"


# --- field codes and DDE -----------------------------------------------------------------------


def judge_fields(out: Analysis, found: list[tuple[str, str]]) -> None:
    """Report field instructions (where, text) of a Word or RTF document: DDE/DDEAUTO commands and
    fields that fetch remote content. Flags `<analyzer>.dde_auto`, `.dde`, `.remote_content` and
    `.unc_reference`, which each analyzer using this defines in its own table."""
    from oletools.msodde import field_is_blacklisted

    # msodde's list of harmless fields (PAGE, DATE, TOC, ...) is left out of the report.
    notable = [
        (where, text.strip())
        for where, text in found
        if text.strip() and not field_is_blacklisted(text.strip())
    ]
    if notable:
        out.metadata["fields"] = [{"where": w, "instruction": t[:1000]} for w, t in notable[:MAX_LISTED]]
    for where, text in notable:
        command = text.split(None, 1)[0].upper()
        if command in ("DDE", "DDEAUTO"):
            report_dde(out, f"{command} field in {where}", text, automatic=command == "DDEAUTO")
        elif command in FETCHING_FIELDS or command == "HYPERLINK":
            match = _FIELD_TARGET.match(text)
            target = (match.group(1) or match.group(2) or "").replace("\\\\", "\\") if match else ""
            if not target:
                continue
            link = add_link_iocs(out, target, f"{command} field in {where}")
            if command == "HYPERLINK":
                continue
            if link.kind == "web":
                out.flag(f"{out.analyzer}.remote_content", f"{command} field fetches {target} ({where})")
            elif link.kind == "unc":
                out.flag(f"{out.analyzer}.unc_reference", f"{command} field reads {target} ({where})")


def report_dde(out: Analysis, where: str, command: str, automatic: bool) -> None:
    """A DDE command as a fact, metadata, IOCs and `<analyzer>.dde_auto` or `<analyzer>.dde`."""
    shown = " ".join(command.replace("\\\\", "\\").split())  # field codes double their backslashes
    out.facts.setdefault("DDE", excerpt(shown))
    dde = out.metadata.setdefault("dde", [])
    if len(dde) < MAX_LISTED:
        dde.append({"where": where, "command": shown[:1000], "automatic": automatic})
    for url in URL.findall(command):
        add_link_iocs(out, url, where)
    out.flag(f"{out.analyzer}.dde_auto" if automatic else f"{out.analyzer}.dde", f"{where}: {excerpt(shown)}")
