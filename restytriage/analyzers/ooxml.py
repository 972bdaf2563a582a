"""Office Open XML packages (.docx .docm .dotm .xlsx .xlsm .pptx ...): what the package really is,
where it reaches out to, and what it carries.

OOXML is identified apart from plain ZIP, so this analyzer lists the parts itself (zipfile; every
part read through `ctx.extract` under the limits; no part name is ever used on disk) and reads:
- `[Content_Types].xml` and the main part's type: the true kind of document (macro-enabled? a
  template? an add-in?) against the extension the file is named with;
- every `*.rels` part: external relationships (attached templates = T1221 template injection over
  https, UNC or file://; external OLE links; remote images, frames and workbook links) and their IOCs;
- docProps core/app/custom: author, last modified by, template, company, application, times;
- Word field codes (fldSimple and instrText runs, read the way oletools msodde reads them): DDE and
  DDEAUTO, and fields that fetch remote content; Excel DDE links, Excel 4.0 macro sheets and
  Auto_Open names; ActiveX controls; customUI onLoad callbacks.
Children: vbaProject.bin (for the OLE analyzer), embedded objects, ActiveX binaries, and any part
that is neither XML nor the media it claims to be.
XML is parsed with the standard library after rejecting DOCTYPE/ENTITY declarations and encodings
other than UTF-8/UTF-16/ASCII/Latin-1 (expat 2.4+ also caps entity amplification).
"""

from __future__ import annotations

import io
import lzma
import posixpath
import re
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree

from restytriage.analysis import Analysis, Child, Context, Item, excerpt
from restytriage.blob import Blob
from restytriage.identify import EXECUTABLE_TYPES, RISKY_OUTER
from restytriage.links import URL, add_link_iocs, judge_fields, report_dde

NAME = "ooxml"
TYPES = frozenset({"ooxml"})

XML_PART_MAX = 64 << 20  # XML parts past this are not parsed (a real document.xml is far smaller)
HEAD_PEEK = 64 * 1024  # bytes read from a media part to check what it really is
MAX_LISTED = 200  # parts, relationships, fields and formulas kept in the metadata
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class DocumentKind:
    application: str
    extension: str  # the extension this content type is saved with
    macro_enabled: bool = False
    template: bool = False
    addin: bool = False


_OXML = "application/vnd.openxmlformats-officedocument."
_MS = "application/vnd.ms-"
_WORD, _EXCEL, _POWERPOINT, _VISIO = "Word", "Excel", "PowerPoint", "Visio"
MAIN_TYPES: dict[str, DocumentKind] = {  # main part content types, lower-cased
    _OXML + "wordprocessingml.document.main+xml": DocumentKind(_WORD, "docx"),
    _MS + "word.document.macroenabled.main+xml": DocumentKind(_WORD, "docm", macro_enabled=True),
    _OXML + "wordprocessingml.template.main+xml": DocumentKind(_WORD, "dotx", template=True),
    _MS + "word.template.macroenabledtemplate.main+xml": DocumentKind(_WORD, "dotm", True, template=True),
    _OXML + "spreadsheetml.sheet.main+xml": DocumentKind(_EXCEL, "xlsx"),
    _MS + "excel.sheet.macroenabled.main+xml": DocumentKind(_EXCEL, "xlsm", macro_enabled=True),
    _OXML + "spreadsheetml.template.main+xml": DocumentKind(_EXCEL, "xltx", template=True),
    _MS + "excel.template.macroenabled.main+xml": DocumentKind(_EXCEL, "xltm", True, template=True),
    _MS + "excel.addin.macroenabled.main+xml": DocumentKind(_EXCEL, "xlam", True, addin=True),
    # Excel gives every binary workbook this "macroEnabled" type, with or without macros.
    _MS + "excel.sheet.binary.macroenabled.main": DocumentKind(_EXCEL, "xlsb"),
    _OXML + "presentationml.presentation.main+xml": DocumentKind(_POWERPOINT, "pptx"),
    _MS + "powerpoint.presentation.macroenabled.main+xml": DocumentKind(_POWERPOINT, "pptm", True),
    _OXML + "presentationml.template.main+xml": DocumentKind(_POWERPOINT, "potx", template=True),
    _MS + "powerpoint.template.macroenabled.main+xml": DocumentKind(_POWERPOINT, "potm", True, template=True),
    _OXML + "presentationml.slideshow.main+xml": DocumentKind(_POWERPOINT, "ppsx"),
    _MS + "powerpoint.slideshow.macroenabled.main+xml": DocumentKind(_POWERPOINT, "ppsm", True),
    _MS + "powerpoint.addin.macroenabled.main+xml": DocumentKind(_POWERPOINT, "ppam", True, addin=True),
    _MS + "visio.drawing.main+xml": DocumentKind(_VISIO, "vsdx"),
    _MS + "visio.drawing.macroenabled.main+xml": DocumentKind(_VISIO, "vsdm", macro_enabled=True),
}
MACRO_FREE_EXTENSIONS = frozenset(
    {k.extension for k in MAIN_TYPES.values() if not k.macro_enabled} - {"xlsb"}
)
VBA_PROJECT_TYPE = _MS + "office.vbaproject"
MACROSHEET_TYPES = frozenset({_MS + "excel.macrosheet+xml", _MS + "excel.intlmacrosheet+xml"})
ACTIVEX_XML_TYPE = _MS + "office.activex+xml"
# Relationships that make the application load another document when this one opens.
TEMPLATE_RELATIONSHIPS = frozenset({"attachedtemplate", "frame", "subdocument"})
# URI schemes behind protocol-handler exploits (Follina ms-msdt, search-ms, ms-officecmd, MHTML).
DANGEROUS_SCHEMES = frozenset({
    "ms-msdt", "search-ms", "search", "ms-officecmd", "ms-word", "ms-excel", "ms-powerpoint", "ms-appinstaller",
    "mhtml", "mk", "ms-its", "its", "javascript", "vbscript", "ms-cxh", "ms-cxh-full",
})  # fmt: skip
MEDIA_TYPE_MARKERS = (
    "image/",
    "audio/",
    "video/",
    "font",
    "printersettings",
    "vbaprojectsignature",
    "thumbnail",
)
MEDIA_EXTENSIONS = frozenset({
    "png", "jpg", "jpeg", "jpe", "gif", "bmp", "dib", "tif", "tiff", "emf", "wmf", "emz", "wmz", "svg", "ico",
    "wdp", "jxr", "hdp", "odttf", "fntdata", "ttf", "otf", "wav", "mp3", "mp4", "m4a", "wma", "wmv", "avi",
    "mov", "mpg", "mpeg",
})  # fmt: skip
BENIGN_MEDIA_CONTENT = frozenset({"data", "empty", "xml"})  # what identify calls images, fonts, DEVMODEs
XML_EXTENSIONS = frozenset({"xml", "rels", "vml"})
DEFAULT_TEMPLATES = frozenset({"", "normal", "normal.dot", "normal.dotm", "normal.dotx"})
_XLM_DANGEROUS = re.compile(
    r"\b(EXEC|CALL|REGISTER(?:\.ID)?|FOPEN|FWRITE(?:LN)?|URLDownloadToFile\w*|ShellExecute\w*|WinExec"
    r"|CreateThread|VirtualAlloc)\b",
    re.IGNORECASE,
)
_AUTO_NAME = re.compile(r"^(?:_xlnm\.)?auto_(open|close|activate|deactivate)", re.IGNORECASE)
_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
SAFE_ENCODINGS = frozenset({
    "utf-8", "utf8", "utf-16", "utf16", "utf-16le", "utf-16be", "us-ascii", "ascii", "iso-8859-1", "latin-1",
    "latin1",
})  # fmt: skip
_DECLARATIONS = tuple(
    m.encode(codec) for m in ("<!DOCTYPE", "<!ENTITY") for codec in ("utf-8", "utf-16-le", "utf-16-be")
)
OOXML_EXTENSIONS = frozenset(k.extension for k in MAIN_TYPES.values())
_PART_ERRORS = (
    lzma.LZMAError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    RuntimeError,
    NotImplementedError,
    OSError,
    EOFError,
    zlib.error,
    ValueError,
)


@dataclass
class Relationship:
    source: str  # the .rels part that declares it
    id: str
    type: str  # the last segment of the type URI: "attachedTemplate", "oleObject", "image", ...
    target: str
    external: bool
    part: str = ""  # an internal target resolved to a part name


class Package:
    """The parts of one OOXML package, read under the run's limits."""

    def __init__(self, archive: zipfile.ZipFile, ctx: Context) -> None:
        self.archive = archive
        self.ctx = ctx
        # not ZipInfo.is_dir(): it indexes the name's last character, and a hostile entry may have none
        self.infos = [info for info in archive.infolist() if not info.filename.endswith("/")]
        self.parts = {_part_key(info.filename): info for info in self.infos}  # OPC part names ignore case
        self.defaults: dict[str, str] = {}  # extension -> content type
        self.overrides: dict[str, str] = {}  # part name -> content type
        self.relationships: list[Relationship] = []
        self.unreadable: list[str] = []
        self.xml_errors: list[str] = []
        self.hostile_xml: list[str] = []

    def load(self) -> None:
        types = self.xml("[Content_Types].xml")
        for element in types.iter() if types is not None else ():
            tag = _local(element.tag)
            if tag == "Default" and element.get("Extension"):
                self.defaults[element.get("Extension", "").lower()] = element.get("ContentType", "").lower()
            elif tag == "Override" and element.get("PartName"):
                self.overrides[_part_key(element.get("PartName", ""))] = element.get(
                    "ContentType", ""
                ).lower()
        for info in self.infos:
            if info.filename.lower().endswith(".rels"):
                self.ctx.check_time()
                self._load_relationships(info.filename)

    def _load_relationships(self, rels_name: str) -> None:
        root = self.xml(rels_name)
        if root is None:
            return
        folder, rels_file = posixpath.split(rels_name)
        base = posixpath.dirname(folder)  # word/_rels/document.xml.rels -> word/
        source = posixpath.join(base, rels_file[: -len(".rels")]) if rels_file != ".rels" else ""
        for element in root.iter():
            if _local(element.tag) != "Relationship":
                continue
            target = element.get("Target", "")
            external = element.get("TargetMode", "").lower() == "external"
            self.relationships.append(
                Relationship(
                    source=rels_name,
                    id=element.get("Id", ""),
                    type=element.get("Type", "").rstrip("/").rsplit("/", 1)[-1],
                    target=target,
                    external=external,
                    part="" if external else _resolve_part(posixpath.dirname(source), target),
                )
            )

    def info(self, name: str) -> zipfile.ZipInfo | None:
        return self.parts.get(_part_key(name))

    def content_type(self, name: str) -> str:
        key = _part_key(name)
        return self.overrides.get(key) or self.defaults.get(_suffix(key), "")

    def declared(self, name: str) -> bool:
        key = _part_key(name)
        return key in self.overrides or _suffix(key) in self.defaults

    def extract(self, info: zipfile.ZipInfo) -> Blob | None:
        try:
            with self.archive.open(info) as stream:
                return self.ctx.extract(
                    stream, f"part {info.filename!r}", compressed_size=info.compress_size or 1
                )
        except _PART_ERRORS as err:
            self.unreadable.append(f"{info.filename}: {type(err).__name__}: {err}"[:300])
            return None

    def peek(self, info: zipfile.ZipInfo) -> bytes:
        try:
            with self.archive.open(info) as stream:
                return stream.read(HEAD_PEEK)
        except _PART_ERRORS as err:
            self.unreadable.append(f"{info.filename}: {type(err).__name__}: {err}"[:300])
            return b""

    def read_xml_bytes(self, name: str) -> bytes | None:
        """A part's bytes when it exists, fits the XML size cap and declares nothing hostile."""
        info = self.info(name)
        if info is None:
            return None
        if info.file_size > XML_PART_MAX:
            self.xml_errors.append(f"{info.filename}: {info.file_size:,} bytes, not parsed")
            return None
        blob = self.extract(info)
        if blob is None:
            return None
        data = blob.read()
        if _hostile_xml(data):
            self.hostile_xml.append(info.filename)
            return None
        return data

    def xml(self, name: str) -> ElementTree.Element | None:
        data = self.read_xml_bytes(name)
        if data is None:
            return None
        try:
            return ElementTree.fromstring(data)
        except ElementTree.ParseError as err:
            self.xml_errors.append(f"{name}: {err}"[:300])
            return None

    def related(self, source: str) -> dict[str, Relationship]:
        """The relationships a part declares, by id."""
        rels = posixpath.join(
            posixpath.dirname(source), "_rels", posixpath.basename(source) + ".rels"
        ).lower()
        return {r.id: r for r in self.relationships if r.source.lower() == rels}

    def main_part(self) -> str:
        for rel in self.relationships:
            if rel.source.lower() == "_rels/.rels" and rel.type == "officeDocument" and not rel.external:
                return rel.part
        return next((name for name, content_type in self.overrides.items() if content_type in MAIN_TYPES), "")


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with item.blob.open() as stream:
        try:
            archive = zipfile.ZipFile(stream)
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            OSError,
            ValueError,
            EOFError,
            NotImplementedError,
        ) as err:
            out.flag("ooxml.malformed", f"the ZIP structure cannot be read: {err}")
            return out
        with archive:
            package = Package(archive, ctx)
            package.load()
            kind = _describe_document(package, out)
            _check_macros(item, package, kind, out)
            _read_properties(package, out)
            _judge_relationships(package, out)
            _judge_fields(package, out)
            _scan_excel(package, kind, out)
            _scan_controls(package, out)
            _collect_children(package, kind, out)
            _report_package(package, out)
    return out


# --- what the document is ----------------------------------------------------------------------


def _describe_document(package: Package, out: Analysis) -> DocumentKind | None:
    main = package.main_part()
    content_type = package.content_type(main) if main else ""
    kind = MAIN_TYPES.get(content_type)
    out.metadata["document"] = {
        "main_part": main,
        "content_type": content_type,
        "application": kind.application if kind else "",
        "saved_as": kind.extension if kind else "",
        "macro_enabled": bool(kind and kind.macro_enabled),
        "template": bool(kind and kind.template),
        "addin": bool(kind and kind.addin),
    }
    if kind is None:
        if not package.overrides and not package.defaults:
            out.flag("ooxml.malformed", "[Content_Types].xml is missing or unreadable")
        return None
    role = "template" if kind.template else "add-in" if kind.addin else "document"
    out.facts["document"] = (
        f"{kind.application} {'macro-enabled ' if kind.macro_enabled else ''}{role} (.{kind.extension})"
    )
    return kind


def _check_macros(item: Item, package: Package, kind: DocumentKind | None, out: Analysis) -> None:
    vba = [i.filename for i in package.infos if _is_vba_project(package, i.filename)]
    sheets = _macrosheet_parts(package)
    if vba:
        out.metadata["vba_projects"] = vba
        out.facts["macros"] = "VBA project (" + ", ".join(vba[:3]) + ")"
        out.flag("ooxml.vba_project", ", ".join(vba[:5]))
    macros = " and ".join(
        x for x in ("a VBA project" if vba else "", "Excel 4.0 macro sheets" if sheets else "") if x
    )
    extension = item.extension
    if extension in MACRO_FREE_EXTENSIONS and ((kind and kind.macro_enabled) or macros):
        saved = f"saved as .{kind.extension}" if kind else "an Office package"
        holding = f" holding {macros}" if macros else ""
        out.flag(
            "ooxml.macro_extension_mismatch",
            f"named .{extension} (a macro-free type) but the content is {saved}{holding}",
            details={"extension": extension, "content_type": package.content_type(package.main_part())},
        )
    elif kind and extension in OOXML_EXTENSIONS and extension != kind.extension:
        out.flag("ooxml.extension_mismatch", f"named .{extension}, saved as .{kind.extension}")
    if kind and kind.template and kind.macro_enabled and (vba or sheets):
        out.flag(
            "ooxml.macro_template",
            f"{kind.application} macro-enabled template (.{kind.extension}) with {macros}",
        )
    if kind and kind.addin and (vba or sheets):
        out.flag("ooxml.macro_addin", f"{kind.application} add-in (.{kind.extension}) with {macros}")


def _is_vba_project(package: Package, name: str) -> bool:
    return name.lower().endswith("vbaproject.bin") or package.content_type(name) == VBA_PROJECT_TYPE


def _macrosheet_parts(package: Package) -> list[str]:
    by_type = [i.filename for i in package.infos if package.content_type(i.filename) in MACROSHEET_TYPES]
    by_link = [
        r.part for r in package.relationships if r.type.lower() in ("xlmacrosheet", "xlintlmacrosheet")
    ]
    named = {name.lower(): name for name in by_type}
    for part in by_link:
        info = package.info(part)
        if info is not None:
            named.setdefault(info.filename.lower(), info.filename)
    return sorted(named.values())


# --- document properties -----------------------------------------------------------------------

CORE_PROPERTIES = {
    "creator": "author", "lastModifiedBy": "last modified by", "title": "title", "subject": "subject",
    "description": "comments", "keywords": "keywords", "category": "category", "revision": "revision",
    "created": "created", "modified": "modified", "lastPrinted": "last printed", "contentStatus": "status",
    "language": "language", "identifier": "identifier", "version": "version",
}  # fmt: skip
APP_PROPERTIES = {
    "Template": "template", "Application": "application", "AppVersion": "application version",
    "Company": "company", "Manager": "manager", "TotalTime": "editing minutes", "Pages": "pages",
    "Words": "words", "Slides": "slides", "HyperlinkBase": "hyperlink base", "DocSecurity": "security",
}  # fmt: skip
FACT_PROPERTIES = ("author", "last modified by", "application", "company")


def _read_properties(package: Package, out: Analysis) -> None:
    located = {
        r.type: r.part for r in package.relationships if r.source.lower() == "_rels/.rels" and not r.external
    }
    properties: dict[str, str] = {}
    for rel_type, default, names in (
        ("core-properties", "docProps/core.xml", CORE_PROPERTIES),
        ("extended-properties", "docProps/app.xml", APP_PROPERTIES),
    ):
        root = package.xml(located.get(rel_type) or default)
        for element in root.iter() if root is not None else ():
            label = names.get(_local(element.tag))
            if label and element.text and element.text.strip():
                properties.setdefault(label, element.text.strip()[:1000])
    custom = package.xml(located.get("custom-properties") or "docProps/custom.xml")
    custom_values = {}
    for element in custom.iter() if custom is not None else ():
        if _local(element.tag) == "property" and element.get("name"):
            value = "".join(element.itertext()).strip()
            custom_values[element.get("name", "")[:200]] = value[:1000]
    if properties:
        out.metadata["properties"] = properties
    if custom_values:
        out.metadata["custom_properties"] = dict(list(custom_values.items())[:MAX_LISTED])
    for label in FACT_PROPERTIES:
        if properties.get(label):
            out.facts[label] = properties[label][:EXCERPT_CHARS]
    template = properties.get("template", "")
    if template.lower() not in DEFAULT_TEMPLATES:
        out.facts["template"] = template[:EXCERPT_CHARS]
    base = properties.get("hyperlink base", "")
    if base and add_link_iocs(out, base, "HyperlinkBase document property").kind == "unc":
        out.flag("ooxml.unc_reference", f"HyperlinkBase {base}")


# --- external relationships --------------------------------------------------------------------


def _judge_relationships(package: Package, out: Analysis) -> None:
    external = [r for r in package.relationships if r.external]
    if not external:
        return
    out.metadata["external_relationships"] = [
        {"source": r.source, "id": r.id, "type": r.type, "target": r.target} for r in external[:MAX_LISTED]
    ]
    for rel in external:
        rel_type = rel.type.lower()
        link = add_link_iocs(out, rel.target, f"{rel.type} relationship in {rel.source}")
        where = f"{rel.type} -> {rel.target} ({rel.source})"
        if link.scheme in DANGEROUS_SCHEMES or (
            rel_type != "hyperlink" and rel.target.rstrip().endswith("!")
        ):
            out.flag("ooxml.protocol_handler", where)
        if rel_type in TEMPLATE_RELATIONSHIPS:
            if link.kind in ("web", "unc", "protocol"):
                out.facts.setdefault("remote template", rel.target[:EXCERPT_CHARS])
                out.flag("ooxml.remote_template", where, details={"target": rel.target, "kind": link.kind})
            else:
                out.facts.setdefault("template", rel.target[:EXCERPT_CHARS])
        elif rel_type == "oleobject":
            out.flag("ooxml.external_ole_link", where, details={"target": rel.target})
        elif rel_type != "hyperlink" and link.kind == "web":
            out.flag("ooxml.remote_content", where)
        if link.kind == "unc" and rel_type != "hyperlink":
            out.flag("ooxml.unc_reference", where)


# --- field codes and DDE -----------------------------------------------------------------------


def word_fields(data: bytes) -> tuple[list[str], str]:
    """Field instructions of a WordprocessingML part, the way msodde reads them: w:fldSimple/@w:instr,
    and the w:instrText runs between a w:fldChar begin and its end (nested fields joined, QUOTE
    fields decoded). Returns the fields and a parse error, if the XML broke off."""
    from oletools.msodde import unquote

    fields: list[str] = []
    depth = 0
    pieces: list[str] = []
    try:
        for event, element in ElementTree.iterparse(io.BytesIO(data), events=("start", "end")):
            tag = _local(element.tag)
            if event == "start":
                if tag == "fldChar":
                    kind = _attribute(element, "fldCharType")
                    if kind == "begin":
                        depth += 1
                    elif kind == "end" and depth:
                        depth -= 1
                        if not depth:
                            fields.append("".join(pieces))
                            pieces = []
                continue
            if tag == "instrText" and depth and element.text:
                pieces.append(unquote(element.text))
            elif tag == "fldSimple" and _attribute(element, "instr"):
                fields.append(unquote(_attribute(element, "instr")))
            if tag in ("r", "p", "fldSimple", "tbl"):
                element.clear()  # keep memory flat on large documents
    except ElementTree.ParseError as err:
        return fields, str(err)
    return fields, ""


def _judge_fields(package: Package, out: Analysis) -> None:
    found: list[tuple[str, str]] = []
    for info in package.infos:
        lower = info.filename.lower()
        if not (lower.startswith("word/") and lower.endswith(".xml")):
            continue
        package.ctx.check_time()
        data = package.read_xml_bytes(info.filename)
        if data is None or not any(marker in data for marker in (b"instr", "instr".encode("utf-16-le"))):
            continue
        fields, error = word_fields(data)
        if error:
            package.xml_errors.append(f"{info.filename}: {error}"[:300])
        found.extend((info.filename, f) for f in fields)
    judge_fields(out, found)


# --- Excel: macro sheets, Auto_Open names, DDE links -------------------------------------------


def _scan_excel(package: Package, kind: DocumentKind | None, out: Analysis) -> None:
    sheets_info: list[dict[str, str]] = []
    if kind is not None and kind.application == "Excel":
        main = package.main_part()
        workbook = package.xml(main)
        links = package.related(main)
        names: dict[str, str] = {}
        for element in workbook.iter() if workbook is not None else ():
            tag = _local(element.tag)
            if tag == "sheet":
                rel = links.get(_attribute(element, "id"))
                sheets_info.append({
                    "name": element.get("name", ""),
                    "state": element.get("state", "visible"),
                    "part": rel.part if rel else "",
                    "kind": rel.type if rel else "",
                })  # fmt: skip
            elif tag == "definedName" and element.get("name"):
                names[element.get("name", "")] = (element.text or "").strip()
        if sheets_info:
            out.metadata["sheets"] = sheets_info[:MAX_LISTED]
        auto = {name: ref for name, ref in names.items() if _AUTO_NAME.match(name)}
        if auto:
            out.metadata["auto_names"] = auto
            shown = ", ".join(f"{name} -> {ref}" for name, ref in auto.items())
            out.facts["Auto_Open"] = excerpt(shown)
            out.flag("ooxml.xlm_auto_open", shown[:500])
    _scan_macrosheets(package, sheets_info, out)
    _scan_dde_links(package, out)


def _scan_macrosheets(package: Package, sheets_info: list[dict[str, str]], out: Analysis) -> None:
    parts = _macrosheet_parts(package)
    if not parts:
        return
    by_part = {s["part"].lower(): s for s in sheets_info}
    formulas: list[dict[str, str]] = []
    for part in parts:
        root = package.xml(part)
        for cell in root.iter() if root is not None else ():
            if _local(cell.tag) != "c":
                continue
            for child in cell:
                if _local(child.tag) == "f" and child.text and len(formulas) < 10 * MAX_LISTED:
                    formulas.append({"part": part, "cell": cell.get("r", ""), "formula": child.text[:1000]})
    described = []
    for part in parts:
        sheet = by_part.get(part.lower(), {})
        described.append(f"{sheet.get('name') or part} ({sheet.get('state', 'unlisted')})")
        if sheet.get("state") in ("hidden", "veryHidden"):
            out.flag("ooxml.hidden_macrosheet", f"{sheet.get('name')!r} is {sheet.get('state')}")
    out.metadata["macrosheets"] = {
        "parts": parts,
        "formulas": formulas[:MAX_LISTED],
        "formula_count": len(formulas),
    }
    out.facts["macro sheets"] = ", ".join(described)[:EXCERPT_CHARS]
    out.flag("ooxml.xlm_macrosheet", f"{len(parts)} Excel 4.0 macro sheet(s): {', '.join(described)}"[:500])
    text = "\n".join(f["formula"] for f in formulas)
    calls = sorted({m.upper() for m in _XLM_DANGEROUS.findall(text)})
    if calls:
        out.flag("ooxml.xlm_dangerous_call", ", ".join(calls))
    for url in URL.findall(text):
        add_link_iocs(out, url, "Excel 4.0 macro formula")


def _scan_dde_links(package: Package, out: Analysis) -> None:
    for info in package.infos:
        if not info.filename.lower().startswith("xl/externallinks/") or not info.filename.lower().endswith(
            ".xml"
        ):
            continue
        root = package.xml(info.filename)
        for element in root.iter() if root is not None else ():
            if _local(element.tag) == "ddeLink":
                command = f"{element.get('ddeService', '')} {element.get('ddeTopic', '')}".strip()
                report_dde(out, f"DDE link in {info.filename}", command, automatic=False)


# --- ActiveX and customUI ----------------------------------------------------------------------

_CUSTOM_UI = re.compile(r"(^|/)customui/customui\d*\.xml$", re.IGNORECASE)


def _scan_controls(package: Package, out: Analysis) -> None:
    controls = []
    for info in package.infos:
        name = info.filename
        if package.content_type(name) == ACTIVEX_XML_TYPE:
            root = package.xml(name)
            if root is not None:
                controls.append(
                    {
                        "part": name,
                        "classid": _attribute(root, "classid"),
                        "persistence": _attribute(root, "persistence"),
                    }
                )
        elif _CUSTOM_UI.search(name):
            root = package.xml(name)
            callback = _attribute(root, "onLoad") if root is not None else ""
            if callback:
                out.metadata["customui_onload"] = callback
                out.flag("ooxml.customui_callback", f"{name} calls macro {callback!r} when the ribbon loads")
    if controls:
        out.metadata["activex"] = controls[:MAX_LISTED]
        classids = sorted({c["classid"] for c in controls if c["classid"]})
        out.flag("ooxml.activex", f"{len(controls)} ActiveX control(s): {', '.join(classids)}"[:500])


# --- children ----------------------------------------------------------------------------------


def _collect_children(package: Package, kind: DocumentKind | None, out: Analysis) -> None:
    ctx = package.ctx
    for info in package.infos:
        if ctx.exhausted:
            break
        ctx.check_time()
        name = info.filename
        lower = name.lower()
        content_type = package.content_type(name)
        extension = _suffix(lower)
        vba = _is_vba_project(package, name)
        disguise = ""
        if not vba and (
            extension in XML_EXTENSIONS
            or content_type.endswith(("+xml", "/xml"))
            or lower == "[content_types].xml"
        ):
            head = package.peek(info)
            if not head or _looks_like_xml(head):
                continue
            disguise = f"declared as XML ({content_type or extension}), content is {ctx.identify(Blob.of(head), name)}"
        elif not vba and (
            extension in MEDIA_EXTENSIONS or any(m in content_type for m in MEDIA_TYPE_MARKERS)
        ):
            found = ctx.identify(Blob.of(package.peek(info)), name)
            if found in BENIGN_MEDIA_CONTENT:
                continue
            disguise = f"declared as media ({content_type or extension}), content is {found}"
        blob = package.extract(info)
        if blob is None:
            continue
        found = ctx.identify(blob, name)
        if disguise:
            out.flag("ooxml.disguised_part", f"{name}: {disguise}", details={"part": name, "type": found})
        if found in EXECUTABLE_TYPES or extension in RISKY_OUTER:
            out.flag("ooxml.embedded_executable", f"{name} ({found})", details={"part": name, "type": found})
        out.children.append(Child(name, blob, path=name, labels=_labels(lower, vba, kind)))


def _labels(lower: str, vba: bool, kind: DocumentKind | None) -> list[str]:
    if vba:
        return ["vba-project", "template"] if kind and kind.template else ["vba-project"]
    if "/embeddings/" in lower:
        return ["embedded-object"]
    if "/activex/" in lower:
        return ["activex"]
    return []


def _report_package(package: Package, out: Analysis) -> None:
    out.metadata["parts"] = [
        {
            "name": i.filename,
            "size": i.file_size,
            "compressed": i.compress_size,
            "content_type": package.content_type(i.filename),
        }
        for i in package.infos[:MAX_LISTED]
    ]
    out.metadata["part_count"] = len(package.infos)
    names = Counter(i.filename.lower() for i in package.infos)
    duplicates = sorted(name for name, count in names.items() if count > 1)
    if duplicates:
        out.flag("ooxml.duplicate_part", ", ".join(duplicates[:10]))
    undeclared = [
        i.filename for i in package.infos
        if i.filename.lower() != "[content_types].xml" and not package.declared(i.filename)
    ]  # fmt: skip
    if undeclared and (package.defaults or package.overrides):
        out.metadata["undeclared_parts"] = undeclared[:MAX_LISTED]
        out.flag("ooxml.undeclared_part", ", ".join(undeclared[:10]))
    if package.unreadable:
        out.metadata["unreadable_parts"] = package.unreadable[:MAX_LISTED]
        out.flag("ooxml.damaged_part", "; ".join(package.unreadable[:3]))
    if package.xml_errors:
        out.metadata["xml_errors"] = package.xml_errors[:MAX_LISTED]
    if package.hostile_xml:
        out.metadata["hostile_xml"] = sorted(set(package.hostile_xml))
        out.flag("ooxml.xml_doctype", ", ".join(sorted(set(package.hostile_xml))[:10]))


# --- small helpers -----------------------------------------------------------------------------


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _attribute(element: ElementTree.Element, local: str) -> str:
    for key, value in element.attrib.items():
        if _local(key) == local:
            return value
    return ""


def _part_key(name: str) -> str:
    return unquote(name).lstrip("/").lower()


def _suffix(name: str) -> str:
    """The extension as OPC Default elements match it: "_rels/.rels" -> "rels" (posixpath says "")."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def _resolve_part(base: str, target: str) -> str:
    target = unquote(target.split("#", 1)[0])
    joined = target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
    return posixpath.normpath(joined).lstrip("/") if joined else ""


def _hostile_xml(data: bytes) -> bool:
    """DOCTYPE or ENTITY declarations (entity bombs, external entities), which Office never writes,
    or an encoding other than the ones Office uses (a way to hide those declarations)."""
    if any(marker in data for marker in _DECLARATIONS):
        return True
    declared = _ENCODING.match(data[:512].lstrip(b"\xef\xbb\xbf"))
    return bool(declared) and declared.group(1).decode("ascii").lower() not in SAFE_ENCODINGS


def _looks_like_xml(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf\xff\xfe\xfe\xff\r\n\t \x00")
    return text.startswith(b"<")
