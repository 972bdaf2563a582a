"""PE traits (pefile): headers, compile time, Rich header, imports grouped by what they enable,
exports, sections, overlay and resources (embedded files become children), TLS callbacks,
Authenticode presence, .NET metadata (dnfile), and DLL side-loading from the names around the file.

pefile runs with fast_load and then one data directory at a time, so a corrupt directory costs only
itself; listings are capped so hostile files (65,535 sections, resource loops) stay cheap. The tables
this module judges by (API name -> capability, side-loaded DLL names) are data: data/pe_traits.toml.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import PureWindowsPath
from typing import Any

from restytriage.analysis import CARVED, UPX_UNPACKED, Analysis, Child, Context, Item
from restytriage.blob import Blob, slice_writer
from restytriage.carve import Buffer, carve_embedded, gaps, is_blank
from restytriage.entropy import shannon_entropy

NAME = "pe"
TYPES = frozenset({"pe"})
ORDER = 50

MAX_SECTIONS = 96  # listed and judged; the count is always reported
MAX_EXPORTS = 1000
MAX_RESOURCES = 512
MAX_TLS_CALLBACKS = 32
MAX_DEBUG_ENTRIES = 16
MAX_RICH_ENTRIES = 64
MAX_WARNINGS = 20
MAX_NET_LIST = 50
MIN_CARVED = 16  # overlay pieces smaller than this (alignment padding) are not worth a node
PACKED_ENTROPY = 7.2  # executable sections this random hold compressed or encrypted code
DYNAMIC_ONLY_MAX = 8  # an import table this small that loads functions by name hides the real ones
DAY_S = 86_400
DELPHI_TIMESTAMP = 0x2A425E19  # 1992-06-19: written by Borland/Delphi linkers, not a build time
LIBRARY_LOADERS = frozenset({"loadlibrarya", "loadlibraryw", "loadlibraryexa", "loadlibraryexw"})
CARVED_TYPES = frozenset(
    [
        "pe",
        "zip",
        "ooxml",
        "ole",
        "cab",
        "rar",
        "7z",
        "gzip",
        "bzip2",
        "xz",
        "rtf",
        "elf",
        "tar",
        "pdf",
        "iso",
        "macho",
        "lnk",
    ]
)

SECTION_CNT_CODE = 0x00000020
SECTION_EXECUTE = 0x20000000
SECTION_READ = 0x40000000
SECTION_WRITE = 0x80000000
FILE_DLL = 0x2000
DEBUG_TYPE_CODEVIEW = 2
DEBUG_TYPE_REPRO = 16
DIR_SECURITY = 4
DIR_COM_DESCRIPTOR = 14
# export, import, resource, debug, TLS, delay import: parsed one by one (pefile's indexes)
DIRECTORIES = (0, 1, 2, 6, 9, 13)


@cache
def _traits() -> dict[str, Any]:
    text = (resources.files("restytriage") / "data" / "pe_traits.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def capability_table() -> dict[str, str]:
    """Lower-case API name -> capability group."""
    groups = _traits()["capabilities"]
    return {api.lower(): group for group, spec in groups.items() for api in spec["functions"]}


@cache
def capability_minimum(group: str) -> int:
    return int(_traits()["capabilities"][group].get("min_functions", 1))


@cache
def sideload_names() -> frozenset[str]:
    return frozenset(name.lower() for name in _traits()["sideload"]["dlls"])


def capability_of(function: str) -> str | None:
    """The group an imported function belongs to; CreateProcessA/W match CreateProcess."""
    table = capability_table()
    found = table.get(function.lower())
    if (
        found is None
        and len(function) > 2
        and function[-1] in "AW"
        and (function[-2].islower() or function[-2].isdigit())
    ):
        found = table.get(function[:-1].lower())
    return found


def analyze(item: Item, ctx: Context) -> Analysis:
    with item.blob.mapped() as data:  # a DLL padded to 200 MiB is mapped, not read into memory
        return _analyze(item, ctx, data)


def _analyze(item: Item, ctx: Context, data: Buffer) -> Analysis:
    import pefile

    out = Analysis(NAME)
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except pefile.PEFormatError as err:
        out.metadata["error"] = str(err)
        out.flag("pe.malformed", f"not a loadable PE: {err}")
        return out
    packed_by_upx = bool((item.metadata.get("upx") or {}).get("packed"))
    # No pe.close(): parsed from bytes, there is no file to release, and close() runs a full
    # gc.collect() that cost most of the analysis time in a worker with a large heap.
    errors = _parse_directories(pe)
    facts = _headers(pe, out)
    functions = _imports(pe, out, packed_by_upx)
    _exports(pe, item, out)
    _sections(pe, data, out, packed_by_upx)
    _overlay(pe, data, ctx, out)
    _resources(pe, data, ctx, out)
    _version_info(pe, out)
    _tls(pe, out)
    _signature(pe, data, out)
    pinvoked = _dotnet(pe, data, out)
    _flag_capabilities(functions + pinvoked, out)
    _sideloading(item, data, out)
    ctx.check_time()
    warnings = pe.get_warnings()
    if warnings:
        out.metadata["warnings"] = warnings[:MAX_WARNINGS]
    if errors:
        out.metadata["directory_errors"] = errors
        out.flag("pe.malformed", "; ".join(errors)[:500])
    out.facts = {**facts, **out.facts}
    return out


def _parse_directories(pe: Any) -> list[str]:
    """Parse each data directory on its own: a corrupt one is reported and the others still read."""
    errors = []
    for index in DIRECTORIES:
        try:
            pe.parse_data_directories(directories=[index])
        except Exception as err:  # pefile raises many types on hostile input
            errors.append(f"data directory {index}: {type(err).__name__}: {err}"[:200])
    return errors


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.decode("utf-8", "backslashreplace")


def _headers(pe: Any, out: Analysis) -> dict[str, str]:
    import pefile

    file_header, optional = pe.FILE_HEADER, pe.OPTIONAL_HEADER
    machine = str(pefile.MACHINE_TYPE.get(file_header.Machine, hex(file_header.Machine))).removeprefix(
        "IMAGE_FILE_MACHINE_"
    )
    subsystem = str(pefile.SUBSYSTEM_TYPE.get(optional.Subsystem, optional.Subsystem)).removeprefix(
        "IMAGE_SUBSYSTEM_"
    )
    is_dll = bool(file_header.Characteristics & FILE_DLL)
    kind = "DLL" if is_dll else "driver" if subsystem == "NATIVE" else "EXE"
    bits = "PE32+" if optional.Magic == 0x20B else "PE32"
    entry = optional.AddressOfEntryPoint
    entry_section = pe.get_section_by_rva(entry)
    debug = _debug(pe)
    timestamp = file_header.TimeDateStamp
    note = judge_timestamp(timestamp, debug["reproducible"], datetime.now(UTC).timestamp())
    compiled = datetime.fromtimestamp(timestamp, UTC).isoformat()
    rich = _rich(pe)
    imphash = pe.get_imphash() if hasattr(pe, "DIRECTORY_ENTRY_IMPORT") else ""
    out.metadata.update(
        format=bits,
        kind=kind,
        machine=machine,
        subsystem=subsystem,
        image_base=optional.ImageBase,
        entry_point={"rva": entry, "section": _section_name(entry_section) if entry_section else None},
        timestamp={"value": timestamp, "utc": compiled, "note": note},
        imphash=imphash,
        rich_header=rich,
        debug=debug["entries"],
    )
    if note == "in the future":
        out.flag("pe.timestamp_future", f"compile time {compiled}")
    _judge_entry_point(pe, entry, entry_section, is_dll, out)
    facts = {
        "PE": f"{bits} {kind}, {machine}, {subsystem}",
        "compiled": compiled + (f" ({note})" if note else ""),
    }
    if imphash:
        facts["imphash"] = imphash
    if debug["pdb"]:
        facts["PDB"] = debug["pdb"]
    return facts


def judge_timestamp(value: int, reproducible: bool, now: float) -> str | None:
    """What a compile timestamp really is, when it is not a build time."""
    if reproducible:
        return "reproducible build: a hash, not a date"
    if value == 0:
        return "zero"
    if value == DELPHI_TIMESTAMP:
        return "fixed value written by Borland/Delphi linkers"
    if value > now + DAY_S:
        return "in the future"
    return None


def _debug(pe: Any) -> dict[str, Any]:
    entries, pdb, reproducible = [], "", False
    for entry in getattr(pe, "DIRECTORY_ENTRY_DEBUG", [])[:MAX_DEBUG_ENTRIES]:
        kind = entry.struct.Type
        reproducible = reproducible or kind == DEBUG_TYPE_REPRO
        record: dict[str, Any] = {"type": kind}
        path = (
            getattr(entry.entry, "PdbFileName", None) if kind == DEBUG_TYPE_CODEVIEW and entry.entry else None
        )
        if path:
            record["pdb"] = _text(path.rstrip(b"\0"))
            pdb = pdb or record["pdb"]
        entries.append(record)
    return {"entries": entries, "pdb": pdb, "reproducible": reproducible}


def _rich(pe: Any) -> dict[str, Any] | None:
    rich = pe.parse_rich_header()
    if not rich:
        return None
    values = rich.get("values") or []
    entries = [
        {"product": comp_id >> 16, "build": comp_id & 0xFFFF, "count": count}
        for comp_id, count in zip(values[0::2], values[1::2], strict=False)
    ]
    return {
        "hash": hashlib.md5(rich.get("clear_data", b"")).hexdigest(),
        "checksum": rich.get("checksum"),
        "entries": entries[:MAX_RICH_ENTRIES],
    }


def _section_name(section: Any) -> str:
    return _text(section.Name.rstrip(b"\0"))


def _judge_entry_point(pe: Any, entry: int, section: Any, is_dll: bool, out: Analysis) -> None:
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    is_dotnet = len(directories) > DIR_COM_DESCRIPTOR and directories[DIR_COM_DESCRIPTOR].VirtualAddress
    if entry == 0 and (is_dll or is_dotnet):
        return  # a DLL without DllMain, or a .NET image the runtime starts itself
    if section is None:
        if pe.sections:  # a sectionless PE runs from its headers by design
            out.flag("pe.entry_point_unusual", f"entry point 0x{entry:x} lies outside every section")
    elif not section.Characteristics & (SECTION_EXECUTE | SECTION_CNT_CODE):
        out.flag(
            "pe.entry_point_unusual", f"entry point in non-executable section {_section_name(section)!r}"
        )


def _imports(pe: Any, out: Analysis, packed_by_upx: bool) -> list[str]:
    from pefile import ordlookup

    listed, functions = [], []
    for attribute, delayed in (("DIRECTORY_ENTRY_IMPORT", False), ("DIRECTORY_ENTRY_DELAY_IMPORT", True)):
        for entry in getattr(pe, attribute, []):
            names = []
            for imported in entry.imports:
                if imported.name:
                    names.append(_text(imported.name))
                elif imported.ordinal is not None:
                    names.append(
                        _text(ordlookup.ordLookup(entry.dll or b"", imported.ordinal, make_name=True))
                    )
            listed.append({"dll": _text(entry.dll), "delayed": delayed, "functions": names})
            functions.extend(names)
    out.metadata["imports"] = listed
    if functions and not packed_by_upx and len(functions) <= DYNAMIC_ONLY_MAX:
        lowered = {f.lower() for f in functions}
        if "getprocaddress" in lowered and lowered & LIBRARY_LOADERS:
            out.flag("pe.dynamic_imports_only", f"{len(functions)} imports: {', '.join(functions)}")
    return functions


def group_capabilities(functions: list[str]) -> dict[str, list[str]]:
    groups: dict[str, set[str]] = {}
    for function in functions:
        group = capability_of(function)
        if group:
            groups.setdefault(group, set()).add(function)
    return {
        group: sorted(names)
        for group, names in sorted(groups.items())
        if len(names) >= capability_minimum(group)
    }


def _flag_capabilities(functions: list[str], out: Analysis) -> None:
    groups = group_capabilities(functions)
    out.metadata["capabilities"] = groups
    for group, names in groups.items():
        shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        out.flag(f"pe.imports_{group}", shown, details={"functions": names})
    if groups:
        out.facts["capabilities"] = ", ".join(group.replace("_", " ") for group in groups)


def _exports(pe: Any, item: Item, out: Analysis) -> None:
    directory = getattr(pe, "DIRECTORY_ENTRY_EXPORT", None)
    if directory is None:
        return
    own_name = _text(directory.name) if getattr(directory, "name", None) else ""
    symbols = [
        {
            "ordinal": symbol.ordinal,
            "name": _text(symbol.name) if symbol.name else None,
            "forwarder": _text(symbol.forwarder) if symbol.forwarder else None,
            "rva": symbol.address,
        }
        for symbol in directory.symbols[:MAX_EXPORTS]
    ]
    forwarded = [s for s in symbols if s["forwarder"]]
    out.metadata["exports"] = {"dll_name": own_name, "count": len(directory.symbols), "symbols": symbols}
    out.facts["exports"] = f"{len(directory.symbols)}" + (
        f" ({len(forwarded)} forwarded)" if forwarded else ""
    )
    stems = {_stem(own_name), _stem(item.name)} - {""}
    proxied = [s for s in forwarded if _forwards_to_itself(s["forwarder"], stems)]
    if proxied:
        example = proxied[0]
        out.flag(
            "pe.proxy_dll",
            f"{len(proxied)} of {len(symbols)} exports forwarded to a DLL of its own name, "
            f"e.g. {example['name'] or example['ordinal']} -> {example['forwarder']}",
            details={"forwarders": [s["forwarder"] for s in proxied[:20]]},
        )


def _stem(name: str) -> str:
    base = PureWindowsPath(name.replace("/", "\\")).name.lower()
    return base.rsplit(".", 1)[0] if "." in base else base


def _forwards_to_itself(forwarder: str, own_stems: set[str]) -> bool:
    """A proxy DLL hands its exports on to the real DLL it is named after, which must be another file:
    by full path (C:\\Windows\\System32\\version.X) or by a renamed copy (version_orig.X). A bare
    forward to its own name would only loop back to itself."""
    module = forwarder.rsplit(".", 1)[0]
    target = _stem(module + ".dll")
    if "\\" in module or "/" in module:
        return target in own_stems
    return any(len(stem) >= 4 and target != stem and target.startswith(stem) for stem in own_stems)


def _sections(pe: Any, data: Buffer, out: Analysis, packed_by_upx: bool) -> None:
    listed = []
    for section in pe.sections[:MAX_SECTIONS]:
        flags = section.Characteristics
        executable = bool(flags & (SECTION_EXECUTE | SECTION_CNT_CODE))
        writable = bool(flags & SECTION_WRITE)
        start = section.PointerToRawData
        listed.append(
            {
                "name": _section_name(section),
                "virtual_address": section.VirtualAddress,
                "virtual_size": section.Misc_VirtualSize,
                "raw_offset": section.PointerToRawData,
                "raw_size": section.SizeOfRawData,
                "entropy": round(shannon_entropy(data, start, start + section.SizeOfRawData), 3),
                "flags": "".join(
                    c for c, on in (("r", flags & SECTION_READ), ("w", writable), ("x", executable)) if on
                ),
            }
        )
    out.metadata["sections"] = listed
    declared = pe.FILE_HEADER.NumberOfSections
    out.metadata["section_count"] = declared  # pefile reads at most 2,048 of them
    if declared > MAX_SECTIONS:
        out.flag("pe.many_sections", f"{declared:,} sections declared; the first {MAX_SECTIONS} are listed")
    beyond = [s for s in listed if s["raw_offset"] + s["raw_size"] > len(data)]
    if beyond:
        out.flag(
            "pe.section_beyond_file",
            f"in a {len(data):,}-byte file: "
            + ", ".join(
                f"{s['name']!r} {s['raw_size']:,} bytes at 0x{s['raw_offset']:x}" for s in beyond[:4]
            ),
        )
    if packed_by_upx:
        return  # the UPX finding explains writable code and near-random data; no second signal for it
    writable_code = [s["name"] for s in listed if "w" in s["flags"] and "x" in s["flags"]]
    if writable_code:
        out.flag("pe.wx_section", f"writable and executable: {', '.join(writable_code[:8])}")
    random_code = [
        s for s in listed if "x" in s["flags"] and s["raw_size"] >= 1024 and s["entropy"] >= PACKED_ENTROPY
    ]
    if random_code:
        shown = ", ".join(f"{s['name']} ({s['entropy']:.2f} bits/byte)" for s in random_code[:4])
        out.flag("pe.packed_section", shown)


def _overlay(pe: Any, data: Buffer, ctx: Context, out: Analysis) -> None:
    """Data past the end of the image, without the Authenticode signature that lives there too; the
    files carved from it (and the bytes no file explains) become children."""
    start = pe.get_overlay_data_start_offset()
    if start is None:
        return
    signature = _signature_span(pe, len(data))
    if signature is not None and signature[0] < start:
        signature = None  # a signature inside the image (malformed) does not split the overlay
    pieces = [(start, len(data))] if signature is None else [(start, signature[0]), (signature[1], len(data))]
    described = []
    for begin, end in pieces:
        if end <= begin:
            continue
        record: dict[str, Any] = {
            "offset": begin,
            "size": end - begin,
            "entropy": round(shannon_entropy(data, begin, end), 3),
        }
        described.append(record)
        if end - begin < MIN_CARVED or is_blank(data, begin, end):
            record["padding"] = True
            continue
        if signature is not None and begin >= signature[1]:
            out.flag(
                "pe.data_after_signature",
                f"{end - begin:,} bytes at 0x{begin:x} after the Authenticode signature",
            )
        record["files"] = _carve(
            data, (begin, end), ("overlay", "overlay", "the overlay"), ctx, out, keep_gaps=True
        )
    if described:
        out.metadata["overlay"] = described
        out.facts["overlay"] = "; ".join(
            f"{d['size']:,} bytes at 0x{d['offset']:x}"
            + (f" ({', '.join(f['type'] for f in d['files'])})" if d.get("files") else "")
            for d in described
        )


def _carve(
    data: Buffer,
    span: tuple[int, int],
    where: tuple[str, str, str],
    ctx: Context,
    out: Analysis,
    keep_gaps: bool,
) -> list[dict[str, Any]]:
    """Children for the files embedded in data[begin:end] (restytriage.carve), and for the bytes
    between them when `keep_gaps`; `where` is (label, child name prefix, wording for evidence).
    Returns what was found, for the metadata."""
    begin, end = span
    label, prefix, wording = where
    carved = carve_embedded(data, start=begin, stop=end)
    pieces = [(c.offset, c.size, c.extension, c.type, c.description) for c in carved]
    if keep_gaps:
        pieces += [
            (offset, size, "", "data", "bytes no known file explains")
            for offset, size in gaps(carved, begin, end)
            if size >= MIN_CARVED and not is_blank(data, offset, offset + size)
        ]
    found = []
    for offset, size, extension, kind, description in sorted(pieces):
        if ctx.exhausted:
            break
        ctx.check_time()
        found.append({"offset": offset, "size": size, "type": kind, "description": description})
        if kind == "pe":
            out.flag("pe.embedded_executable", f"{description} in {wording} at 0x{offset:x}")
        blob = ctx.extract(slice_writer(data, offset, offset + size), f"{wording}, data at 0x{offset:x}")
        if blob is not None:
            name = f"{prefix}@0x{offset:x}" + (f".{extension}" if extension else "")
            out.children.append(Child(name, blob, path=name, offset=offset, labels=[label, CARVED]))
    return found


def _signature_span(pe: Any, file_size: int) -> tuple[int, int] | None:
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    if len(directories) <= DIR_SECURITY:
        return None
    entry = directories[DIR_SECURITY]
    if not entry.Size or entry.VirtualAddress >= file_size:
        return None
    return entry.VirtualAddress, min(file_size, entry.VirtualAddress + entry.Size)


def _resources(pe: Any, data: Buffer, ctx: Context, out: Analysis) -> None:
    """Every resource with its size, entropy and content type; a resource that is a file of its own
    (a PE, an archive, a document) becomes a child, and so do files carved from inside the others."""
    import pefile

    root = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    if root is None:
        return
    listed: list[dict[str, Any]] = []
    for type_label, name_label, lang, rva, size in _resource_leaves(root):
        if len(listed) >= MAX_RESOURCES:
            out.metadata["resources_truncated"] = True
            break
        ctx.check_time()
        record: dict[str, Any] = {
            "type": type_label,
            "name": name_label,
            "lang": lang,
            "rva": rva,
            "size": size,
        }
        listed.append(record)
        try:
            offset = pe.get_offset_from_rva(rva)
        except pefile.PEFormatError:
            offset = -1
        if not 0 <= offset < len(data) or size <= 0:
            record["note"] = "data outside the file"
            continue
        end = min(len(data), offset + size)
        kind = ctx.identify(Blob.of(data[offset : min(end, offset + 65536)]))
        record.update(offset=offset, entropy=round(shannon_entropy(data, offset, end), 3), content=kind)
        where = f"resource {type_label}/{name_label}"
        path = f"rsrc/{type_label}/{name_label}/{lang}"
        if kind not in CARVED_TYPES:
            files = _carve(data, (offset, end), ("resource", path, where), ctx, out, keep_gaps=False)
            if files:
                record["files"] = files
            continue
        if kind == "pe":
            out.flag("pe.embedded_executable", f"an executable in {where}")
        blob = ctx.extract(slice_writer(data, offset, end), where)
        if blob is not None:
            out.children.append(Child(path, blob, path=path, offset=offset, labels=["resource"]))
    out.metadata["resources"] = listed


def _resource_leaves(root: Any):
    """(type, name, language, rva, size) of every resource, walking the three directory levels."""
    import pefile

    for type_entry in getattr(root, "entries", []):
        type_label = _resource_label(type_entry, pefile.RESOURCE_TYPE)
        for name_entry in getattr(getattr(type_entry, "directory", None), "entries", []):
            name_label = _resource_label(name_entry, {})
            for lang_entry in getattr(getattr(name_entry, "directory", None), "entries", []):
                leaf = getattr(lang_entry, "data", None)
                if leaf is None or getattr(leaf, "struct", None) is None:
                    continue
                language = ((leaf.sublang or 0) << 10) | (leaf.lang or 0)  # the LANGID, e.g. 1033 (en-US)
                yield type_label, name_label, language, leaf.struct.OffsetToData, leaf.struct.Size


def _resource_label(entry: Any, known: dict[Any, Any]) -> str:
    if getattr(entry, "name", None) is not None:
        return str(entry.name)
    label = known.get(entry.id)
    return str(label).removeprefix("RT_") if isinstance(label, str) else str(entry.id)


def _version_info(pe: Any, out: Analysis) -> None:
    strings: dict[str, str] = {}
    for group in getattr(pe, "FileInfo", []) or []:
        for block in group:
            for table in getattr(block, "StringTable", []):
                for key, value in table.entries.items():
                    strings.setdefault(_text(key), _text(value))
    if not strings:
        return
    out.metadata["version_info"] = strings
    shown = [strings.get(k, "") for k in ("FileDescription", "FileVersion", "OriginalFilename")]
    if any(shown):
        out.facts["version info"] = ", ".join(s for s in shown if s)


def _tls(pe: Any, out: Analysis) -> None:
    directory = getattr(pe, "DIRECTORY_ENTRY_TLS", None)
    address = directory.struct.AddressOfCallBacks if directory is not None else 0
    image_base = pe.OPTIONAL_HEADER.ImageBase
    if not address or address < image_base:
        return
    width = 8 if pe.OPTIONAL_HEADER.Magic == 0x20B else 4
    read = pe.get_qword_at_rva if width == 8 else pe.get_dword_at_rva
    callbacks = []
    for index in range(MAX_TLS_CALLBACKS):
        pointer = read(address - image_base + index * width)
        if not pointer:
            break
        section = pe.get_section_by_rva(pointer - image_base) if pointer >= image_base else None
        callbacks.append({"va": pointer, "section": _section_name(section) if section else None})
    out.metadata["tls_callbacks"] = callbacks


def _signature(pe: Any, data: Buffer, out: Analysis) -> None:
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    if len(directories) <= DIR_SECURITY or not directories[DIR_SECURITY].Size:
        return
    offset, size = directories[DIR_SECURITY].VirtualAddress, directories[DIR_SECURITY].Size
    record: dict[str, Any] = {"offset": offset, "size": size, "verified": False}
    out.metadata["authenticode"] = record
    if offset + size > len(data) or size < 8:
        record["note"] = "the signature directory points outside the file"
        out.flag("pe.signature_malformed", f"{size:,} bytes at 0x{offset:x} in a {len(data):,}-byte file")
        out.facts["signature"] = "Authenticode signature present but truncated"
        return
    length, revision, kind = (
        int.from_bytes(data[offset : offset + 4], "little"),
        data[offset + 4 : offset + 6],
        data[offset + 6 : offset + 8],
    )
    record.update(length=length, revision=revision.hex(), certificate_type=int.from_bytes(kind, "little"))
    _verify_signatures(data, data[offset : offset + size], record, out)


def _verify_signatures(data: Buffer, table: bytes, record: dict[str, Any], out: Analysis) -> None:
    """Signer, chain and integrity of each signature (restytriage.authenticode): a signed file that no
    longer hashes to its signed digest, or signs with a certificate it issued itself, is flagged."""
    import yara
    from restytriage import authenticode

    try:
        found = authenticode.signatures(data, table)
    except yara.Error as err:
        record["error"] = str(err)[:200]
        found = []
    if not found:
        out.facts["signature"] = "Authenticode signature present but unreadable"
        return
    record["verified"] = any(s.verified for s in found)
    record["signatures"] = [s.as_metadata() for s in found]
    first = next((s for s in found if s.verified), found[0])
    signer = first.signer.name if first.signer else "no signer certificate"
    issuer = authenticode.common_name(first.signer.issuer) if first.signer else ""
    status = "valid" if first.verified else "INVALID"
    trust = (
        f"chains to {first.trusted_root} (Microsoft root store; revocation not checked)"
        if first.trusted_root
        else "does not chain to a root Microsoft trusts"
    )
    out.facts["signature"] = (
        f"Authenticode {status}: {signer}"
        + (f" (issued by {issuer})" if issuer else "")
        + (f", countersigned {first.countersigned}" if first.countersigned else "")
        + (f" - {trust}" if first.verified else "")
    )
    for signature in found:
        name = signature.signer.name if signature.signer else "no signer certificate"
        if not signature.verified:
            out.flag("pe.signature_invalid", f"signature by {name}: {signature.why_invalid()}")
        if signature.self_signed and signature.signer is not None:
            out.flag("pe.signature_self_signed", f"{name}: issued to and by {signature.signer.subject}")
        elif signature.verified and not signature.trusted_root:
            out.flag("pe.signature_untrusted", f"signature by {name}: no chain to a root Microsoft trusts")


def _dotnet(pe: Any, data: Buffer, out: Analysis) -> list[str]:
    """.NET metadata; returns the P/Invoke targets, which count as imports for the capabilities."""
    directories = pe.OPTIONAL_HEADER.DATA_DIRECTORY
    if len(directories) <= DIR_COM_DESCRIPTOR or not directories[DIR_COM_DESCRIPTOR].VirtualAddress:
        return []
    net_meta, pinvoke = _read_dotnet(data, set(pe.get_warnings()))
    out.metadata["dotnet"] = net_meta
    if net_meta.get("runtime"):
        assembly = net_meta.get("assembly") or net_meta.get("module") or ""
        out.facts[".NET"] = f"{net_meta['runtime']}" + (f", {assembly}" if assembly else "")
    return [p["function"] for p in pinvoke]


def _read_dotnet(data: Buffer, known_warnings: set[str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    import logging

    import dnfile

    logging.getLogger("dnfile").setLevel(logging.CRITICAL)  # its parse warnings go to metadata instead
    try:
        dn = dnfile.dnPE(data=data, fast_load=True)
        dn.parse_data_directories(directories=[DIR_COM_DESCRIPTOR])
    except Exception as err:  # dnfile raises many types on hostile metadata
        return {"error": f"{type(err).__name__}: {err}"[:300]}, []
    try:
        net = dn.net
        if net is None:
            return {"error": "the CLR header does not parse"}, []
        meta: dict[str, Any] = {"flags": sorted(name for name, on in (net.Flags or ()) if on)}
        if net.metadata is not None:
            meta["runtime"] = _text(getattr(net.metadata.struct, "Version", b"") or b"").rstrip("\0")
        tables = net.mdtables
        pinvoke: list[dict[str, str]] = []
        if tables is not None:
            meta["module"] = _first_name(tables.Module)
            meta["assembly"] = _first_name(tables.Assembly)
            meta["references"] = [str(row.Name) for row in (tables.AssemblyRef or [])][:MAX_NET_LIST]
            meta["types"] = tables.TypeDef.num_rows if tables.TypeDef else 0
            meta["methods"] = tables.MethodDef.num_rows if tables.MethodDef else 0
            for row in tables.ImplMap or []:
                scope = getattr(getattr(row, "ImportScope", None), "row", None)
                pinvoke.append(
                    {"function": str(row.ImportName), "dll": str(scope.Name) if scope is not None else ""}
                )
            meta["pinvoke"] = pinvoke[:MAX_NET_LIST]
        warnings = [w for w in dn.get_warnings() if w not in known_warnings]  # pefile's are reported once
        if warnings:
            meta["warnings"] = warnings[:MAX_WARNINGS]
        return meta, pinvoke
    finally:
        dn.close()


def _first_name(table: Any) -> str:
    return str(table[0].Name) if table else ""


def _sideloading(item: Item, data: Buffer, out: Analysis) -> None:
    """A DLL carrying the name of a Windows DLL that programs load from their own folder, delivered
    inside another file; or an EXE shipped beside a DLL it loads (T1574: DLL side-loading)."""
    if UPX_UNPACKED in item.labels:
        return  # the packed node it came from already answered for its name and its neighbours
    kind = out.metadata.get("kind")
    own = PureWindowsPath(item.name.replace("/", "\\")).name.lower()
    if kind == "DLL" and item.depth > 0 and own in sideload_names():
        out.flag("pe.sideload_dll_name", f"{own} delivered inside a {item.parent_type or 'container'}")
        out.facts["side-loading"] = f"{own} is a Windows DLL name programs load from their own folder"
    if kind != "EXE" or not item.siblings:
        return
    neighbours = {
        PureWindowsPath(s.name.replace("/", "\\")).name.lower(): s.name
        for s in item.siblings
        if s.type == "pe"
    }
    imported = {entry["dll"].lower() for entry in out.metadata.get("imports", [])}
    loaded = []
    for dll, shown in neighbours.items():
        if dll in imported or dll.removesuffix(".dll") in imported:
            loaded.append((dll, shown, "imports it"))
        elif _names_in_strings(data, dll):
            loaded.append((dll, shown, "names it in its strings"))
    if not loaded:
        return
    evidence = "; ".join(f"{how} {shown}" for _dll, shown, how in loaded)
    windows_named = [dll for dll, _shown, _how in loaded if dll in sideload_names()]
    out.metadata["sideloads"] = [{"dll": shown, "how": how} for _dll, shown, how in loaded]
    if windows_named:
        out.flag(
            "pe.sideload_host_windows_dll", f"{evidence} ({', '.join(windows_named)} is a Windows DLL name)"
        )
    else:
        out.flag("pe.sideload_host", evidence)
    out.facts["side-loading"] = f"loads {', '.join(shown for _dll, shown, _how in loaded)} shipped beside it"


def _names_in_strings(data: Buffer, dll: str) -> bool:
    ascii_name = dll.encode("ascii", "ignore")
    if len(ascii_name) < 5:
        return False
    wide_name = dll.encode("utf-16-le")
    return bool(re.search(re.escape(ascii_name) + b"|" + re.escape(wide_name), data, re.IGNORECASE))
