"""RTF documents: the classic dropper and exploit carrier.

oletools rtfobj reads every \\objdata destination the way Word does (including the hex-digit
obfuscation tricks) and decodes the OLE 1.0 object inside. Each object becomes a child: an OLE
Package's file (what Word drops into %TEMP% when the document opens), an embedded OLE object, or
the raw bytes of data that is not a well-formed object (often shellcode). Objects of classes that
known exploits abuse (Equation Editor, OLE2Link URL monikers, MSCOMCTL controls, ...) are flagged
by class name and CLSID, and \\objupdate (which loads an object as the document opens) is noted.
Field instructions (\\fldinst) go through the same DDE and remote-content checks as Word's.
"""

from __future__ import annotations

import io
import re
from typing import Any

from restytriage.analysis import Analysis, Child, Context, Item, excerpt
from restytriage.identify import EXECUTABLE_TYPES
from restytriage.links import add_link_iocs, judge_fields

NAME = "rtf"
TYPES = frozenset({"rtf"})

MAX_RTF_BYTES = 128 << 20  # rtfobj works on the whole text in memory
MAX_LISTED = 100
_UTF16_STRING = re.compile(rb"(?:[\x20-\x7e]\x00){6,}")
_URL = re.compile(r"""(?:https?|ftp|file)://[^\s'"<>]{3,300}|\\\\[\w.@-]+\\[^\s'"<>]+""", re.IGNORECASE)
# Classes whose mere presence is the exploit (CLSIDs are judged by oletools' own table).
EXPLOITED_CLASSES = {
    "equation.3": "Equation Editor (CVE-2017-11882, CVE-2018-0802)",
    "equation.2": "Equation Editor (CVE-2017-11882, CVE-2018-0802)",
    "ole2link": "OLE2Link URL moniker (CVE-2017-0199)",
    "mscomctllib.listviewctrl.2": "MSCOMCTL ListView (CVE-2012-0158)",
    "mscomctllib.treectrl.2": "MSCOMCTL TreeView (CVE-2012-0158)",
    "mscomctllib.toolbar.2": "MSCOMCTL Toolbar (CVE-2012-0158)",
    "otkloadr.wrassembly.1": "otkloadr WRAssembly (ASLR bypass used with CVE-2015-1641)",
}


def analyze(item: Item, ctx: Context) -> Analysis:
    from oletools.rtfobj import RtfObjParser

    out = Analysis(NAME)
    data = item.blob.read(MAX_RTF_BYTES)
    if item.blob.size > MAX_RTF_BYTES:
        out.metadata["truncated_at"] = MAX_RTF_BYTES
    header = data[:6]
    out.metadata["header"] = header.decode("latin-1")
    if header != b"{\\rtf1":
        # Word opens anything starting "{\rt"; scanners keyed on "{\rtf1" miss the rest.
        out.flag("rtf.header_anomaly", "starts with " + header.decode("latin-1") + ", not {\\rtf1")
    parser = RtfObjParser(data)
    try:
        parser.parse()
    except Exception as err:  # rtfobj's parser raises on hostile nesting; keep the objects read so far
        out.metadata["parse_error"] = f"{type(err).__name__}: {err}"[:300]
        out.flag("rtf.parse_error", out.metadata["parse_error"])
    ctx.check_time()
    updates = data.count(b"\\objupdate")
    if updates:
        out.flag("rtf.objupdate", f"\\objupdate x{updates}: objects load as the document opens")
    described = [_take_object(index, obj, out, ctx) for index, obj in enumerate(parser.objects)]
    if described:
        out.metadata["objects"] = described[:MAX_LISTED]
        out.facts["objects"] = excerpt(", ".join(d["class"] or "raw data" for d in described))
    if b"fldinst" in data:
        _judge_rtf_fields(data, out)
    return out


def _take_object(index: int, obj: Any, out: Analysis, ctx: Context) -> dict[str, Any]:
    ctx.check_time()
    class_name = (obj.class_name or b"").rstrip(b"\x00").decode("latin-1", "replace")
    where = f"object {index} at offset {obj.start:#x}"
    entry: dict[str, Any] = {"offset": obj.start, "class": class_name, "ole": obj.is_ole}
    if obj.is_ole:
        entry["format"] = {1: "linked", 2: "embedded"}.get(obj.format_id, str(obj.format_id))
        entry["size"] = obj.oledata_size
    if obj.clsid:
        entry["clsid"] = obj.clsid
        entry["clsid_description"] = obj.clsid_desc
    exploit = EXPLOITED_CLASSES.get(class_name.lower())
    if exploit or (obj.clsid_desc and "CVE" in obj.clsid_desc):
        out.flag("rtf.exploit_object", f"{where}: {exploit or obj.clsid_desc} (class {class_name!r})")
    if class_name.lower() == "ole2link" and obj.oledata:
        for text in _UTF16_STRING.findall(obj.oledata):
            for url in _URL.findall(text.decode("utf-16-le")):
                add_link_iocs(out, url, f"RTF OLE2Link {where}")
    if obj.is_package:
        name = obj.filename or f"package@{obj.start:#x}"
        entry["package"] = {"filename": obj.filename, "source_path": obj.src_path, "temp_path": obj.temp_path}
        _child(out, ctx, name, obj.olepkgdata, where, ["embedded-object", "package"], entry)
        out.flag("rtf.package_object", f"{where}: drops {obj.filename!r} into {obj.temp_path!r}")
    elif obj.is_ole and obj.oledata:
        _child(
            out,
            ctx,
            f"{class_name or 'object'}@{obj.start:#x}",
            obj.oledata,
            where,
            ["embedded-object"],
            entry,
        )
        out.flag("rtf.embedded_object", f"{where}: {class_name or 'unnamed class'}")
    elif obj.rawdata:
        _child(out, ctx, f"objdata@{obj.start:#x}", obj.rawdata, where, [], entry)
        out.flag(
            "rtf.malformed_object", f"{where}: {len(obj.rawdata):,} bytes that are not an OLE 1.0 object"
        )
    return entry


def _child(
    out: Analysis, ctx: Context, name: str, data: bytes, where: str, labels: list[str], entry: dict[str, Any]
) -> None:
    from oletools.rtfobj import re_executable_extensions

    blob = ctx.extract(io.BytesIO(data), f"RTF {where}")
    if blob is None:
        return
    kind = ctx.identify(blob, name)
    entry["type"] = kind
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind in EXECUTABLE_TYPES or (extension and re_executable_extensions.match("." + extension)):
        out.flag("rtf.executable_object", f"{where}: {name!r} ({kind})", details={"name": name, "type": kind})
    out.children.append(Child(name, blob, path=where, labels=labels))


def _judge_rtf_fields(data: bytes, out: Analysis) -> None:
    from oletools.msodde import RtfFieldParser

    parser = RtfFieldParser(data)
    try:
        parser.parse()
    except Exception as err:  # the same parser as rtfobj's; what was read before the error still counts
        out.metadata.setdefault("parse_error", f"{type(err).__name__}: {err}"[:300])
    judge_fields(out, [("RTF \\fldinst", field.decode("latin-1")) for field in parser.fields])
