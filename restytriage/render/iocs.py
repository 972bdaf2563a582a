"""IOC export: CSV or one value per line, defanged by default so a ticket never holds a live link."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from restytriage.model import IOC
from restytriage.render import shown

_HOST_TYPES = frozenset({"url", "domain", "ip", "email", "hostname"})


def defang(ioc_type: str, value: str) -> str:
    """hxxps://evil[.]example/x, 203.0.113[.]7, user[@]evil[.]example; hashes and paths unchanged."""
    if ioc_type not in _HOST_TYPES:
        return value
    if ioc_type == "url":
        scheme, sep, rest = value.partition("://")
        if not sep:
            scheme, rest = "", value
        host, slash, path = rest.partition("/")
        scheme = re.sub(r"(?i)^http", "hxxp", re.sub(r"(?i)^ftp", "fxp", scheme))
        return f"{scheme}{sep}{host.replace('.', '[.]')}{slash}{path}"
    if ioc_type == "ip":
        head, _, last = value.rpartition(".")
        return f"{head}[.]{last}" if head else value
    return value.replace("@", "[@]").replace(".", "[.]")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets evaluate when a cell starts with it


def _cell(text: str) -> str:
    """A CSV cell an analyst can open in a spreadsheet: a value that would be read as a formula
    (`=cmd|...`) is quoted as text (OWASP's CSV-injection rule)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def render_iocs(iocs: Iterable[IOC], fmt: str = "csv", live: bool = False) -> str:
    """CSV or one value per line; control characters escaped either way (a newline in a value would
    otherwise start a line of its own in a blocklist)."""
    rows = [
        (i.type, shown(i.value if live else defang(i.type, i.value)), shown(i.context), i.node) for i in iocs
    ]
    if fmt == "lines":
        return "".join(f"{value}\n" for _, value, _, _ in rows)
    rows = [(kind, _cell(value), _cell(context), node) for kind, value, context, node in rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["type", "value", "context", "node"])
    writer.writerows(rows)
    return buffer.getvalue()
