"""A writer of Windows shortcuts ([MS-SHLLINK]) for the inert sample set and the tests.

It writes what Windows writes: the header, a LinkTargetIDList of shell items (root folder, volume,
file entries with their BEEF0004 long-name extension), LinkInfo (local volume or network share,
with Unicode paths when the ANSI code page cannot hold them), StringData in UTF-16, and ExtraData
blocks (environment, icon environment, tracker with a version-1 droid GUID carrying a MAC address,
known folder, special folder, console), then the terminal block. Everything is deterministic: times
are fixed FILETIMEs unless given. Fields can be made to lie (`string_counts`, `extra_blocks`,
`appended`) so the hostile-input samples come from the same code.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PureWindowsPath

LINK_CLSID = uuid.UUID("00021401-0000-0000-C000-000000000046")
MY_COMPUTER = uuid.UUID("20D04FE0-3AEA-1069-A2D8-08002B30309D")

# LinkFlags
HAS_ID_LIST, HAS_LINK_INFO, HAS_NAME, HAS_RELATIVE_PATH = 0x1, 0x2, 0x4, 0x8
HAS_WORKING_DIR, HAS_ARGUMENTS, HAS_ICON_LOCATION, IS_UNICODE = 0x10, 0x20, 0x40, 0x80
HAS_EXP_STRING, HAS_EXP_ICON = 0x200, 0x4000

# ShowCommand
SW_SHOWNORMAL, SW_SHOWMAXIMIZED, SW_SHOWMINNOACTIVE = 1, 3, 7

FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_ARCHIVE = 0x10, 0x20
DRIVE_FIXED, DRIVE_REMOVABLE = 3, 2
WNNC_NET_LANMAN = 0x00020000

FIXED_TIME = datetime(2022, 4, 12, 8, 30, tzinfo=UTC)  # the RestyLink wave: spring 2022
FIXED_VOLUME = uuid.UUID("6b1a3c5e-2f4d-4e8a-9c7b-0d1e2f3a4b5c")


def filetime(moment: datetime) -> int:
    """A FILETIME: 100-ns intervals since 1601-01-01 UTC."""
    delta = moment - datetime(1601, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def dos_datetime(moment: datetime) -> int:
    """A FAT date/time as shell items store it: date in the low word, time in the high word."""
    date = ((moment.year - 1980) << 9) | (moment.month << 5) | moment.day
    time = (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2)
    return date | (time << 16)


def droid_guid(mac: str, moment: datetime = FIXED_TIME, clock_sequence: int = 0x1234) -> uuid.UUID:
    """A version-1 GUID as the link tracking service makes it: a timestamp and the machine's MAC."""
    ticks = int((moment - datetime(1582, 10, 15, tzinfo=UTC)).total_seconds()) * 10_000_000
    node = int(mac.replace(":", "").replace("-", ""), 16)
    return uuid.UUID(
        fields=(
            ticks & 0xFFFFFFFF,
            (ticks >> 32) & 0xFFFF,
            ((ticks >> 48) & 0x0FFF) | 0x1000,
            0x80 | ((clock_sequence >> 8) & 0x3F),
            clock_sequence & 0xFF,
            node,
        )
    )


@dataclass(frozen=True)
class Tracker:
    machine_id: str  # NetBIOS name, at most 15 characters
    mac: str  # "00:0c:29:5a:1b:2c"
    volume: uuid.UUID = FIXED_VOLUME


@dataclass(frozen=True)
class Console:
    face_name: str = "Consolas"
    window_size: tuple[int, int] = (120, 30)
    buffer_size: tuple[int, int] = (120, 9001)
    fill_attributes: int = 0x07
    history_buffers: int = 4


@dataclass
class ShellLink:
    """One shortcut. `target` drives the IDList and LinkInfo; leave them out with the flags below."""

    target: str | None = None  # absolute path: "C:\\Windows\\System32\\cmd.exe" or "\\\\server\\share\\x"
    arguments: str | None = None
    working_dir: str | None = None
    description: str | None = None
    relative_path: str | None = None
    icon_location: str | None = None
    icon_index: int = 0
    show_command: int = SW_SHOWNORMAL
    hotkey: int = 0
    target_size: int = 0
    target_attributes: int = FILE_ATTRIBUTE_ARCHIVE
    times: tuple[datetime | None, datetime | None, datetime | None] = (FIXED_TIME, FIXED_TIME, FIXED_TIME)
    with_id_list: bool = True
    with_link_info: bool = True
    volume_label: str = ""
    drive_serial: int = 0x5A3C1E07
    drive_type: int = DRIVE_FIXED
    environment_target: str | None = None  # EnvironmentVariableDataBlock (HasExpString)
    icon_environment: str | None = None  # IconEnvironmentDataBlock (HasExpIcon)
    tracker: Tracker | None = None
    known_folder: tuple[uuid.UUID, int] | None = None  # (KNOWNFOLDERID, offset of the item after it)
    special_folder: tuple[int, int] | None = None  # (CSIDL, offset)
    console: Console | None = None
    extra_blocks: list[bytes] = field(default_factory=list)  # raw blocks written before the terminal
    string_counts: dict[str, int] = field(default_factory=dict)  # lie about a string's CountCharacters
    appended: bytes = b""  # bytes after the terminal block


def build(link: ShellLink) -> bytes:
    flags = IS_UNICODE
    id_list = link_info = b""
    if link.target and link.with_id_list:
        flags |= HAS_ID_LIST
        id_list = id_list_for(link.target, link.target_attributes, link.target_size)
    if link.target and link.with_link_info:
        flags |= HAS_LINK_INFO
        link_info = _link_info(link)
    strings = b""
    for name, flag, value in (
        ("description", HAS_NAME, link.description),
        ("relative_path", HAS_RELATIVE_PATH, link.relative_path),
        ("working_dir", HAS_WORKING_DIR, link.working_dir),
        ("arguments", HAS_ARGUMENTS, link.arguments),
        ("icon_location", HAS_ICON_LOCATION, link.icon_location),
    ):
        if value is not None:
            flags |= flag
            count = link.string_counts.get(name, len(value.encode("utf-16-le")) // 2)
            strings += struct.pack("<H", count) + value.encode("utf-16-le")
    extra = b""
    if link.environment_target is not None:
        flags |= HAS_EXP_STRING
        extra += _path_block(0xA0000001, link.environment_target)
    if link.console is not None:
        extra += _console_block(link.console)
    if link.tracker is not None:
        extra += _tracker_block(link.tracker)
    if link.special_folder is not None:
        extra += struct.pack("<IIII", 0x10, 0xA0000005, *link.special_folder)
    if link.icon_environment is not None:
        flags |= HAS_EXP_ICON
        extra += _path_block(0xA0000007, link.icon_environment)
    if link.known_folder is not None:
        folder, offset = link.known_folder
        extra += struct.pack("<II", 0x1C, 0xA000000B) + folder.bytes_le + struct.pack("<I", offset)
    extra += b"".join(link.extra_blocks)
    header = _header(link, flags)
    return header + id_list + link_info + strings + extra + b"\x00\x00\x00\x00" + link.appended


def _header(link: ShellLink, flags: int) -> bytes:
    created, accessed, written = (filetime(t) if t else 0 for t in link.times)
    return struct.pack(
        "<I16sIIQQQIiIHHII",
        0x4C,
        LINK_CLSID.bytes_le,
        flags,
        link.target_attributes,
        created,
        accessed,
        written,
        link.target_size,
        link.icon_index,
        link.show_command,
        link.hotkey,
        0,
        0,
        0,
    )


def id_list_for(path: str, attributes: int = FILE_ATTRIBUTE_ARCHIVE, size: int = 0) -> bytes:
    """A LinkTargetIDList for a local path: My Computer, the volume, one file entry per component."""
    windows = PureWindowsPath(path)
    items = [_item(struct.pack("<BB", 0x1F, 0x50) + MY_COMPUTER.bytes_le)]
    drive = windows.drive or "C:"
    items.append(_item(b"\x2f" + (drive + "\\").encode("ascii").ljust(22, b"\x00")))
    parts = windows.parts[1:]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        is_file = last and not attributes & FILE_ATTRIBUTE_DIRECTORY
        items.append(_file_entry(part, is_file, size if is_file else 0))
    body = b"".join(items) + b"\x00\x00"
    return struct.pack("<H", len(body)) + body


def id_list_item_offsets(path: str, attributes: int = FILE_ATTRIBUTE_ARCHIVE) -> list[int]:
    """Offset of each shell item inside the IDList that `id_list_for` writes (for known/special folder blocks)."""
    id_list = id_list_for(path, attributes)
    offsets, at = [], 2
    while at + 2 <= len(id_list) and (size := struct.unpack_from("<H", id_list, at)[0]):
        offsets.append(at - 2)
        at += size
    return offsets


def _item(body: bytes) -> bytes:
    return struct.pack("<H", len(body) + 2) + body


def _file_entry(name: str, is_file: bool, size: int) -> bytes:
    """A file-entry shell item: 8.3 primary name when the name fits, else the Unicode name (flag 0x04)."""
    kind = 0x32 if is_file else 0x31
    short = _short_name(name)
    if short is None:
        kind |= 0x04
        primary = name.encode("utf-16-le") + b"\x00\x00"
    else:
        primary = short.encode("ascii") + b"\x00"
        primary += b"\x00" * (len(primary) % 2)  # the extension block is 2-byte aligned
    stamp = dos_datetime(FIXED_TIME)
    head = struct.pack(
        "<BBIIH", kind, 0, size, stamp, FILE_ATTRIBUTE_DIRECTORY if not is_file else FILE_ATTRIBUTE_ARCHIVE
    )
    extension_offset = 2 + len(head) + len(primary)
    return _item(head + primary + _beef0004(name, extension_offset))


def _beef0004(long_name: str, item_offset: int) -> bytes:
    """The version-9 file-entry extension block that carries the long (Unicode) name."""
    stamp = dos_datetime(FIXED_TIME)
    name = long_name.encode("utf-16-le") + b"\x00\x00"
    body = struct.pack(
        "<HIIIHH8s8sHII", 9, 0xBEEF0004, stamp, stamp, 0x2E, 0, b"\x00" * 8, b"\x00" * 8, 0, 0, 0
    )
    body += name + struct.pack("<H", item_offset)
    return struct.pack("<H", len(body) + 2) + body


def _short_name(name: str) -> str | None:
    """The name itself when it already is a valid 8.3 ASCII name (Windows then stores no other)."""
    stem, _, ext = name.partition(".")
    if not name.isascii() or "." in ext or " " in name or not 0 < len(stem) <= 8 or len(ext) > 3:
        return None
    return name


def _ansi(text: str) -> tuple[bytes, bool]:
    """cp1252 bytes as Windows writes them, and whether the text needed '?' replacements."""
    encoded = text.encode("cp1252", "replace")
    return encoded + b"\x00", encoded.decode("cp1252") != text


def _link_info(link: ShellLink) -> bytes:
    assert link.target is not None
    if link.target.startswith("\\\\"):
        return _network_link_info(link.target)
    volume_label, _ = _ansi(link.volume_label)
    volume = (
        struct.pack("<IIII", 0x10 + len(volume_label), link.drive_type, link.drive_serial, 0x10)
        + volume_label
    )
    base_path, lossy = _ansi(link.target)
    suffix = b"\x00"
    header_size = 0x24 if lossy else 0x1C
    volume_at = header_size
    base_at = volume_at + len(volume)
    suffix_at = base_at + len(base_path)
    tail = volume + base_path + suffix
    unicode_fields = b""
    if lossy:  # Windows adds Unicode copies when the ANSI code page loses characters
        unicode_base = link.target.encode("utf-16-le") + b"\x00\x00"
        unicode_at = header_size + len(tail)
        unicode_fields = struct.pack("<II", unicode_at, unicode_at + len(unicode_base))
        tail += unicode_base + b"\x00\x00"
    size = header_size + len(tail)
    return (
        struct.pack("<IIIIIII", size, header_size, 0x1, volume_at, base_at, 0, suffix_at)
        + unicode_fields
        + tail
    )


def _network_link_info(target: str) -> bytes:
    parts = target[2:].split("\\")
    share = "\\\\" + "\\".join(parts[:2])
    rest = "\\".join(parts[2:])
    net_name, _ = _ansi(share)
    network = struct.pack("<IIIII", 0x14 + len(net_name), 0x2, 0x14, 0, WNNC_NET_LANMAN) + net_name
    suffix, _ = _ansi(rest)
    header_size = 0x1C
    size = header_size + len(network) + len(suffix)
    return (
        struct.pack("<IIIIIII", size, header_size, 0x2, 0, 0, header_size, header_size + len(network))
        + network
        + suffix
    )


def _path_block(signature: int, path: str) -> bytes:
    ansi = path.encode("cp1252", "replace")[:259].ljust(260, b"\x00")
    wide = path.encode("utf-16-le")[:518].ljust(520, b"\x00")
    return struct.pack("<II", 0x314, signature) + ansi + wide


def _tracker_block(tracker: Tracker) -> bytes:
    machine = tracker.machine_id.encode("ascii")[:15].ljust(16, b"\x00")
    droid_file = droid_guid(tracker.mac)
    return (
        struct.pack("<IIII", 0x60, 0xA0000003, 0x58, 0)
        + machine
        + tracker.volume.bytes_le
        + droid_file.bytes_le
        + tracker.volume.bytes_le
        + droid_file.bytes_le
    )


def _console_block(console: Console) -> bytes:
    face = console.face_name.encode("utf-16-le")[:62].ljust(64, b"\x00")
    colours = struct.pack(
        "<16I",
        *(
            0x000000,
            0x800000,
            0x008000,
            0x808000,
            0x000080,
            0x800080,
            0x008080,
            0xC0C0C0,
            0x808080,
            0xFF0000,
            0x00FF00,
            0xFFFF00,
            0x0000FF,
            0xFF00FF,
            0x00FFFF,
            0xFFFFFF,
        ),
    )
    return (
        struct.pack("<IIHH", 0xCC, 0xA0000002, console.fill_attributes, 0xF5)
        + struct.pack("<HHHHhh", *console.buffer_size, *console.window_size, 0, 0)
        + struct.pack("<IIIII", 0, 0, 0x100000, 0x36, 400)
        + face
        + struct.pack("<IIIIIIII", 25, 0, 1, 1, 1, 50, console.history_buffers, 0)
        + colours
    )
