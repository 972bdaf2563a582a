"""OLE compound files: Word, Excel and PowerPoint 97-2003 documents and templates, vbaProject.bin,
and the OLE wrapper of encrypted OOXML packages.

Reads what oletools reads: document metadata (author, last saved by, code page, times), the Word FIB
(fDot: template, fEncrypted) and the Excel globals (TEMPLATE, FILEPASS, sheets), encryption
(msoffcrypto-tool with VelvetSweatshop and the configured passwords; the decrypted file becomes a
child), embedded objects (OLE Package payloads, embedded OLE/OOXML documents: children), DDE fields,
Flash objects, and the macros (see `vba.py`). A template whose auto-exec macro writes, downloads or
runs code is T1137.001 persistence material on its own.

`restytriage.oleformat` reads the compound file's structures and those records (by hand where
olefile would not stop on a hostile file: an overstated FAT, looping FAT chains, a storage tree
that loops, property sets); this analyzer opens the file, judges what is read and makes the
children.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import Blob
from restytriage.oleformat import (
    FIB_BASE_SIZE,
    PROPERTY_SET_BYTES,
    PROPERTY_SET_STREAMS,
    WORD_FIB_IDENT,
    WORKBOOK_GLOBALS_BYTES,
    cut_chains,
    document_properties,
    excel_globals,
    fat_chain_loops,
    inventory,
    is_object_storage,
    overstated_fat,
    powerpoint_objects,
    word_fib,
)
from restytriage.vba import MacroSummary, analyze_macros, quiet_oletools

NAME = "ole"
TYPES = frozenset({"ole"})

DEFAULT_PASSWORD = "VelvetSweatshop"  # Excel opens files encrypted with it without asking
MAX_LISTED_ENTRIES = 400
MAX_FLASH_SCAN = 32 << 20  # streams larger than this are not searched for SWF headers
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


def analyze(item: Item, ctx: Context) -> Analysis:
    import olefile

    out = Analysis(NAME)
    overstated = overstated_fat(item.blob.head, item.blob.size)
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
        loops, cuts = fat_chain_loops(ole)
        if loops:
            out.flag("ole.malformed", f"FAT sector chains that loop: {', '.join(loops[:5])}")
            ole.close()
            repaired = ctx.budget.new_temp_path(ctx.temp_dir)
            repaired.write_bytes(cut_chains(path.read_bytes(), ole.sectorsize, cuts))
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


def _on_disk(item: Item, ctx: Context) -> tuple[Path, bool]:
    """A path to the bytes: pcodedmp, XLM extraction and PowerPoint parsing only read files."""
    if item.blob.data is None and item.blob.path is not None:
        return item.blob.path, False
    path = ctx.budget.new_temp_path(ctx.temp_dir)
    path.write_bytes(item.blob.read())
    return path, True


def _analyze(item: Item, ctx: Context, out: Analysis, ole: Any, path: Path) -> None:
    streams, storages, revisited = inventory(ole)
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
    elif revisited:
        # olevba lists the tree recursively and would go round the loop to the recursion limit; a
        # garbage collection that deep cannot even run finalizers (unraisable RecursionErrors).
        out.metadata["macros_error"] = "not read: the storage tree loops, and olevba would follow it"
        if any(p.upper().endswith("VBA/DIR") for p in streams):
            out.flag("ole.vba_unreadable", "a VBA project in a storage tree that loops: not read")
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


def _stream(ole: Any, path: str, out: Analysis) -> BinaryIO | None:
    """A stream's content, or None when its sectors cannot be read (noted in the metadata)."""
    try:
        return ole.openstream(path)
    except Exception as err:  # olefile raises OSError, ValueError or IndexError on broken chains
        out.metadata.setdefault("unreadable_streams", {})[path] = f"{type(err).__name__}: {err}"[:200]
        return None


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
    """SummaryInformation and DocumentSummaryInformation: metadata, facts and a remote template."""
    contents: dict[str, bytes] = {}
    for stream in PROPERTY_SET_STREAMS:
        content = _stream(ole, stream, out) if stream in streams else None
        if content is not None:
            contents[stream] = content.read(PROPERTY_SET_BYTES)
    properties = document_properties(contents)
    if "codepage_name" in properties:
        out.facts["code page"] = f"{properties['codepage'] & 0xFFFF} ({properties['codepage_name']})"
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


def _word_fib(ole: Any, out: Analysis, template: list[str]) -> None:
    """The Word FIB: a template (fDot), the document's language, or a stream that does not hold one."""
    stream = _stream(ole, "WordDocument", out)
    if stream is None:
        return
    head = stream.read(FIB_BASE_SIZE)
    fib = word_fib(head)
    if fib is None:
        out.flag("ole.malformed", f"WordDocument stream of {len(head)} bytes has no complete FIB")
        return
    out.metadata["fib"] = fib
    if fib["wIdent"] != f"0x{WORD_FIB_IDENT:04X}":
        out.flag("ole.malformed", f"WordDocument stream does not start with a FIB (wIdent {fib['wIdent']})")
        return
    if fib["fDot"]:
        template.append("Word template (FIB fDot)")
    if fib["language"]:
        out.facts["language"] = f"{fib['language']} (FIB lid 0x{fib['lid']:04X})"


def _excel_globals(ole: Any, out: Analysis, template: list[str]) -> None:
    """The workbook globals: a template, FILEPASS encryption and the sheets (hidden ones as a fact)."""
    name = "Workbook" if ole.exists("Workbook") else "Book"
    stream = _stream(ole, name, out)
    if stream is None:
        return
    workbook = excel_globals(stream.read(WORKBOOK_GLOBALS_BYTES))
    if workbook.template:
        template.append("Excel template (TEMPLATE record)")
    out.metadata["workbook"] = {"sheets": workbook.sheets, "filepass": workbook.filepass}
    hidden = [
        f"{s['name']} ({s['visibility']} {s['type']})"
        for s in workbook.sheets
        if s["visibility"] != "visible"
    ]
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
            stream.upper() in ("PACKAGE", "CONTENTS")
            and streams[joined] > 0
            and is_object_storage(parent, streams)
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
        for index, data in enumerate(powerpoint_objects(path)):
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
