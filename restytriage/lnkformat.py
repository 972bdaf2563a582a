"""The MS-SHLLINK structure of a Windows shortcut, read the way Windows reads it.

The sections are walked here as Windows does (section sizes, the 260-character cap on the name,
relative path and working directory, no cap on the arguments, the terminal block), which tells
where the shortcut ends and which sizes lie. LnkParse3 decodes each section (header, shell items,
LinkInfo, extra blocks); a section it cannot decode is recorded as a problem and the others still
are. The target is resolved from the environment block, the IDList, LinkInfo and the relative path
in Windows' order; tracker blocks yield the creating machine's MAC address and time.

Pure reading: no findings, no verdicts (the `lnk` analyzer judges what is read here).
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
import warnings
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from restytriage.carve import Buffer
from restytriage.commandline import expand_environment

HEADER_SIZE = 0x4C
HAS_ID_LIST, HAS_LINK_INFO, IS_UNICODE, FORCE_NO_LINK_INFO = 0x1, 0x2, 0x80, 0x100
HAS_EXP_STRING = 0x200
# StringData in file order: (key, flag, label, capped at 260 characters by Windows)
STRING_FIELDS = (
    ("description", 0x4, "name", True),
    ("relative_path", 0x8, "relative path", True),
    ("working_directory", 0x10, "working directory", True),
    ("arguments", 0x20, "arguments", False),
    ("icon_location", 0x40, "icon location", False),
)
WINDOWS_STRING_CAP = 260

# Extra-data blocks: signature -> (name, size MS-SHLLINK fixes, or None when variable)
BLOCKS: dict[int, tuple[str, int | None]] = {
    0xA0000001: ("environment", 0x314),
    0xA0000002: ("console", 0xCC),
    0xA0000003: ("tracker", 0x60),
    0xA0000004: ("console_codepage", 0xC),
    0xA0000005: ("special_folder", 0x10),
    0xA0000006: ("darwin", 0x314),
    0xA0000007: ("icon_environment", 0x314),
    0xA0000008: ("shim", None),
    0xA0000009: ("property_store", None),
    0xA000000B: ("known_folder", 0x1C),
    0xA000000C: ("vista_id_list", None),
}
SHOW_COMMANDS = {1: "SW_SHOWNORMAL", 3: "SW_SHOWMAXIMIZED", 7: "SW_SHOWMINNOACTIVE"}

MY_COMPUTER = "20D04FE0-3AEA-1069-A2D8-08002B30309D"
ROOT_FOLDERS = {
    "59031A47-3F72-44A7-89C5-5595FE6B30EE": "%USERPROFILE%",
    "450D8FBA-AD25-11D0-98A8-0800361B1103": "%USERPROFILE%\\Documents",
    "208D2C60-3AEA-1069-A2D7-08002B30309D": "::Network",
    "F02C1A0D-BE21-4350-88B0-7367FC96EF3C": "::Network",
    "21EC2020-3AEA-1069-A2DD-08002B30309D": "::Control Panel",
    "26EE0668-A00A-44D7-9371-BEB064C98683": "::Control Panel",
    "645FF040-5081-101B-9F08-00AA002F954E": "::Recycle Bin",
    "031E4825-7B94-4DC3-B131-E946B44C8DD5": "::Libraries",
}
KNOWN_FOLDERS = {
    "1AC14E77-02E7-4E5D-B744-2EB1AE5198B7": "System",
    "D65231B0-B2F1-4857-A4CE-A8E7C6EA7D27": "SystemX86",
    "F38BF404-1D43-42F2-9305-67DE0B28FC23": "Windows",
    "905E63B6-C1BF-494E-B29C-65B732D3D21A": "ProgramFiles",
    "7C5A40EF-A0FB-4BFC-874A-C0F2E0B9FA8E": "ProgramFilesX86",
    "62AB5D82-FDC1-4DC3-A9DD-070D1D495D97": "ProgramData",
    "B4BFCC3A-DB2C-424C-B029-7FE99A87C641": "Desktop",
    "FDD39AD0-238F-46AF-ADB4-6C85480369C7": "Documents",
    "374DE290-123F-4565-9164-39C4925E467B": "Downloads",
    "3EB685DB-65F9-4CF6-A03A-E3EF65729F3D": "RoamingAppData",
    "F1B32785-6FBA-4FCF-9D55-7B8E7F157091": "LocalAppData",
    "B97D20BB-F46A-4C97-BA10-5E3608430854": "Startup",
    "82A5EA35-D9CD-47C5-9629-E15D2F714E6E": "CommonStartup",
    "A63293E8-664E-48DB-A079-DF759E0509F7": "Templates",
    "DFDF76A2-C82A-4D63-906A-5644AC457385": "Public",
    "5E6C858F-0E22-4760-9AFE-EA3317B67173": "Profile",
}
SPECIAL_FOLDERS = {
    0x05: "CSIDL_PERSONAL",
    0x07: "CSIDL_STARTUP",
    0x10: "CSIDL_DESKTOPDIRECTORY",
    0x15: "CSIDL_TEMPLATES",
    0x18: "CSIDL_COMMON_STARTUP",
    0x1A: "CSIDL_APPDATA",
    0x1C: "CSIDL_LOCAL_APPDATA",
    0x23: "CSIDL_COMMON_APPDATA",
    0x24: "CSIDL_WINDOWS",
    0x25: "CSIDL_SYSTEM",
    0x26: "CSIDL_PROGRAM_FILES",
    0x28: "CSIDL_PROFILE",
    0x29: "CSIDL_SYSTEMX86",
    0x2A: "CSIDL_PROGRAM_FILESX86",
}

_SID = re.compile(r"\bS-1-5-21-\d+-\d+-\d+-\d+\b")


@dataclass
class Block:
    signature: int
    offset: int
    size: int
    kind: str


@dataclass
class Layout:
    """Where each part of the shortcut is, as Windows reads it, and what does not add up."""

    file_size: int
    flags: int = 0
    sections: list[dict[str, Any]] = field(default_factory=list)
    id_items: list[tuple[int, int]] = field(default_factory=list)  # (offset, size) of each shell item
    link_info: tuple[int, int] | None = None
    strings: dict[str, str] = field(default_factory=dict)
    string_counts: dict[str, int] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    end: int = 0  # the first byte after the shortcut structure
    truncated: bool = False
    problems: list[str] = field(default_factory=list)  # malformed: sizes past the end, truncation
    notes: list[str] = field(default_factory=list)  # odd but harmless
    overflows: list[str] = field(default_factory=list)  # string counts above Windows' 260

    def section(self, name: str, offset: int, size: int) -> None:
        self.sections.append({"name": name, "offset": offset, "size": size})

    def cut(self, problem: str) -> int:
        """Record that a section runs past the end of the data; nothing after it can be read."""
        self.problems.append(problem)
        self.truncated = True
        return self.file_size


def _u16(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<H", data, pos)[0]


def _u32(data: Buffer, pos: int) -> int:
    return struct.unpack_from("<I", data, pos)[0]


def walk(data: Buffer) -> Layout:
    layout = Layout(file_size=len(data))
    if len(data) < HEADER_SIZE:
        layout.end = layout.cut(f"header truncated: {len(data)} of {HEADER_SIZE} bytes")
        return layout
    layout.section("header", 0, HEADER_SIZE)
    layout.flags = _u32(data, 20)
    pos = HEADER_SIZE
    if layout.flags & HAS_ID_LIST:
        pos = _walk_id_list(data, pos, layout)
    if layout.flags & HAS_LINK_INFO and not layout.flags & FORCE_NO_LINK_INFO and not layout.truncated:
        pos = _walk_link_info(data, pos, layout)
    if not layout.truncated:
        pos = _walk_strings(data, pos, layout)
    layout.end = pos if layout.truncated else _walk_extra(data, pos, layout)
    return layout


def _walk_id_list(data: Buffer, pos: int, layout: Layout) -> int:
    size = len(data)
    if pos + 2 > size:
        return layout.cut("IDList size field missing")
    list_size = _u16(data, pos)
    end = pos + 2 + list_size
    layout.section("id_list", pos, 2 + list_size)
    at, limit = pos + 2, min(end, size)
    while at + 2 <= limit:
        item_size = _u16(data, at)
        if item_size == 0:
            break
        if item_size < 3 or at + item_size > limit:
            layout.problems.append(
                f"shell item at offset {at} claims {item_size} bytes, {limit - at} remain in the IDList"
            )
            break
        layout.id_items.append((at, item_size))
        at += item_size
    if end > size:
        return layout.cut(f"IDList claims {list_size} bytes, {size - pos - 2} remain")
    return end


def _walk_link_info(data: Buffer, pos: int, layout: Layout) -> int:
    size = len(data)
    if pos + 8 > size:
        return layout.cut("LinkInfo header missing")
    info_size, header_size = struct.unpack_from("<II", data, pos)
    layout.section("link_info", pos, info_size)
    if info_size < 0x1C or header_size < 0x1C or header_size > info_size:
        layout.problems.append(f"LinkInfo sizes do not fit (size {info_size}, header {header_size})")
    if pos + info_size > size:
        return layout.cut(f"LinkInfo claims {info_size} bytes, {size - pos} remain")
    if info_size >= 0x1C:
        names = ("VolumeID", "LocalBasePath", "CommonNetworkRelativeLink", "CommonPathSuffix")
        for name, offset in zip(names, struct.unpack_from("<IIII", data, pos + 12), strict=True):
            if offset >= info_size:
                layout.problems.append(f"LinkInfo {name} offset {offset} points past its {info_size} bytes")
    layout.link_info = (pos, info_size)
    return pos + max(info_size, 4)


def _walk_strings(data: Buffer, pos: int, layout: Layout) -> int:
    unicode = bool(layout.flags & IS_UNICODE)
    width = 2 if unicode else 1
    start = pos
    for key, flag, label, capped in STRING_FIELDS:
        if not layout.flags & flag:
            continue
        if pos + 2 > len(data):
            return layout.cut(f"string data ends before the {label}")
        count = _u16(data, pos)
        layout.string_counts[key] = count
        chars = min(count, WINDOWS_STRING_CAP) if capped else count
        if capped and count > WINDOWS_STRING_CAP:
            layout.overflows.append(
                f"{label}: {count} characters declared, Windows reads {WINDOWS_STRING_CAP}"
            )
        raw = bytes(data[pos + 2 : pos + 2 + chars * width])
        text, hidden = _decode_string(raw, unicode)
        layout.strings[key] = text
        if hidden:
            layout.notes.append(f"{label}: {hidden} character(s) after a NUL are not used")
        if len(raw) < chars * width:
            layout.section("string_data", start, len(data) - start)
            return layout.cut(
                f"{label} claims {count} characters ({chars * width} bytes), {len(raw)} bytes remain"
            )
        pos += 2 + chars * width
    if pos > start:
        layout.section("string_data", start, pos - start)
    return pos


def _decode_string(raw: bytes, unicode: bool) -> tuple[str, int]:
    """Text as Windows uses it (up to the first NUL) and how many characters the NUL hides."""
    if unicode:
        text = _escape_surrogates(raw[: len(raw) & ~1].decode("utf-16-le", "surrogatepass"))
    else:
        text = _decode_ansi(raw)
    used, _, rest = text.partition("\x00")
    return used, len(rest.strip("\x00"))


def _decode_ansi(raw: bytes) -> str:
    # The ANSI code page is the creator's; cp1252 then UTF-8, as LnkParse3 does, keeps outputs aligned.
    for encoding in ("cp1252", "utf-8"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return raw.decode("cp1252", "replace")


def _escape_surrogates(text: str) -> str:
    """Unpaired UTF-16 surrogates (legal in NTFS names, not in UTF-8) shown as [U+D800]."""
    return re.sub("[\ud800-\udfff]", lambda m: f"[U+{ord(m.group()):04X}]", text)


def _walk_extra(data: Buffer, pos: int, layout: Layout) -> int:
    size, start = len(data), pos
    while True:
        remaining = size - pos
        if remaining < 4:
            if remaining:
                layout.notes.append(f"{remaining} stray byte(s) where the terminal block belongs")
            end = size
            break
        block_size = _u32(data, pos)
        if block_size < 4:
            end = pos + 4
            break
        if remaining < 8:
            layout.notes.append(
                f"{remaining} byte(s) after the last block: too short for a block, no terminal block"
            )
            end = size
            break
        signature = _u32(data, pos + 4)
        if signature & 0xFFFFFF00 != 0xA0000000:
            layout.problems.append(
                f"no terminal block: the bytes at offset {pos} are not an extra-data block"
            )
            end = pos
            break
        kind, expected = BLOCKS.get(signature, ("unknown", None))
        if block_size < 8 or block_size > remaining:
            layout.blocks.append(Block(signature, pos, min(block_size, remaining), kind))
            layout.problems.append(
                f"{kind} block 0x{signature:08X} at offset {pos} claims {block_size} bytes, {remaining} remain"
            )
            layout.truncated = True
            end = size
            break
        if expected is not None and block_size != expected:
            layout.problems.append(
                f"{kind} block 0x{signature:08X} at offset {pos} is {block_size} bytes, MS-SHLLINK fixes {expected}"
            )
        layout.blocks.append(Block(signature, pos, block_size, kind))
        pos += block_size
    if end > start:
        layout.section("extra_data", start, end - start)
    return end


def decode_sections(head: bytes, layout: Layout) -> dict[str, Any]:
    """Each section through LnkParse3; a section it cannot decode becomes a problem, not a failure."""
    meta: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if layout.file_size >= HEADER_SIZE:
            meta["header"] = _guard(layout, "header", lambda: _header(head))
        if layout.id_items:
            meta["id_list"] = [
                _guard(layout, f"shell item {n}", lambda o=o: _shell_item(head, o))
                for n, (o, _) in enumerate(layout.id_items)
            ]
            meta["id_list_path"] = _id_list_path(meta["id_list"])
        if layout.link_info is not None:
            offset, size = layout.link_info
            meta["link_info"] = _guard(layout, "LinkInfo", lambda: _link_info(head[offset : offset + size]))
        meta["strings"] = dict(layout.strings)
        extra: dict[str, Any] = {}
        for block in layout.blocks:
            decoded = _guard(layout, f"{block.kind} block", lambda b=block: _extra_block(head, b)) or {}
            decoded.update(offset=block.offset, size=block.size, signature=f"0x{block.signature:08X}")
            if block.kind == "unknown":
                extra.setdefault("unknown", []).append(decoded)
            else:
                extra[block.kind] = decoded
        meta["extra"] = extra
    parser_warnings = list(dict.fromkeys(str(w.message)[:300] for w in caught))
    if parser_warnings:
        meta["parser_warnings"] = parser_warnings[:20]
    return meta


def _guard(layout: Layout, what: str, decode: Callable[[], Any]) -> Any:
    try:
        return decode()
    except Exception as err:
        layout.problems.append(f"{what} could not be decoded: {type(err).__name__}: {err}"[:300])
        return None


def _header(head: bytes) -> dict[str, Any]:
    from LnkParse3.lnk_header import LnkHeader

    header = LnkHeader(indata=head[:HEADER_SIZE])
    show = _u32(head, 60)
    return {
        "link_flags": header.link_flags(),
        "file_attributes": header.file_flags(),
        "created": header.creation_time(),
        "accessed": header.access_time(),
        "modified": header.write_time(),
        "target_size": header.file_size(),
        "icon_index": header.icon_index(),
        "show_command": show,
        "show_command_name": SHOW_COMMANDS.get(show, f"SW_SHOWNORMAL (value {show} is treated as normal)"),
        "hotkey": header.hot_key(),
    }


def _shell_item(head: bytes, offset: int) -> dict[str, Any]:
    from LnkParse3.target_factory import TargetFactory

    target_class = TargetFactory(indata=head[offset:]).target_class()
    if target_class is None:
        return {"class": "terminal"}
    item = target_class(indata=head[offset:]).as_item()
    if item.get("class") == "File entry":
        long_name = _long_name(head[offset : offset + _u16(head, offset)])
        if long_name:
            item["long_name"] = long_name
    return item


def _long_name(item: bytes) -> str | None:
    """The Unicode long name from a file entry's BEEF0004 extension block (the primary name may be 8.3)."""
    signature = item.find(b"\x04\x00\xef\xbe")
    if signature < 4:
        return None
    block = signature - 4
    block_size, version = struct.unpack_from("<HH", item, block)
    if version < 3:
        return None
    name_at = block + (46 if version >= 9 else 42 if version == 8 else 38 if version == 7 else 20)
    raw = item[name_at : block + block_size]
    end = next((i for i in range(0, len(raw) - 1, 2) if raw[i : i + 2] == b"\x00\x00"), None)
    if not end:
        return None
    return _escape_surrogates(raw[:end].decode("utf-16-le", "surrogatepass"))


def _id_list_path(items: list[dict[str, Any] | None]) -> str:
    parts: list[str] = []
    for item in items:
        if not item:
            parts.append("<undecodable item>")
            continue
        kind = item.get("class", "")
        if kind == "Root Folder":
            guid = str(item.get("guid", "")).upper()
            if guid != MY_COMPUTER:
                parts = [ROOT_FOLDERS.get(guid, f"::{{{guid}}}")]
        elif kind == "Volume Item":
            name = item.get("volume_name")
            parts = [name.rstrip("\\")] if name else [f"::{{{item.get('volume_identifier')}}}"]
        elif kind == "File entry":
            parts.append(item.get("long_name") or item.get("primary_name") or "?")
        elif kind == "Network location" and item.get("location"):
            parts = [item["location"]]
        elif kind == "Control panel CPL file" and item.get("cpl_file_path"):
            parts = [item["cpl_file_path"]]
        elif isinstance(item.get("file_entry"), dict):
            parts.append(item["file_entry"].get("primary_name") or "?")
        elif kind != "terminal":
            parts.append(f"<{kind}>")
    return "\\".join(p for p in parts if p)


def _link_info(raw: bytes) -> dict[str, Any]:
    from LnkParse3.info_factory import InfoFactory
    from LnkParse3.lnk_info import LnkInfo

    info_class = InfoFactory(LnkInfo(indata=raw)).info_class()
    if info_class is None:
        return {"location": "none"}
    info = info_class(indata=raw)
    fields: dict[str, Any] = {"location": info.location(), "flags": info.flags()}

    def take(name: str, read: Callable[[], Any]) -> None:
        try:
            value = read()
        except Exception:
            return
        if value not in (None, ""):
            fields[name] = _escape_surrogates(value) if isinstance(value, str) else value

    take("local_base_path", info.local_base_path)
    take("local_base_path_unicode", info.local_base_path_unicode)
    take("common_path_suffix", info.common_path_suffix)
    take("common_path_suffix_unicode", info.common_path_suffix_unicode)
    if fields["location"] == "Local":
        take("drive_type", info.drive_type)
        take("drive_serial_number", info.drive_serial_number)
        take("volume_label", info.volume_label)
        take("volume_label_unicode", info.volume_label_unicode)
    else:
        take("net_name", info.net_name)
        take("net_name_unicode", info.net_name_unicode)
        take("network_provider_type", info.network_provider_type)
        if info.common_network_relative_link_flags() & 0x1:  # ValidDevice: only then is there a device name
            take("device_name", info.device_name)
            take("device_name_unicode", info.device_name_unicode)
    return fields


def _extra_block(head: bytes, block: Block) -> dict[str, Any]:
    from LnkParse3.extra_factory import ExtraFactory

    raw = head[block.offset : block.offset + block.size]
    decoded: dict[str, Any] = {}
    if block.kind == "unknown":
        decoded["sha256"] = hashlib.sha256(raw[8:]).hexdigest()
        return decoded
    extra_class = ExtraFactory(indata=raw).extra_class()
    if extra_class is not None:
        decoded = extra_class(indata=raw).as_dict()
    if block.kind == "tracker":
        decoded.update(_droid_facts(decoded))
    elif block.kind == "known_folder":
        decoded["known_folder_name"] = KNOWN_FOLDERS.get(
            str(decoded.get("known_folder_id", "")).upper(), "unknown"
        )
    elif block.kind == "special_folder":
        decoded["special_folder_name"] = SPECIAL_FOLDERS.get(decoded.get("special_folder_id", -1), "unknown")
    elif block.kind == "property_store":
        # Explorer records the creating account's SID there: another pivot across a campaign
        sids = sorted(set(_SID.findall(str(decoded.get("property_store", "")))))
        if sids:
            decoded["user_sids"] = sids
    return decoded


def _droid_facts(tracker: dict[str, Any]) -> dict[str, Any]:
    """MAC address and creation time carried by version-1 droid GUIDs: pivots across a campaign."""
    found: dict[str, Any] = {}
    for key, label in (("droid_file_identifier", "droid"), ("birth_droid_file_identifier", "birth_droid")):
        try:
            guid = uuid.UUID(str(tracker.get(key)))
        except ValueError:
            continue
        if guid.version != 1:
            continue
        node = guid.node
        found[f"{label}_mac"] = ":".join(f"{(node >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))
        found[f"{label}_mac_is_random"] = bool(node & 0x010000000000)  # multicast bit: no real NIC
        with suppress(OverflowError):  # a forged timestamp past year 9999
            found[f"{label}_time"] = datetime(1582, 10, 15, tzinfo=UTC) + timedelta(
                microseconds=guid.time // 10
            )
    return found


def resolve_target(meta: dict[str, Any], layout: Layout) -> dict[str, Any]:
    """Every target the shortcut names, and the one Windows starts: environment block, IDList, LinkInfo, relative path."""
    sources: dict[str, str] = {}
    environment = meta.get("extra", {}).get("environment") or {}
    env_path = environment.get("target_unicode") or environment.get("target_ansi")
    if env_path:
        sources["environment block"] = env_path
    id_path = meta.get("id_list_path")
    if id_path:
        sources["IDList"] = id_path
    info = meta.get("link_info") or {}
    suffix = info.get("common_path_suffix_unicode") or info.get("common_path_suffix") or ""
    if info.get("location") == "Local" and (
        info.get("local_base_path_unicode") or info.get("local_base_path")
    ):
        sources["LinkInfo"] = (info.get("local_base_path_unicode") or info["local_base_path"]) + suffix
    elif info.get("location") == "Network" and (info.get("net_name_unicode") or info.get("net_name")):
        share = info.get("net_name_unicode") or info["net_name"]
        sources["LinkInfo"] = share + ("\\" + suffix if suffix else "")
    if layout.strings.get("relative_path"):
        sources["relative path"] = layout.strings["relative_path"]
    order = ["IDList", "LinkInfo", "relative path", "environment block"]
    if layout.flags & HAS_EXP_STRING:
        order.insert(0, "environment block")
    filesystem = [
        s for s in order if s in sources and not sources[s].startswith("::") and "<" not in sources[s]
    ]
    chosen = (filesystem or [s for s in order if s in sources] or [""])[0]
    path = sources.get(chosen, "")
    return {"path": path, "source": chosen, "expanded": expand_environment(path), "sources": sources}


def structure_metadata(layout: Layout) -> dict[str, Any]:
    return {
        "file_size": layout.file_size,
        "lnk_size": layout.end,
        "link_flags_raw": f"0x{layout.flags:08X}",
        "sections": layout.sections,
        "blocks": [
            {"kind": b.kind, "signature": f"0x{b.signature:08X}", "offset": b.offset, "size": b.size}
            for b in layout.blocks
        ],
        "string_counts": layout.string_counts,
        "problems": layout.problems,
        "notes": layout.notes,
    }
