"""Bombs, traps and hostile names: each ends within its limits with a finding that names the trap.

Covered elsewhere and not repeated here: the 4 GiB single-member ZIP, the 40-level nested ZIP and the
overlapping-entry ZIP (tests/test_zip.py), the lying LNK tracker block (tests/test_lnk.py), entity
bombs and deflate bombs in OOXML and PDF parts (tests/test_ooxml.py, tests/test_pdf.py). Every trap
here is generated in code; the time bounds are hang guards, not benchmarks.
"""

from __future__ import annotations

import io
import re
import struct
import tempfile
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import AuditLog

from restytriage import blob as blob_module
from restytriage.config import Config
from restytriage.engine import triage, triage_bytes
from restytriage.model import Node, Report, to_json, walk
from restytriage.samples import iso_writer
from restytriage.samples.archive_samples import Record, zip_records
from restytriage.samples.cfb_writer import build_cfb
from restytriage.samples.lnk_writer import ShellLink, build
from restytriage.samples.pe_samples import prebuilt

HANG_GUARD_S = 20.0
NO_RULES = Config(builtin_rules=False)


def findings_of(report: Report) -> dict[str, list[str]]:
    """Finding id -> the evidence of each occurrence, over the whole tree."""
    found: dict[str, list[str]] = {}
    for node in walk(report.root):
        for finding in node.findings:
            found.setdefault(finding.id, []).append(finding.evidence)
    return found


def timed(data: bytes, name: str, config: Config = NO_RULES) -> Report:
    """Triage with a hang guard; the report must encode and no analyzer may have failed."""
    started = time.monotonic()
    report = triage_bytes(data, name, config)
    elapsed = time.monotonic() - started
    assert elapsed < HANG_GUARD_S, f"{name}: {elapsed:.1f}s"
    to_json(report)
    errors = [(n.name, e.analyzer, e.message) for n in walk(report.root) for e in n.errors]
    assert not errors, errors
    return report


def _bounded(run: Callable[[], Report]) -> Report:
    """Run with Python allocations traced: a trap must not make the tool hold hundreds of MiB."""
    tracemalloc.start()
    try:
        report = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 << 20, f"{peak:,} bytes at the peak"
    return report


def assert_named(report: Report, finding: str, *words: str) -> None:
    evidence = findings_of(report).get(finding)
    assert evidence, f"{finding} missing: {sorted(findings_of(report))}"
    text = " | ".join(evidence)
    for word in words:
        assert word in text, (finding, word, text)


# --- a ZIP quine ----------------------------------------------------------------------------------------
#
# Russ Cox's construction ("Zip Files All The Way Down", 2010): the member's deflate stream is a
# program of stored blocks (Lit n: print the next n bytes) and fixed-Huffman copies (Rep n: repeat the
# last n bytes), each 5 bytes, that prints the local header, itself and the central directory: the
# member unpacks to the whole archive. The CRC-32 is solved, not searched: it is affine over GF(2).

_LENGTHS = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]  # fmt: skip
_LENGTH_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
_DISTANCES = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769]
_DISTANCE_EXTRA = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]


class _Bits:
    """A deflate bit stream: fields least significant bit first, Huffman codes most significant first."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def field(self, value: int, count: int) -> None:
        self.bits += [(value >> i) & 1 for i in range(count)]

    def code(self, value: int, count: int) -> None:
        self.bits += [(value >> (count - 1 - i)) & 1 for i in range(count)]

    def to_bytes(self, size: int) -> bytes:
        out = bytearray(size)
        for i, bit in enumerate(self.bits):
            out[i // 8] |= bit << (i % 8)
        return bytes(out)


def _lit(n: int) -> bytes:
    """A stored block header announcing n literal bytes (5 bytes when it starts on a byte boundary)."""
    return b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF)


def _rep(n: int, final: bool = False) -> bytes:
    """Repeat the last n bytes: a fixed-Huffman block, then empty ones, in exactly 5 bytes; what padding
    is left (under 3 zero bits) runs into the next stored block's zero header byte. A final one takes
    the bytes it needs."""
    for splits in ([n], [n // 2, n - n // 2]):
        for empty_blocks in range(3):
            bits = _Bits()
            bits.field(int(final), 1)
            bits.field(1, 2)
            for length in splits:
                i = max(k for k, base in enumerate(_LENGTHS) if base <= length)
                if i < 23:  # length symbols 257..279: 7-bit codes 1..23; 280..285: 8-bit from 0xC0
                    bits.code(1 + i, 7)
                else:
                    bits.code(0xC0 + i - 23, 8)
                bits.field(length - _LENGTHS[i], _LENGTH_EXTRA[i])
                j = max(k for k, base in enumerate(_DISTANCES) if base <= n)
                bits.code(j, 5)
                bits.field(n - _DISTANCES[j], _DISTANCE_EXTRA[j])
            bits.code(0, 7)  # end of block
            for _ in range(empty_blocks):
                bits.field(0, 1)
                bits.field(1, 2)
                bits.code(0, 7)
            if final:
                return bits.to_bytes((len(bits.bits) + 7) // 8)
            if 38 <= len(bits.bits) <= 40:
                return bits.to_bytes(5)
    raise ValueError(f"a copy of {n} bytes has no 5-byte encoding")


def zip_quine(name: bytes = b"r.zip") -> bytes:
    """A ZIP whose one member, deflated, unpacks to the archive itself, with a correct CRC."""

    def local(crc: int, csize: int, size: int) -> bytes:
        fields = (b"PK\x03\x04", 20, 0, 0, 8, 0, 0x5421, crc, csize, size, len(name), 0)
        return struct.pack("<4s2B4HL2L2H", *fields) + name

    def central(crc: int, csize: int, size: int, offset: int) -> bytes:
        fields = (
            b"PK\x01\x02",
            20,
            0,
            20,
            0,
            0,
            8,
            0,
            0x5421,
            crc,
            csize,
            size,
            len(name),
            0,
            0,
            0,
            0,
            0x20,
            0,
        )
        entry = struct.pack("<4s4B4HL2L5H2L", *fields) + name
        return entry + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(entry), offset, 0)

    head, tail = len(local(0, 0, 0)), len(central(0, 0, 0, 0))

    def program(prefix: bytes, suffix: bytes) -> bytes:
        a = len(prefix) + 5
        size = next(s for s in range(1, 16) if len(_rep(len(suffix) + s, final=True)) == s)
        b = len(suffix) + size
        last = _rep(b, final=True)
        ops = [
            _lit(a), prefix, _lit(a), _rep(a),  # print the header and the first op, twice
            _lit(5), _rep(a), _lit(5), _lit(5),
            _lit(20), _rep(a), _lit(5), _lit(5), _lit(20), _rep(20),
            _lit(20), _rep(20), _lit(20), _rep(20), _lit(20), _rep(20),
            _lit(20), _rep(20), _lit(0), _lit(0), _lit(b), _rep(20),
            _lit(0), _lit(0), _lit(b), last, suffix, last,  # print the directory and the last op, twice
        ]  # fmt: skip
        return b"".join(ops)

    csize = len(program(bytes(head), bytes(tail)))
    size = head + csize + tail

    def archive(crc: int) -> bytes:
        prefix, suffix = local(crc, csize, size), central(crc, csize, size, head + csize)
        return prefix + program(prefix, suffix) + suffix

    # crc32(archive(x)) = c0 ^ M.x over GF(2); solve x = c0 ^ M.x, i.e. (M + I).x = c0.
    c0 = zlib.crc32(archive(0))
    columns = [zlib.crc32(archive(1 << i)) ^ c0 ^ (1 << i) for i in range(32)]
    rows = [[sum(((columns[i] >> r) & 1) << i for i in range(32)), (c0 >> r) & 1] for r in range(32)]
    pivots: list[int] = []
    for column in range(32):
        pick = next((k for k in range(len(pivots), 32) if rows[k][0] >> column & 1), None)
        if pick is None:
            continue
        k = len(pivots)
        rows[k], rows[pick] = rows[pick], rows[k]
        for other in range(32):
            if other != k and rows[other][0] >> column & 1:
                rows[other][0] ^= rows[k][0]
                rows[other][1] ^= rows[k][1]
        pivots.append(column)
    crc = sum(rows[k][1] << column for k, column in enumerate(pivots))
    data = archive(crc)
    assert zlib.crc32(data) == crc, "no CRC fixed point"
    return data


def test_the_quine_is_a_real_one() -> None:
    data = zip_quine()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # the CRC checks out
        assert archive.read("r.zip") == data


def test_zip_quine_is_unpacked_once_and_named() -> None:
    data = zip_quine()
    report = timed(data, "r.zip")
    (child,) = report.root.children
    assert (child.name, child.sha256, child.duplicate_of) == ("r.zip", report.root.sha256, "0")
    assert not child.children
    assert_named(report, "engine.self_containing", "identical to its container 0")
    assert "zip.crc_mismatch" not in findings_of(report)
    assert report.verdict == "suspicious"
    assert report.stats.bytes_unpacked == len(data)


# --- ISO 9660 directory records that loop or point past the end ------------------------------------------

SECTOR = 2048


def _iso_records(image: bytearray) -> dict[bytes, int]:
    """Offsets of the root directory's records by name."""
    extent, length = struct.unpack_from("<L4xL", image, 16 * SECTOR + 158)  # the PVD's root record
    found, pos = {}, extent * SECTOR
    while pos < extent * SECTOR + length and image[pos]:
        found[bytes(image[pos + 33 : pos + 33 + image[pos + 32]])] = pos
        pos += image[pos]
    return found


def _both_endian(image: bytearray, at: int, value: int) -> None:
    struct.pack_into("<L", image, at, value)
    struct.pack_into(">L", image, at + 4, value)


def _image() -> bytearray:
    files = [iso_writer.IsoFile("docs/readme.txt", b"hello\r\n"), iso_writer.IsoFile("a.txt", b"x" * 3000)]
    return bytearray(iso_writer.build(files, joliet=False))


def iso_directory_loop() -> bytes:
    image = _image()
    root = struct.unpack_from("<L", image, 16 * SECTOR + 158)[0]
    _both_endian(image, _iso_records(image)[b"DOCS"] + 2, root)  # the folder is the root again
    return bytes(image)


def iso_file_past_the_end() -> bytes:
    image = _image()
    record = _iso_records(image)[b"A.TXT;1"]
    _both_endian(image, record + 2, 0x00FFFFFF)  # 32 GiB into a 56 KiB image
    _both_endian(image, record + 10, 0xFFFFFFFF)  # and 4 GiB long
    return bytes(image)


def iso_directory_past_the_end() -> bytes:
    image = _image()
    _both_endian(image, _iso_records(image)[b"DOCS"] + 2, 0x00FFFFFF)
    return bytes(image)


@pytest.mark.parametrize(
    ("make", "evidence"),
    [
        (iso_directory_loop, "form a loop"),
        (iso_file_past_the_end, "'A.TXT' runs past the end of the image"),
        (iso_directory_past_the_end, "pycdlib cannot open the image"),
    ],
)
def test_iso_directory_traps(make: Callable[[], bytes], evidence: str) -> None:
    report = timed(make(), "trap.iso")
    assert_named(report, "iso.damaged", evidence)
    assert report.root.facts.get("volume") == "CDROM"  # what could be read is still reported
    assert report.stats.bytes_unpacked < 1 << 20


# --- OLE sector chains and storage trees that loop --------------------------------------------------------

CFB_SECTOR = 512
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _fat_position(data: bytearray, index: int) -> int:
    fat_sector = struct.unpack_from("<109I", data, 76)[index // 128]
    return CFB_SECTOR + fat_sector * CFB_SECTOR + (index % 128) * 4


def _chain(data: bytearray, start: int) -> list[int]:
    found = []
    while start < 0xFFFFFFFA and len(found) < 1000:
        found.append(start)
        start = struct.unpack_from("<I", data, _fat_position(data, start))[0]
    return found


def _directory_entries(data: bytearray) -> dict[str, int]:
    """Offsets of the directory entries by name."""
    entries = {}
    for sector in _chain(data, struct.unpack_from("<I", data, 48)[0]):
        for index in range(4):
            at = CFB_SECTOR + sector * CFB_SECTOR + index * 128
            entries[data[at : at + 64].decode("utf-16-le", "replace").split("\x00")[0]] = at
    return entries


def _document() -> bytearray:
    return bytearray(build_cfb({"Macros/VBA/dir": b"\x01" * 10, "Data": bytes(range(256)) * 40}))


def ole_stream_chain_loop() -> bytes:
    data = _document()
    sectors = _chain(data, struct.unpack_from("<I", data, _directory_entries(data)["Data"] + 116)[0])
    struct.pack_into("<I", data, _fat_position(data, sectors[-1]), sectors[0])  # last sector -> first
    return bytes(data)


def ole_stream_chain_loop_declaring_4_gib() -> bytes:
    """The same loop under a size of 4 GiB: a reader that trusts the size reads forever."""
    data = bytearray(ole_stream_chain_loop())
    struct.pack_into("<I", data, _directory_entries(data)["Data"] + 120, 0xFFFFFFF0)
    return bytes(data)


def ole_directory_chain_loop() -> bytes:
    data = _document()
    first = struct.unpack_from("<I", data, 48)[0]
    struct.pack_into("<I", data, _fat_position(data, first), first)  # the directory follows itself
    return bytes(data)


def ole_storage_holding_the_root() -> bytes:
    """A storage whose child is the root entry, retyped as a storage: the tree is a cycle
    (olefile's listdir recursed on it until RecursionError)."""
    data = _document()
    entries = _directory_entries(data)
    struct.pack_into("<I", data, entries["VBA"] + 76, 0)
    data[entries["Root Entry"] + 66] = 1
    return bytes(data)


def ole_difat_chain_loop(difat_sectors: int = 100_000) -> bytes:
    """1.5 KiB: a header declaring 12.7 million FAT sectors, listed by one DIFAT sector that names
    itself as the next one (olefile would grow its FAT by concatenation for days)."""
    fat = struct.pack("<128I", 0xFFFFFFFD, 0xFFFFFFFC, *[0xFFFFFFFE] * 126)  # sector 0: FAT; 1: DIFAT
    difat = struct.pack("<128I", *[0] * 127, 1)  # FAT sector 0, 127 times; the next DIFAT sector: itself
    fields = (0x3E, 3, 0xFFFE, 9, 6, bytes(6), 0, 109 + 127 * difat_sectors, 0xFFFFFFFE, 0, 4096)
    header = struct.pack("<8s16sHHHHH6sIIIII", CFB_MAGIC, bytes(16), *fields)
    header += struct.pack("<IIII", 0xFFFFFFFE, 0, 1, difat_sectors) + bytes(4 * 109)
    return header + fat + difat


@pytest.mark.parametrize(
    ("make", "evidence"),
    [
        (ole_difat_chain_loop, "not opened: the header declares 12,700,109 FAT sectors"),
        (ole_stream_chain_loop, "FAT sector chains that loop: 'Data'"),
        (ole_stream_chain_loop_declaring_4_gib, "FAT sector chains that loop: 'Data'"),
        (ole_directory_chain_loop, "FAT sector chains that loop: 'directory'"),
        (ole_storage_holding_the_root, "the storage tree loops back"),
    ],
)
def test_ole_loops(make: Callable[[], bytes], evidence: str) -> None:
    report = _bounded(lambda: timed(make(), "loop.doc"))
    assert_named(report, "ole.malformed", evidence)
    if make is not ole_difat_chain_loop:
        assert report.root.metadata["ole"]["entries"]  # the streams are still listed


def test_shortcut_carrying_forty_difat_loops_is_carved_once_and_quickly() -> None:
    appended = b"PAD!" * 4 + ole_difat_chain_loop(8000) * 40
    report = timed(build(ShellLink(target="C:\\x\\a.pdf", appended=appended)), "invoice.pdf.lnk")
    assert [child.type for child in report.root.children] == ["ole"]
    assert_named(report, "ole.malformed", "not opened: the header declares 1,016,109 FAT sectors")


# --- PE with thousands of sections and sizes far past the file ------------------------------------------------


def _pe_header(data: bytes) -> int:
    return struct.unpack_from("<I", data, 0x3C)[0]


def pe_with_65535_sections() -> bytes:
    data = bytearray(prebuilt("c_fsum.exe"))
    # NumberOfSections: whatever follows the real table is read as section headers, then nothing
    struct.pack_into("<H", data, _pe_header(data) + 6, 0xFFFF)
    return bytes(data)


def pe_with_huge_sizes() -> bytes:
    data = bytearray(prebuilt("c_fsum.exe"))
    pe = _pe_header(data)
    count, optional_size = struct.unpack_from("<H12xH", data, pe + 6)
    optional = pe + 24
    struct.pack_into("<I", data, optional + 56, 0xFFFFFFFF)  # SizeOfImage
    directories = optional + (96 if struct.unpack_from("<H", data, optional)[0] == 0x10B else 112)
    for index in range(16):
        struct.pack_into("<I", data, directories + 8 * index + 4, 0xFFFFFFFF)  # every directory's size
    for section in range(count):
        header = optional + optional_size + 40 * section
        struct.pack_into("<I", data, header + 8, 0xFFFFFFFF)  # VirtualSize
        struct.pack_into("<I", data, header + 16, 0xFFFFFFFF)  # SizeOfRawData
    return bytes(data)


def test_pe_declaring_65535_sections() -> None:
    report = _bounded(lambda: timed(pe_with_65535_sections(), "sections.exe"))
    assert_named(report, "pe.many_sections", "65,535 sections declared")
    assert report.root.metadata["pe"]["section_count"] == 0xFFFF


def test_corkami_65535_sections(corpus: Path) -> None:
    path = corpus / "corkami" / "PE" / "bin" / "65535sects.exe"
    started = time.monotonic()
    report = _bounded(lambda: triage(path, NO_RULES))
    assert time.monotonic() - started < HANG_GUARD_S
    assert_named(report, "pe.many_sections", "65,535 sections declared")
    assert len(report.root.metadata["pe"]["sections"]) == 96


def test_pe_with_sizes_far_past_the_file() -> None:
    report = _bounded(lambda: timed(pe_with_huge_sizes(), "huge.exe"))
    assert_named(report, "pe.section_beyond_file", "4,294,967,295 bytes at 0x")
    assert report.stats.bytes_unpacked < 1 << 20


# --- LNK sizes that point past the end --------------------------------------------------------------------------


def _shortcut(**overrides: object) -> bytes:
    link = ShellLink(
        target="C:\\Windows\\System32\\cmd.exe",
        arguments="/c start invoice.pdf",
        working_dir="C:\\Users\\Public",
        **overrides,  # type: ignore[arg-type]
    )
    return build(link)


def lnk_id_list_past_the_end() -> bytes:
    data = bytearray(_shortcut())
    struct.pack_into("<H", data, 76, 0xFFFF)
    return bytes(data)


def lnk_link_info_past_the_end() -> bytes:
    data = bytearray(_shortcut())
    struct.pack_into("<I", data, 78 + struct.unpack_from("<H", data, 76)[0], 0xFFFFFFFF)
    return bytes(data)


def lnk_string_past_the_end() -> bytes:
    return _shortcut(string_counts={"arguments": 0xFFFF})


def lnk_block_past_the_end() -> bytes:
    return _shortcut(extra_blocks=[struct.pack("<II", 0xFFFFFFFF, 0xA0000001) + bytes(0x314)])


@pytest.mark.parametrize(
    ("make", "evidence"),
    [
        (lnk_id_list_past_the_end, "IDList claims 65535 bytes"),
        (lnk_link_info_past_the_end, "LinkInfo claims 4294967295 bytes"),
        (lnk_string_past_the_end, "claims 65535 characters"),
        (lnk_block_past_the_end, "claims 4294967295 bytes"),
    ],
)
def test_lnk_sizes_past_the_end(make: Callable[[], bytes], evidence: str) -> None:
    report = timed(make(), "invoice.pdf.lnk")
    assert_named(report, "lnk.malformed", evidence)


# --- hostile names: reported faithfully, never used as a path ---------------------------------------------------

HOSTILE_NAMES: list[tuple[bytes, int, str, str]] = [
    # (raw name in the archive, flags, the name the report shows, the finding it raises)
    (b"../../../../tmp/evil.txt", 0, "../../../../tmp/evil.txt", "names.path_traversal"),
    (b"/etc/cron.d/evil", 0, "/etc/cron.d/evil", "names.path_traversal"),
    (b"C:\\Windows\\System32\\evil.dll", 0, "C:\\Windows\\System32\\evil.dll", "names.path_traversal"),
    (b"\\\\evil-host\\share\\evil.exe", 0, "\\\\evil-host\\share\\evil.exe", "names.path_traversal"),
    (b"D:evil.txt", 0, "D:evil.txt", "names.path_traversal"),
    (b"evil\x00.txt.exe", 0, "evil\x00.txt.exe", "names.invalid_characters"),
    (b"evil\xff\xfe.txt", 0x800, "evil\\xff\\xfe.txt", "names.invalid_characters"),
    ("invoice_\u202efdp.exe".encode(), 0x800, "invoice_\u202efdp.exe", "names.bidi_override"),
    (b"e" * 1000 + b".txt", 0, "e" * 1000 + ".txt", "names.very_long"),
    (b"CON.txt", 0, "CON.txt", "names.reserved_device"),
    (b"aux.pdf.exe", 0, "aux.pdf.exe", "names.reserved_device"),
]


def _hostile_names_zip() -> bytes:
    records = [
        Record(raw, zlib.compress(b"inert member %d\n" % i)[2:-4], zlib.crc32(b"inert member %d\n" % i),
               len(b"inert member %d\n" % i), flags=flags)
        for i, (raw, flags, _shown, _finding) in enumerate(HOSTILE_NAMES)
    ]  # fmt: skip
    return zip_records(records)


def _child(report: Report, shown: str) -> Node:
    return next(node for node in walk(report.root) if node.name == shown)


def test_hostile_names_are_reported_faithfully_and_never_touch_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit: AuditLog
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(blob_module, "IN_MEMORY_MAX", 0)  # every member goes through a temp file
    with audit.recording():
        report = timed(_hostile_names_zip(), "parcel.zip")
    for _raw, _flags, shown, finding in HOSTILE_NAMES:
        node = _child(report, shown)
        assert finding in {f.id for f in node.findings}, (shown[:60], [f.id for f in node.findings])
        assert node.type == "text" and node.size > 0  # analysed like any member
    encoded = to_json(report)
    assert b"evil\\\\xff\\\\xfe.txt" in encoded and b"evil\\u0000.txt.exe" in encoded
    written = audit.written()
    assert len(written) > len(HOSTILE_NAMES), "members should have been spilled to temp files"
    for path in written:
        assert path.resolve().is_relative_to(tmp_path.resolve()), path
        assert path.name.startswith("restytriage-") or re.fullmatch(r"blob-\d{6}\.bin", path.name), path
    assert list(tmp_path.iterdir()) == []  # the run's folder is gone


@pytest.mark.parametrize(("raw", "flags", "shown", "finding"), HOSTILE_NAMES[:6] + HOSTILE_NAMES[7:])
def test_hostile_name_of_the_file_itself(raw: bytes, flags: int, shown: str, finding: str) -> None:
    report = timed(b"inert\n", shown)
    assert report.root.name == shown and report.file.name == shown
    assert finding in {f.id for f in report.root.findings}


CONTROL_NAMES = [
    b"\x1b]0;invoice.pdf\x07title.txt",  # sets the terminal's title
    b"\x1b[2J\x1b[31mred.txt",  # clears the screen, then paints in red
    b"report\r\x1b[Knotes.txt",  # returns to the line start and erases what was shown
    b'<img src=x onerror="alert(1)">.txt',  # for the HTML report
]


def test_names_cannot_drive_the_terminal_or_the_html_report() -> None:
    from rich.console import Console

    from restytriage.render.console import render
    from restytriage.render.html import render_html

    records = [
        Record(raw, zlib.compress(b"inert %d" % i)[2:-4], zlib.crc32(b"inert %d" % i), 7)
        for i, raw in enumerate(CONTROL_NAMES)
    ]
    report = timed(zip_records(records), "esc\x1b]0;pwned\x07[draft].zip")  # the headline shows it
    screen = io.StringIO()
    render(report, Console(file=screen, force_terminal=True, width=200, color_system="truecolor"))
    shown = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())  # the renderer's own colours
    assert not set(shown) & {"\x1b", "\x07", "\r"}, [line for line in shown.splitlines() if "\x1b" in line]
    assert "\\x1b[2J\\x1b[31mred.txt" in shown  # shown, escaped
    assert "esc\\x1b]0;pwned\\x07[draft].zip" in shown  # and without markup escapes added
    # IOCs are the sample's words too: a shortcut copying to a name that clears the screen.
    from restytriage.samples.lnk_samples import CMD
    from restytriage.samples.lnk_writer import ShellLink, build

    shortcut = ShellLink(target=CMD, arguments='/c copy /y a.dot "%APPDATA%\\x\x1b[2J\x1b]0;t\x07.dot"')
    screen = io.StringIO()
    render(timed(build(shortcut), "s.lnk"), Console(file=screen, force_terminal=True, width=200))
    ioc_table = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue().split("Indicators")[1])
    assert "\x1b" not in ioc_table and "\\x1b[2J" in ioc_table
    page = render_html([report])
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
