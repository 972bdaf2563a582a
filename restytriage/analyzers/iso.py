"""ISO 9660 / UDF disc images: every file, under the names Windows shows, copied out under the limits.

Windows mounts an image with a double-click, and before the November 2022 fix the files inside lost
the Mark-of-the-Web: hence the 2022 phishing ISOs holding a shortcut, an executable and a hidden DLL
(RestyLink's earlier waves among them). pycdlib parses the directory trees of each namespace present
(UDF, Joliet, Rock Ridge, plain ISO 9660); names come from the richest one, the order Windows reads
them in, and files another namespace shows differently are reported and analysed too. File bytes
are copied from the image extent by extent, never reading the image whole. The volume descriptors
are read here directly, so a damaged or unsupported image still reports its volume and authoring tool.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, BinaryIO

from restytriage import findings
from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import OutOfTime, Sink
from restytriage.containers import delivered_kind, listing, report_exhausted
from restytriage.decoders import copy_range

NAME = "iso"
TYPES = frozenset({"iso"})

SECTOR = 2048
FIRST_DESCRIPTOR = 16
MAX_DESCRIPTORS = 64
JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")
UDF_RECOGNITION = (b"BEA01", b"NSR02", b"NSR03", b"TEA01", b"BOOT2", b"CDW02")
NAMESPACE_ORDER = ("udf", "joliet", "rock ridge", "iso9660")  # Windows reads UDF, then Joliet
DELIVERY_FINDINGS = {
    "shortcut": "iso.delivers_shortcut",
    "script": "iso.delivers_script",
    "executable": "iso.delivers_executable",
}
VERSION_SUFFIX = re.compile(r";\d*$")


@dataclass
class _Descriptors:
    """The volume descriptor set as the image records it."""

    primary: dict[str, Any] | None = None
    joliet: dict[str, Any] | None = None
    udf: bool = False
    el_torito: bool = False


@dataclass
class _File:
    path: str
    namespace: str
    extents: list[tuple[int, int]]  # (byte offset in the image, length)
    size: int
    hidden: bool
    modified: str | None = None
    only_in: str = ""  # set when the preferred namespace does not show this file

    @property
    def key(self) -> tuple[int, int] | None:
        """Where the data lives: the same data under several names (hard links, namespaces) is one file."""
        return (self.extents[0][0], self.size) if self.extents and self.size else None


@dataclass
class _Tree:
    files: list[_File] = field(default_factory=list)
    directories: int = 0
    hidden_directories: list[str] = field(default_factory=list)
    truncated: bool = False


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with item.blob.open() as handle:
        descriptors = _read_descriptors(handle)
        _report_volume(descriptors, item.blob.size, out)
        image = _Image(item, ctx, out, handle, descriptors)
        try:
            if image.open():
                image.walk()
                image.unpack()
        except OutOfTime as hit:  # report what was read and copied so far
            out.findings.append(findings.make(hit.finding_id, NAME, hit.evidence))
        finally:
            image.close()
        image.report()
    return out


# --- volume descriptors, read directly ----------------------------------------------------------


def _read_descriptors(handle: BinaryIO) -> _Descriptors:
    found = _Descriptors()
    for index in range(FIRST_DESCRIPTOR, FIRST_DESCRIPTOR + MAX_DESCRIPTORS):
        handle.seek(index * SECTOR)
        sector = handle.read(SECTOR)
        if len(sector) < 8:
            break
        kind, ident = sector[0], sector[1:6]
        if ident == b"CD001":
            if kind == 1 and found.primary is None:
                found.primary = _volume_fields(sector, utf16=False)
            elif kind == 2 and sector[88:91] in JOLIET_ESCAPES and found.joliet is None:
                found.joliet = _volume_fields(sector, utf16=True)
            elif kind == 0 and sector[7:30].rstrip(b"\x00 ").startswith(b"EL TORITO"):
                found.el_torito = True
        elif ident in UDF_RECOGNITION:
            found.udf = found.udf or ident.startswith(b"NSR")
            if ident == b"TEA01":
                break
        else:
            break
    return found


def _volume_fields(sector: bytes, utf16: bool) -> dict[str, Any]:
    sector = sector.ljust(SECTOR, b"\x00")  # a descriptor cut by the end of the image: read what is there

    def text(start: int, stop: int) -> str:
        raw = sector[start:stop]
        decoded = raw.decode("utf-16-be", "replace") if utf16 else raw.decode("latin-1")
        return decoded.strip(" \x00")

    fields: dict[str, Any] = {
        "system_id": text(8, 40),
        "volume_id": text(40, 72),
        "volume_set_id": text(190, 318),
        "publisher": text(318, 446),
        "preparer": text(446, 574),
        "application": text(574, 702),
        "created": _descriptor_date(sector[813:830]),
        "modified": _descriptor_date(sector[830:847]),
        "expires": _descriptor_date(sector[847:864]),
        "effective": _descriptor_date(sector[864:881]),
        "space_blocks": struct.unpack_from("<L", sector, 80)[0],
        "block_size": struct.unpack_from("<H", sector, 128)[0],
    }
    return {key: value for key, value in fields.items() if value not in ("", None)}


def _descriptor_date(raw: bytes) -> str | None:
    """ECMA-119 8.4.26.1: 16 ASCII digits and a signed offset from GMT in 15-minute steps."""
    digits = raw[:16]
    if len(raw) < 17 or not digits.isdigit() or not digits.strip(b"0"):
        return None
    try:
        zone = timezone(timedelta(minutes=15 * struct.unpack_from("b", raw, 16)[0]))
        values = [int(digits[a:b]) for a, b in ((0, 4), (4, 6), (6, 8), (8, 10), (10, 12), (12, 14))]
        return datetime(*values, int(digits[14:16]) * 10_000, tzinfo=zone).isoformat()
    except ValueError:
        return digits.decode("ascii")


def _report_volume(descriptors: _Descriptors, image_size: int, out: Analysis) -> None:
    primary, joliet = descriptors.primary, descriptors.joliet
    if primary:
        out.metadata["volume"] = primary
        shown = (joliet or {}).get("volume_id") or primary.get("volume_id")
        if shown:
            out.facts["volume"] = shown
        for key in ("application", "publisher", "preparer"):
            if primary.get(key):
                out.facts[key] = primary[key]
        if primary.get("created"):
            out.facts["created"] = primary["created"]
        declared = primary.get("space_blocks", 0) * primary.get("block_size", SECTOR)
        if declared > image_size:
            out.metadata["truncated_by"] = declared - image_size
    if joliet:
        out.metadata["joliet_volume"] = joliet
    out.metadata["udf"] = descriptors.udf
    if descriptors.el_torito:
        out.metadata["el_torito_boot"] = True


# --- the image, through pycdlib -----------------------------------------------------------------


class _Image:
    def __init__(
        self, item: Item, ctx: Context, out: Analysis, handle: BinaryIO, descriptors: _Descriptors
    ) -> None:
        self.item, self.ctx, self.out, self.handle, self.descriptors = item, ctx, out, handle, descriptors
        self.iso: Any = None
        self.trees: dict[str, _Tree] = {}
        self.primary = ""
        self.damage: list[str] = []
        self.rows: list[dict[str, Any]] = []
        self.delivered: dict[str, list[str]] = {}
        self.hidden_delivered: list[str] = []
        self.hidden_other: list[str] = []
        self.cap = max(65_536, 4 * ctx.config.limits.max_children)
        truncated_by = out.metadata.get("truncated_by")
        if truncated_by:
            self.damage.append(
                f"the image is {truncated_by:,} bytes shorter than its volume descriptor declares (truncated)"
            )

    def open(self) -> bool:
        import pycdlib

        if self.descriptors.primary is None and self.descriptors.udf:
            self.out.flag(
                "iso.unsupported",
                "UDF-only image (no ISO 9660 volume descriptor): pycdlib cannot read its files; content not analysed",
            )
            return False
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(self.handle)
        except Exception as err:  # any parse failure of hostile bytes is a damaged image
            self.damage.append(f"pycdlib cannot open the image: {type(err).__name__}: {err}")
            return False
        self.iso = iso
        return True

    def close(self) -> None:
        if self.iso is not None:
            with contextlib.suppress(Exception):  # closing never matters more than the report
                self.iso.close()

    def walk(self) -> None:
        iso = self.iso
        block = iso.logical_block_size
        walks: dict[str, Callable[[], _Tree]] = {}
        if iso.udf_root is not None:
            walks["udf"] = lambda: self._walk_udf(
                iso.udf_root, iso.udf_main_descs.partitions[0].part_start_location, block
            )
        if iso.joliet_vd is not None:
            walks["joliet"] = lambda: self._walk_records(
                iso.joliet_vd.root_directory_record(), "joliet", block
            )
        if iso.rock_ridge:
            walks["rock ridge"] = lambda: self._walk_records(
                iso.pvd.root_directory_record(), "rock ridge", block
            )
        walks["iso9660"] = lambda: self._walk_records(iso.pvd.root_directory_record(), "iso9660", block)
        for namespace in NAMESPACE_ORDER:
            if namespace not in walks:
                continue
            try:
                self.trees[namespace] = walks[namespace]()
            except Exception as err:  # a broken tree must not hide the others
                self.damage.append(f"{namespace} directory tree unreadable: {type(err).__name__}: {err}")
        self.primary = next((ns for ns in NAMESPACE_ORDER if ns in self.trees), "")

    def _walk_records(self, root: Any, namespace: str, block: int) -> _Tree:
        """ISO 9660 / Joliet / Rock Ridge directory records, with an explicit stack and loops refused."""
        tree = _Tree()
        pending: list[tuple[Any, str, bool]] = [(root, "", False)]
        visited = {root.extent_location()}
        while pending:
            record, path, hidden_above = pending.pop()
            previous_ident = None
            for child in record.children:
                if child.is_dot() or child.is_dotdot():
                    continue
                ident = child.file_identifier()
                if ident == previous_ident and not child.is_dir():
                    continue  # a later extent of a multi-extent file, reached through data_continuation
                previous_ident = ident
                name = _record_name(child, namespace)
                full = f"{path}/{name}" if path else name
                hidden = hidden_above or bool(child.file_flags & 0x01)
                if child.is_dir():
                    tree.directories += 1
                    if child.file_flags & 0x01:
                        tree.hidden_directories.append(full)
                    if child.extent_location() not in visited:
                        visited.add(child.extent_location())
                        pending.append((child, full, hidden))
                else:
                    extents, size = _record_extents(child, block)
                    tree.files.append(_File(full, namespace, extents, size, hidden, _record_date(child)))
                if len(tree.files) + tree.directories >= self.cap:
                    tree.truncated = True
                    return tree
                self.ctx.check_time()
        return tree

    def _walk_udf(self, root: Any, partition_start: int, block: int) -> _Tree:
        from pycdlib.udf import UDFInlineAD

        tree = _Tree()
        pending: list[tuple[Any, str, bool]] = [(root, "", False)]
        visited = {root.extent_location()}
        while pending:
            entry, path, hidden_above = pending.pop()
            for ident in entry.fi_descs.values():
                if ident.is_parent() or ident.file_entry is None:
                    continue
                name = ident.fi.decode(ident.encoding or "latin-1", "backslashreplace")
                full = f"{path}/{name}" if path else name
                hidden = hidden_above or bool(ident.file_characteristics & 0x01)
                child = ident.file_entry
                if child.is_dir():
                    tree.directories += 1
                    if ident.file_characteristics & 0x01:
                        tree.hidden_directories.append(full)
                    if child.extent_location() not in visited:
                        visited.add(child.extent_location())
                        pending.append((child, full, hidden))
                else:
                    size = child.get_data_length()
                    extents = list(_udf_extents(child, size, partition_start, block, UDFInlineAD))
                    tree.files.append(_File(full, "udf", extents, size, hidden, _udf_date(child.mod_time)))
                if len(tree.files) + tree.directories >= self.cap:
                    tree.truncated = True
                    return tree
                self.ctx.check_time()
        return tree

    def unpack(self) -> None:
        if not self.primary:
            return
        primary = self.trees[self.primary]
        for namespace, tree in self.trees.items():
            if tree.truncated:
                self.out.findings.append(
                    findings.make(
                        "limit.children",
                        NAME,
                        f"{namespace} tree holds more than {self.cap:,} entries; the rest were not read",
                    )
                )
        files = list(primary.files)
        shown = {f.key for f in primary.files}
        for namespace, tree in self.trees.items():  # what another reader would show that Windows does not
            if namespace in (self.primary, "rock ridge"):
                continue
            for other in tree.files:
                if other.key is not None and other.key not in shown:
                    other.only_in = namespace
                    files.append(other)
                    shown.add(other.key)
        self._note_namespace_differences()
        copied: dict[tuple[int, int], str] = {}
        limit = self.ctx.config.limits.max_children
        for file in files:
            row: dict[str, Any] = {"path": file.path, "size": file.size}
            if file.extents:
                row["offset"] = file.extents[0][0]
            if file.hidden:
                row["hidden"] = True
            if file.modified:
                row["modified"] = file.modified
            if file.only_in:
                row["only_in"] = file.only_in
            self.rows.append(row)
            if file.key in copied:
                row["status"] = f"same data as {copied[file.key]!r}"
                continue
            if len(self.out.children) > limit or self.ctx.exhausted:
                row["status"] = "not extracted: a limit was reached"
                if self.ctx.exhausted:
                    report_exhausted(self.ctx, self.out, "image files")
                continue
            if file.key is not None:
                copied[file.key] = file.path
            self._copy(file, row)

    def _copy(self, file: _File, row: dict[str, Any]) -> None:
        image_size = self.item.blob.size
        available = sum(max(0, min(length, image_size - start)) for start, length in file.extents)
        blob = self.ctx.extract(
            lambda sink: _copy_extents(self.handle, file.extents, sink, self.ctx), f"file {file.path!r}"
        )
        if blob is None:
            row["status"] = "not extracted: an extraction limit stopped it"
            return
        # pycdlib cuts ISO 9660/Joliet records that run past the end of a truncated image down to what
        # is left, so in a cut image a file reaching its end is a file that lost its tail.
        image_cut = bool(self.out.metadata.get("truncated_by"))
        # A record whose extent starts past the end is cut to nothing by pycdlib (its size is lost).
        partial = (
            available < file.size
            or any(start >= image_size for start, _length in file.extents)
            or (image_cut and any(start + length >= image_size for start, length in file.extents))
        )
        if partial:
            self.damage.append(
                f"{file.path!r} runs past the end of the image: only {available:,} bytes of it are there"
            )
        row["status"] = "partial" if partial else "extracted"
        filetype = self.ctx.identify(blob, file.path)
        row["type"] = filetype
        kind = delivered_kind(filetype, file.path)
        if kind in DELIVERY_FINDINGS:
            self.delivered.setdefault(kind, []).append(file.path)
        if file.hidden:
            (self.hidden_delivered if kind in DELIVERY_FINDINGS else self.hidden_other).append(file.path)
        labels = [
            label
            for label, on in (
                ("hidden", file.hidden),
                ("partial", partial),
                (f"only in {file.only_in}", bool(file.only_in)),
            )
            if on
        ]
        self.out.children.append(
            Child(
                file.path,
                blob,
                path=file.path,
                offset=file.extents[0][0] if file.extents else None,
                labels=labels,
            )
        )

    def _note_namespace_differences(self) -> None:
        """Trees that do not show the same data (Rock Ridge only renames the ISO 9660 records)."""
        shown = {
            ns: {f.key for f in tree.files if f.key} for ns, tree in self.trees.items() if ns != "rock ridge"
        }
        if len(shown) < 2:
            return
        every = set().union(*shown.values())
        paths = {f.key: f.path for tree in self.trees.values() for f in tree.files}
        differences = [
            f"{namespace} lacks {listing(sorted({paths[key] for key in every - keys}), 5)}"
            for namespace, keys in shown.items()
            if every - keys
        ]
        if differences:
            self.out.flag("iso.namespace_mismatch", "; ".join(differences))

    def report(self) -> None:
        out = self.out
        if self.trees:
            out.metadata["namespaces"] = list(self.trees)
            out.metadata["names_from"] = self.primary
            primary = self.trees[self.primary]
            out.metadata["directories"] = primary.directories
            hidden = sum(1 for row in self.rows if row.get("hidden"))
            out.facts["files"] = (
                f"{len(self.rows)} file(s)"
                + (f", {hidden} hidden" if hidden else "")
                + f" ({self.primary} names)"
            )
            out.metadata["files"] = self.rows[: 2 * self.ctx.config.limits.max_children]
            self.hidden_other.extend(primary.hidden_directories)  # hidden where Windows reads the names
        for kind, paths in sorted(self.delivered.items()):
            out.flag(DELIVERY_FINDINGS[kind], f"{kind}: {listing(paths)}")
        if self.hidden_delivered:
            out.flag("iso.hidden_executable", f"hidden: {listing(self.hidden_delivered)}")
        if self.hidden_other:
            out.flag("iso.hidden_file", f"hidden: {listing(self.hidden_other)}")
        if self.damage:
            out.flag("iso.damaged", listing(self.damage, 6, "; "))


def _record_name(record: Any, namespace: str) -> str:
    if namespace == "rock ridge" and record.rock_ridge is not None:
        return record.rock_ridge.name().decode("utf-8", "surrogateescape")
    raw = record.file_identifier()
    name = (
        raw.decode("utf-16-be", "backslashreplace")
        if namespace == "joliet"
        else raw.decode("utf-8", "surrogateescape")
    )
    name = VERSION_SUFFIX.sub("", name)
    return name[:-1] if name.endswith(".") and len(name) > 1 else name  # "A_FILE." has no extension


def _record_extents(record: Any, block: int) -> tuple[list[tuple[int, int]], int]:
    """A file's extents: one, or the chain of a multi-extent file (over 4 GiB)."""
    extents = []
    current, seen = record, set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        length = current.get_data_length()
        if length:  # negative when pycdlib cut a record that starts past the end of the image
            extents.append((current.extent_location() * block, max(0, length)))
        current = current.data_continuation
    return extents, sum(length for _start, length in extents)


def _udf_extents(
    entry: Any, size: int, partition_start: int, block: int, inline_type: type
) -> Iterator[tuple[int, int]]:
    """Where a UDF file's bytes are: its allocation descriptors, or inside its own File Entry."""
    remaining = size
    for descriptor in entry.alloc_descs:
        if remaining <= 0:
            return
        if isinstance(descriptor, inline_type):
            start = descriptor.log_block_num * block + descriptor.offset
            length = min(remaining, descriptor.extent_length)
        else:
            start = (partition_start + descriptor.log_block_num) * block
            length = min(remaining, descriptor.extent_length & 0x3FFFFFFF)
        yield start, length
        remaining -= length


def _record_date(record: Any) -> str | None:
    date = record.date
    try:
        zone = timezone(timedelta(minutes=15 * date.gmtoffset))
        moment = datetime(
            1900 + date.years_since_1900,
            date.month,
            date.day_of_month,
            date.hour,
            date.minute,
            date.second,
            tzinfo=zone,
        )
    except (ValueError, AttributeError, TypeError):
        return None
    return moment.isoformat()


def _udf_date(stamp: Any) -> str | None:
    try:
        zone = timezone(timedelta(minutes=stamp.tz)) if -1440 < stamp.tz < 1440 else UTC
        return datetime(
            stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, tzinfo=zone
        ).isoformat()
    except (ValueError, AttributeError, TypeError):
        return None


def _copy_extents(handle: BinaryIO, extents: list[tuple[int, int]], sink: Sink, ctx: Context) -> None:
    for start, length in extents:
        copy_range(handle, start, length, sink, ctx)
