"""Identify an object by its content (magic and structure), never by its name.

The name only gives the claimed extension, which the `names` analyzer compares with what the
content is. Types are short strings analyzers claim: "zip", "ooxml", "iso", "lnk", "ole", "pdf",
"pe", ...; `description` adds detail for people.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from restytriage.blob import Blob


@dataclass(frozen=True)
class FileType:
    name: str
    description: str


# Extensions each type legitimately carries; a known extension of another type is a mismatch.
EXTENSIONS: dict[str, frozenset[str]] = {
    "pe": frozenset("exe dll sys scr cpl ocx drv efi com mui ax node xll wll pyd".split()),
    "lnk": frozenset({"lnk"}),
    # Encrypted OOXML documents are compound files too (EncryptionInfo + EncryptedPackage).
    "ole": frozenset(
        "doc dot xls xlt xla ppt pot pps msi msg wiz pub vsd docx docm dotx dotm xlsx xlsm pptx".split()
    ),
    "ooxml": frozenset(
        "docx docm dotx dotm xlsx xlsm xltx xltm xlam xlsb pptx pptm potx potm ppsx ppsm ppam sldx vsdx".split()
    ),
    "zip": frozenset("zip jar apk xpi war ear epub odt ods odp kmz whl nupkg appx msix".split()),
    "iso": frozenset({"iso", "img", "udf", "vhd"}),
    "pdf": frozenset({"pdf"}),
    "cab": frozenset({"cab"}),
    "rar": frozenset({"rar"}),
    "7z": frozenset({"7z"}),
    "gzip": frozenset({"gz", "tgz"}),
    "rtf": frozenset({"rtf", "doc"}),
    "elf": frozenset({"so", "elf"}),  # not "bin": vbaProject.bin, oleObject1.bin, firmware... any content
    "html": frozenset({"html", "htm", "hta", "xhtml", "svg"}),
    "xml": frozenset({"xml", "svg", "xaml", "config"}),
    "text": frozenset(
        "txt log csv ini inf cfg json md bat cmd ps1 vbs vbe js jse wsf hta reg sct py sh".split()
    ),
}
DOCUMENT_EXTENSIONS = frozenset(
    "pdf doc docx docm dot dotm rtf xls xlsx xlsm ppt pptx txt csv jpg jpeg png gif odt hwp".split()
)
# What Windows runs, or hands to something that runs code, on a double-click.
EXECUTABLE_EXTENSIONS = frozenset(
    "exe com scr pif cpl msi dll bat cmd ps1 vbs vbe js jse wsf wsh hta lnk url".split()
)
EXECUTABLE_TYPES = frozenset({"pe", "lnk", "elf", "macho"})
# Files Windows hands to a script host or console when opened (.msc: MMC, as in GrimResource).
SCRIPT_EXTENSIONS = frozenset(
    ["js", "jse", "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "bat", "cmd", "ps1", "psm1", "sct", "reg", "msc"]
)
# Outer extensions that make a document-like inner one a disguise (disc images mount and show executables).
RISKY_OUTER = EXECUTABLE_EXTENSIONS | {"iso", "img"}

_SIMPLE_MAGIC: tuple[tuple[bytes, int, str, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 0, "ole", "OLE2 compound file (CFB)"),
    (b"MSCF\x00\x00\x00\x00", 0, "cab", "Microsoft Cabinet archive"),
    (b"Rar!\x1a\x07", 0, "rar", "RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z", "7-Zip archive"),
    (b"\x1f\x8b", 0, "gzip", "gzip compressed data"),
    (b"BZh", 0, "bzip2", "bzip2 compressed data"),
    (b"\xfd7zXZ\x00", 0, "xz", "xz compressed data"),
    (b"{\\rt", 0, "rtf", "Rich Text Format"),
    (b"\x7fELF", 0, "elf", "ELF executable"),
    (b"ustar", 257, "tar", "tar archive"),
)
_LNK_HEADER = b"\x4c\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_MACHO = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)


def identify(blob: Blob, name: str = "") -> FileType:
    head = blob.head
    if not head:
        return FileType("empty", "empty file")
    if head.startswith(b"MZ"):
        return FileType("pe", _describe_pe(head))
    if head.startswith(_LNK_HEADER):
        return FileType("lnk", "Windows shortcut (MS-SHLLINK)")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _describe_zip(blob)
    for magic, offset, type_name, description in _SIMPLE_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return FileType(type_name, description)
    if b"%PDF-" in head[:1024]:
        return FileType("pdf", "PDF document")
    iso = _describe_disc(head)
    if iso:
        return iso
    if head.startswith(_MACHO):
        return FileType("macho", "Mach-O executable")
    if b"PK\x05\x06" in blob.tail(65_557):
        return FileType("zip", "ZIP archive with data before it (self-extractor or polyglot)")
    return _describe_text(head)


def _describe_pe(head: bytes) -> str:
    if len(head) < 0x40:
        return "MZ executable (truncated DOS header)"
    (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
    if pe_offset + 0x1A > len(head) or head[pe_offset : pe_offset + 4] != b"PE\x00\x00":
        return "MZ executable (no PE header)"
    (characteristics,) = struct.unpack_from("<H", head, pe_offset + 0x16)
    (magic,) = struct.unpack_from("<H", head, pe_offset + 0x18)
    bits = {0x10B: "PE32", 0x20B: "PE32+"}.get(magic, "PE")
    kind = "DLL" if characteristics & 0x2000 else "executable"
    return f"{bits} {kind}"


def _describe_zip(blob: Blob) -> FileType:
    import zipfile

    try:
        with zipfile.ZipFile(blob.open()) as archive:
            names = set(archive.namelist())
    except Exception:
        return FileType("zip", "ZIP archive (damaged central directory)")
    if "[content_types].xml" in {name.lower() for name in names}:  # OPC part names ignore case
        app = next(
            (
                label
                for prefix, label in (("word/", "Word"), ("xl/", "Excel"), ("ppt/", "PowerPoint"))
                if any(n.startswith(prefix) for n in names)
            ),
            "Office",
        )
        macro = any(n.lower().endswith("vbaproject.bin") for n in names)
        return FileType("ooxml", f"Office Open XML ({app}{', macro-enabled' if macro else ''})")
    if "META-INF/MANIFEST.MF" in names:
        return FileType("zip", "Java archive (JAR)")
    return FileType("zip", "ZIP archive")


def _describe_disc(head: bytes) -> FileType | None:
    markers = {head[offset + 1 : offset + 6] for offset in range(0x8000, min(len(head), 0xA000), 0x800)}
    if b"NSR02" in markers or b"NSR03" in markers:
        return FileType("iso", "UDF disc image" + (" (with ISO 9660 bridge)" if b"CD001" in markers else ""))
    if b"CD001" in markers:
        return FileType("iso", "ISO 9660 disc image")
    return None


def _describe_text(head: bytes) -> FileType:
    sample = head[:4096]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return FileType("text", "UTF-16 text")
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as err:
        # A multi-byte character cut at the end of the sample is still text.
        text = sample[: err.start].decode("utf-8") if err.start > len(sample) - 4 else ""
    if not text or sum(ch.isprintable() or ch in "\r\n\t" for ch in text) < 0.95 * len(text):
        return FileType("data", "unidentified binary data")
    lowered = text.lstrip("\ufeff \r\n\t").lower()
    if lowered.startswith(("<!doctype html", "<html", "<hta:")) or "<script" in lowered[:1024]:
        return FileType("html", "HTML document")
    if lowered.startswith("<?xml"):
        return FileType("xml", "XML document")
    return FileType("text", "text")
