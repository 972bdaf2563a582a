"""OLE compound files: Word, Excel and PowerPoint 97-2003 documents and templates, vbaProject.bin,
and the OLE wrapper of encrypted OOXML packages.

Reads what oletools reads: document metadata (author, last saved by, code page, times), the Word FIB
(fDot: template, fEncrypted) and the Excel globals (TEMPLATE, FILEPASS, sheets), encryption
(msoffcrypto-tool with VelvetSweatshop and the configured passwords; the decrypted file becomes a
child), embedded objects (OLE Package payloads, embedded OLE/OOXML documents: children), DDE fields,
Flash objects, and the macros (see `vba.py`). A template whose auto-exec macro writes, downloads or
runs code is T1137.001 persistence material on its own.
"""

from __future__ import annotations

import io
import itertools
import locale
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import Blob
from restytriage.vba import MacroSummary, analyze_macros, quiet_oletools

NAME = "ole"
TYPES = frozenset({"ole"})

DEFAULT_PASSWORD = "VelvetSweatshop"  # Excel opens files encrypted with it without asking
MAX_LISTED_ENTRIES = 400
MAX_FLASH_SCAN = 32 << 20  # streams larger than this are not searched for SWF headers
FAT_SLACK_SECTORS = 8  # FAT sectors a header may declare beyond what the file's size needs...
FAT_SECTORS_CHEAP = 2048  # ...or this many in any case (a truncated document), read in under a second
RISKY_PACKAGE_EXTENSIONS = frozenset(
    [
        "exe",
        "dll",
        "scr",
        "com",
        "pif",
        "cpl",
        "lnk",
        "js",
        "jse",
        "vbs",
        "vbe",
        "wsf",
        "wsh",
        "hta",
        "bat",
        "cmd",
        "ps1",
        "msi",
        "jar",
        "reg",
        "url",
        "inf",
        "sct",
        "chm",
        "iso",
    ]
)
_DOCUMENT_STREAMS = {
    "WordDocument": "word",
    "Workbook": "excel",
    "Book": "excel",
    "PowerPoint Document": "powerpoint",
}
_EMBEDDED_EXTENSIONS = {"word": ".doc", "excel": ".xls", "powerpoint": ".ppt"}
_MSI_CLSID = "000C1084-0000-0000-C000-000000000046"
_SUMMARY = {
    2: "title", 3: "subject", 4: "author", 5: "keywords", 6: "comments", 7: "template", 8: "last_saved_by",
    9: "revision_number", 11: "last_printed", 12: "create_time", 13: "last_saved_time", 14: "num_pages",
    15: "num_words", 16: "num_chars", 18: "creating_application", 19: "security",
}  # fmt: skip
_DOC_SUMMARY = {2: "category", 14: "manager", 15: "company"}
_TIMES = frozenset({11, 12, 13})


def analyze(item: Item, ctx: Context) -> Analysis:
    import olefile

    out = Analysis(NAME)
    overstated = _overstated_fat(item.blob.head, item.blob.size)
    if overstated:
        out.flag("ole.malformed", f"not opened: {overstated}")
        return out
    path, temporary = _on_disk(item, ctx)
    try:
        try:
            ole = olefile.OleFileIO(str(path), raise_defects=olefile.DEFECT_FATAL)
        except Exception as err:  # olefile raises many types on hostile headers
            out.flag("ole.malformed", f"olefile cannot open it: {type(err).__name__}: {err}")
            return out
        loops, cuts = _fat_chain_loops(ole)
        if loops:
            out.flag("ole.malformed", f"FAT sector chains that loop: {', '.join(loops[:5])}")
            ole.close()
            repaired = _cut_chains(path, ole.sectorsize, cuts, ctx)
            if temporary:
                path.unlink(missing_ok=True)
            path, temporary = repaired, True
            out.metadata["read_from"] = "a copy whose looping chains end where they loop"
            ole = olefile.OleFileIO(str(path), raise_defects=olefile.DEFECT_FATAL)
            if any(ole.fat[sector] != olefile.ENDOFCHAIN for sector in cuts):
                ole.close()  # the copy is not what was meant: reading streams could still go round
                out.metadata["read_from"] = "nothing: its looping chains could not be cut"
                return out
        with ole, quiet_oletools():
            _analyze(item, ctx, out, ole, path)
    finally:
        if temporary:
            path.unlink(missing_ok=True)
    return out


def _overstated_fat(head: bytes, size: int) -> str:
    """Why the header's FAT cannot be this file's, or "".

    olefile grows the FAT by concatenation, once per FAT sector the header declares, following a
    DIFAT chain that may name the same sector each time: 12,800 declared FAT sectors in a 1.5 KiB
    file take it 16 s, a million would take days. A file needs one FAT sector per 128 (or 1,024)
    sectors it holds; writers round up a little, never by more than a few sectors. Up to a couple of
    thousand (a truncated large document) cost olefile well under a second and are let through.
    """
    if len(head) < 0x30:
        return ""  # olefile refuses it at once
    (shift,) = struct.unpack_from("<H", head, 0x1E)
    sector = 1 << shift if 7 <= shift <= 16 else 512
    (declared,) = struct.unpack_from("<I", head, 0x2C)
    needed = -(-(size // sector) // (sector // 4))
    if declared <= max(needed + FAT_SLACK_SECTORS, FAT_SECTORS_CHEAP):
        return ""
    return f"the header declares {declared:,} FAT sectors where a {size:,}-byte file needs {needed:,}"


def _on_disk(item: Item, ctx: Context) -> tuple[Path, bool]:
    """A path to the bytes: pcodedmp, XLM extraction and PowerPoint parsing only read files."""
    if item.blob.data is None and item.blob.path is not None:
        return item.blob.path, False
    path = ctx.budget.new_temp_path(ctx.temp_dir)
    path.write_bytes(item.blob.read())
    return path, True


def _analyze(item: Item, ctx: Context, out: Analysis, ole: Any, path: Path) -> None:
    streams, storages, revisited = _inventory(ole)
    kind = _kind(ole, streams)
    out.metadata["kind"] = kind
    out.metadata["root_clsid"] = ole.root.clsid or ""
    out.metadata["entries"] = [{"path": p, "size": s} for p, s in list(streams.items())[:MAX_LISTED_ENTRIES]]
    if len(streams) > MAX_LISTED_ENTRIES:
        out.metadata["entries_not_listed"] = len(streams) - MAX_LISTED_ENTRIES
    if ole.parsing_issues:
        issues = sorted({message for _, message in ole.parsing_issues})
        out.flag("ole.malformed", "; ".join(issues[:5]), details={"issues": issues})
    if revisited:
        out.flag("ole.malformed", f"the storage tree loops back to entries it holds: {revisited[:5]}")
    _properties(ole, streams, out)
    template: list[str] = []
    if kind == "word":
        _word_fib(ole, out, template)
    elif kind == "excel":
        _excel_globals(ole, out, template)
    if "template" in item.labels:
        template.append("labelled a template by its container")

    decrypted = _decrypt(item, path, ctx, out)
    if kind == "encrypted-ooxml":
        return
    exclude = _embedded(ole, streams, storages, path, kind, ctx, out)
    summary = MacroSummary()
    if decrypted:
        out.metadata["macros"] = {"note": "analysed in the decrypted child object"}
    else:
        try:
            xlm_sheets = [
                sheet["name"]
                for sheet in out.metadata.get("workbook", {}).get("sheets", [])
                if sheet["type"] == "macro sheet (XLM)"
            ]
            summary = analyze_macros(path, out, ctx, exclude, xlm_sheets)
        except Exception as err:  # olevba raises many types on damaged VBA projects
            out.metadata["macros_error"] = f"{type(err).__name__}: {err}"[:500]
            if any(p.upper().endswith("VBA/DIR") for p in streams):
                out.flag("ole.vba_unreadable", f"olevba failed: {type(err).__name__}: {err}"[:300])
    if "TemplateProject" in summary.project_names:
        template.append("VBA project named TemplateProject")
    _judge_template(template, summary, out)
    if kind == "word":
        _dde(ole, out)
    _flash(ole, streams, out)
    out.metadata["indicators"] = {
        "encrypted": "encryption" in out.metadata,
        "vba": summary.modules > 0,
        "xlm": bool(out.metadata.get("macros", {}).get("xlm")),
        "object_pool": any(p.split("/", 1)[0] == "ObjectPool" for p in storages),
        "flash": out.metadata.get("flash", 0),
    }


def _fat_chain_loops(ole: Any) -> tuple[list[str], set[int]]:
    """The FAT chains that come back on themselves, and the sectors whose FAT entries close them.

    olefile follows a chain round and round up to the size its directory entry declares (4 GiB in a
    30 KiB file, or more), and olevba reads every stream, orphans included: one looping chain is a
    hang and a memory bomb. Chains start from the header (directory, MiniFAT) and from every raw
    directory entry, referenced or not. Each sector is walked once whatever the number of chains.
    """
    import olefile

    fat = ole.fat
    starts = [("directory", ole.first_dir_sector), ("MiniFAT", ole.first_mini_fat_sector)]
    directory = ole.directory_fp.getvalue() if ole.directory_fp is not None else b""
    for at in range(0, len(directory) - 127, 128):
        kind, start, size = directory[at + 66], *struct.unpack_from("<II", directory, at + 116)
        if kind == olefile.STGTY_ROOT or (kind == olefile.STGTY_STREAM and size >= ole.minisectorcutoff):
            name = directory[at : at + min(64, struct.unpack_from("<H", directory, at + 64)[0])]
            starts.append((name.decode("utf-16-le", "replace").rstrip("\x00") or f"entry {at // 128}", start))
    loops_from: dict[int, bool] = {}  # sector -> whether the chain from it loops
    loops: list[str] = []
    cuts: set[int] = set()
    for name, start in starts:
        path: dict[int, None] = {}
        sector = start
        while 0 <= sector < len(fat) and sector not in loops_from and sector not in path:
            path[sector] = None
            sector = fat[sector]
        if sector in path:
            cuts.add(next(reversed(path)))
        looped = sector in path or loops_from.get(sector, False)
        loops_from.update(dict.fromkeys(path, looped))
        if looped:
            loops.append(f"{name!r} (back to sector {sector})")
    return loops, cuts


def _cut_chains(path: Path, sector_size: int, cuts: set[int], ctx: Context) -> Path:
    """A private copy of the file with an end-of-chain mark where each looping chain loops.

    The FAT's own sectors are found the way olefile finds them: the header's 109 entries up to the
    first end mark, then each DIFAT sector's, following the DIFAT chain as far as the header counts.
    """
    data = bytearray(path.read_bytes())
    per_sector = sector_size // 4

    def word(at: int) -> int:
        return struct.unpack("<I", bytes(data[at : at + 4]).ljust(4, b"\xff"))[0]

    def entries(at: int, count: int) -> list[int]:
        listed = map(word, range(at, at + 4 * count, 4))
        return list(itertools.takewhile(lambda value: value < 0xFFFFFFFE, listed))  # up to an end mark

    fat_sectors = entries(76, 109)
    difat, count = word(68), word(72)
    for _ in range(min(count, len(data) // sector_size)):
        at = (difat + 1) * sector_size
        fat_sectors += entries(at, per_sector - 1)
        difat = word(at + 4 * (per_sector - 1))
    for sector in cuts:
        index, slot = divmod(sector, per_sector)
        if index < len(fat_sectors):
            at = (fat_sectors[index] + 1) * sector_size + 4 * slot
            if at + 4 <= len(data):
                struct.pack_into("<I", data, at, 0xFFFFFFFE)
    copy = ctx.budget.new_temp_path(ctx.temp_dir)
    copy.write_bytes(data)
    return copy


def _stream(ole: Any, path: str, out: Analysis) -> BinaryIO | None:
    """A stream's content, or None when its sectors cannot be read (noted in the metadata)."""
    try:
        return ole.openstream(path)
    except Exception as err:  # olefile raises OSError, ValueError or IndexError on broken chains
        out.metadata.setdefault("unreadable_streams", {})[path] = f"{type(err).__name__}: {err}"[:200]
        return None


def _inventory(ole: Any) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Stream paths with sizes and storage paths with their CLSIDs, in olefile's listdir order, and
    the paths where the tree comes back to an entry it already holds.

    Walked with an explicit stack and each entry once: olefile's listdir recurses once per storage
    level and follows a storage that holds the root entry round and round (RecursionError).
    """
    import olefile

    streams: dict[str, int] = {}
    storages: dict[str, str] = {}
    revisited: list[str] = []
    seen = {ole.root.sid}
    pending = [("", iter(ole.root.kids))]
    while pending:
        prefix, kids = pending[-1]
        entry = next(kids, None)
        if entry is None:
            pending.pop()
        elif entry.sid in seen:
            revisited.append(prefix + entry.name)
        elif entry.entry_type == olefile.STGTY_STORAGE:
            seen.add(entry.sid)
            storages[prefix + entry.name] = entry.clsid or ""
            pending.append((f"{prefix}{entry.name}/", iter(entry.kids)))
        elif entry.entry_type == olefile.STGTY_STREAM:
            seen.add(entry.sid)
            streams[prefix + entry.name] = entry.size
    return streams, storages, revisited


def _kind(ole: Any, streams: dict[str, int]) -> str:
    if "EncryptedPackage" in streams and "EncryptionInfo" in streams:
        return "encrypted-ooxml"
    for stream, kind in _DOCUMENT_STREAMS.items():
        if stream in streams:
            return kind
    if ole.root.clsid == _MSI_CLSID:
        return "msi"
    if "__properties_version1.0" in streams:
        return "outlook-message"
    if "VBA/dir" in streams or "PROJECT" in streams:
        return "vba-project"
    return "generic"


def _properties(ole: Any, streams: dict[str, int], out: Analysis) -> None:
    """SummaryInformation and DocumentSummaryInformation (MS-OLEPS), read with a bounded parser:
    olefile's loops over vector counts taken from the file, which hostile files make endless."""
    values: dict[str, Any] = {}
    for stream, names in (
        ("\x05SummaryInformation", _SUMMARY),
        ("\x05DocumentSummaryInformation", _DOC_SUMMARY),
    ):
        content = _stream(ole, stream, out) if stream in streams else None
        if content is None:
            continue
        raw = _property_set(content.read(1 << 20))
        codepage = raw.get(1) if isinstance(raw.get(1), int) else None
        if codepage is not None:
            values.setdefault("codepage", codepage)
        for pid, name in names.items():
            if pid in raw:
                values.setdefault(name, _property_value(raw[pid], codepage, pid in _TIMES))
    properties = {k: v for k, v in values.items() if v not in (None, "")}
    codepage = properties.get("codepage")
    if isinstance(codepage, int):
        from oletools.common.codepages import get_codepage_name

        properties["codepage_name"] = get_codepage_name(codepage & 0xFFFF)
        out.facts["code page"] = f"{codepage & 0xFFFF} ({properties['codepage_name']})"
    out.metadata["properties"] = properties
    template = str(properties.get("template", ""))
    if template.lower().startswith(("http://", "https://", "file://", "\\\\")):
        out.flag("ole.remote_template", template)
        out.ioc("url" if "://" in template else "filepath", template, "attached template")
    for key, label in (
        ("author", "author"),
        ("last_saved_by", "last saved by"),
        ("create_time", "created"),
        ("last_saved_time", "last saved"),
        ("company", "company"),
        ("title", "title"),
    ):
        if key in properties:
            out.facts[label] = str(properties[key])


def _property_set(data: bytes) -> dict[int, int | bytes | str]:
    """The scalar properties of the first property set of a PropertySetStream."""
    if len(data) < 48 or data[:2] != b"\xfe\xff":
        return {}
    (start,) = struct.unpack_from("<I", data, 44)
    if start + 8 > len(data):
        return {}
    (count,) = struct.unpack_from("<I", data, start + 4)
    found: dict[int, int | bytes | str] = {}
    for index in range(min(count, (len(data) - start - 8) // 8)):
        pid, offset = struct.unpack_from("<II", data, start + 8 + index * 8)
        at = start + offset
        if at + 8 <= len(data):
            value = _scalar(data, at + 4, struct.unpack_from("<H", data, at)[0])
            if value is not None:
                found[pid] = value
    return found


def _scalar(data: bytes, at: int, vt: int) -> int | bytes | str | None:
    if vt == 0x0002:  # VT_I2
        return struct.unpack_from("<h", data, at)[0]
    if vt in (0x0003, 0x0016, 0x0013, 0x0017):  # VT_I4, VT_INT, VT_UI4, VT_UINT
        return struct.unpack_from("<i" if vt in (0x0003, 0x0016) else "<I", data, at)[0]
    if vt == 0x0040 and at + 8 <= len(data):  # VT_FILETIME
        return struct.unpack_from("<Q", data, at)[0]
    if vt in (0x001E, 0x0008):  # VT_LPSTR, VT_BSTR: size in bytes, null terminator included
        (size,) = struct.unpack_from("<I", data, at)
        return data[at + 4 : at + 4 + min(size, 4096)].split(b"\x00", 1)[0]
    if vt == 0x001F:  # VT_LPWSTR: size in characters
        (size,) = struct.unpack_from("<I", data, at)
        return data[at + 4 : at + 4 + min(size, 2048) * 2].decode("utf-16-le", "replace").split("\x00", 1)[0]
    return None


def _property_value(value: int | bytes | str, codepage: int | None, is_time: bool) -> Any:
    if isinstance(value, bytes):
        return value.decode(_codec(codepage), "replace").strip()
    if is_time and isinstance(value, int):
        if not 0 < value < 2650467743990000000:  # FILETIME of 9999-12-31
            return None
        return (datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=value // 10)).isoformat()
    return value


def _codec(codepage: int | None) -> str:
    import codecs

    name = {1200: "utf-16-le", 65001: "utf-8", 10000: "mac-roman"}.get(codepage or 0, f"cp{codepage}")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "cp1252"


def _word_fib(ole: Any, out: Analysis, template: list[str]) -> None:
    """FibBase (MS-DOC 2.5.2): template, encryption and language flags of a Word document."""
    stream = _stream(ole, "WordDocument", out)
    if stream is None:
        return
    head = stream.read(32)
    if len(head) < 32:
        out.flag("ole.malformed", f"WordDocument stream of {len(head)} bytes has no complete FIB")
        return
    ident, nfib, _, lid, _, flags, _, key = struct.unpack_from("<HHHHHHHI", head)
    fib = {
        "wIdent": f"0x{ident:04X}",
        "nFib": nfib,
        "lid": lid,
        "language": locale.windows_locale.get(lid, ""),
        "fDot": bool(flags & 0x0001),
        "fGlsy": bool(flags & 0x0002),
        "fEncrypted": bool(flags & 0x0100),
        "fWhichTblStm": (flags >> 9) & 1,
        "fReadOnlyRecommended": bool(flags & 0x0400),
        "fFarEast": bool(flags & 0x4000),
        "fObfuscated": bool(flags & 0x8000),
        "lKey": key,
    }
    out.metadata["fib"] = fib
    if ident != 0xA5EC:
        out.flag("ole.malformed", f"WordDocument stream does not start with a FIB (wIdent 0x{ident:04X})")
        return
    if fib["fDot"]:
        template.append("Word template (FIB fDot)")
    if fib["language"]:
        out.facts["language"] = f"{fib['language']} (FIB lid 0x{lid:04X})"


def _excel_globals(ole: Any, out: Analysis, template: list[str]) -> None:
    """BIFF records of the workbook globals: TEMPLATE, FILEPASS and the sheet list (BOUNDSHEET)."""
    name = "Workbook" if ole.exists("Workbook") else "Book"
    stream = _stream(ole, name, out)
    if stream is None:
        return
    data = stream.read(4 << 20)
    sheets, offset, encrypted = [], 0, False
    while offset + 4 <= len(data):
        record, size = struct.unpack_from("<HH", data, offset)
        body = data[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if record == 0x000A:  # EOF of the globals substream
            break
        if record == 0x0060:
            template.append("Excel template (TEMPLATE record)")
        elif record == 0x002F:
            encrypted = True  # FILEPASS: what follows is encrypted
            break
        elif record == 0x0085 and len(body) >= 8:
            state, sheet_type, length, high = body[4] & 3, body[5], body[6], body[7] & 1
            raw = body[8 : 8 + length * (2 if high else 1)]
            sheets.append(
                {
                    "name": raw.decode("utf-16-le" if high else "latin-1", "replace"),
                    "type": {0: "worksheet", 1: "macro sheet (XLM)", 2: "chart", 6: "VBA module"}.get(
                        sheet_type, sheet_type
                    ),
                    "visibility": {0: "visible", 1: "hidden", 2: "very hidden"}.get(state, state),
                }
            )
    out.metadata["workbook"] = {"sheets": sheets, "filepass": encrypted}
    hidden = [f"{s['name']} ({s['visibility']} {s['type']})" for s in sheets if s["visibility"] != "visible"]
    if hidden:
        out.facts["hidden sheets"] = ", ".join(hidden)


def _decrypt(item: Item, path: Path, ctx: Context, out: Analysis) -> bool:
    """Try the default and configured passwords; a decrypted file becomes a child. True if it did."""
    import msoffcrypto

    with open(path, "rb") as handle:
        try:
            office = msoffcrypto.OfficeFile(handle)
            if not office.is_encrypted():
                return False
        except Exception as err:  # unknown formats (MSI, Excel 5) make it raise
            out.metadata["encryption_check"] = f"{type(err).__name__}: {err}"[:300]
            return False
        info: dict[str, str] = {"format": office.format, "type": str(getattr(office, "type", ""))}
        out.metadata["encryption"] = info
        passwords = list(dict.fromkeys((*ctx.config.passwords, DEFAULT_PASSWORD, *ctx.config.all_passwords)))
        for password in passwords:
            ctx.check_time()
            plain = _try_password(office, password, info)
            if plain is None:
                continue
            info["password"] = password
            if password == DEFAULT_PASSWORD:
                out.flag("ole.default_password", f"{office.format} file opened with {DEFAULT_PASSWORD}")
            else:
                out.flag("ole.encrypted", f"{office.format} file opened with password {password!r}")
            out.facts["encryption"] = f"{office.format} encryption, password {password!r}"
            blob = ctx.extract(io.BytesIO(plain), "decrypted document")
            if blob is not None:
                out.children.append(Child(item.name, blob, path="decrypted", labels=["decrypted"]))
            return True
    out.flag(
        "ole.encrypted_unknown_password", f"{office.format} encryption; {len(passwords)} password(s) tried"
    )
    out.facts["encryption"] = f"{office.format} encryption, password unknown"
    return False


def _try_password(office: Any, password: str, info: dict[str, str]) -> bytes | None:
    """The decrypted file, or None. msoffcrypto's OOXML password check rejects some good keys
    (Excel's VelvetSweatshop files), so a key counts when decryption yields a valid file."""
    try:
        office.load_key(password=password)
        plain = io.BytesIO()
        office.decrypt(plain)
    except Exception as err:  # wrong keys surface as InvalidKeyError, padding or format errors
        info["last_error"] = f"{type(err).__name__}: {err}"[:300]
        return None
    return plain.getvalue()


def _embedded(
    ole: Any,
    streams: dict[str, int],
    storages: dict[str, str],
    path: Path,
    kind: str,
    ctx: Context,
    out: Analysis,
) -> list[str]:
    """Embedded objects become children; returns the storages whose macros the children report."""
    objects: list[dict[str, Any]] = []
    for joined in streams:
        if ctx.exhausted:
            break
        parent, _, stream = joined.rpartition("/")
        if stream.lower() == "\x01ole10native":
            _package(ole, joined, ctx, out, objects)
        elif (
            stream.upper() in ("PACKAGE", "CONTENTS") and streams[joined] > 0 and _is_object(parent, streams)
        ):
            content = _stream(ole, joined, out)
            blob = None if content is None else ctx.extract(content, f"embedded object {joined!r}")
            if blob is not None:
                objects.append({"stream": joined, "type": stream, "size": blob.size})
                out.children.append(Child(joined, blob, path=joined, labels=["embedded"]))
                out.flag("ole.embedded_object", f"{joined} ({blob.size:,} bytes)")
    exclude = _embedded_documents(streams, storages)
    for storage in exclude:
        blob = ctx.extract(
            lambda sink, s=storage: sink.write(_rewrap(ole, s, streams, storages, out)),
            f"embedded {storage!r}",
        )
        if blob is None:
            continue
        prefix = storage + "/"
        sub_kind = _kind(ole, {p[len(prefix) :]: 0 for p in streams if p.startswith(prefix)})
        name = storage.rsplit("/", 1)[-1] + _EMBEDDED_EXTENSIONS.get(sub_kind, "")
        objects.append({"storage": storage, "type": f"embedded {sub_kind}", "size": blob.size})
        out.children.append(Child(name, blob, path=storage, labels=["embedded"]))
        out.flag("ole.embedded_object", f"{storage}: embedded {sub_kind} document")
    if kind == "powerpoint":
        for index, data in enumerate(_powerpoint_objects(path)):
            objects.append({"stream": "PowerPoint Document", "type": "ExOleObjStg", "size": len(data)})
            name = f"ExOleObjStg-{index + 1}"
            out.children.append(Child(name, Blob.of(data), path="ExOleObjStg", labels=["embedded"]))
            out.flag(
                "ole.embedded_object", f"PowerPoint embedded OLE object #{index + 1} ({len(data):,} bytes)"
            )
    if objects:
        out.metadata["embedded"] = objects
        shown = [f"{o.get('filename') or o.get('storage') or o['stream']} ({o['type']})" for o in objects[:5]]
        out.facts["embedded objects"] = ", ".join(shown) + (
            f" (+{len(objects) - 5} more)" if len(objects) > 5 else ""
        )
    return exclude


def _package(ole: Any, stream: str, ctx: Context, out: Analysis, objects: list[dict[str, Any]]) -> None:
    """An OLE Package (Ole10Native) object: the file it carries becomes a child."""
    from oletools.oleobj import OleNativeStream

    content = _stream(ole, stream, out)
    blob = None if content is None else ctx.extract(content, f"OLE Package {stream!r}")
    if blob is None:
        return
    try:
        package = OleNativeStream(blob.read())
    except Exception as err:  # truncated headers make oleobj's readers raise anything
        out.flag(
            "ole.malformed", f"{stream!r} is not a readable OLE Package: {type(err).__name__}: {err}"[:300]
        )
        return
    label = (
        package.filename or PurePosixPath(str(package.src_path or "").replace("\\", "/")).name or "package"
    )
    objects.append({
        "stream": stream, "type": "OLE Package", "filename": label, "source_path": package.src_path,
        "temp_path": package.temp_path, "size": package.actual_size, "linked": package.is_link,
    })  # fmt: skip
    linked = package.is_link or package.data is None
    if not linked:
        out.children.append(
            Child(label, Blob.of(package.data), path=stream, labels=["embedded", "ole-package"])
        )
    extension = PurePosixPath(label.replace("\\", "/")).suffix.lower().lstrip(".")
    finding = "ole.package_executable" if extension in RISKY_PACKAGE_EXTENSIONS else "ole.embedded_package"
    what = f"link to {package.temp_path or package.src_path!r}" if linked else f"{len(package.data):,} bytes"
    out.flag(finding, f"{label!r} from {package.src_path!r} ({what})")
    out.ioc("filename", label, "OLE Package")
    for location in dict.fromkeys([package.src_path, package.temp_path]):  # source first, each once
        if location:
            out.ioc("filepath", str(location), "OLE Package path")


def _is_object(storage: str, streams: dict[str, int]) -> bool:
    """An embedded OLE object's storage: it has the \\x01CompObj or \\x01Ole stream OLE writes for one."""
    return bool(storage) and (f"{storage}/\x01CompObj" in streams or f"{storage}/\x01Ole" in streams)


def _embedded_documents(streams: dict[str, int], storages: dict[str, str]) -> list[str]:
    """Non-root storages that hold a whole Office document (e.g. ObjectPool/_1234 with WordDocument)."""
    marker_streams = {*_DOCUMENT_STREAMS, "EncryptedPackage"}
    holders = sorted({p.rpartition("/")[0] for p in streams if p.rpartition("/")[2] in marker_streams} - {""})
    found: list[str] = []
    for storage in holders:  # sorted, so an outer document comes before anything nested in it
        if storage in storages and not any(storage.startswith(done + "/") for done in found):
            found.append(storage)
    return found


def _rewrap(
    ole: Any, storage: str, streams: dict[str, int], storages: dict[str, str], out: Analysis
) -> bytes:
    """An embedded storage as the standalone compound file Office would save for it."""
    from restytriage.cfb import build_cfb

    prefix = storage + "/"
    contents = {}
    for path in streams:
        content = _stream(ole, path, out) if path.startswith(prefix) else None
        if content is not None:
            contents[path[len(prefix) :]] = content.read()
    clsids = {s[len(prefix) :]: c for s, c in storages.items() if s.startswith(prefix) and c}
    if storages.get(storage):
        clsids[""] = storages[storage]
    return build_cfb(contents, clsids)


def _powerpoint_objects(path: Path) -> Iterator[bytes]:
    """Embedded OLE files stored (zlib-compressed) in PowerPoint ExOleObjStg records, VBA excepted."""
    import olefile
    from oletools.ppt_record_parser import PptFile, PptRecordExOleVbaActiveXAtom

    try:
        ppt = PptFile(str(path))
        for stream in ppt.iter_streams():
            for record in stream.iter_records():
                if isinstance(record, PptRecordExOleVbaActiveXAtom):
                    data = b"".join(record.iter_uncompressed())
                    if data.startswith(olefile.MAGIC) and not _is_vba_storage(data):
                        yield data
    except Exception:  # PowerPoint record trees are often damaged; keep what was found
        return


def _is_vba_storage(data: bytes) -> bool:
    """PowerPoint keeps its VBA project as such an object too; olevba reports it with the parent."""
    import olefile

    try:
        with olefile.OleFileIO(data) as embedded:
            return bool(embedded.exists("VBA/dir"))
    except Exception:  # a damaged embedded file is still an embedded object
        return False


def _judge_template(template: list[str], summary: MacroSummary, out: Analysis) -> None:
    if not template:
        return
    reasons = list(dict.fromkeys(template))
    out.metadata["template"] = reasons
    out.facts["template"] = "; ".join(reasons)
    out.flag("ole.template", "; ".join(reasons))
    if not summary.autoexec:
        return
    triggers = ", ".join(summary.autoexec)
    if summary.has_payload:
        actions = [a for a, done in (("downloads", summary.downloads), ("writes files", summary.writes),
                                     ("runs code", summary.executes)) if done]  # fmt: skip
        out.flag("ole.template_macro_payload", f"template auto-exec {triggers} {', '.join(actions)}")
    else:
        out.flag("ole.template_autoexec", f"template with auto-exec macro {triggers}")


def _dde(ole: Any, out: Analysis) -> None:
    from oletools import msodde

    try:
        links = msodde.process_doc(ole).strip()
    except Exception as err:  # msodde reads every stream, orphans included, through olefile
        out.metadata["dde_error"] = f"{type(err).__name__}: {err}"[:300]
        return
    if links:
        out.metadata["dde"] = links.splitlines()
        out.flag("ole.dde", links[:300])
        out.facts["DDE"] = links[:200]


def _flash(ole: Any, streams: dict[str, int], out: Analysis) -> None:
    from oletools.oleid import detect_flash

    found = 0
    for path, size in streams.items():
        content = _stream(ole, path, out) if 0 < size <= MAX_FLASH_SCAN else None
        if content is not None:
            found += len(detect_flash(content.read()))
    if found:
        out.metadata["flash"] = found
        out.flag("ole.flash", f"{found} SWF header(s) in OLE streams")
