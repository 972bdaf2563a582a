"""ZIP, ISO and gzip samples: the delivery containers of 2022 phishing and the hostile archives a
triage tool must survive (bombs, nesting, traversal names, parser-differential tricks, damage).

Ordinary archives come from zipfile, pyzipper and `iso_writer`; the ones no archiver would write
(overlapping entries, a member only in local headers, a local name that contradicts the central
directory) are assembled record by record with `zip_records()`. Everything is deterministic:
fixed times, seeded salts and encryption headers. The executables inside are the inert prebuilt
PEs of `pe_samples`; the shortcut comes from `lnk_writer`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

from restytriage.samples import Sample, iso_writer, lnk_writer
from restytriage.samples.pe_samples import prebuilt

ZIP_TIME = (2022, 4, 12, 8, 30, 0)
DOS_TIME, DOS_DATE = (8 << 11) | (30 << 5), ((2022 - 1980) << 9) | (4 << 5) | 12
NOTES = b"Meeting notes, 12 April 2022\r\n- budget review moved to Thursday\r\n- send slides to the team\r\n"
INERT_SCRIPT = b'// restytriage inert sample: no behaviour\r\nWScript.Echo("inert sample");\r\n'


# --- building blocks --------------------------------------------------------------------------


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def deflated_zeros(size: int) -> tuple[bytes, int]:
    """(raw deflate stream, CRC-32) of `size` zero bytes without compressing them all: after a full
    flush each MiB of zeros compresses to the same bytes, so one segment is repeated."""
    mib = 1 << 20
    whole, rest = divmod(size, mib)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = compressor.compress(bytes(mib)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    crc = 0
    block = bytes(mib)
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    return segment * whole + tail, zlib.crc32(bytes(rest), crc)


@dataclass(frozen=True)
class Record:
    """One local entry as written: its payload is already compressed (and encrypted, if flagged)."""

    name: bytes
    payload: bytes
    crc: int
    size: int
    method: int = 8
    flags: int = 0
    extra: bytes = b""
    local_name: bytes | None = None  # a different name in the local header than in the central directory

    @classmethod
    def deflated(
        cls, name: str, data: bytes, *, extra: bytes = b"", local_name: bytes | None = None
    ) -> Record:
        return cls(
            name.encode(), deflate(data), zlib.crc32(data), len(data), extra=extra, local_name=local_name
        )


def zip_records(
    records: list[Record], listed: list[tuple[int, bytes]] | None = None, *, comment: bytes = b""
) -> bytes:
    """A ZIP written record by record. `listed` is the central directory as (record index, name)
    pairs; by default every record under its own name. Sizes past 4 GiB get Zip64 extra fields."""
    body = bytearray()
    offsets = []
    for record in records:
        offsets.append(len(body))
        name = record.name if record.local_name is None else record.local_name
        version, sizes, extra = _sizes(record)
        body += struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", version, 0, record.flags, record.method, DOS_TIME, DOS_DATE,
                            record.crc, *sizes, len(name), len(extra)) + name + extra + record.payload  # fmt: skip
    start = len(body)
    listed = [(i, r.name) for i, r in enumerate(records)] if listed is None else listed
    for index, name in listed:
        record = records[index]
        version, sizes, extra = _sizes(record)
        body += struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", version, 0, version, 0, record.flags, record.method,
                            DOS_TIME, DOS_DATE, record.crc, *sizes, len(name), len(extra), 0, 0, 0, 0x20,
                            offsets[index]) + name + extra  # fmt: skip
    body += struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(listed), len(listed), len(body) - start, start, len(comment)
    )
    return bytes(body + comment)


def _sizes(record: Record) -> tuple[int, tuple[int, int], bytes]:
    """(version needed, the two size fields, extra fields): Zip64 when a size does not fit 32 bits."""
    if record.size < 0xFFFFFFFF and len(record.payload) < 0xFFFFFFFF:
        return 20, (len(record.payload), record.size), record.extra
    return (
        45,
        (0xFFFFFFFF, 0xFFFFFFFF),
        record.extra + struct.pack("<HHQQ", 1, 16, record.size, len(record.payload)),
    )


def zip_files(files: list[tuple[str, bytes]], *, folders: tuple[str, ...] = ()) -> bytes:
    """An ordinary archive, as zipfile writes it with fixed times."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder in folders:
            archive.writestr(_info(folder.rstrip("/") + "/", zipfile.ZIP_STORED, 0x10), b"")
        for name, data in files:
            archive.writestr(_info(name, zipfile.ZIP_DEFLATED, 0x20), data)
    return buffer.getvalue()


def _info(
    name: str, method: int, attributes: int, kind: type[zipfile.ZipInfo] = zipfile.ZipInfo
) -> zipfile.ZipInfo:
    info = kind(name, ZIP_TIME)
    info.compress_type = method
    info.create_system = 0  # MS-DOS/Windows, whatever the build platform
    info.external_attr = attributes
    return info


def zipcrypto(data: bytes, password: bytes, check_byte: int, seed: bytes) -> bytes:
    """PKWARE traditional encryption: a 12-byte header (11 seeded bytes and the check byte) and the data."""
    table = [_crc_step(n) for n in range(256)]
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = (keys[0] >> 8) ^ table[(keys[0] ^ byte) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ table[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for byte in password:
        update(byte)
    out = bytearray()
    for byte in hashlib.sha256(seed).digest()[:11] + bytes([check_byte]) + data:
        k = keys[2] | 2
        out.append(byte ^ (((k * (k ^ 1)) >> 8) & 0xFF))
        update(byte)
    return bytes(out)


def _crc_step(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xEDB88320 if value & 1 else value >> 1
    return value


def zipcrypto_zip(files: list[tuple[str, bytes]], password: bytes) -> bytes:
    records = []
    for name, data in files:
        crc = zlib.crc32(data)
        payload = zipcrypto(deflate(data), password, crc >> 24, seed=name.encode() + password)
        records.append(Record(name.encode(), payload, crc, len(data), flags=0x1))
    return zip_records(records)


@contextmanager
def _seeded_salts(seed: bytes) -> Iterator[None]:
    """pyzipper draws AES salts from Cryptodome's RNG: make them a function of the seed."""
    from pyzipper import zipfile_aes

    class _Seeded:
        def __init__(self) -> None:
            self._counter = 0

        def read(self, size: int) -> bytes:
            self._counter += 1
            return hashlib.sha256(seed + bytes([self._counter])).digest()[:size]

    with mock.patch.object(zipfile_aes.Random, "new", return_value=_Seeded()):
        yield


def aes_zip(files: list[tuple[str, bytes]], password: bytes) -> bytes:
    """WinZip AES-256 (AE-2), written by pyzipper with seeded salts."""
    import pyzipper

    buffer = io.BytesIO()
    with _seeded_salts(password), pyzipper.AESZipFile(buffer, "w", encryption=pyzipper.WZ_AES) as archive:
        archive.setpassword(password)
        for name, data in files:
            archive.writestr(_info(name, zipfile.ZIP_DEFLATED, 0x20, pyzipper.zipfile_aes.AESZipInfo), data)
    return buffer.getvalue()


def lure_shortcut() -> bytes:
    """The shortcut of the 2022 waves: cmd.exe opens a decoy and starts the next stage."""
    return lnk_writer.build(
        lnk_writer.ShellLink(
            target="C:\\Windows\\System32\\cmd.exe",
            arguments='/c start "" Invoice_0722.pdf & copy /y Invoice_0722.dat "%APPDATA%\\Microsoft\\Word\\STARTUP\\normal.dot"',
            icon_location="C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe",
            icon_index=11,
            show_command=lnk_writer.SW_SHOWMINNOACTIVE,
            description="Invoice_0722.pdf",
        )
    )


# --- samples ----------------------------------------------------------------------------------


def benign_notes() -> bytes:
    return zip_files(
        [("notes/meeting.txt", NOTES), ("notes/todo.txt", b"- renew parking permit\r\n")], folders=("notes",)
    )


def nested(levels: int) -> bytes:
    """A ZIP inside a ZIP ... `levels` deep, a text at the bottom."""
    data = zip_files([("notes.txt", NOTES)])
    for level in range(levels - 1, 0, -1):
        data = zip_files([(f"level{level:02d}.zip", data)])
    return data


def overlapping(entries: int = 50, kernel_size: int = 1 << 20) -> bytes:
    """Fifield's non-recursive bomb: every central entry points at the same local file."""
    payload, crc = deflated_zeros(kernel_size)
    kernel = Record(b"part_00.bin", payload, crc, kernel_size)
    return zip_records([kernel], [(0, f"part_{index:02d}.bin".encode()) for index in range(entries)])


def hidden_local_entry() -> bytes:
    """A local entry between two listed ones that the central directory leaves out."""
    records = [
        Record.deflated("readme.txt", NOTES),
        Record.deflated("update.js", INERT_SCRIPT),
        Record.deflated("todo.txt", b"- renew parking permit\r\n"),
    ]
    return zip_records(records, [(0, b"readme.txt"), (2, b"todo.txt")])


def invoice_iso() -> bytes:
    return iso_writer.build(
        [
            iso_writer.IsoFile("readme.txt", b"Open Invoice_0722.pdf to view the invoice.\r\n"),
            iso_writer.IsoFile("Invoice_0722.pdf.exe", prebuilt("c_sideload_host.exe")),
            iso_writer.IsoFile("version.dll", prebuilt("c_version.dll"), hidden=True),
        ],
        volume_id="INVOICE_0722",
        application="IMGBURN V2.5.8.0 - THE ULTIMATE IMAGE BURNER!",
    )


def split_namespaces_iso() -> bytes:
    """UDF shows a program that the Joliet and ISO 9660 trees do not list."""
    return iso_writer.build(
        [
            iso_writer.IsoFile("readme.txt", b"Installation notes.\r\n"),
            iso_writer.IsoFile("setup.exe", prebuilt("c_fsum.exe"), namespaces=frozenset({iso_writer.UDF})),
        ],
        volume_id="SETUP",
        udf=True,
    )


def truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def gzipped_as_document() -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="Invoice_0722.pdf", mode="wb", fileobj=buffer, mtime=1649752200) as stream:
        stream.write(prebuilt("c_fsum.exe"))
    return buffer.getvalue()


SAMPLES = [
    Sample(
        name="archive_benign_notes.zip",
        build=benign_notes,
        imitates="an ordinary archive of text notes with a folder entry",
        verdict="clean",
        absent=("zip.damaged", "zip.local_header_mismatch", "zip.hidden_entries", "zip.delivers_script"),
        facts=(("members", "2 file(s), 1 folder(s)"),),
    ),
    Sample(
        name="Invoice_0722.zip",
        build=lambda: zip_files([("Invoice_0722.pdf.lnk", lure_shortcut())]),
        imitates="the 2022 delivery: an attachment ZIP holding a shortcut named like a PDF",
        verdict="malicious",
        techniques=("T1204.002", "T1036.007"),
        findings=("zip.delivers_shortcut", "names.double_extension"),
    ),
    Sample(
        name="archive_quarantine_infected.zip",
        build=lambda: zipcrypto_zip([("sample_notes.txt", NOTES)], b"infected"),
        imitates="a file shared between analysts in a ZipCrypto archive with the password 'infected'",
        verdict="clean",
        techniques=("T1027.013",),
        findings=("zip.encrypted",),
        absent=("zip.encrypted_not_analysed", "zip.crc_mismatch"),
        facts=(("password", "infected"), ("encryption", "ZipCrypto")),
    ),
    Sample(
        name="archive_invoice_aes.zip",
        build=lambda: aes_zip([("invoice.js", INERT_SCRIPT)], b"malware"),
        imitates="a password-protected (WinZip AES-256) attachment delivering a script",
        verdict="suspicious",
        techniques=("T1027.013", "T1204.002"),
        findings=("zip.encrypted", "zip.delivers_script"),
        absent=("zip.encrypted_not_analysed",),
        facts=(("password", "malware"), ("encryption", "AES-256")),
    ),
    Sample(
        name="archive_unknown_password.zip",
        build=lambda: zipcrypto_zip([("statement.pdf", b"%PDF-1.7\n% inert\n")], b"Q3-2022!"),
        imitates="an encrypted attachment whose password travels in the e-mail body (not known here)",
        verdict="suspicious",
        techniques=("T1027.013",),
        findings=("zip.encrypted", "zip.encrypted_not_analysed"),
    ),
    Sample(
        name="archive_zip_slip.zip",
        build=lambda: zip_files(
            [
                ("good.txt", b"this is a good one\n"),
                (
                    "../../../../../../tmp/restytriage_zip_slip.txt",
                    b"written outside the extraction folder\n",
                ),
                ("/etc/cron.d/restytriage_zip_slip", b"# absolute path\n"),
                ("C:/Users/Public/restytriage_zip_slip.txt", b"drive letter\n"),
            ]
        ),
        imitates="Zip Slip: member names that climb out of the extraction folder or are absolute",
        verdict="suspicious",
        findings=("names.path_traversal",),
    ),
    Sample(
        name="archive_duplicate_names.zip",
        build=lambda: zip_records(
            [Record.deflated("readme.txt", NOTES), Record.deflated("readme.txt", INERT_SCRIPT)]
        ),
        imitates="two members with one name (CVE-2013-4787): scanners and users get different files",
        verdict="suspicious",
        findings=("zip.duplicate_names",),
    ),
    Sample(
        name="archive_overlap_bomb.zip",
        build=overlapping,
        imitates="a non-recursive zip bomb (Fifield 2019): 50 central entries over one 1 MiB local file",
        verdict="malicious",
        findings=("zip.overlapping_entries", "zip.local_header_mismatch"),
        absent=("limit.total_bytes",),
    ),
    Sample(
        name="archive_ratio_bomb.zip",
        build=lambda: zip_records([Record(b"disk.bin", *deflated_zeros(100 << 20), size=100 << 20)]),
        imitates="a decompression bomb: 100 MiB of zeros in one member of about 100 KiB",
        verdict="suspicious",
        findings=("limit.compression_ratio",),
    ),
    Sample(
        name="archive_nested_40.zip",
        build=lambda: nested(40),
        imitates="40 archives nested in each other to outlast a scanner's depth limit",
        verdict="suspicious",
        findings=("limit.depth", "zip.lone_nested_archive"),
    ),
    Sample(
        name="archive_truncated.zip",
        build=lambda: truncated(zip_files([("report.txt", NOTES * 40), ("notes.txt", NOTES)]), 0.8),
        imitates="an archive cut short in transfer: no central directory, members recovered from local headers",
        verdict="clean",
        findings=("zip.damaged",),
        facts=(("members", "2 file(s)"),),
    ),
    Sample(
        name="archive_empty.zip",
        build=lambda: zip_files([]),
        imitates="an empty archive: only the end-of-central-directory record",
        verdict="clean",
        absent=("zip.damaged",),
        facts=(("members", "0 file(s)"),),
    ),
    Sample(
        name="archive_hidden_entry.zip",
        build=hidden_local_entry,
        imitates="a script stored as a local entry the central directory does not list",
        verdict="suspicious",
        techniques=("T1027", "T1204.002"),
        findings=("zip.hidden_entries", "zip.delivers_script"),
    ),
    Sample(
        name="archive_name_mismatch.zip",
        build=lambda: zip_records([Record.deflated("invoice.pdf", INERT_SCRIPT, local_name=b"invoice.js")]),
        imitates="a member the central directory calls invoice.pdf and its local header invoice.js",
        verdict="suspicious",
        findings=("zip.local_header_mismatch",),
    ),
    Sample(
        name="archive_appended_payload.zip",
        build=lambda: benign_notes() + prebuilt("c_fsum.exe"),
        imitates="an executable appended after the end of an otherwise ordinary archive",
        verdict="suspicious",
        techniques=("T1027.009",),
        findings=("zip.appended_data",),
    ),
    Sample(
        name="Invoice_0722_iso.zip",
        build=lambda: zip_files([("Invoice_0722.iso", invoice_iso())]),
        imitates="earlier RestyLink-style waves: a ZIP holding an ISO with a lure text, an EXE named like a PDF and a hidden DLL",
        verdict="malicious",
        techniques=("T1553.005", "T1204.002", "T1564.001", "T1036.007"),
        findings=(
            "zip.delivers_disk_image",
            "iso.delivers_executable",
            "iso.hidden_executable",
            "names.double_extension",
        ),
        facts=(("volume", "INVOICE_0722"), ("application", "IMGBURN")),
    ),
    Sample(
        name="archive_damaged.iso",
        build=lambda: truncated(invoice_iso(), 0.7),
        imitates="the invoice disc image cut short: directories intact, the hidden DLL's data missing",
        verdict="malicious",
        findings=("iso.damaged", "iso.delivers_executable", "names.double_extension"),
        facts=(("volume", "INVOICE_0722"),),
    ),
    Sample(
        name="archive_damaged_header.iso",
        build=lambda: invoice_iso()[: 18 * iso_writer.SECTOR],
        imitates="a disc image cut after its volume descriptors: the volume is known, its files are not",
        verdict="clean",
        findings=("iso.damaged",),
        facts=(("volume", "INVOICE_0722"), ("application", "IMGBURN")),
    ),
    Sample(
        name="archive_udf_only_setup.iso",
        build=split_namespaces_iso,
        imitates="an image whose UDF tree (what Windows shows) holds a program the ISO 9660 and Joliet trees leave out",
        verdict="suspicious",
        findings=("iso.namespace_mismatch", "iso.delivers_executable"),
        facts=(("files", "udf names"),),
    ),
    Sample(
        name="Invoice_0722.pdf.gz",
        build=gzipped_as_document,
        imitates="a gzip attachment that unpacks to an executable named like a PDF",
        verdict="suspicious",
        findings=("names.executable_as_document",),
        facts=(("original name", "Invoice_0722.pdf"),),
    ),
]
