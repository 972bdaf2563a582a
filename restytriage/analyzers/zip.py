"""ZIP archives: every member, read from the archive's own records and unpacked under the limits.

`restytriage.zipformat` reads the records the way each kind of reader does; this analyzer decides
what to unpack (each data range once, hidden and recovered members too), tries the passwords and
judges what the records and the members say about the archive. Decryption uses pyzipper's ZipCrypto
and WinZip AES decrypters; decompression goes through the bounded streaming decoders of
`restytriage.decoders`. Member names are shown, never used as paths.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from restytriage import findings
from restytriage.analysis import Analysis, Child, Context, Item
from restytriage.blob import Blob, OutOfTime
from restytriage.containers import delivered_kind, listing, report_exhausted
from restytriage.decoders import (
    Decoder,
    Inflate,
    Native,
    Progress,
    Stored,
    ZipLzma,
    copy_range,
    is_zero_padding,
    pump,
)
from restytriage.zipformat import (
    AES_MAC,
    AES_SALT,
    FLAG_DESCRIPTOR,
    FLAG_ENCRYPTED,
    FLAG_MASKED_HEADERS,
    FLAG_PATCHED,
    FLAG_STRONG,
    METHODS,
    ZIPCRYPTO_HEADER,
    ArchiveBytes,
    EndRecord,
    Entry,
    attach_local,
    central_entries,
    describe_entry,
    describe_overlaps,
    find_end_record,
    local_entries,
)

NAME = "zip"
TYPES = frozenset({"zip"})

_DECODERS: dict[int, Callable[[], Decoder]] = {
    0: Stored,
    8: Inflate,
    12: lambda: Native(bz2.BZ2Decompressor()),
    14: ZipLzma,
    95: lambda: Native(lzma.LZMADecompressor(lzma.FORMAT_XZ)),
}
MAX_REPAIRED_BYTES = 64 << 20  # a damaged Office package is rebuilt in memory only up to this size
ARCHIVE_TYPES = frozenset(["zip", "rar", "7z", "cab", "iso", "gzip", "bzip2", "xz", "tar"])


def analyze(item: Item, ctx: Context) -> Analysis:
    out = Analysis(NAME)
    with item.blob.open() as handle:
        archive = _Archive(ctx, out, ArchiveBytes(handle, item.blob.size))
        try:
            archive.read_structure()
            archive.unpack_members()
            archive.rebuild_office_document(PurePosixPath(item.name.replace("\\", "/")).name)
            archive.carve_outside_data()
        except OutOfTime as hit:  # report what was read and unpacked so far
            out.findings.append(findings.make(hit.finding_id, NAME, hit.evidence))
        archive.report()
    return out


@dataclass
class _CryptInfo:
    """The attributes pyzipper's decrypters read from a ZipInfo."""

    filename: str
    CRC: int
    _raw_time: int
    use_datadescripter: bool
    wz_aes_strength: int | None = None


@dataclass
class _Outcome:
    blob: Blob | None  # None: an extraction limit stopped it (the limit finding is recorded)
    progress: Progress
    complete: bool  # all the data was there and the decoder reached its end
    failed_checks: list[str]
    password: str | None = None


class _Range:
    """A member's bytes as a stream, without ever reading past its extent."""

    def __init__(self, data: ArchiveBytes, start: int, length: int) -> None:
        self._data, self._pos, self._left = data, start, length

    def read(self, size: int) -> bytes:
        chunk = self._data.at(self._pos, min(size, self._left))
        self._pos += len(chunk)
        self._left -= len(chunk)
        return chunk

    def shorten(self, by: int) -> None:
        self._left = max(0, self._left - by)


class _Archive:
    """One archive under analysis: its records, what became of each member, the findings."""

    def __init__(self, ctx: Context, out: Analysis, data: ArchiveBytes) -> None:
        self.ctx, self.out, self.data = ctx, out, data
        self.cap = max(65_536, 4 * ctx.config.limits.max_children)
        self.end: EndRecord | None = None
        self.entries: list[Entry] = []
        self.hidden: list[Entry] = []  # local entries the central directory does not list
        self.rows: list[dict[str, Any]] = []
        self.damage: list[str] = []
        self.prepended = 0  # bytes before the first member
        self.unreferenced: list[tuple[int, int]] = []
        self.delivered: dict[str, list[str]] = {}
        self.child_types: list[str] = []
        self.passwords = list(ctx.config.all_passwords)
        self.opened_with: Counter[str] = Counter()
        self.locked: list[str] = []
        self.unsupported: list[str] = []
        self.checks_failed: dict[str, list[str]] = {}
        self.symlinks: list[str] = []
        self.stopped = ""  # why extraction stopped before the last member
        self.source = "central directory"
        self.central_damaged = (
            False  # entries missing or without local headers: local-only ones are lost, not hidden
        )

    # structure

    def read_structure(self) -> None:
        self.end = find_end_record(self.data)
        if self.end is not None:
            self.entries, problem = central_entries(self.data, self.end, self.cap)
            if problem:
                self.damage.append(problem)
            if len(self.entries) >= self.cap:
                self.out.findings.append(
                    findings.make(
                        "limit.children",
                        NAME,
                        f"central directory lists more than {self.cap:,} entries; the rest were not read",
                    )
                )
        if self.end is None or (not self.entries and self.end.entries):
            self.damage.append(
                "no end-of-central-directory record (truncated, or not a whole ZIP)"
                if self.end is None
                else "the central directory is not where the end record says"
            )
            self.source = "local headers"
            self.entries = local_entries(self.data, 0, self.data.size, self.cap, 0)
            if self.entries:
                self.damage.append(f"{len(self.entries)} member(s) recovered from their local headers")
            return
        for entry in self.entries:
            if not attach_local(self.data, entry):
                self.damage.append(f"member {entry.name!r}: no local header at 0x{entry.header_offset:x}")
        self.central_damaged = bool(self.damage)
        self._find_hidden_entries()

    def _find_hidden_entries(self) -> None:
        """Local entries in the bytes no central entry covers, and what else hides there."""
        assert self.end is not None
        spans = sorted((e.header_offset, e.data_end) for e in self.entries if e.data_end is not None)
        holes, pos = [], 0
        for start, stop in spans:
            if start > pos:
                holes.append((pos, start))
            pos = max(pos, stop)
        if self.end.cd_start > pos:
            holes.append((pos, self.end.cd_start))
        first_member = spans[0][0] if spans else self.end.cd_start
        for start, stop in holes:
            found = local_entries(self.data, start, stop, self.cap, len(self.entries) + len(self.hidden))
            covered = start
            for entry in found:
                # with a damaged central directory these are members it lost, not members it hides
                entry.source = (
                    "local header (central directory damaged)"
                    if self.central_damaged
                    else "local header only"
                )
                self._note_hole(covered, entry.header_offset, first_member)
                covered = max(covered, entry.data_end or entry.header_offset)
            self._note_hole(covered, stop, first_member)
            self.hidden.extend(found)
        if self.central_damaged and self.hidden:
            self.damage.append(f"{len(self.hidden)} member(s) recovered from their local headers")

    def _note_hole(self, start: int, stop: int, first_member: int) -> None:
        if stop <= start:
            return
        if start == 0 and stop <= first_member:
            self.prepended = stop
        elif self.data.at(stop - 16, 16) == b"APK Sig Block 42":
            self.out.metadata["apk_signing_block"] = {"offset": start, "size": stop - start}
        elif not is_zero_padding(self.data.handle, start, stop - start):
            self.unreferenced.append((start, stop - start))

    # members

    def unpack_members(self) -> None:
        seen_data: dict[tuple[int, int, int], int] = {}
        limit = self.ctx.config.limits.max_children
        for entry in [*self.entries, *self.hidden]:
            row = describe_entry(entry)
            self.rows.append(row)
            if self.stopped:
                row["status"] = f"not extracted: {self.stopped}"
                continue
            if entry.is_dir or entry.is_volume_label:
                row["status"] = "directory" if entry.is_dir else "volume label"
                continue
            if entry.data_offset is None:
                row["status"] = "not extracted: no local header"
                continue
            key = (entry.data_offset, entry.compressed_size, entry.method)
            if key in seen_data:  # overlapping entries: the same bytes are not unpacked twice
                row["status"] = f"same data as member #{seen_data[key]}"
                continue
            seen_data[key] = entry.index
            if len(self.out.children) >= limit or self.ctx.exhausted:
                full = len(self.out.children) >= limit
                self.stopped = (
                    "the child limit was reached" if full else "the total unpacked-size limit was reached"
                )
                row["status"] = f"not extracted: {self.stopped}"
                if full:
                    self.out.findings.append(
                        findings.make(
                            "limit.children", NAME, f"only the first {limit} members were extracted"
                        )
                    )
                else:
                    report_exhausted(self.ctx, self.out, "archive members")
                continue
            self._unpack(entry, row)

    def _unpack(self, entry: Entry, row: dict[str, Any]) -> None:
        reason = _unsupported(entry)
        if reason:
            row["status"] = f"not extracted: {reason}"
            unreadable = self.locked if entry.encryption == "PKWARE strong encryption" else self.unsupported
            unreadable.append(f"{entry.name!r} ({reason})")
            return
        outcome = self._open(entry)
        if outcome is None:
            row["status"] = "not extracted: encrypted, no password worked"
            self.locked.append(repr(entry.name))
            return
        if outcome.password is not None:
            row["password"] = outcome.password
            self.opened_with[outcome.password] += 1
        if outcome.blob is None:
            row["status"] = "not extracted: an extraction limit stopped it"
            return
        row["actual_size"] = outcome.progress.produced
        for check in outcome.failed_checks:
            self.checks_failed.setdefault(check, []).append(repr(entry.name))
        if outcome.progress.error or not outcome.complete:
            self.damage.append(
                f"member {entry.name!r}: {outcome.progress.error or 'data ends early'} after {outcome.progress.produced:,} bytes"
            )
        row["status"] = "extracted" if outcome.complete and not outcome.progress.error else "partial"
        if entry.is_symlink:
            target = outcome.blob.read(1024).decode("utf-8", "surrogateescape")
            row["status"], row["symlink_target"] = "symlink", target
            self.symlinks.append(f"{entry.name!r} -> {target!r}")
            self.ctx.budget.release(outcome.blob)
            return
        filetype = self.ctx.identify(outcome.blob, entry.name)
        row["type"] = filetype
        self.child_types.append(filetype)
        kind = delivered_kind(filetype, entry.name)
        if kind:
            self.delivered.setdefault(kind, []).append(entry.name)
        labels = [label for label, on in (
            ("encrypted", bool(entry.flags & FLAG_ENCRYPTED)),
            ("partial", row["status"] == "partial"),
            ("not in central directory", entry.source == "local header only"),
        ) if on]  # fmt: skip
        self.out.children.append(
            Child(entry.name, outcome.blob, path=entry.name, offset=entry.header_offset, labels=labels)
        )

    def rebuild_office_document(self, name: str) -> None:
        """An Office document in a damaged ZIP: Word offers to repair it, and Python's zipfile (which
        the ooxml analyzer reads with) refuses it. Its recovered parts are written into a sound
        package, a child the ooxml analyzer then reads as the document."""
        if not self.damage or not any(c.name.lower() == "[content_types].xml" for c in self.out.children):
            return
        if sum(c.blob.size for c in self.out.children) > MAX_REPAIRED_BYTES:
            self.out.metadata["not_repaired"] = f"parts larger than {MAX_REPAIRED_BYTES:,} bytes in all"
            return
        package = io.BytesIO()
        with zipfile.ZipFile(package, "w", zipfile.ZIP_DEFLATED) as writer:
            for child in self.out.children:
                writer.writestr(child.name, child.blob.read())
        package.seek(0)
        blob = self.ctx.extract(package, "the repaired Office document")
        self.out.flag(
            "zip.damaged_office_document", f"{len(self.out.children)} part(s) recovered into {name!r}"
        )
        if blob is not None:
            self.out.children.append(Child(name, blob, path="repaired package", labels=["repaired"]))

    def _open(self, entry: Entry) -> _Outcome | None:
        """Unpack a member, trying the passwords when it is encrypted; None when none works."""
        if not entry.flags & FLAG_ENCRYPTED:
            return self._attempt(entry, None)
        for password in list(self.passwords):
            outcome = self._attempt(entry, password)
            if outcome is not None:
                self.passwords.remove(password)  # archives use one password: try it first next time
                self.passwords.insert(0, password)
                outcome.password = password
                return outcome
        return None

    def _attempt(self, entry: Entry, password: str | None) -> _Outcome | None:
        assert entry.data_offset is not None
        available = max(0, min(entry.compressed_size, self.data.size - entry.data_offset))
        raw = _Range(self.data, entry.data_offset, available)
        read: Callable[[int], bytes] = raw.read
        mac = b""
        aes = entry.aes if entry.method == 99 else None
        if password is not None:
            decrypter = _decrypter(entry, password.encode("utf-8"), raw, aes)
            if decrypter is None:
                return None
            if aes:
                raw.shorten(AES_MAC)
                mac = self.data.at(entry.data_offset + entry.compressed_size - AES_MAC, AES_MAC)

            def read(size: int) -> bytes:
                return decrypter.decrypt(raw.read(size))

        progress = Progress()
        decoder = _DECODERS[entry.real_method]()
        blob = self.ctx.extract(
            lambda sink: pump(read, decoder, sink.write, self.ctx, progress),
            f"member {entry.name!r}",
            compressed_size=entry.compressed_size,
            consumed=progress.consumed,
        )
        all_there = available == entry.compressed_size
        complete = all_there and not progress.error and (decoder.eof or not entry.self_terminating)
        failed = []
        if complete and entry.checkable and not (aes and aes[0] == 2) and progress.crc != entry.crc:
            failed.append("CRC")
        if complete and entry.checkable and progress.produced != entry.size:
            failed.append("size")
        if mac and complete and not _mac_ok(decrypter, mac):
            failed.append("HMAC")
        if (
            blob is not None
            and password is not None
            and all_there
            and (not complete or {"CRC", "HMAC"} & set(failed))
        ):
            self.ctx.budget.release(blob)  # the password passed the quick check but the data says no
            return None
        return _Outcome(blob, progress, complete, failed)

    def carve_outside_data(self) -> None:
        """Bytes before the first member and after the end record become children of their own."""
        if self.prepended:
            self._carve(0, self.prepended, "prepended data", "prepended")
        if self.end is not None and self.end.end < self.data.size:
            size = self.data.size - self.end.end
            self.out.metadata["appended_bytes"] = size
            if not is_zero_padding(self.data.handle, self.end.end, size):
                head = self.data.at(self.end.end, 2)
                self.out.flag(
                    "zip.appended_data",
                    f"{size:,} bytes after the end of the archive at 0x{self.end.end:x}"
                    + (" (an executable)" if head == b"MZ" else ""),
                )
                self._carve(self.end.end, size, "appended data", "appended")

    def _carve(self, start: int, size: int, name: str, label: str) -> None:
        blob = self.ctx.extract(lambda sink: copy_range(self.data.handle, start, size, sink, self.ctx), name)
        if blob is not None:
            self.out.children.append(
                Child(name, blob, path=f"{label}@0x{start:x}", offset=start, labels=[label])
            )

    # report

    def report(self) -> None:
        out, end = self.out, self.end
        folders = sum(1 for r in self.rows if r.get("status") == "directory")
        files = sum(1 for r in self.rows if r.get("status") not in ("directory", "volume label"))
        listed = self.rows[: 2 * self.ctx.config.limits.max_children]
        out.metadata.update(
            members=len(self.rows),
            files=files,
            directories=folders,
            source=self.source,
            member_list=listed,
        )
        if len(listed) < len(self.rows):
            out.metadata["member_list_truncated"] = True
        out.facts["members"] = f"{files} file(s), {folders} folder(s)"
        if end is not None:
            out.metadata["central_directory"] = {
                "offset": end.cd_start,
                "size": end.cd_size,
                "entries_declared": end.entries,
                "zip64": end.zip64,
            }
            self._report_end(end)
        self._report_structure()
        self._report_contents()

    def _report_end(self, end: EndRecord) -> None:
        if end.comment:
            comment = end.comment.decode("utf-8") if _is_utf8(end.comment) else end.comment.decode("cp437")
            self.out.metadata["comment"] = comment
            self.out.facts["comment"] = comment[:200]
            self.out.flag("zip.comment", f"archive comment: {comment[:200]!r}")
        if end.comment_truncated:
            self.damage.append("the archive comment is cut short (truncated file)")
        if end.disk or end.cd_disk or any(e.disk for e in self.entries):
            self.out.flag(
                "zip.split_archive",
                f"this is disk {end.disk + 1} of a split archive (central directory on disk {end.cd_disk + 1}); "
                "members stored on other parts are missing",
            )
        elif end.shift < 0 and end.cd_start == end.cd_offset and not self.entries:
            self.out.flag(
                "zip.split_archive",
                f"the central directory starts {-end.shift:,} bytes before this file: "
                "the last part of an archive split into pieces (or one missing its beginning)",
            )
        if end.cd_start != end.cd_offset:
            self.out.metadata["offset_shift"] = end.cd_start - end.cd_offset

    def _report_structure(self) -> None:
        out = self.out
        names = Counter(e.name for e in self.entries if not e.is_dir)
        folded = Counter(e.name.replace("\\", "/").lower() for e in self.entries if not e.is_dir)
        exact = sorted(n for n, count in names.items() if count > 1)
        if exact:
            out.flag(
                "zip.duplicate_names",
                f"{len(exact)} name(s) used by several members: {listing(exact)}; readers disagree on which one they extract",
            )
        elif len(folded) < len(names):
            clashes = sorted(n for n, count in folded.items() if count > 1)
            out.flag(
                "zip.duplicate_names",
                f"names that differ only in case overwrite each other on Windows: {listing(clashes)}",
            )
        overlaps = describe_overlaps(self.entries)
        if overlaps:
            out.flag("zip.overlapping_entries", overlaps)
        mismatched = [f"{e.name!r}: {', '.join(e.local_differs)}" for e in self.entries if e.local_differs]
        renamed = [f"{e.name!r} (name field {e.header_name!r})" for e in self.entries if _renamed(e)]
        if mismatched or renamed:
            out.flag(
                "zip.local_header_mismatch",
                "local header differs from the central directory: " + listing(mismatched + renamed),
            )
        if self.hidden and not self.central_damaged:
            out.flag(
                "zip.hidden_entries",
                f"{len(self.hidden)} member(s) only in local headers, not in the central directory: {listing([e.name for e in self.hidden])}",
            )
        if self.unreferenced:
            out.flag(
                "zip.unreferenced_data",
                "bytes no member covers: "
                + listing([f"{size:,} at 0x{start:x}" for start, size in self.unreferenced]),
            )
        if self.prepended:
            head = self.data.at(0, 2)
            out.metadata["prepended_bytes"] = self.prepended
            out.flag(
                "zip.prepended_data",
                f"{self.prepended:,} bytes before the first member"
                + (" (an executable stub: self-extractor?)" if head == b"MZ" else ""),
            )
        comments = [f"{e.name!r}: {e.comment.decode('cp437')[:80]!r}" for e in self.entries if e.comment]
        if comments:
            out.flag("zip.comment", "member comments: " + listing(comments))
        if self.damage:
            out.flag("zip.damaged", listing(self.damage, 6, "; "))

    def _report_contents(self) -> None:
        out = self.out
        encrypted = [e for e in [*self.entries, *self.hidden] if e.flags & FLAG_ENCRYPTED and not e.is_dir]
        if encrypted:
            methods = sorted({e.encryption for e in encrypted})
            opened = ", ".join(f"{p!r}" for p in self.opened_with)
            out.flag(
                "zip.encrypted",
                f"{len(encrypted)} encrypted member(s) ({', '.join(methods)})"
                + (f"; opened with {opened}" if opened else ""),
            )
            out.facts["encryption"] = ", ".join(methods)
            if self.opened_with:
                out.facts["password"] = ", ".join(self.opened_with)
        if self.locked:
            out.flag(
                "zip.encrypted_not_analysed",
                f"content not analysed, no known password: {listing(self.locked)}",
            )
        if self.unsupported:
            out.flag("zip.unsupported_method", f"content not analysed: {listing(self.unsupported)}")
        for check, names in self.checks_failed.items():
            out.flag(
                "zip.size_mismatch" if check == "size" else "zip.crc_mismatch",
                f"{check} does not match for {listing(names)}",
            )
        if self.symlinks:
            out.flag("zip.symlink", listing(self.symlinks))
        for kind, names in sorted(self.delivered.items()):
            out.flag(f"zip.delivers_{kind.replace(' ', '_')}", f"{kind}: {listing(names)}")
        if len(self.child_types) == 1 and self.child_types[0] in ARCHIVE_TYPES:
            out.flag(
                "zip.lone_nested_archive", f"the only file inside is another archive ({self.child_types[0]})"
            )
        if self.stopped:
            out.metadata["stopped"] = self.stopped


def _renamed(entry: Entry) -> bool:
    """A Unicode Path field that changes the extension of a plain-ASCII name: a disguise, not a charset fix."""
    if not entry.header_name or not entry.header_name.isascii():
        return False
    suffix = PurePosixPath(entry.header_name.replace("\\", "/")).suffix.lower()
    return suffix != PurePosixPath(entry.name.replace("\\", "/")).suffix.lower()


def _unsupported(entry: Entry) -> str:
    if entry.flags & FLAG_ENCRYPTED and entry.flags & (FLAG_STRONG | FLAG_MASKED_HEADERS):
        return "encrypted with PKWARE strong encryption (not supported)"
    if entry.flags & FLAG_PATCHED:
        return "compressed patch data (not supported)"
    if entry.method == 99:
        aes = entry.aes
        if aes is None or aes[1] not in AES_SALT:
            return "WinZip AES member without a valid AES extra field"
    if entry.real_method not in _DECODERS:
        return f"compression method {entry.real_method} ({METHODS.get(entry.real_method, 'unknown')}) not supported"
    return ""


def _decrypter(entry: Entry, password: bytes, raw: _Range, aes: tuple[int, int, int] | None) -> Any:
    """pyzipper's decrypter for this member, past its encryption header; None for a wrong password."""
    from pyzipper.zipfile import CRCZipDecrypter
    from pyzipper.zipfile_aes import AESZipDecrypter

    info = _CryptInfo(entry.name, entry.crc, entry.dos_time, bool(entry.flags & FLAG_DESCRIPTOR))
    if aes:
        info.wz_aes_strength = aes[1]
        header = raw.read(AES_SALT[aes[1]] + 2)
        factory: Any = AESZipDecrypter
    else:
        header = raw.read(ZIPCRYPTO_HEADER)
        factory = CRCZipDecrypter
    if len(header) < (AES_SALT[aes[1]] + 2 if aes else ZIPCRYPTO_HEADER):
        return None
    try:
        return factory(info, password, header)
    except RuntimeError:  # pyzipper's "Bad password" on the check byte / verifier
        return None


def _mac_ok(decrypter: Any, mac: bytes) -> bool:
    from pyzipper.zipfile import BadZipFile

    try:
        decrypter.check_hmac(mac)
    except BadZipFile:
        return False
    return True


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
