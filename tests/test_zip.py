"""ZIP analysis on real bytes: structure traps, encryption, bombs, nesting, containment, damage; and the
single-stream compressors that share its decoders."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import sys
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import blob as blob_module
from restytriage.config import Config, Limits
from restytriage.engine import triage, triage_bytes
from restytriage.model import Node, Report, json_schema, to_json, walk
from restytriage.samples import archive_samples as samples
from restytriage.samples.pe_samples import prebuilt

MY_ANALYZERS = {"zip", "iso", "compressed"}


def ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def member_rows(node: Node) -> list[dict]:
    return node.metadata["zip"]["member_list"]


def assert_no_crash(report: Report) -> None:
    errors = [
        (n.name, e.analyzer, e.message)
        for n in walk(report.root)
        for e in n.errors
        if e.analyzer in MY_ANALYZERS
    ]
    assert not errors, errors


def sample(name: str) -> bytes:
    return next(s for s in samples.SAMPLES if s.name == name).build()


# --- structure ---------------------------------------------------------------------------------


def test_ordinary_archive_lists_members_and_skips_folders() -> None:
    report = triage_bytes(samples.benign_notes(), "notes.zip")
    assert report.verdict == "clean"
    children = {c.name: c for c in report.root.children}
    assert set(children) == {"notes/meeting.txt", "notes/todo.txt"}
    assert children["notes/meeting.txt"].sha256 == hashlib.sha256(samples.NOTES).hexdigest()
    rows = {r["name"]: r for r in member_rows(report.root)}
    assert rows["notes/"]["status"] == "directory"
    meeting = rows["notes/meeting.txt"]
    assert meeting["method"] == "deflate" and meeting["status"] == "extracted"
    assert meeting["actual_size"] == meeting["declared_size"] == len(samples.NOTES)
    assert (
        meeting["modified"] == "2022-04-12T08:30:00" and meeting["crc"] == f"{zlib.crc32(samples.NOTES):08x}"
    )
    assert report.root.facts["members"] == "2 file(s), 1 folder(s)"


def test_duplicate_names_keep_both_members() -> None:
    report = triage_bytes(sample("archive_duplicate_names.zip"), "dup.zip")
    assert "zip.duplicate_names" in ids(report)
    assert [c.name for c in report.root.children] == ["readme.txt", "readme.txt"]
    assert len({c.sha256 for c in report.root.children}) == 2


def test_case_only_name_clash_is_a_duplicate_on_windows() -> None:
    data = samples.zip_records(
        [samples.Record.deflated("Report.txt", b"a"), samples.Record.deflated("REPORT.TXT", b"b")]
    )
    finding = next(f for f in triage_bytes(data, "x.zip").root.findings if f.id == "zip.duplicate_names")
    assert "only in case" in finding.evidence


def test_overlapping_entries_are_reported_and_unpacked_once() -> None:
    report = triage_bytes(samples.overlapping(entries=50), "bomb.zip")
    assert {"zip.overlapping_entries", "zip.local_header_mismatch"} <= ids(report)
    overlap = next(f for f in report.root.findings if f.id == "zip.overlapping_entries")
    assert (
        "50 members" in overlap.evidence and "50 of them start at the same local header" in overlap.evidence
    )
    assert len(report.root.children) == 1  # the shared data is not multiplied
    assert report.stats.bytes_unpacked == 1 << 20
    assert sum(1 for r in member_rows(report.root) if r["status"] == "same data as member #0") == 49


def test_member_only_in_local_headers_is_found_and_analysed() -> None:
    report = triage_bytes(sample("archive_hidden_entry.zip"), "x.zip")
    assert {"zip.hidden_entries", "zip.delivers_script"} <= ids(report)
    hidden = next(c for c in report.root.children if c.name == "update.js")
    assert "not in central directory" in hidden.labels
    assert [c.name for c in report.root.children] == ["readme.txt", "todo.txt", "update.js"]


def test_local_header_name_that_contradicts_the_central_directory() -> None:
    report = triage_bytes(sample("archive_name_mismatch.zip"), "x.zip")
    finding = next(f for f in report.root.findings if f.id == "zip.local_header_mismatch")
    assert "'invoice.js'" in finding.evidence
    assert [c.name for c in report.root.children] == ["invoice.pdf"]  # the name Explorer and 7-Zip show


def test_unicode_path_field_that_changes_the_extension() -> None:
    real = b"invoice.exe"
    upath = b"\x01" + zlib.crc32(b"invoice.pdf").to_bytes(4, "little") + real
    extra = (0x7075).to_bytes(2, "little") + len(upath).to_bytes(2, "little") + upath
    data = samples.zip_records([samples.Record.deflated("invoice.pdf", b"MZ", extra=extra)])
    report = triage_bytes(data, "x.zip")
    assert report.root.children[0].name == "invoice.exe"
    assert (
        "name field 'invoice.pdf'"
        in next(f for f in report.root.findings if f.id == "zip.local_header_mismatch").evidence
    )


def test_appended_and_prepended_data_become_children() -> None:
    exe = prebuilt("c_fsum.exe")
    report = triage_bytes(samples.benign_notes() + exe, "x.zip")
    appended = next(c for c in report.root.children if c.name == "appended data")
    assert appended.type == "pe" and appended.size == len(exe) and "zip.appended_data" in ids(report)
    prefixed = triage_bytes(b"junk before the archive " * 4 + samples.benign_notes(), "y.zip")
    assert "zip.prepended_data" in ids(prefixed)
    assert {c.name for c in prefixed.root.children} >= {"prepended data", "notes/meeting.txt"}


def test_trailing_zero_padding_is_not_a_payload() -> None:
    report = triage_bytes(samples.benign_notes() + bytes(4096), "x.zip")
    assert "zip.appended_data" not in ids(report)
    assert report.root.metadata["zip"]["appended_bytes"] == 4096


def test_comments_are_shown() -> None:
    data = samples.zip_records([samples.Record.deflated("a.txt", b"a")], comment=b"password: Q3-2022!")
    report = triage_bytes(data, "x.zip")
    assert report.root.facts["comment"] == "password: Q3-2022!"
    assert "zip.comment" in ids(report)


def test_zip64_local_header_sizes_are_read_from_the_extra_field() -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w") as archive,
        archive.open(zipfile.ZipInfo("big.txt", samples.ZIP_TIME), "w", force_zip64=True) as member,
    ):
        member.write(b"zip64 member\n")
    report = triage_bytes(buffer.getvalue(), "x.zip")
    assert report.root.children[0].size == 13
    assert "zip.local_header_mismatch" not in ids(report)  # 0xFFFFFFFF sizes resolved, not compared raw


def test_symbolic_link_member_is_reported_not_extracted() -> None:
    info = zipfile.ZipInfo("link", samples.ZIP_TIME)
    info.create_system, info.external_attr = 3, (0o120777 << 16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "../../etc/passwd")
    report = triage_bytes(buffer.getvalue(), "x.zip")
    assert "zip.symlink" in ids(report) and not report.root.children
    assert member_rows(report.root)[0]["symlink_target"] == "../../etc/passwd"


# --- encryption --------------------------------------------------------------------------------


def test_zipcrypto_opens_with_the_quarantine_password() -> None:
    report = triage_bytes(sample("archive_quarantine_infected.zip"), "x.zip")
    assert report.root.facts["password"] == "infected"
    child = report.root.children[0]
    assert (
        child.name == "sample_notes.txt" and child.size == len(samples.NOTES) and "encrypted" in child.labels
    )
    assert "zip.encrypted_not_analysed" not in ids(report)


def test_aes_member_opens_and_is_verified() -> None:
    report = triage_bytes(sample("archive_invoice_aes.zip"), "x.zip")
    assert report.root.facts["password"] == "malware" and report.root.facts["encryption"] == "AES-256 (AE-2)"
    assert report.root.children[0].size == len(samples.INERT_SCRIPT)
    assert not {"zip.crc_mismatch", "zip.size_mismatch"} & ids(report)


def test_unknown_password_is_reported_and_the_users_password_opens_it() -> None:
    data = sample("archive_unknown_password.zip")
    locked = triage_bytes(data, "x.zip")
    assert "zip.encrypted_not_analysed" in ids(locked) and not locked.root.children
    opened = triage_bytes(data, "x.zip", Config(passwords=("Q3-2022!",)))
    assert opened.root.facts["password"] == "Q3-2022!"
    assert opened.root.children[0].type == "pdf"


def test_strelka_encrypted_archives(corpus: Path) -> None:
    fixtures = corpus / "strelka" / "fixtures"
    for name in ("test_aes256_password.zip", "test_zip_password.zip"):
        report = triage(fixtures / name)
        assert len(report.root.children) == 4 and report.root.facts["password"] == "password", name
        assert all(c.size == 4015 for c in report.root.children)
    mixed = triage(fixtures / "test_mixedcrypto.zip")
    assert sorted(c.name for c in mixed.root.children) == [
        "test.txt",
        "test_aes256.txt",
        "test_zipcrypto.txt",
    ]
    locked = next(f for f in mixed.root.findings if f.id == "zip.encrypted_not_analysed")
    assert "test_zipcrypto_badpw.txt" in locked.evidence


# --- limits ------------------------------------------------------------------------------------


def test_four_gib_of_zeros_stops_early_without_memory_growth() -> None:
    # Test-only archive: 4 GiB of zeros in one Zip64 member, about 4 MiB of deflate made by
    # repeating one full-flush segment (see deflated_zeros), never written to disk.
    payload, crc = samples.deflated_zeros(4 << 30)
    data = samples.zip_records([samples.Record(b"zeros.bin", payload, crc, 4 << 30)])
    tracemalloc.start()
    started = time.monotonic()
    report = triage_bytes(data, "zeros.zip")
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert "limit.compression_ratio" in ids(report)
    assert elapsed < 10, elapsed
    assert peak < 64 << 20, peak  # the archive itself is ~4 MiB; nothing near the 4 GiB it claims
    assert report.stats.bytes_unpacked < 8 << 20
    row = member_rows(report.root)[0]
    assert row["declared_size"] == 4 << 30 and row["status"].startswith("not extracted")
    assert "Zip64" in row["extra_fields"]


def test_bzip2_member_bomb_is_stopped_by_the_ratio() -> None:
    import bz2

    payload = bz2.compress(bytes(8 << 20))  # 46 bytes: bzip2 hands out its output all at once if let
    data = samples.zip_records([samples.Record(b"zeros.bin", payload, 0, 8 << 20, method=12)])
    report = triage_bytes(data, "x.zip")
    assert "limit.compression_ratio" in ids(report)
    assert report.stats.bytes_unpacked <= 2 << 20


def test_forty_nested_archives_stop_at_the_depth_limit() -> None:
    started = time.monotonic()
    report = triage_bytes(samples.nested(40), "nested.zip")
    assert time.monotonic() - started < 5
    assert {"limit.depth", "zip.lone_nested_archive"} <= ids(report)
    assert max(n.depth for n in walk(report.root)) == Limits().max_depth


def test_member_count_is_capped_at_the_child_limit() -> None:
    records = [samples.Record.deflated(f"f{i:03d}.txt", str(i).encode()) for i in range(30)]
    report = triage_bytes(samples.zip_records(records), "x.zip", Config(limits=Limits(max_children=10)))
    assert len(report.root.children) == 10 and "limit.children" in ids(report)
    assert member_rows(report.root)[-1]["status"] == "not extracted: the child limit was reached"


def test_total_size_limit_stops_further_members() -> None:
    records = [samples.Record.deflated(f"f{i}.bin", os.urandom(256 << 10)) for i in range(8)]
    report = triage_bytes(
        samples.zip_records(records), "x.zip", Config(limits=Limits(max_total_bytes=1 << 20))
    )
    assert "limit.total_bytes" in ids(report)
    assert report.stats.bytes_unpacked <= 1 << 20


# --- containment: names are never paths --------------------------------------------------------


class _WriteAudit:
    """Every file the process opens for writing, creates or renames while active (sys.audit events)."""

    def __init__(self) -> None:
        self.active = False
        self.paths: list[str] = []
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open" and len(args) >= 3:
            path, mode, flags = args[0], args[1], args[2]
            writing = (isinstance(mode, str) and set(mode) & set("wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            if writing and isinstance(path, str | bytes | os.PathLike):
                self.paths.append(os.fsdecode(path))
        elif event in ("os.rename", "os.mkdir", "os.symlink", "os.link") and args:
            self.paths.extend(os.fsdecode(a) for a in args[:2] if isinstance(a, str | bytes | os.PathLike))


@functools.cache
def _audit() -> _WriteAudit:
    """Installed on first use only: an audit hook cannot be removed and sees every event after."""
    return _WriteAudit()


@pytest.mark.parametrize("source", ["sample", "corpus", "corpus-win"])
def test_traversal_names_write_nothing_outside_the_private_temp_folder(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if source == "sample":
        data, name = sample("archive_zip_slip.zip"), "zip_slip.zip"
    else:
        corpus = request.getfixturevalue("corpus")
        path = (
            corpus / "zip-slip" / "archives" / ("zip-slip.zip" if source == "corpus" else "zip-slip-win.zip")
        )
        data, name = path.read_bytes(), path.name
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(blob_module, "IN_MEMORY_MAX", 0)  # every member goes through a temp file
    audit = _audit()
    audit.paths.clear()
    audit.active = True
    try:
        report = triage_bytes(data, name)
    finally:
        audit.active = False
    assert "names.path_traversal" in ids(report)
    written = [Path(p) for p in audit.paths]
    assert written, "members should have been spilled to temp files"
    for path in written:
        assert path.resolve().is_relative_to(tmp_path), path
        assert path.name.startswith("restytriage-") or re.fullmatch(r"blob-\d{6}\.bin", path.name), path
    assert list(tmp_path.iterdir()) == []  # the run's folder is gone


# --- damage and odd input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "finding"),
    [
        (b"", None),
        (b"PK\x03\x04", "zip.damaged"),
        (b"PK\x05\x06" + bytes(18), None),
        (samples.benign_notes()[:-30], "zip.damaged"),
        (samples.benign_notes()[:200], "zip.damaged"),
        (b"PK\x03\x04" + os.urandom(2000), "zip.damaged"),
    ],
)
def test_truncated_empty_and_random_give_a_report(data: bytes, finding: str | None) -> None:
    report = triage_bytes(data, "x.zip")
    jsonschema.validate(json.loads(to_json(report)), json_schema())
    assert_no_crash(report)
    if finding:
        assert finding in ids(report)


def test_truncated_archive_recovers_members_from_local_headers() -> None:
    report = triage_bytes(sample("archive_truncated.zip"), "x.zip")
    assert report.root.metadata["zip"]["source"] == "local headers"
    names = {c.name: c for c in report.root.children}
    assert set(names) == {"report.txt", "notes.txt"}
    assert names["report.txt"].size == len(samples.NOTES) * 40


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then streams members with data descriptors (flag bit 3)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_streamed_archive_cut_before_its_directory(method: int) -> None:
    stream = _Unseekable()
    with zipfile.ZipFile(stream, "w", method) as archive:
        for name, data in (("a.txt", samples.NOTES), ("b.txt", b"second member\n")):
            archive.writestr(samples._info(name, method, 0x20), data)
    whole = bytes(stream.buffer)
    cut = whole[: whole.index(b"PK\x01\x02")]  # no central directory at all
    for data in (whole, cut):
        report = triage_bytes(data, "x.zip")
        assert [(c.name, c.size) for c in report.root.children] == [
            ("a.txt", len(samples.NOTES)),
            ("b.txt", 14),
        ]
        assert not {"zip.crc_mismatch", "zip.size_mismatch", "zip.hidden_entries"} & ids(report)
    assert "zip.damaged" in ids(triage_bytes(cut, "x.zip"))


def test_corrupt_deflate_keeps_what_was_unpacked() -> None:
    good = samples.Record.deflated("a.txt", bytes(range(256)) * 64)
    broken = samples.Record(
        good.name, good.payload[:40] + b"\xff" * 40 + good.payload[80:], good.crc, good.size
    )
    report = triage_bytes(samples.zip_records([broken]), "x.zip")
    assert "zip.damaged" in ids(report)
    assert_no_crash(report)


def test_corkami_methods_and_oddities(corpus: Path) -> None:
    folder = corpus / "corkami" / "zip"
    for name in (
        "store.zip",
        "simple.zip",
        "bz2.zip",
        "lzma.zip",
        "zopfli.zip",
        "zip64.zip",
        "unixdesc.zip",
        "NTFS.zip",
    ):
        report = triage(folder / name)
        assert report.root.children, name
        rows = member_rows(report.root)
        assert all(r["status"] == "extracted" for r in rows), (name, rows)
        assert not {"zip.crc_mismatch", "zip.damaged"} & ids(report), name
    for name in ("implode.zip", "shrunk.zip", "reduced1.zip", "deflate64.zip", "PPMd.zip", "wavpack.zip"):
        assert "zip.unsupported_method" in ids(triage(folder / name)), name
    assert "zip.duplicate_names" in ids(triage(folder / "dual.zip"))
    corkami = triage(folder / "corkami.zip")
    assert "zip.local_header_mismatch" in ids(corkami) and corkami.root.children[0].name == "hello.txt"
    assert "zip.split_archive" in ids(triage(folder / "volume.zip.002"))
    assert triage(folder / "volume.zip.001").root.children[0].name == "Hello.txt"
    assert not ids(triage(folder / "unicode.zip")) & {
        "zip.local_header_mismatch"
    }  # a charset fix, not a disguise
    assert triage(folder / "drive.zip").root.children == []  # a DOS volume label entry


def test_public_archives_never_crash(corpus: Path) -> None:
    paths = [
        *sorted((corpus / "corkami" / "zip").iterdir()),
        *sorted((corpus / "strelka" / "fixtures").glob("*.zip")),
        *sorted((corpus / "dfvfs" / "test_data" / "zip").glob("*.zip")),
        *sorted((corpus / "zip-slip" / "archives").glob("*.zip")),
        corpus / "corkami" / "mocks" / "zip.bin",
        corpus / "corkami" / "mini" / "zip.zip",
    ]
    for path in paths:
        report = triage(path)
        assert_no_crash(report)
    absolute = triage(corpus / "dfvfs" / "test_data" / "zip" / "absolute_paths.zip")
    assert all("names.path_traversal" in {f.id for f in c.findings} for c in absolute.root.children)
    assert "limit.compression_ratio" in ids(triage(corpus / "strelka" / "fixtures" / "test_big.zip"))


def _mutations() -> st.SearchStrategy[bytes]:
    seeds = [samples.benign_notes(), sample("archive_quarantine_infected.zip"), sample("archive_invoice_aes.zip"),
             sample("archive_hidden_entry.zip"), samples.overlapping(entries=3, kernel_size=4096)]  # fmt: skip

    def mutate(seed: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
        data = bytearray(seed)
        for position, value in edits:
            data[position % len(data)] = value
        return bytes(data[: max(1, len(data) - cut)])

    return st.builds(
        mutate,
        st.sampled_from(seeds),
        st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=12),
        st.integers(0, 64),
    )


@settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(_mutations())
def test_mutated_archives_never_break_the_analyzer(data: bytes) -> None:
    assert_no_crash(triage_bytes(data, "mutated.zip"))


# --- single-stream compressors ---------------------------------------------------------------


def test_gzip_unpacks_under_its_own_name() -> None:
    report = triage_bytes(samples.gzipped_as_document(), "Invoice_0722.pdf.gz")
    child = report.root.children[0]
    assert child.name == "Invoice_0722.pdf" and child.type == "pe"
    assert report.root.facts["original name"] == "Invoice_0722.pdf"
    assert "names.executable_as_document" in {f.id for f in child.findings}


def test_concatenated_streams_and_trailing_data() -> None:
    import bz2
    import gzip
    import lzma

    assert (
        triage_bytes(gzip.compress(b"one ", mtime=0) + gzip.compress(b"two", mtime=0), "x.gz")
        .root.children[0]
        .size
        == 7
    )
    assert triage_bytes(bz2.compress(b"one ") + bz2.compress(b"two"), "x.bz2").root.children[0].size == 7
    assert triage_bytes(lzma.compress(b"one ") + lzma.compress(b"two"), "x.xz").root.children[0].size == 7
    tail = prebuilt("c_fsum.exe")
    report = triage_bytes(gzip.compress(b"text", mtime=0) + tail, "x.gz")
    assert "compressed.trailing_data" in ids(report)
    assert {c.name: c.type for c in report.root.children} == {"x": "text", "trailing data": "pe"}
    padded = triage_bytes(gzip.compress(b"text", mtime=0) + bytes(512), "x.tgz")
    assert "compressed.trailing_data" not in ids(padded) and padded.root.children[0].name == "x.tar"


def test_gzip_bomb_and_truncation() -> None:
    import gzip

    bomb = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    assert "limit.compression_ratio" in ids(triage_bytes(bomb, "x.gz"))
    cut = gzip.compress(os.urandom(100_000), mtime=0)[:50_000]
    report = triage_bytes(cut, "x.gz")
    assert "compressed.damaged" in ids(report) and "partial" in report.root.children[0].labels
    assert_no_crash(report)


def test_the_child_limit_extracts_exactly_that_many_members() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        for index in range(5):
            writer.writestr(f"m{index}.txt", f"member {index}\n")
    report = triage_bytes(archive.getvalue(), "five.zip", Config(limits=Limits(max_children=2)))
    statuses = [row["status"] for row in report.root.metadata["zip"]["member_list"]]
    assert statuses[:3] == ["extracted", "extracted", "not extracted: the child limit was reached"]
    assert [c.name for c in report.root.children] == ["m0.txt", "m1.txt"]
    (limit,) = [f for f in report.root.findings if f.id == "limit.children"]
    assert limit.evidence == "only the first 2 members were extracted"
