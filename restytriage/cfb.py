"""A writer of OLE compound files (MS-CFB v3).

Analysis uses it to rebuild an Office document embedded as a storage inside another compound file
(so the engine can analyse it as a file of its own); the sample builders use it to make inert Office
files. `build_cfb(streams, clsids=...)` takes {"Storage/Stream": bytes}: header, FAT (with DIFAT
sectors when needed), miniFAT and ministream for streams under 4096 bytes, and each storage's
children as a valid red-black tree. Deterministic: no timestamps, fixed layout.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

SECTOR = 512
MINI_SECTOR = 64
MINI_CUTOFF = 4096
ENTRIES_PER_FAT_SECTOR = SECTOR // 4
HEADER_DIFAT_ENTRIES = 109
DIFSECT, FATSECT, ENDOFCHAIN, FREESECT = 0xFFFFFFFC, 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF
NOSTREAM = 0xFFFFFFFF
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_TYPE_STORAGE, _TYPE_STREAM, _TYPE_ROOT = 1, 2, 5
_RED, _BLACK = 0, 1


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    clsid: bytes = bytes(16)
    children: list[_Entry] | None = None
    sid: int = 0
    left: int = NOSTREAM
    right: int = NOSTREAM
    child: int = NOSTREAM
    color: int = _BLACK
    start: int = ENDOFCHAIN


def _clsid_bytes(clsid: str | None) -> bytes:
    return uuid.UUID(clsid).bytes_le if clsid else bytes(16)


def _cfb_key(name: str) -> tuple[int, str]:
    """MS-CFB 2.6.4: siblings are ordered by name length, then by upper-cased code points."""
    return len(name.encode("utf-16-le")) // 2, name.upper()


def _check_name(name: str) -> None:
    if not name or len(name.encode("utf-16-le")) // 2 > 31 or any(c in name for c in "/\\:!"):
        raise ValueError(f"invalid compound file entry name {name!r}")


def _link(storage: _Entry) -> None:
    siblings = sorted(storage.children or [], key=lambda e: _cfb_key(e.name))
    count = len(siblings)
    height = count.bit_length()  # levels of a size-balanced tree of `count` nodes
    perfect = count == (1 << height) - 1
    storage.child = _balanced(siblings, 0, height, perfect)
    for entry in siblings:
        if entry.kind == _TYPE_STORAGE:
            _link(entry)


def _balanced(entries: list[_Entry], depth: int, height: int, perfect: bool) -> int:
    if not entries:
        return NOSTREAM
    middle = len(entries) // 2
    node = entries[middle]
    node.left = _balanced(entries[:middle], depth + 1, height, perfect)
    node.right = _balanced(entries[middle + 1 :], depth + 1, height, perfect)
    node.color = _RED if not perfect and depth == height - 1 else _BLACK
    return node.sid


def _build_tree(streams: Mapping[str, bytes], clsids: Mapping[str, str]) -> tuple[_Entry, list[_Entry]]:
    root = _Entry("Root Entry", _TYPE_ROOT, clsid=_clsid_bytes(clsids.get("")), children=[])
    storages: dict[str, _Entry] = {"": root}

    def storage(path: str) -> _Entry:
        if path not in storages:
            parent_path, _, name = path.rpartition("/")
            _check_name(name)
            parent = storage(parent_path)
            entry = _Entry(name, _TYPE_STORAGE, clsid=_clsid_bytes(clsids.get(path)), children=[])
            assert parent.children is not None
            parent.children.append(entry)
            storages[path] = entry
        return storages[path]

    seen: set[tuple[str, str]] = set()
    for path, data in streams.items():
        parent_path, _, name = path.strip("/").rpartition("/")
        _check_name(name)
        key = (parent_path.upper(), name.upper())
        if key in seen:
            raise ValueError(f"duplicate compound file entry {path!r}")
        seen.add(key)
        parent = storage(parent_path)
        assert parent.children is not None
        parent.children.append(_Entry(name, _TYPE_STREAM, data=bytes(data)))
    for path in clsids:
        if path:
            storage(path)
    # Ids in breadth-first order of sorted siblings: the root is 0, as MS-CFB requires.
    ordered: list[_Entry] = []
    queue = [root]
    while queue:
        entry = queue.pop(0)
        entry.sid = len(ordered)
        ordered.append(entry)
        queue.extend(sorted(entry.children or [], key=lambda e: _cfb_key(e.name)))
    _link(root)
    return root, ordered


def _directory_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le") + b"\x00\x00"
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name,
        len(name),
        entry.kind,
        entry.color,
        entry.left,
        entry.right,
        entry.child,
        entry.clsid,
        0,  # state bits
        0,  # creation time
        0,  # modified time
        entry.start,
        len(entry.data),
    )


_UNUSED_ENTRY = struct.pack(
    "<64sHBBIII16sIQQIQ", b"", 0, 0, 0, NOSTREAM, NOSTREAM, NOSTREAM, bytes(16), 0, 0, 0, 0, 0
)


def _sectors(size: int, unit: int) -> int:
    return -(-size // unit)


def build_cfb(streams: Mapping[str, bytes], clsids: Mapping[str, str] | None = None) -> bytes:
    """A compound file (MS-CFB version 3, 512-byte sectors) holding `streams`.

    Keys are stream paths with "/" between storages ("Macros/VBA/dir"); storages are created as
    needed. `clsids` maps storage paths to CLSID strings ("" is the root entry).
    """
    root, entries = _build_tree(streams, clsids or {})
    small = [e for e in entries if e.kind == _TYPE_STREAM and 0 < len(e.data) < MINI_CUTOFF]
    large = [e for e in entries if e.kind == _TYPE_STREAM and len(e.data) >= MINI_CUTOFF]

    ministream = bytearray()
    minifat: list[int] = []
    for entry in small:
        entry.start = len(minifat)
        count = _sectors(len(entry.data), MINI_SECTOR)
        minifat.extend(range(entry.start + 1, entry.start + count))
        minifat.append(ENDOFCHAIN)
        ministream += entry.data.ljust(count * MINI_SECTOR, b"\x00")
    root.data = bytes(ministream)

    dir_count = _sectors(len(entries), 4)
    minifat_count = _sectors(len(minifat), ENTRIES_PER_FAT_SECTOR)
    content = [dir_count, minifat_count, _sectors(len(ministream), SECTOR)]
    content += [_sectors(len(e.data), SECTOR) for e in large]
    data_sectors = sum(content)
    fat_count, difat_count = 1, 0
    while fat_count * ENTRIES_PER_FAT_SECTOR < data_sectors + fat_count + difat_count:
        fat_count += 1
        difat_count = max(0, _sectors(fat_count - HEADER_DIFAT_ENTRIES, ENTRIES_PER_FAT_SECTOR - 1))

    fat = [FREESECT] * (fat_count * ENTRIES_PER_FAT_SECTOR)
    fat[:fat_count] = [FATSECT] * fat_count
    fat[fat_count : fat_count + difat_count] = [DIFSECT] * difat_count
    cursor = fat_count + difat_count

    def chain(count: int) -> int:
        nonlocal cursor
        if count == 0:
            return ENDOFCHAIN
        first = cursor
        fat[first : first + count - 1] = range(first + 1, first + count)
        fat[first + count - 1] = ENDOFCHAIN
        cursor += count
        return first

    first_dir = chain(dir_count)
    first_minifat = chain(minifat_count)
    root.start = chain(content[2])
    for entry in large:
        entry.start = chain(_sectors(len(entry.data), SECTOR))

    body = bytearray()
    body += b"".join(struct.pack("<I", value) for value in fat)
    fat_sectors = list(range(fat_count))
    for index in range(difat_count):
        listed = fat_sectors[HEADER_DIFAT_ENTRIES + index * 127 : HEADER_DIFAT_ENTRIES + (index + 1) * 127]
        following = fat_count + index + 1 if index + 1 < difat_count else ENDOFCHAIN
        body += struct.pack("<127I", *listed, *[FREESECT] * (127 - len(listed))) + struct.pack(
            "<I", following
        )
    directory = b"".join(_directory_entry(e) for e in entries)
    body += directory + _UNUSED_ENTRY * (dir_count * 4 - len(entries))
    body += b"".join(struct.pack("<I", v) for v in minifat).ljust(minifat_count * SECTOR, b"\xff")
    body += bytes(ministream).ljust(content[2] * SECTOR, b"\x00")
    for entry in large:
        body += entry.data.ljust(_sectors(len(entry.data), SECTOR) * SECTOR, b"\x00")

    header_difat = fat_sectors[:HEADER_DIFAT_ENTRIES]
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII",
        CFB_MAGIC,
        bytes(16),
        0x003E,
        0x0003,
        0xFFFE,
        9,
        6,
        bytes(6),
        0,
        fat_count,
        first_dir,
        0,
        MINI_CUTOFF,
        first_minifat,
        minifat_count,
        fat_count if difat_count else ENDOFCHAIN,
        difat_count,
    ) + struct.pack("<109I", *header_difat, *[FREESECT] * (HEADER_DIFAT_ENTRIES - len(header_difat)))
    return header + bytes(body)
