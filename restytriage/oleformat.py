"""OLE compound files (MS-CFB) and the Office records inside them, as the `ole` analyzer reads them.

olefile opens the file and reads its streams. What is read here by hand is where olefile, given a
hostile file, would not stop or would not stop soon:
- the header's FAT sector count (`overstated_fat`): olefile builds the FAT once per declared FAT
  sector, following a DIFAT chain that may name the same sector each time;
- FAT chains (`fat_chain_loops`, `cut_chains`): olefile follows a looping chain round and round up
  to the size a directory entry declares, so the loops are found from the raw directory entries and
  cut, with an end-of-chain mark, in a copy of the file's bytes;
- the storage tree (`inventory`): olefile's listdir recurses once per level and follows a storage
  that holds the root entry for ever;
- property sets (`document_properties`, MS-OLEPS): olefile loops over vector counts taken from the
  file.
Then the records in document streams that olefile does not parse: the Word FibBase (`word_fib`), the
Excel workbook globals (`excel_globals`) and the OLE objects PowerPoint keeps in ExOleObjStg records
(`powerpoint_objects`, through oletools' record parser).

Pure reading: no findings, no Context, no children (the `ole` analyzer judges what is read here).
olefile and oletools are imported on first use, as analyzers import their heavy libraries.
"""

from __future__ import annotations

import itertools
import locale
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from restytriage.cfb import ENDOFCHAIN

FAT_SLACK_SECTORS = 8  # FAT sectors a header may declare beyond what the file's size needs...
FAT_SECTORS_CHEAP = 2048  # ...or this many in any case (a truncated document), read in under a second
PROPERTY_SET_BYTES = 1 << 20  # read of a property-set stream
FIB_BASE_SIZE = 32  # FibBase up to lKey: all of it that is read
WORD_FIB_IDENT = 0xA5EC  # FibBase.wIdent of a Word document
WORKBOOK_GLOBALS_BYTES = 4 << 20  # read of a Workbook stream, whose globals substream comes first

_SUMMARY = {
    2: "title", 3: "subject", 4: "author", 5: "keywords", 6: "comments", 7: "template", 8: "last_saved_by",
    9: "revision_number", 11: "last_printed", 12: "create_time", 13: "last_saved_time", 14: "num_pages",
    15: "num_words", 16: "num_chars", 18: "creating_application", 19: "security",
}  # fmt: skip
_DOC_SUMMARY = {2: "category", 14: "manager", 15: "company"}
_TIMES = frozenset({11, 12, 13})  # the FILETIME properties of SummaryInformation
_PROPERTY_NAMES = {"\x05SummaryInformation": _SUMMARY, "\x05DocumentSummaryInformation": _DOC_SUMMARY}
PROPERTY_SET_STREAMS = tuple(_PROPERTY_NAMES)


# --- the header and the FAT --------------------------------------------------------------------


def overstated_fat(head: bytes, size: int) -> str:
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


def fat_chain_loops(ole: Any) -> tuple[list[str], set[int]]:
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


def cut_chains(file: bytes, sector_size: int, cuts: set[int]) -> bytes:
    """The file's bytes with an end-of-chain mark where each looping chain loops.

    The FAT's own sectors are found the way olefile finds them: the header's 109 entries up to the
    first end mark, then each DIFAT sector's, following the DIFAT chain as far as the header counts.
    """
    data = bytearray(file)
    per_sector = sector_size // 4

    def word(at: int) -> int:
        return struct.unpack("<I", bytes(data[at : at + 4]).ljust(4, b"\xff"))[0]

    def entries(at: int, count: int) -> list[int]:
        listed = map(word, range(at, at + 4 * count, 4))
        return list(itertools.takewhile(lambda value: value < ENDOFCHAIN, listed))  # up to an end mark

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
                struct.pack_into("<I", data, at, ENDOFCHAIN)
    return bytes(data)


# --- the storage tree --------------------------------------------------------------------------


def inventory(ole: Any) -> tuple[dict[str, int], dict[str, str], list[str]]:
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


def is_object_storage(storage: str, streams: dict[str, int]) -> bool:
    """An embedded OLE object's storage: it has the \\x01CompObj or \\x01Ole stream OLE writes for one."""
    return bool(storage) and (f"{storage}/\x01CompObj" in streams or f"{storage}/\x01Ole" in streams)


# --- property sets (MS-OLEPS) ------------------------------------------------------------------


def document_properties(contents: Mapping[str, bytes]) -> dict[str, Any]:
    """The named properties of the SummaryInformation and DocumentSummaryInformation streams'
    `contents` (by stream name): strings decoded in their set's code page, FILETIMEs as ISO times,
    empty values left out, and the code page with its name.

    Read with a bounded parser: olefile's loops over vector counts taken from the file, which hostile
    files make endless.
    """
    values: dict[str, Any] = {}
    for stream, names in _PROPERTY_NAMES.items():
        if stream not in contents:
            continue
        raw = _property_set(contents[stream])
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
    return properties


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


# --- Word, Excel and PowerPoint records --------------------------------------------------------


def word_fib(head: bytes) -> dict[str, Any] | None:
    """FibBase (MS-DOC 2.5.2) from the start of a WordDocument stream: template, encryption and
    language flags; None when the stream is too short to hold one."""
    if len(head) < FIB_BASE_SIZE:
        return None
    ident, nfib, _, lid, _, flags, _, key = struct.unpack_from("<HHHHHHHI", head)
    return {
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


@dataclass
class WorkbookGlobals:
    """What the BIFF records of a workbook's globals substream say, up to its EOF or FILEPASS."""

    sheets: list[dict[str, Any]]  # BOUNDSHEET records: name, type and visibility
    filepass: bool  # a FILEPASS record: what follows it is encrypted
    template: bool  # a TEMPLATE record


def excel_globals(data: bytes) -> WorkbookGlobals:
    """The workbook globals at the start of a Workbook (or Book) stream."""
    sheets, offset, encrypted, template = [], 0, False, False
    while offset + 4 <= len(data):
        record, size = struct.unpack_from("<HH", data, offset)
        body = data[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if record == 0x000A:  # EOF of the globals substream
            break
        if record == 0x0060:
            template = True
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
    return WorkbookGlobals(sheets, encrypted, template)


def powerpoint_objects(path: Path) -> Iterator[bytes]:
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
