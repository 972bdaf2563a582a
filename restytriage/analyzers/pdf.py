"""PDF documents: decoys and droppers.

Two views of the file, so a damaged PDF still gives findings:
- a pdfid-style keyword scan of the raw bytes (counts of /JS, /OpenAction, /Launch, ..., and names
  hidden with #xx escapes such as /J#61vaScript), which never fails;
- a walk of the object graph through pypdf (lenient mode, read through `restytriage.pdfformat`),
  from the trailer first so each action knows what triggers it (/OpenAction, /AA events, the /Names
  JavaScript tree, a click), then over the objects nothing references. It collects JavaScript,
  /Launch, /URI and remote actions, forms, document information and attachments; attachments and
  bytes after the last %%EOF become children.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from restytriage.analysis import Analysis, Child, Context, Item, excerpt
from restytriage.blob import Blob
from restytriage.identify import EXECUTABLE_TYPES, RISKY_OUTER
from restytriage.links import URL, add_link_iocs, classify_target
from restytriage.pdfformat import (
    ObjectWalk,
    collect_warnings,
    decode_text,
    file_name,
    hex_string,
    is_dict,
    literal_string,
    name_value,
    open_reader,
    resolve,
    stored_bytes,
    stream_at,
    stream_writer,
    string_value,
    text_content,
)

NAME = "pdf"
TYPES = frozenset({"pdf"})

SCAN_CHUNK = 4 << 20
SCAN_OVERLAP = 256  # longer than any token the scan counts
MAX_SCRIPT_CHARS = 256 * 1024  # JavaScript kept per action in the metadata
MAX_LISTED = 100  # actions, links and warnings kept in the metadata

KEYWORDS = (
    "/Page", "/Encrypt", "/ObjStm", "/JS", "/JavaScript", "/AA", "/OpenAction", "/AcroForm", "/XFA",
    "/JBIG2Decode", "/RichMedia", "/Launch", "/EmbeddedFile", "/EmbeddedFiles", "/URI", "/SubmitForm",
    "/GoToR", "/GoToE", "/ImportData",
)  # fmt: skip
_KEYWORD_SET = frozenset(KEYWORDS)
# A name runs to the next whitespace or delimiter; longer names than 42 bytes are cut (none matter).
_NAME_TOKEN = re.compile(rb"/[A-Za-z#][^\x00\t\n\f\r /\[\]<>(){}%]{0,40}")
_HEX_ESCAPE = re.compile(r"#([0-9A-Fa-f]{2})")
_RAW_SCRIPT = re.compile(rb"/JS[\x00\t\n\f\r ]*([(<])")

# Events of /AA dictionaries that fire without the reader doing anything but opening or viewing.
AUTOMATIC_EVENTS = frozenset({"/O", "/C", "/PO", "/PC", "/PV", "/PI", "/WC", "/WS", "/DS", "/WP", "/DP"})
AUTOMATIC_TRIGGERS = frozenset({"/OpenAction", "/Names /JavaScript", "XFA"})
REMOTE_ACTIONS = frozenset({"/GoToR", "/GoToE", "/ImportData", "/SubmitForm"})
# Acrobat's own form helpers (number, date and range formatting): the scripts benign forms carry.
_FORM_HELPER_SCRIPT = re.compile(r"\s*(?:AF\w+\([^;{}]*\)\s*;?\s*)+")
_OBFUSCATION = re.compile(
    r"\beval\s*\(|\bunescape\s*\(|String\.fromCharCode|\\x[0-9a-f]{2}(?:\\x[0-9a-f]{2}){15}|(?:%u[0-9a-f]{4}){8}"
    r"|\[\s*['\"]\w+['\"]\s*\]\s*\(|[A-Za-z0-9+/=]{400}",
    re.IGNORECASE,
)
# Reader APIs behind well-known Acrobat exploits (CVE-2007-5659, CVE-2008-2992, CVE-2009-0927,
# CVE-2009-1492, CVE-2009-4324, CVE-2010-0188 era) and heap-spray helpers.
_EXPLOIT_APIS = re.compile(
    r"Collab\.(?:collectEmailInfo|getIcon)|util\.printf|media\.newPlayer|spell\.customDictionaryOpen"
    r"|\.getAnnots\s*\(|doc\.printSeps|\.substr\s*\(\s*0\s*,\s*0x[0-9a-f]{4,}",
    re.IGNORECASE,
)
_OPENS_ATTACHMENT = re.compile(r"exportDataObject|openDoc\s*\(|launchURL\s*\(", re.IGNORECASE)
_INTERPRETERS = re.compile(
    r"\b(?:cmd|powershell|pwsh|mshta|wscript|cscript|rundll32|regsvr32|msiexec|certutil|bitsadmin|conhost)(?:\.exe)?\b",
    re.IGNORECASE,
)
DECOY_PARTNER_TYPES = frozenset({"lnk", "pe"})


@dataclass
class Action:
    kind: str  # JavaScript, Launch, URI, GoToR, SubmitForm, ...
    trigger: str  # "/OpenAction", "/AA /O", "/Names /JavaScript", "/A" (a click), "XFA", "" (unreferenced)
    obj: str  # "12 0": the indirect object holding it
    target: str = ""
    parameters: str = ""
    script: str = ""

    @property
    def automatic(self) -> bool:
        event = self.trigger.removeprefix("/AA ").strip()
        return self.trigger in AUTOMATIC_TRIGGERS or (
            self.trigger.startswith("/AA ") and event in AUTOMATIC_EVENTS
        )

    def describe(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": self.kind,
            "trigger": self.trigger or "unreferenced object",
            "object": self.obj,
        }
        if self.target:
            entry["target"] = self.target
        if self.parameters:
            entry["parameters"] = self.parameters
        if self.script:
            entry["length"] = len(self.script)
            entry["script"] = self.script[:MAX_SCRIPT_CHARS]
        return entry


@dataclass
class KeywordScan:
    """What a pdfid-style pass over the raw bytes saw."""

    counts: Counter[str] = field(default_factory=Counter)
    obfuscated: Counter[str] = field(default_factory=Counter)  # keyword -> times written with #xx escapes
    objects: int = 0
    last_eof: int = -1  # offset of the last %%EOF
    eof_markers: int = 0


@dataclass
class Walk:
    """What the object-graph walk collected."""

    reader: Any = None
    objects: ObjectWalk = field(default_factory=ObjectWalk)
    actions: list[Action] = field(default_factory=list)
    # /Type /EmbeddedFile streams, and the names file specifications give them, by reference
    streams: dict[tuple[int, int], Any] = field(default_factory=dict)
    attachment_names: dict[tuple[int, int], str] = field(default_factory=dict)
    acroform_fields: int | None = None
    xfa: bool = False
    richmedia: int = 0


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    head = item.blob.head
    header_at = head.find(b"%PDF-")
    version = head[header_at + 5 : header_at + 8].decode("latin-1") if header_at >= 0 else ""
    scan = scan_keywords(item.blob, ctx)
    out.metadata.update(
        version=version,
        header_offset=header_at,
        keywords={k: scan.counts[k] for k in KEYWORDS if scan.counts[k]},
        objects=scan.objects,
        eof_markers=scan.eof_markers,
    )
    if header_at > 0:
        out.flag("pdf.header_offset", f"%PDF- header at offset {header_at}", details={"offset": header_at})
    if scan.obfuscated:
        shown = ", ".join(f"{k} x{n}" for k, n in sorted(scan.obfuscated.items()))
        out.metadata["obfuscated_names"] = dict(scan.obfuscated)
        out.flag("pdf.obfuscated_names", f"names written with #xx escapes: {shown}")

    walk = Walk()
    with item.blob.open() as stream, collect_warnings() as warnings:
        reader = _open_document(stream, out)
        if reader is not None:
            _describe_document(reader, out)
            walk = walk_objects(reader, ctx)
            _extract_attachments(walk, out, ctx)
    if warnings:
        out.metadata["parser_warnings"] = warnings[:MAX_LISTED]
    _report_walk(walk, out)
    _report_keyword_fallbacks(item.blob, scan, walk, out)
    _carve_trailing_data(item.blob, scan, out, ctx)
    _label_decoy(item, out)
    return out


# --- raw keyword scan --------------------------------------------------------------------------


def scan_keywords(blob: Blob, ctx: Context) -> KeywordScan:
    scan = KeywordScan()
    consumed = 0  # file offset of buffer[0]
    carry = b""
    with blob.open() as fh:
        while True:
            chunk = fh.read(SCAN_CHUNK)
            buffer = carry + chunk
            last = not chunk
            cut = len(buffer) if last else _safe_cut(buffer)
            for raw, count in Counter(_NAME_TOKEN.findall(buffer, 0, cut)).items():
                name = raw.decode("latin-1")
                if "#" in name:
                    decoded = _decode_name(name)
                    if decoded in _KEYWORD_SET:
                        scan.counts[decoded] += count
                        scan.obfuscated[decoded] += count
                elif name in _KEYWORD_SET:
                    scan.counts[name] += count
            # Markers are counted where they start before the cut; the rest is seen in the next round.
            scan.objects += buffer.count(b"endobj", 0, cut + len(b"endobj") - 1)
            scan.eof_markers += buffer.count(b"%%EOF", 0, cut + len(b"%%EOF") - 1)
            eof = buffer.rfind(b"%%EOF", 0, cut + len(b"%%EOF") - 1)
            if eof >= 0:
                scan.last_eof = consumed + eof
            if last:
                break
            consumed += cut
            carry = buffer[cut:]
            ctx.check_time()
    return scan


def _safe_cut(buffer: bytes) -> int:
    """Where to end this round so that no name token straddles the cut: at the last '/' of the final
    SCAN_OVERLAP bytes (a name ends before the next '/'), else 64 bytes before the end (with no '/'
    in the 192 bytes before that, no token of at most 42 bytes can reach across)."""
    end = len(buffer) - 64
    cut = buffer.rfind(b"/", max(0, len(buffer) - SCAN_OVERLAP), max(0, end))
    return cut if cut > 0 else max(0, end)


def _decode_name(name: str) -> str:
    return _HEX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), name)


# --- the object graph --------------------------------------------------------------------------


def _open_document(stream: io.BufferedIOBase, out: Analysis) -> Any:
    try:
        reader = open_reader(stream)
    except Exception as err:  # pypdf raises many types on hostile input; the scan still reports
        message = f"{type(err).__name__}: {err}"[:300]
        out.metadata["parse_error"] = message
        out.flag("pdf.parse_error", message)
        return None
    if reader.is_encrypted:
        out.metadata["encrypted"] = True
        try:
            opened = bool(reader.decrypt(""))
        except Exception as err:  # unsupported handlers, missing crypto back-ends
            opened = False
            out.metadata["decrypt_error"] = f"{type(err).__name__}: {err}"[:300]
        out.metadata["opened_with_empty_password"] = opened
        out.flag(
            "pdf.encrypted",
            "encrypted; opened with the empty user password" if opened else "encrypted with a user password",
        )
    return reader


INFO_FIELDS = {
    "/Title": "title", "/Author": "author", "/Subject": "subject", "/Keywords": "keywords",
    "/Creator": "creator", "/Producer": "producer", "/CreationDate": "created", "/ModDate": "modified",
}  # fmt: skip


def _describe_document(reader: Any, out: Analysis) -> None:
    try:
        pages: int | None = len(reader.pages)
    except Exception:  # a broken page tree leaves the count unknown
        pages = None
    out.metadata["pages"] = pages
    if pages is not None:
        out.facts["pages"] = str(pages)
    info = resolve(reader.trailer.raw_get("/Info")) if "/Info" in reader.trailer else None
    if not is_dict(info):
        return
    described = {}
    for key, label in INFO_FIELDS.items():
        value = string_value(info.raw_get(key)) if key in info else ""
        if value.strip():
            described[label] = value.strip()[:1000]
    out.metadata["info"] = described
    for label in ("title", "author"):
        if label in described:
            out.facts[label] = described[label][:200]


def walk_objects(reader: Any, ctx: Context) -> Walk:
    """What every object of the document holds: actions by trigger, attachments, forms."""
    walk = Walk(reader=reader)
    for obj, trigger, owner, ref in walk.objects.dictionaries(reader, ctx.check_time):
        _inspect(obj, trigger, owner, ref, walk)
    return walk


def _inspect(obj: Any, trigger: str, owner: str, ref: tuple[int, int] | None, walk: Walk) -> None:
    subtype = name_value(obj, "/S")
    if "/JS" in obj:
        walk.actions.append(Action("JavaScript", trigger, owner, script=text_content(obj.raw_get("/JS"))))
    if subtype == "/Launch":
        target, parameters = _launch_target(obj)
        walk.actions.append(Action("Launch", trigger, owner, target=target, parameters=parameters))
    elif subtype == "/URI" and "/URI" in obj:
        walk.actions.append(Action("URI", trigger, owner, target=string_value(obj.raw_get("/URI"))))
    elif subtype in REMOTE_ACTIONS:
        walk.actions.append(
            Action(subtype[1:], trigger, owner, target=file_name(obj.raw_get("/F")) if "/F" in obj else "")
        )
    if "/EF" in obj:
        _note_filespec(obj, walk)
    if ref is not None and name_value(obj, "/Type") == "/EmbeddedFile" and hasattr(obj, "get_data"):
        walk.streams[ref] = obj
    if "/AcroForm" in obj:
        form = resolve(obj.raw_get("/AcroForm"))
        fields = resolve(form.raw_get("/Fields")) if is_dict(form) and "/Fields" in form else None
        walk.acroform_fields = len(fields) if isinstance(fields, list) else 0
    if "/XFA" in obj:
        walk.xfa = True
        script = _xfa_scripts(resolve(obj.raw_get("/XFA")))
        if script:
            walk.actions.append(Action("JavaScript", "XFA", owner, script=script))
    if subtype == "/RichMedia" or name_value(obj, "/Subtype") == "/RichMedia":
        walk.richmedia += 1


def _note_filespec(filespec: Any, walk: Walk) -> None:
    from pypdf.generic import IndirectObject

    name = ""
    for key in ("/UF", "/F", "/DOS", "/Unix", "/Mac", "/Desc"):
        if key in filespec:
            name = string_value(filespec.raw_get(key)).strip()
            if name:
                break
    files = resolve(filespec.raw_get("/EF"))
    if not is_dict(files):
        return
    for value in files.values():
        if isinstance(value, IndirectObject):
            walk.attachment_names.setdefault((value.idnum, value.generation), name)


def _launch_target(action: Any) -> tuple[str, str]:
    target = file_name(action.raw_get("/F")) if "/F" in action else ""
    parameters = ""
    for platform in ("/Win", "/Unix", "/Mac"):
        spec = resolve(action.raw_get(platform)) if platform in action else None
        if is_dict(spec):
            target = target or (file_name(spec.raw_get("/F")) if "/F" in spec else "")
            parameters = parameters or (string_value(spec.raw_get("/P")) if "/P" in spec else "")
    return target.strip(), parameters.strip()


def _xfa_scripts(xfa: Any) -> str:
    """The <script> elements of an XFA form (its packets are one stream or a [name stream ...] array)."""
    packets = list(xfa)[1::2] if isinstance(xfa, list) else [xfa]
    text = "".join(text_content(packet) for packet in packets[:64])
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.IGNORECASE | re.DOTALL)
    return "\n".join(s.strip() for s in scripts if s.strip())[:MAX_SCRIPT_CHARS]


# --- attachments -------------------------------------------------------------------------------


def _extract_attachments(walk: Walk, out: Analysis, ctx: Context) -> None:
    for ref in walk.attachment_names:
        if ref not in walk.streams:  # /Type is optional on embedded file streams
            stream = stream_at(walk.reader, ref)
            if stream is not None:
                walk.streams[ref] = stream
    listed = []
    for ref, stream in sorted(walk.streams.items()):
        if ctx.exhausted:
            break
        name = walk.attachment_names.get(ref) or f"attachment-{ref[0]}"
        blob = ctx.extract(
            stream_writer(stream), f"attachment {name!r}", compressed_size=len(stored_bytes(stream)) or 1
        )
        if blob is None:
            continue
        kind = ctx.identify(blob, name)
        listed.append({"name": name, "object": f"{ref[0]} {ref[1]}", "size": blob.size, "type": kind})
        out.children.append(Child(name, blob, path=f"/EmbeddedFile {ref[0]} {ref[1]}", labels=["attachment"]))
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if kind in EXECUTABLE_TYPES or extension in RISKY_OUTER:
            out.flag("pdf.embedded_executable", f"{name!r} ({kind})", details={"name": name, "type": kind})
    if listed:
        out.metadata["attachments"] = listed
        out.facts["attachments"] = ", ".join(a["name"] for a in listed)[:300]
        out.flag("pdf.embedded_file", f"{len(listed)} attached file(s): {out.facts['attachments']}")


# --- reporting ---------------------------------------------------------------------------------


def _report_walk(walk: Walk, out: Analysis) -> None:
    if not walk.objects.visited:
        return
    out.metadata["structure"] = {
        "objects_read": walk.objects.visited,
        "unreferenced_objects": walk.objects.unreferenced,
        "unreadable_objects": walk.objects.unreadable,
        "truncated_at_limit": walk.objects.truncated,
    }
    if walk.acroform_fields is not None or walk.xfa:
        out.metadata["forms"] = {"acroform_fields": walk.acroform_fields or 0, "xfa": walk.xfa}
    if walk.xfa:
        out.flag("pdf.xfa", "XFA form (XML forms carry their own scripts and data connections)")
    if walk.richmedia:
        out.flag("pdf.richmedia", f"{walk.richmedia} /RichMedia object(s)")
    if walk.actions:
        out.metadata["actions"] = [a.describe() for a in walk.actions[:MAX_LISTED]]
    _report_scripts([a for a in walk.actions if a.kind == "JavaScript"], out)
    _report_launches([a for a in walk.actions if a.kind == "Launch"], out)
    _report_links(walk.actions, out)
    automatic = [a for a in walk.actions if a.automatic and not _form_helper(a)]
    if automatic:
        first = automatic[0]
        out.facts["open action"] = f"{first.kind} ({first.trigger})"
        summary = "; ".join(sorted({f"{a.trigger} runs {a.kind}" for a in automatic}))
        out.flag("pdf.auto_action", summary, details={"triggers": sorted({a.trigger for a in automatic})})


def _form_helper(action: Action) -> bool:
    return action.kind == "JavaScript" and bool(_FORM_HELPER_SCRIPT.fullmatch(action.script))


def _report_scripts(scripts: list[Action], out: Analysis) -> None:
    risky = [a for a in scripts if not _form_helper(a)]
    if len(risky) < len(scripts):
        out.metadata["form_helper_scripts"] = len(scripts) - len(risky)
    if not risky:
        return
    text = "\n".join(a.script for a in risky)
    out.facts["JavaScript"] = excerpt(risky[0].script)
    where = ", ".join(sorted({a.trigger or "unreferenced object" for a in risky}))
    out.flag("pdf.javascript", f"{len(risky)} script(s) ({where}): {excerpt(risky[0].script)}")
    _judge_script(text, out)


def _judge_script(text: str, out: Analysis) -> None:
    """Flags that hold for any JavaScript, whether the structure or the keyword scan found it."""
    for url in URL.findall(text)[:MAX_LISTED]:
        add_link_iocs(out, url.rstrip(".,;"), "PDF JavaScript")
    if match := _OBFUSCATION.search(text):
        out.flag("pdf.js_obfuscation", f"{excerpt(match.group())!r} in the script")
    if match := _EXPLOIT_APIS.search(text):
        out.flag("pdf.js_exploit_api", f"{match.group()!r} in the script")
    if match := _OPENS_ATTACHMENT.search(text):
        out.flag("pdf.js_opens_attachment", f"{match.group()!r} in the script")


def _report_launches(launches: list[Action], out: Analysis) -> None:
    if not launches:
        return
    shown = "; ".join(f"{a.target} {a.parameters}".strip() or "(no target)" for a in launches)
    out.facts["launch"] = excerpt(shown)
    out.flag("pdf.launch", shown[:500], details={"targets": [a.target for a in launches]})
    for action in launches:
        command = f"{action.target} {action.parameters}"
        if match := _INTERPRETERS.search(command):
            out.flag("pdf.launch_interpreter", f"{match.group()} in {excerpt(command.strip())!r}")
        for url in URL.findall(action.parameters):
            add_link_iocs(out, url, "PDF /Launch parameters")
        if classify_target(action.target).kind == "unc":
            add_link_iocs(out, action.target, "PDF /Launch target")
            out.flag("pdf.unc_reference", f"/Launch {action.target}")


def _report_links(actions: list[Action], out: Analysis) -> None:
    uris = []
    for action in actions:
        if action.kind not in ("URI", *(n[1:] for n in REMOTE_ACTIONS)) or not action.target.strip():
            continue
        link = add_link_iocs(out, action.target, f"PDF /{action.kind} action")
        if action.kind == "URI":
            uris.append(action.target.strip())
        if link.kind == "unc":
            out.flag("pdf.unc_reference", f"/{action.kind} {action.target.strip()}")
        elif action.kind == "SubmitForm" and link.kind == "web":
            out.flag("pdf.submit_form", f"form data sent to {action.target.strip()}")
    if uris:
        out.metadata["uris"] = sorted(set(uris))[:MAX_LISTED]
        out.facts["links"] = str(len(set(uris)))


def _report_keyword_fallbacks(blob: Blob, scan: KeywordScan, walk: Walk, out: Analysis) -> None:
    """Keywords the structure walk could not account for, when it did not read the whole file
    (pypdf failed, objects were unreadable, or fewer objects were read than the file holds).
    A complete walk is trusted: stream data is compressed noise in which short names like /JS
    turn up by chance, which is why pdfid's counts alone are not evidence."""
    complete = (
        walk.objects.visited
        and not walk.objects.truncated
        and not walk.objects.unreadable
        and walk.objects.visited >= scan.objects
    )
    if complete:
        return
    found = {f.id for f in out.findings}
    counts = scan.counts
    if "pdf.javascript" not in found and (counts["/JS"] or counts["/JavaScript"]):
        recovered = _raw_scripts(blob)
        if recovered or counts["/JavaScript"]:
            shown = excerpt(recovered[0]) if recovered else ""
            if recovered:
                out.metadata["recovered_scripts"] = [s[:MAX_SCRIPT_CHARS] for s in recovered[:MAX_LISTED]]
                out.facts["JavaScript"] = shown
                _judge_script("\n".join(recovered), out)
            keywords = f"keyword scan: /JS x{counts['/JS']}, /JavaScript x{counts['/JavaScript']}"
            out.flag("pdf.javascript", keywords + (f": {shown}" if shown else ""))
            if counts["/OpenAction"] or counts["/AA"]:
                automatic = f"keyword scan: /OpenAction x{counts['/OpenAction']}, /AA x{counts['/AA']}"
                out.flag("pdf.auto_action", automatic)
    for keyword, finding in (
        ("/Launch", "pdf.launch"),
        ("/EmbeddedFile", "pdf.embedded_file"),
        ("/RichMedia", "pdf.richmedia"),
        ("/XFA", "pdf.xfa"),
    ):
        if counts[keyword] and finding not in found:
            out.flag(
                finding, f"keyword scan: {keyword} x{counts[keyword]} (not found in the parsed structure)"
            )


def _raw_scripts(blob: Blob) -> list[str]:
    """JavaScript written as /JS (string) or /JS <hex> in the raw bytes (first 16 MB)."""
    data = blob.read(16 << 20)
    scripts = []
    for match in _RAW_SCRIPT.finditer(data):
        opener = match.start(1)
        raw = literal_string(data, opener) if data[opener : opener + 1] == b"(" else hex_string(data, opener)
        if raw.strip():
            scripts.append(decode_text(raw))
        if len(scripts) >= MAX_LISTED:
            break
    return scripts


def _carve_trailing_data(blob: Blob, scan: KeywordScan, out: Analysis, ctx: Context) -> None:
    if scan.last_eof < 0:
        out.metadata["eof_marker"] = False
        return
    end = scan.last_eof + len(b"%%EOF")
    tail_size = blob.size - end
    if tail_size <= 0:
        return
    leading = blob.read_at(end, min(tail_size, 4096))
    padding = len(leading) - len(leading.lstrip(b"\r\n\t \x00"))
    start, size = end + padding, tail_size - padding
    if size <= 0:
        return
    out.metadata["trailing_bytes"] = size
    out.flag("pdf.trailing_data", f"{size:,} bytes after the last %%EOF at offset {scan.last_eof}")
    if size < 16:
        return
    with blob.open() as fh:
        fh.seek(start)
        carved = ctx.extract(fh, "data after %%EOF")
    if carved is not None:
        out.children.append(
            Child(f"overlay@{start:#x}", carved, path=f"after %%EOF@{start:#x}", offset=start)
        )


def _label_decoy(item: Item, out: Analysis) -> None:
    partners = [s for s in item.siblings if s.type in DECOY_PARTNER_TYPES]
    if "decoy" not in item.labels and not partners:
        return
    reason = (
        "a shortcut's command line opens it"
        if "decoy" in item.labels
        else "it sits beside " + ", ".join(f"{s.name} ({s.type})" for s in partners[:5])
    )
    out.facts["role"] = f"decoy: {reason}"
    out.flag("pdf.decoy", reason)
