"""Carving embedded files: exact extents from each format's own structure, and no bare-magic hits."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restytriage.carve import carve_embedded, gaps
from restytriage.cfb import build_cfb
from restytriage.samples.pdf_writer import build_pdf


def minimal_pe(certificate: bytes = b"", dll: bool = False) -> bytes:
    """A PE32 with one 0x200-byte section at 0x200 and, optionally, a certificate table after it."""
    optional = bytearray(0xE0)
    struct.pack_into("<H", optional, 0, 0x10B)
    struct.pack_into("<I", optional, 16, 0x1000)  # AddressOfEntryPoint
    struct.pack_into("<I", optional, 32, 0x1000)  # SectionAlignment
    struct.pack_into("<I", optional, 36, 0x200)  # FileAlignment
    struct.pack_into("<I", optional, 56, 0x2000)  # SizeOfImage
    struct.pack_into("<I", optional, 60, 0x200)  # SizeOfHeaders
    struct.pack_into("<I", optional, 92, 16)  # NumberOfRvaAndSizes
    if certificate:
        struct.pack_into("<II", optional, 96 + 4 * 8, 0x400, len(certificate))
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, len(optional), 0x2102 if dll else 0x0102)
    section = struct.pack("<8sIIIIIIHHI", b".text", 0x10, 0x1000, 0x200, 0x200, 0, 0, 0, 0, 0x60000020)
    dos = bytearray(0x40)
    dos[:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    headers = bytes(dos) + b"PE\x00\x00" + coff + bytes(optional) + section
    return headers.ljust(0x200, b"\x00") + b"\xc3".ljust(0x200, b"\x90") + certificate


def minimal_cab(payload: bytes = b"hello cabinet\r\n") -> bytes:
    name = b"hello.txt\x00"
    header_size, folder_size, file_size = 36, 8, 16 + len(name)
    data_at = header_size + folder_size + file_size
    total = data_at + 8 + len(payload)
    header = b"MSCF" + struct.pack(
        "<IIIIIBBHHHHH", 0, total, 0, header_size + folder_size, 0, 3, 1, 1, 1, 0, 0x1234, 0
    )
    folder = struct.pack("<IHH", data_at, 1, 0)
    entry = struct.pack("<IIHHHH", len(payload), 0, 0, 0x5421, 0, 0x20) + name
    data = struct.pack("<IHH", 0, len(payload), len(payload)) + payload
    return header + folder + entry + data


def minimal_rar5() -> bytes:
    def block(body: bytes) -> bytes:
        sized = bytes([len(body)]) + body
        return struct.pack("<I", zlib.crc32(sized)) + sized

    return b"Rar!\x1a\x07\x01\x00" + block(b"\x01\x00\x00") + block(b"\x05\x00\x00")


def minimal_7z(next_header: bytes = b"\x01\x04\x06\x00\x00\x00") -> bytes:
    tail = struct.pack("<QQI", 0, len(next_header), zlib.crc32(next_header))
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + struct.pack("<I", zlib.crc32(tail)) + tail + next_header


def small_zip(comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", "<w:document/>" * 20)
        archive.writestr("readme.txt", "inert")
        archive.comment = comment
    return buffer.getvalue()


def small_cfb() -> bytes:
    return build_cfb({"WordDocument": b"\xec\xa5" + b"\x00" * 6000, "\x01CompObj": b"\x01\x00\xfe\xff" * 20})


BUILDERS = {
    "ole": small_cfb,
    "pdf": lambda: build_pdf("Seminar programme", title="Programme"),
    "zip": small_zip,
    "pe": minimal_pe,
    "cab": minimal_cab,
    "rar": minimal_rar5,
    "7z": minimal_7z,
    "gzip": lambda: gzip.compress(b"restytriage " * 500, mtime=0),
}


@pytest.mark.parametrize("kind", sorted(BUILDERS))
def test_each_format_is_measured_exactly(kind: str) -> None:
    original = BUILDERS[kind]()
    data = b"\x00garbage before\x00" + original + b"trailing bytes that belong to nothing"
    carved = carve_embedded(data, base_offset=1000)
    assert [(c.type, c.offset, c.size, c.complete) for c in carved] == [
        (kind, 1000 + 16, len(original), True)
    ]
    assert carved[0].data == original


def test_concatenated_files_come_out_in_order_with_the_gaps_between() -> None:
    parts = [BUILDERS[k]() for k in ("ole", "pdf", "zip", "pe", "gzip")]
    data = b"".join(part + b"--sep--" for part in parts)
    carved = carve_embedded(data)
    assert [c.type for c in carved] == ["ole", "pdf", "zip", "pe", "gzip"]
    assert [c.data for c in carved] == parts
    holes = gaps(carved, 0, len(data))
    assert [size for _, size in holes] == [7] * 5
    assert all(data[offset : offset + size] == b"--sep--" for offset, size in holes)


def test_search_range_and_base_offset() -> None:
    pdf = BUILDERS["pdf"]()
    data = pdf + b"\x00" * 10 + pdf
    carved = carve_embedded(data, base_offset=50, start=1, stop=len(data))
    assert [(c.offset, c.size) for c in carved] == [(50 + len(pdf) + 10, len(pdf))]
    assert carve_embedded(data, start=0, stop=len(pdf) - 1)[0].complete is False


def test_pe_extent_keeps_the_certificate_and_leaves_the_overlay() -> None:
    signed = minimal_pe(certificate=b"\x30\x82" + b"\x11" * 254)
    carved = carve_embedded(signed + b"OVERLAY" * 100)
    assert (carved[0].size, carved[0].extension, carved[0].description) == (
        len(signed),
        "exe",
        "PE32 executable",
    )
    assert carve_embedded(minimal_pe(dll=True))[0].extension == "dll"


def test_pdf_runs_to_its_last_eof_but_not_into_the_next_file() -> None:
    pdf = BUILDERS["pdf"]()
    updated = pdf + b"5 0 obj\n<< /Type /Annot >>\nendobj\ntrailer\n<< /Prev 0 >>\n%%EOF\n"
    following = BUILDERS["zip"]()
    carved = carve_embedded(updated + following + b"%%EOF\n")
    assert [(c.type, c.size) for c in carved] == [("pdf", len(updated)), ("zip", len(following))]


def test_zip_extent_includes_the_archive_comment() -> None:
    archive = small_zip(comment=b"archive comment, part of the file")
    assert carve_embedded(archive + b"\x00" * 64)[0].size == len(archive)


@pytest.mark.parametrize("kind", ["ole", "zip", "rar", "cab", "7z", "gzip"])
def test_a_cut_file_is_returned_incomplete(kind: str) -> None:
    whole = BUILDERS[kind]()
    carved = carve_embedded(whole[: len(whole) - 3])
    assert len(carved) == 1
    assert carved[0].complete is False
    assert carved[0].size == len(whole) - 3


def test_bare_magic_is_not_a_file() -> None:
    noise = b"".join(
        magic + b"\x41" * 70
        for magic in (
            b"MZ",
            b"PK\x03\x04",
            b"%PDF-",
            b"%PDF-9.x",
            b"MSCF\x00\x00\x00\x00",
            b"Rar!\x1a\x07\x00",
            b"Rar!\x1a\x07\x01\x00",
            b"7z\xbc\xaf\x27\x1c",
            b"\x1f\x8b\x08",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        )
    )
    assert carve_embedded(noise) == []


def test_corpus_pe_with_a_zip_overlay(corpus: Path) -> None:
    data = (corpus / "strelka" / "fixtures" / "test_overlay_zip.exe").read_bytes()
    carved = carve_embedded(data)
    assert [(c.type, c.offset, c.size) for c in carved] == [("pe", 0, 4096), ("zip", 4096, len(data) - 4096)]


@settings(max_examples=150, deadline=1000)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.sampled_from(
                [
                    b"MZ",
                    b"PK\x03\x04",
                    b"%PDF-1.7",
                    b"%%EOF",
                    b"PK\x05\x06",
                    b"\x1f\x8b\x08\x00",
                    b"7z\xbc\xaf\x27\x1c",
                ]
            ),
            st.sampled_from(sorted(BUILDERS)).map(lambda kind: BUILDERS[kind]()[:400]),
        ),
        max_size=12,
    )
)
def test_carving_never_raises_and_stays_in_bounds(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    carved = carve_embedded(data, base_offset=7)
    cursor = 7
    for item in carved:
        assert item.offset >= cursor and item.size > 0
        assert item.offset + item.size <= 7 + len(data)
        assert item.data == data[item.offset - 7 : item.offset - 7 + item.size]
        cursor = item.offset + item.size
