"""Office Open XML documents (.docx, .docm, .dotm, .xlsm, .pptx, ...).

PLACEHOLDER: link helpers only while the analyzer is written.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from restytriage.analysis import Analysis

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
WEB_SCHEMES = frozenset({"http", "https", "ftp", "ftps"})


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
        rest = unified[len("file:") :].lstrip("/")
        # file://host/share and file:////host/share reach a remote share; file:///C:/ stays local.
        remote = unified[len("file:") :].startswith("//") and not unified[len("file:") :].startswith("///")
        if unified[len("file:") :].startswith("////") or (remote and not re.match(r"^(localhost|[A-Za-z][:|])", rest)):
            host = _share_host(rest)
            if host and host.lower() != "localhost":
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
    elif link.kind == "unc" or (link.kind == "local" and link.scheme == "file"):
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
