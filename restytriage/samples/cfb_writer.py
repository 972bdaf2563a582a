"""Writers for OLE compound files (MS-CFB v3), VBA projects (MS-OVBA) and Word 97-2003 documents.

Used to build inert Office samples in code: nothing here runs, and no p-code is written (Office
recompiles VBA from source; p-code-only tricks such as VBA stomping are covered by public files).

- compound files themselves come from `restytriage.cfb.build_cfb` (analysis uses it too).
- `compress_vba(data)`: MS-OVBA 2.4.1 compression (LZ77 chunks of 4096 bytes).
- `build_vba_project(modules, ...)`: the `PROJECT`, `PROJECTwm`, `VBA/dir`, `VBA/_VBA_PROJECT` and
  module streams of a VBA project (paths relative to the project storage, e.g. Word's "Macros").
- `build_vba_project_bin(modules)`: the vbaProject.bin part of a macro-enabled OOXML file.
- `build_ole10native(...)`, `build_word_document(...)`: an OLE Package payload, and a Word binary
  document or template (FIB with fDot, SummaryInformation metadata, Macros storage, ObjectPool,
  optional RC4 encryption as Word 97/2000 writes it).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from restytriage.cfb import MINI_CUTOFF, build_cfb

CLSID_WORD_DOCUMENT = "00020906-0000-0000-C000-000000000046"
CLSID_EXCEL_WORKBOOK = "00020820-0000-0000-C000-000000000046"
CLSID_PACKAGE = "0003000C-0000-0000-C000-000000000046"

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


# --- MS-OVBA compression (2.4.1) ------------------------------------------------------------------

_CHUNK = 4096


def _copy_token_bits(position: int) -> int:
    """Bits of a CopyToken's offset at `position` bytes into the decompressed chunk (min 4)."""
    return max((position - 1).bit_length(), 4)


def _compress_chunk(chunk: bytes) -> bytes:
    out = bytearray()
    position = 0
    heads: dict[bytes, list[int]] = {}  # 3-byte prefix -> earlier positions in this chunk
    while position < len(chunk):
        flags = 0
        tokens = bytearray()
        for bit in range(8):
            if position >= len(chunk):
                break
            offset_bits = _copy_token_bits(position) if position else 4
            max_length = (0xFFFF >> offset_bits) + 3
            best_length, best_offset = 0, 0
            for start in reversed(heads.get(chunk[position : position + 3], ())):
                length = 0
                limit = min(max_length, len(chunk) - position)
                while length < limit and chunk[start + length] == chunk[position + length]:
                    length += 1
                if length > best_length:
                    best_length, best_offset = length, position - start
                    if length == limit:
                        break
            if best_length >= 3:
                token = ((best_offset - 1) << (16 - offset_bits)) | (best_length - 3)
                tokens += struct.pack("<H", token)
                flags |= 1 << bit
                step = best_length
            else:
                tokens.append(chunk[position])
                step = 1
            for index in range(position, position + step):
                heads.setdefault(chunk[index : index + 3], []).append(index)
            position += step
        out.append(flags)
        out += tokens
    return bytes(out)


def compress_vba(data: bytes) -> bytes:
    """MS-OVBA CompressedContainer: signature 0x01, then compressed (or raw 4096-byte) chunks."""
    out = bytearray(b"\x01")
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        packed = _compress_chunk(chunk)
        if len(packed) > _CHUNK and len(chunk) == _CHUNK:
            out += struct.pack("<H", 0x3000 | (_CHUNK - 1)) + chunk  # stored raw: flag bit clear
        else:
            out += struct.pack("<H", 0xB000 | (len(packed) + 2 - 3)) + packed
    return bytes(out)


# --- MS-OVBA project ------------------------------------------------------------------------------

ModuleKind = Literal["document", "procedural"]
DOCUMENT_MODULES = {"word": ("ThisDocument",), "excel": ("ThisWorkbook", "Sheet1")}
_DOCUMENT_BASE = {
    "word": '"1Normal.ThisDocument"',
    "excel": '"0{00020820-0000-0000-C000-000000000046}"',
}
_REFERENCES = (
    (
        "stdole",
        "*\\G{00020430-0000-0000-C000-000000000046}#2.0#0#C:\\Windows\\System32\\stdole2.tlb#OLE Automation",
    ),
    (
        "Office",
        "*\\G{2DF8D04C-5BFA-101B-BDE5-00AA0044DE52}#2.0#0#C:\\Program Files\\Common Files\\Microsoft Shared"
        "\\OFFICE16\\MSO.DLL#Microsoft Office 16.0 Object Library",
    ),
)


def module_kind(name: str, host: str) -> ModuleKind:
    return "document" if name in DOCUMENT_MODULES.get(host, ()) else "procedural"


def module_source(name: str, code: str, host: str = "word", template_derived: bool = True) -> str:
    """The module text as stored (and as olevba returns it): Attribute lines, then `code`, CRLF."""
    lines = [f'Attribute VB_Name = "{name}"']
    if module_kind(name, host) == "document":
        lines += [
            f"Attribute VB_Base = {_DOCUMENT_BASE[host]}",
            "Attribute VB_GlobalNameSpace = False",
            "Attribute VB_Creatable = False",
            "Attribute VB_PredeclaredId = True",
            "Attribute VB_Exposed = True",
            f"Attribute VB_TemplateDerived = {template_derived}",
            "Attribute VB_Customizable = True",
        ]
    body = code.replace("\r\n", "\n").strip("\n")
    return "\r\n".join(lines + (body.split("\n") if body else [])) + "\r\n"


def _record(record_id: int, payload: bytes) -> bytes:
    return struct.pack("<HI", record_id, len(payload)) + payload


def _text_record(record_id: int, unicode_id: int, text: str, codepage: str) -> bytes:
    return _record(record_id, text.encode(codepage)) + _record(unicode_id, text.encode("utf-16-le"))


def _dir_stream(modules: Sequence[tuple[str, ModuleKind]], project_name: str, codepage: int) -> bytes:
    codec = f"cp{codepage}"
    out = bytearray()
    out += _record(0x0001, struct.pack("<I", 1))  # PROJECTSYSKIND: 32-bit Windows
    out += _record(0x004A, struct.pack("<I", 3))  # PROJECTCOMPATVERSION
    out += _record(0x0002, struct.pack("<I", 0x409))  # PROJECTLCID
    out += _record(0x0014, struct.pack("<I", 0x409))  # PROJECTLCIDINVOKE
    out += _record(0x0003, struct.pack("<H", codepage))  # PROJECTCODEPAGE
    out += _record(0x0004, project_name.encode(codec))  # PROJECTNAME
    out += _text_record(0x0005, 0x0040, "", codec)  # PROJECTDOCSTRING
    out += _text_record(0x0006, 0x003D, "", codec)  # PROJECTHELPFILEPATH
    out += _record(0x0007, struct.pack("<I", 0))  # PROJECTHELPCONTEXT
    out += _record(0x0008, struct.pack("<I", 0))  # PROJECTLIBFLAGS
    out += struct.pack("<HIIH", 0x0009, 4, 0x5EA46D95, 0x000B)  # PROJECTVERSION (size field is reserved)
    out += _text_record(0x000C, 0x003C, "", codec)  # PROJECTCONSTANTS
    for ref_name, libid in _REFERENCES:
        out += _text_record(0x0016, 0x003E, ref_name, codec)  # REFERENCENAME
        registered = struct.pack("<I", len(libid)) + libid.encode(codec) + struct.pack("<IH", 0, 0)
        out += _record(0x000D, registered)  # REFERENCEREGISTERED
    out += _record(0x000F, struct.pack("<H", len(modules)))  # PROJECTMODULES
    out += _record(0x0013, struct.pack("<H", 0xFFFF))  # PROJECTCOOKIE
    for name, kind in modules:
        out += _record(0x0019, name.encode(codec))  # MODULENAME
        out += _record(0x0047, name.encode("utf-16-le"))  # MODULENAMEUNICODE
        out += _text_record(0x001A, 0x0032, name, codec)  # MODULESTREAMNAME
        out += _text_record(0x001C, 0x0048, "", codec)  # MODULEDOCSTRING
        out += _record(0x0031, struct.pack("<I", 0))  # MODULEOFFSET: no p-code before the source
        out += _record(0x001E, struct.pack("<I", 0))  # MODULEHELPCONTEXT
        out += _record(0x002C, struct.pack("<H", 0xFFFF))  # MODULECOOKIE
        out += _record(0x0022 if kind == "document" else 0x0021, b"")  # MODULETYPE
        out += _record(0x002B, b"")  # module terminator
    out += _record(0x0010, b"")  # dir terminator
    return bytes(out)


def _ovba_encrypt(data: bytes, project_id: str, seed: int) -> str:
    """MS-OVBA 2.4.3 data encryption (CMG, DPB and GC values of the PROJECT stream)."""
    project_key = sum(project_id.encode("ascii")) & 0xFF
    out = bytearray([seed, seed ^ 2, seed ^ project_key])
    unencrypted, encrypted1, encrypted2 = project_key, seed ^ project_key, seed ^ 2
    for byte in bytes((seed & 6) // 2) + struct.pack("<I", len(data)) + data:
        value = byte ^ ((encrypted2 + unencrypted) & 0xFF)
        out.append(value)
        encrypted2, encrypted1, unencrypted = encrypted1, value, byte
    return out.hex().upper()


def _project_stream(
    modules: Sequence[tuple[str, ModuleKind]], project_name: str, project_id: str, codepage: int
) -> bytes:
    lines = [f'ID="{project_id}"']
    for name, kind in modules:
        lines.append(f"Document={name}/&H00000000" if kind == "document" else f"Module={name}")
    lines += [
        f'Name="{project_name}"',
        'HelpContextID="0"',
        'VersionCompatible32="393222000"',
        f'CMG="{_ovba_encrypt(bytes(4), project_id, 0x31)}"',  # protection state: unprotected
        f'DPB="{_ovba_encrypt(bytes(1), project_id, 0x52)}"',  # no password
        f'GC="{_ovba_encrypt(bytes([0xFF]), project_id, 0x73)}"',  # project visible
        "",
        "[Host Extender Info]",
        "&H00000001={3832D640-CF90-11CF-8E43-00A0C911005A};VBE;&H00000000",
        "",
        "[Workspace]",
        *(f"{name}=0, 0, 0, 0, C" for name, _ in modules),
    ]
    return ("\r\n".join(lines) + "\r\n").encode(f"cp{codepage}")


def build_vba_project(
    modules: Mapping[str, str],
    *,
    host: str = "word",
    project_name: str = "Project",
    codepage: int = 1252,
    template_derived: bool = True,
) -> dict[str, bytes]:
    """The streams of a VBA project storage, keyed by path inside it ("PROJECT", "VBA/dir", ...).

    `modules` maps module names to code without Attribute lines (see `module_source` for the exact
    text olevba will return). A host's document module (ThisDocument, ThisWorkbook) is always there.
    """
    sources = dict(modules)
    for name in DOCUMENT_MODULES.get(host, ())[:1]:
        sources.setdefault(name, "")
    ordered = sorted(sources, key=lambda n: (module_kind(n, host) != "document", n))
    kinds = [(name, module_kind(name, host)) for name in ordered]
    codec = f"cp{codepage}"
    project_id = (
        "{"
        + str(
            uuid.UUID(
                bytes=hashlib.md5(
                    project_name.encode() + b"".join(sources[n].encode(codec, "replace") for n in ordered)
                ).digest()
            )
        ).upper()
        + "}"
    )
    streams = {
        "PROJECT": _project_stream(kinds, project_name, project_id, codepage),
        "PROJECTwm": b"".join(
            n.encode(codec) + b"\x00" + n.encode("utf-16-le") + b"\x00\x00" for n in ordered
        )
        + b"\x00\x00",
        # 0x61CC, version 0xFFFF and no performance cache: the form MS-OVBA asks writers to use.
        "VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x00\x00",
        "VBA/dir": compress_vba(_dir_stream(kinds, project_name, codepage)),
    }
    for name in ordered:
        text = module_source(name, sources[name], host, template_derived)
        streams[f"VBA/{name}"] = compress_vba(text.encode(codec))
    return streams


def build_vba_project_bin(modules: Mapping[str, str], *, host: str = "word", codepage: int = 1252) -> bytes:
    """A vbaProject.bin part (the VBA storage of an OOXML file as a compound file of its own)."""
    return build_cfb(build_vba_project(modules, host=host, codepage=codepage))


# --- property sets (MS-OLEPS), CompObj and OLE Package streams ------------------------------------

_FMTID_SUMMARY = "F29F85E0-4FF9-1068-AB91-08002B27B3D9"
_FMTID_DOC_SUMMARY = "D5CDD502-2E9C-101B-9397-08002B2CF9AE"
_VT_I2, _VT_I4, _VT_LPSTR, _VT_FILETIME = 0x0002, 0x0003, 0x001E, 0x0040
PropertyValue = int | str | datetime


def filetime(moment: datetime) -> int:
    """100-ns intervals since 1601-01-01 UTC (naive datetimes are taken as UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    delta = aware - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def _typed_value(value: PropertyValue, codepage: int, wide_int: bool) -> bytes:
    if isinstance(value, datetime):
        return struct.pack("<HHQ", _VT_FILETIME, 0, filetime(value))
    if isinstance(value, str):
        text = value.encode(f"cp{codepage}") + b"\x00"
        return struct.pack("<HHI", _VT_LPSTR, 0, len(text)) + text.ljust(-(-len(text) // 4) * 4, b"\x00")
    if wide_int:
        return struct.pack("<HHi", _VT_I4, 0, value)
    return struct.pack("<HHhH", _VT_I2, 0, value, 0)


def property_set_stream(fmtid: str, properties: Mapping[int, PropertyValue], codepage: int) -> bytes:
    """A PropertySetStream with one property set; property 1 (the code page) is written first."""
    values = {1: codepage, **{pid: v for pid, v in properties.items() if pid != 1}}
    blobs = [(pid, _typed_value(value, codepage, wide_int=pid != 1)) for pid, value in values.items()]
    offset = 8 + 8 * len(blobs)
    table, body = bytearray(), bytearray()
    for pid, blob in blobs:
        table += struct.pack("<II", pid, offset + len(body))
        body += blob
    property_set = struct.pack("<II", 8 + len(table) + len(body), len(blobs)) + table + body
    header = struct.pack("<HHI16sI", 0xFFFE, 0, 0x00020006, bytes(16), 1)
    return header + uuid.UUID(fmtid).bytes_le + struct.pack("<I", 48) + property_set


def _length_prefixed(text: str) -> bytes:
    encoded = text.encode("cp1252") + b"\x00"
    return struct.pack("<I", len(encoded)) + encoded


def compobj_stream(clsid: str, user_type: str, clipboard_format: str, prog_id: str) -> bytes:
    """MS-OLEDS 2.3.8 CompObjStream: the class, its display name and clipboard format."""
    return (
        struct.pack("<IIi", 0xFFFE0001, 0x00000A03, -1)
        + uuid.UUID(clsid).bytes_le
        + _length_prefixed(user_type)
        + _length_prefixed(clipboard_format)
        + _length_prefixed(prog_id)
        + struct.pack("<IIII", 0x71B239F4, 0, 0, 0)
    )


def build_ole10native(filename: str, data: bytes, source_path: str, temp_path: str) -> bytes:
    """The \\x01Ole10Native stream of an OLE Package object (MS-OLEDS 2.3.6) embedding `data`."""
    temp = temp_path.encode("cp1252") + b"\x00"
    body = (
        struct.pack("<H", 2)
        + filename.encode("cp1252")
        + b"\x00"
        + source_path.encode("cp1252")
        + b"\x00"
        + struct.pack("<HHI", 0, 3, len(temp))
        + temp
        + struct.pack("<I", len(data))
        + data
    )
    return struct.pack("<I", len(body)) + body


@dataclass(frozen=True)
class EmbeddedFile:
    """A file embedded in a document as an OLE Package (what "Insert > Object > Package" makes)."""

    filename: str
    data: bytes
    source_path: str
    object_id: int = 1577691246  # names the ObjectPool storage "_<id>"

    def streams(self) -> dict[str, bytes]:
        temp = "C:\\Users\\user\\AppData\\Local\\Temp\\" + self.filename
        return {
            "\x01Ole10Native": build_ole10native(self.filename, self.data, self.source_path, temp),
            "\x01CompObj": compobj_stream(CLSID_PACKAGE, "OLE Package", "", "Package"),
            "\x03ObjInfo": b"\x00\x00\x03\x00\x0d\x00",
        }


# --- Word 97-2003 binary document (MS-DOC) --------------------------------------------------------

_FIB_SIZE = 32 + 2 + 28 + 2 + 88 + 2 + 93 * 8 + 2  # FibBase, FibRgW97, FibRgLw97, FibRgFcLcb97, cswNew
_TEXT_OFFSET = 0x400
_FC_DOP, _FC_CLX = 31, 33  # indices of fcDop and fcClx in FibRgFcLcb97
_DOP97_SIZE = 500
_LANGUAGE_BY_CODEPAGE = {932: 0x0411, 936: 0x0804, 949: 0x0412, 950: 0x0404, 1251: 0x0419}
_RC4_HEADER_SIZE = 52  # EncryptionVersionInfo 1.1 + salt + verifier + verifier hash


def _fib(
    text_chars: int, codepage: int, template: bool, table_layout: tuple[int, int, int, int], encrypted: bool
) -> bytes:
    """A Word 97 FIB (nFib 0x00C1) with the flags, language and table locations a reader uses."""
    lid = _LANGUAGE_BY_CODEPAGE.get(codepage, 0x0409)
    flags = (
        (1 if template else 0)  # fDot
        | (1 << 8 if encrypted else 0)  # fEncrypted
        | 1 << 9  # fWhichTblStm: the table stream is "1Table"
        | 1 << 12  # fExtChar
        | (1 << 14 if lid != 0x0409 else 0)  # fFarEast
    )
    key_size = _RC4_HEADER_SIZE if encrypted else 0  # lKey: size of the encryption header
    base = struct.pack(
        "<HHHHHHHIBBHHII", 0xA5EC, 0x00C1, 0, lid, 0, flags, 0x00BF, key_size, 0, 0, 0, 0, 0, 0
    )
    rg_w = struct.pack("<H", 14) + bytes(26) + struct.pack("<H", lid)  # lidFE last
    rg_lw = [0] * 22
    rg_lw[0] = _TEXT_OFFSET + text_chars * 2  # cbMac
    rg_lw[3] = text_chars  # ccpText
    rg_fclcb = [0] * (93 * 2)
    fc_dop, lcb_dop, fc_clx, lcb_clx = table_layout
    rg_fclcb[_FC_DOP * 2 : _FC_DOP * 2 + 2] = [fc_dop, lcb_dop]
    rg_fclcb[_FC_CLX * 2 : _FC_CLX * 2 + 2] = [fc_clx, lcb_clx]
    fib = (
        base
        + rg_w
        + struct.pack("<H22I", 22, *rg_lw)
        + struct.pack("<H186I", 93, *rg_fclcb)
        + struct.pack("<H", 0)
    )
    assert len(fib) == _FIB_SIZE
    return fib


def _word_streams(text: str, codepage: int, template: bool, encrypted: bool) -> dict[str, bytes]:
    """WordDocument and 1Table: the FIB, the text as one Unicode piece, a Clx and a blank Dop."""
    body = text.replace("\r\n", "\r").replace("\n", "\r").rstrip("\r") + "\r"
    encoded = body.encode("utf-16-le")
    table_start = _RC4_HEADER_SIZE if encrypted else 0  # the encryption header heads the table
    dop = bytes(_DOP97_SIZE)
    fc_clx = table_start + len(dop)
    plc_pcd = struct.pack("<II", 0, len(body)) + struct.pack("<HIH", 0, _TEXT_OFFSET, 0)  # one Pcd
    clx = b"\x02" + struct.pack("<I", len(plc_pcd)) + plc_pcd
    fib = _fib(len(body), codepage, template, (table_start, len(dop), fc_clx, len(clx)), encrypted)
    word = (fib.ljust(_TEXT_OFFSET, b"\x00") + encoded).ljust(MINI_CUTOFF, b"\x00")
    return {"WordDocument": word, "1Table": bytes(table_start) + dop + clx}


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) & 0xFF
        state[i], state[j] = state[j], state[i]
    out = bytearray(len(data))
    i = j = 0
    for index, byte in enumerate(data):
        i = (i + 1) & 0xFF
        j = (j + state[i]) & 0xFF
        state[i], state[j] = state[j], state[i]
        out[index] = byte ^ state[(state[i] + state[j]) & 0xFF]
    return bytes(out)


def _rc4_block_key(password: str, salt: bytes, block: int) -> bytes:
    """MS-OFFCRYPTO 2.3.6.2: the Office 97/2000 RC4 key of one 512-byte block."""
    truncated = hashlib.md5(password.encode("utf-16-le")).digest()[:5]
    intermediate = hashlib.md5((truncated + salt) * 16).digest()[:5]
    return hashlib.md5(intermediate + struct.pack("<I", block)).digest()


def _rc4_encrypt(data: bytes, password: str, salt: bytes) -> bytes:
    return b"".join(
        _rc4(_rc4_block_key(password, salt, index // 512), data[index : index + 512])
        for index in range(0, len(data), 512)
    )


def _encrypt_word(streams: dict[str, bytes], password: str) -> dict[str, bytes]:
    """Office 97/2000 RC4 encryption of a Word document: every stream of the text and tables is
    encrypted, except the first 68 bytes of WordDocument (FibBase and more) and the encryption
    header at the start of the table stream; Macros and ObjectPool stay in clear, as in Word."""
    salt = hashlib.md5(b"restytriage salt " + password.encode()).digest()
    verifier = hashlib.md5(b"restytriage verifier").digest()
    cipher = _rc4(_rc4_block_key(password, salt, 0), verifier + hashlib.md5(verifier).digest())
    header = struct.pack("<HH", 1, 1) + salt + cipher
    word = streams["WordDocument"]
    encrypted = dict(streams)
    encrypted["WordDocument"] = word[:68] + _rc4_encrypt(word, password, salt)[68:]
    encrypted["1Table"] = header + _rc4_encrypt(streams["1Table"], password, salt)[len(header) :]
    return encrypted


def build_word_document(
    modules: Mapping[str, str] | None = None,
    *,
    template: bool = False,
    codepage: int = 932,
    text: str = "",
    author: str = "",
    last_saved_by: str = "",
    title: str = "",
    company: str = "",
    attached_template: str = "Normal.dotm",
    created: datetime = datetime(2022, 4, 12, 1, 23, tzinfo=UTC),
    saved: datetime = datetime(2022, 4, 14, 8, 5, tzinfo=UTC),
    embedded: Sequence[EmbeddedFile] = (),
    password: str | None = None,
) -> bytes:
    """A Word 97-2003 document, or a template (.dot) when `template` (FIB fDot set, the VBA project
    named "TemplateProject" as Word names template projects).

    `modules` become the Macros storage (see `build_vba_project`); `embedded` files become OLE
    Package objects in the ObjectPool; `password` encrypts the text and tables with RC4.
    """
    summary = {
        2: title,
        4: author,
        7: attached_template,
        8: last_saved_by or author,
        9: "2",
        12: created,
        13: saved,
        14: 1,
        15: len(text.split()),
        16: len(text),
        18: "Microsoft Office Word",
        19: 1 if password else 0,  # security: password protected
    }
    streams = _word_streams(text, codepage, template, encrypted=password is not None)
    if password is not None:
        streams = _encrypt_word(streams, password)
    streams["\x01CompObj"] = compobj_stream(
        CLSID_WORD_DOCUMENT, "Microsoft Word 97-2003 Document", "MSWordDoc", "Word.Document.8"
    )
    streams["\x05SummaryInformation"] = property_set_stream(
        _FMTID_SUMMARY, {pid: v for pid, v in summary.items() if v != ""}, codepage
    )
    streams["\x05DocumentSummaryInformation"] = property_set_stream(
        _FMTID_DOC_SUMMARY, {0x0F: company, 0x17: 0x100000} if company else {0x17: 0x100000}, codepage
    )
    clsids = {"": CLSID_WORD_DOCUMENT}
    if modules is not None:
        project = build_vba_project(
            modules,
            host="word",
            project_name="TemplateProject" if template else "Project",
            codepage=codepage,
            template_derived=not template,
        )
        streams.update({f"Macros/{path}": data for path, data in project.items()})
    for item in embedded:
        storage = f"ObjectPool/_{item.object_id}"
        clsids[storage] = CLSID_PACKAGE
        streams.update({f"{storage}/{name}": data for name, data in item.streams().items()})
    return build_cfb(streams, clsids)
