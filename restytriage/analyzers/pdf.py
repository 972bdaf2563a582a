"""PDF documents: decoys and droppers.

Two views of the file, so a damaged PDF still gives findings:
- a pdfid-style keyword scan of the raw bytes (counts of /JS, /OpenAction, /Launch, ..., and names
  hidden with #xx escapes such as /J#61vaScript), which never fails;
- a walk of the object graph through pypdf (lenient mode), from the trailer first so each action
  knows what triggers it (/OpenAction, /AA events, the /Names JavaScript tree, a click), then over
  the objects nothing references. It collects JavaScript, /Launch, /URI and remote actions, forms,
  document information and attachments; attachments and bytes after the last %%EOF become children.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.analyzers.names import RISKY_OUTER
from restytriage.analyzers.ooxml import add_link_iocs, classify_target, excerpt
from restytriage.blob import Blob, Sink
from restytriage.identify import EXECUTABLE_TYPES

NAME = "pdf"
TYPES = frozenset({"pdf"})

SCAN_CHUNK = 4 << 20
SCAN_OVERLAP = 256  # longer than any token the scan counts
MAX_OBJECTS = 100_000  # indirect objects visited in one document (pypdf reads ~10k a second)
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
_SCRIPT_URL = re.compile(r"""(?:https?|ftp)://[^\s'"<>()\\]{3,300}""", re.IGNORECASE)
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
    actions: list[Action] = field(default_factory=list)
    # /Type /EmbeddedFile streams, and the names file specifications give them, by reference
    streams: dict[tuple[int, int], Any] = field(default_factory=dict)
    attachment_names: dict[tuple[int, int], str] = field(default_factory=dict)
    acroform_fields: int | None = None
    xfa: bool = False
    richmedia: int = 0
    visited: int = 0
    unreferenced: int = 0
    unreadable: int = 0
    truncated: bool = False


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
    with item.blob.open() as stream, _pypdf_warnings() as warnings:
        reader = _open_reader(stream, out)
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


# --- pypdf structure ---------------------------------------------------------------------------


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.messages) < MAX_LISTED:
            self.messages.append(record.getMessage()[:300])


@contextmanager
def _pypdf_warnings() -> Iterator[list[str]]:
    """pypdf reports what it repaired through logging: keep it as metadata, off the terminal."""
    logger = logging.getLogger("pypdf")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _open_reader(stream: io.BufferedIOBase, out: Analysis) -> Any:
    from pypdf import PdfReader

    try:
        reader = PdfReader(stream, strict=False)
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
    info = _resolve(reader.trailer.raw_get("/Info")) if "/Info" in reader.trailer else None
    if not _is_dict(info):
        return
    described = {}
    for key, label in INFO_FIELDS.items():
        value = _text(info.raw_get(key)) if key in info else ""
        if value.strip():
            described[label] = value.strip()[:1000]
    out.metadata["info"] = described
    for label in ("title", "author"):
        if label in described:
            out.facts[label] = described[label][:200]


def walk_objects(reader: Any, ctx: Context) -> Walk:
    """Every object reachable from the trailer (trigger-giving keys first), then the unreferenced ones."""
    from pypdf.generic import IndirectObject

    walk = Walk(reader=reader)
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[Any, str, str, str]] = [(reader.trailer, "", "", "trailer")]
    _drain(stack, seen, walk, ctx)
    referenced = len(seen)
    for generation, numbers in list(reader.xref.items()):
        if generation == 65535:  # the free-list head
            continue
        stack.extend((IndirectObject(number, generation, reader), "", "", "") for number in numbers)
    stack.extend((IndirectObject(number, 0, reader), "", "", "") for number in reader.xref_objStm)
    _drain(stack, seen, walk, ctx)
    walk.visited = len(seen)
    walk.unreferenced = len(seen) - referenced
    return walk


def _drain(
    stack: list[tuple[Any, str, str, str]], seen: set[tuple[int, int]], walk: Walk, ctx: Context
) -> None:
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

    steps = 0
    while stack:
        obj, trigger, via, owner = stack.pop()
        steps += 1
        if steps % 4096 == 0:
            ctx.check_time()
        ref: tuple[int, int] | None = None
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            if len(seen) >= MAX_OBJECTS:
                walk.truncated = True
                return
            seen.add(ref)
            owner = f"{ref[0]} {ref[1]}"
            try:
                obj = obj.get_object()
            except Exception:  # a damaged object: count it and go on
                walk.unreadable += 1
                continue
        if isinstance(obj, DictionaryObject):
            _inspect(obj, trigger, owner, ref, walk)
            later, first = [], []
            for key, value in obj.items():
                child = _child_trigger(key, trigger, via)
                (first if child and child != trigger else later).append((value, child, key, owner))
            # Trigger keys are popped first, so an action reached both from its trigger and from
            # elsewhere (an outline, a back-reference) is attributed to the trigger.
            stack.extend(later)
            stack.extend(first)
        elif isinstance(obj, ArrayObject):
            stack.extend((value, trigger, via, owner) for value in obj)


def _child_trigger(key: str, trigger: str, via: str) -> str:
    if key == "/OpenAction":
        return "/OpenAction"
    if key == "/AA":
        return "/AA"
    if trigger == "/AA" and via == "/AA":
        return f"/AA {key}"
    if key == "/JavaScript" and via == "/Names":
        return "/Names /JavaScript"
    if key == "/A":
        return "/A"
    if key in ("/Next", "/JS", "/Names", "/Kids"):
        return trigger
    return ""


def _inspect(obj: Any, trigger: str, owner: str, ref: tuple[int, int] | None, walk: Walk) -> None:
    subtype = _name(obj, "/S")
    if "/JS" in obj:
        walk.actions.append(Action("JavaScript", trigger, owner, script=_script(obj.raw_get("/JS"))))
    if subtype == "/Launch":
        target, parameters = _launch_target(obj)
        walk.actions.append(Action("Launch", trigger, owner, target=target, parameters=parameters))
    elif subtype == "/URI" and "/URI" in obj:
        walk.actions.append(Action("URI", trigger, owner, target=_text(obj.raw_get("/URI"))))
    elif subtype in REMOTE_ACTIONS:
        walk.actions.append(
            Action(subtype[1:], trigger, owner, target=_file_name(obj.raw_get("/F")) if "/F" in obj else "")
        )
    if "/EF" in obj:
        _note_filespec(obj, walk)
    if ref is not None and _name(obj, "/Type") == "/EmbeddedFile" and hasattr(obj, "get_data"):
        walk.streams[ref] = obj
    if "/AcroForm" in obj:
        form = _resolve(obj.raw_get("/AcroForm"))
        fields = _resolve(form.raw_get("/Fields")) if _is_dict(form) and "/Fields" in form else None
        walk.acroform_fields = len(fields) if isinstance(fields, list) else 0
    if "/XFA" in obj:
        walk.xfa = True
        script = _xfa_scripts(_resolve(obj.raw_get("/XFA")))
        if script:
            walk.actions.append(Action("JavaScript", "XFA", owner, script=script))
    if subtype == "/RichMedia" or _name(obj, "/Subtype") == "/RichMedia":
        walk.richmedia += 1


def _note_filespec(filespec: Any, walk: Walk) -> None:
    from pypdf.generic import IndirectObject

    name = ""
    for key in ("/UF", "/F", "/DOS", "/Unix", "/Mac", "/Desc"):
        if key in filespec:
            name = _text(filespec.raw_get(key)).strip()
            if name:
                break
    files = _resolve(filespec.raw_get("/EF"))
    if not _is_dict(files):
        return
    for value in files.values():
        if isinstance(value, IndirectObject):
            walk.attachment_names.setdefault((value.idnum, value.generation), name)


def _launch_target(action: Any) -> tuple[str, str]:
    target = _file_name(action.raw_get("/F")) if "/F" in action else ""
    parameters = ""
    for platform in ("/Win", "/Unix", "/Mac"):
        spec = _resolve(action.raw_get(platform)) if platform in action else None
        if _is_dict(spec):
            target = target or (_file_name(spec.raw_get("/F")) if "/F" in spec else "")
            parameters = parameters or (_text(spec.raw_get("/P")) if "/P" in spec else "")
    return target.strip(), parameters.strip()


def _file_name(value: Any) -> str:
    """A file specification: a string, or a dictionary naming the file for each platform."""
    value = _resolve(value)
    if _is_dict(value):
        for key in ("/UF", "/F", "/DOS", "/Unix", "/Mac"):
            if key in value:
                return _text(value.raw_get(key))
        return ""
    return _text(value)


def _xfa_scripts(xfa: Any) -> str:
    """The <script> elements of an XFA form (its packets are one stream or a [name stream ...] array)."""
    packets = list(xfa)[1::2] if isinstance(xfa, list) else [xfa]
    text = "".join(_script(packet) for packet in packets[:64])
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", text, re.IGNORECASE | re.DOTALL)
    return "\n".join(s.strip() for s in scripts if s.strip())[:MAX_SCRIPT_CHARS]


def _script(value: Any) -> str:
    value = _resolve(value)
    if hasattr(value, "get_data"):
        try:
            raw = value.get_data()[: MAX_SCRIPT_CHARS * 2]
        except Exception:  # an undecodable filter chain: keep what is readable
            raw = getattr(value, "_data", b"")[: MAX_SCRIPT_CHARS * 2]
        return _decode_text(raw)
    return _text(value)[: MAX_SCRIPT_CHARS * 2]


def _text(value: Any) -> str:
    value = _resolve(value)
    if isinstance(value, bytes):
        return _decode_text(value)
    if isinstance(value, str):
        return str(value)
    return ""


def _decode_text(raw: bytes) -> str:
    if raw.startswith((b"\xfe\xff", b"\xff\xfe")):
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _name(obj: Any, key: str) -> str:
    if key not in obj:
        return ""
    value = _resolve(obj.raw_get(key))
    return str(value) if isinstance(value, str) else ""


def _resolve(value: Any) -> Any:
    try:
        return value.get_object() if hasattr(value, "get_object") else value
    except Exception:  # a dangling or damaged reference reads as nothing
        return None


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


# --- attachments -------------------------------------------------------------------------------


def _extract_attachments(walk: Walk, out: Analysis, ctx: Context) -> None:
    for ref in walk.attachment_names:
        if ref not in walk.streams:  # /Type is optional on embedded file streams
            stream = _stream_at(walk.reader, ref)
            if stream is not None:
                walk.streams[ref] = stream
    listed = []
    for ref, stream in sorted(walk.streams.items()):
        if ctx.exhausted:
            break
        name = walk.attachment_names.get(ref) or f"attachment-{ref[0]}"
        blob = ctx.extract(
            _stream_writer(stream), f"attachment {name!r}", compressed_size=len(stream._data) or 1
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


def _stream_at(reader: Any, ref: tuple[int, int]) -> Any:
    from pypdf.generic import IndirectObject

    value = _resolve(IndirectObject(ref[0], ref[1], reader))
    return value if hasattr(value, "get_data") else None


def _stream_writer(stream: Any) -> Callable[[Sink], None]:
    """Decode a stream into the sink. Plain /FlateDecode is inflated here in bounded steps, so the
    limits stop a bomb as it grows; other filter chains go through pypdf (which caps its output)."""
    filters = _resolve(stream.raw_get("/Filter")) if "/Filter" in stream else None
    filters = [str(f) for f in filters] if isinstance(filters, list) else [str(filters)] if filters else []
    raw: bytes = stream._data  # the encoded bytes as stored in the file

    def write(sink: Sink) -> None:
        if not filters:
            sink.write(raw)
        elif filters in (["/FlateDecode"], ["/Fl"]) and "/DecodeParms" not in stream:
            _inflate(raw, sink)
        else:
            try:
                decoded = stream.get_data()
            except Exception:  # an undecodable chain yields the bytes as stored
                decoded = raw
            sink.write(decoded)  # outside the try: a limit hit must reach ctx.extract

    return write


def _inflate(raw: bytes, sink: Sink) -> None:
    inflater = zlib.decompressobj()
    pending = raw
    try:
        while True:
            output = inflater.decompress(pending, 1 << 20)
            if output:
                sink.write(output)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not output):
                break
    except zlib.error:
        pass  # a truncated or corrupt stream: keep what inflated


# --- reporting ---------------------------------------------------------------------------------


def _report_walk(walk: Walk, out: Analysis) -> None:
    if not walk.visited:
        return
    out.metadata["structure"] = {
        "objects_read": walk.visited,
        "unreferenced_objects": walk.unreferenced,
        "unreadable_objects": walk.unreadable,
        "truncated_at_limit": walk.truncated,
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
    for url in _SCRIPT_URL.findall(text)[:MAX_LISTED]:
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
        for url in _SCRIPT_URL.findall(action.parameters):
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
    complete = walk.visited and not walk.truncated and not walk.unreadable and walk.visited >= scan.objects
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
        raw = (
            _literal_string(data, opener) if data[opener : opener + 1] == b"(" else _hex_string(data, opener)
        )
        if raw.strip():
            scripts.append(_decode_text(raw))
        if len(scripts) >= MAX_LISTED:
            break
    return scripts


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def _literal_string(data: bytes, start: int) -> bytes:
    """A PDF (literal string) beginning at data[start] == '(' with nesting and escapes."""
    out = bytearray()
    depth, index, end = 0, start, min(len(data), start + MAX_SCRIPT_CHARS * 2)
    while index < end:
        byte = data[index]
        if byte == 0x5C and index + 1 < end:  # backslash
            following = data[index + 1]
            if following in _ESCAPES:
                out += _ESCAPES[following]
                index += 2
            elif 0x30 <= following <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[index + 1 : index + 4])
                assert digits is not None
                out.append(int(digits.group(), 8) & 0xFF)
                index += 1 + len(digits.group())
            elif following in b"\r\n":  # line continuation
                index += 3 if data[index + 1 : index + 3] == b"\r\n" else 2
            else:
                out.append(following)
                index += 2
            continue
        if byte == 0x28:
            depth += 1
            if depth == 1:
                index += 1
                continue
        elif byte == 0x29:
            depth -= 1
            if depth == 0:
                break
        out.append(byte)
        index += 1
    return bytes(out)


def _hex_string(data: bytes, start: int) -> bytes:
    end = data.find(b">", start, start + MAX_SCRIPT_CHARS * 4)
    digits = re.sub(rb"[^0-9A-Fa-f]", b"", data[start + 1 : end if end > 0 else start + 1])
    return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())


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
