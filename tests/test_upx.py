"""UPX: detection (intact and tampered), unpacking with upx -d, header repair, and what the report
says when the content could not be unpacked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import model
from restytriage.analyzers import upx
from restytriage.config import Config, Limits
from restytriage.engine import triage, triage_bytes
from restytriage.samples.pe_samples import erase_magic, prebuilt, rename_sections, scramble_header

needs_upx = pytest.mark.skipif(shutil.which("upx") is None, reason="upx is not installed")


def _findings(node: model.Node) -> set[str]:
    return {f.id for f in node.findings}


def _unpacked(report: model.Report) -> model.Node:
    (child,) = [c for c in report.root.children if "upx-unpacked" in c.labels]
    return child


def _shape(data: bytes) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """Section names, imports and exports: what must survive packing and unpacking."""
    parsed = pefile.PE(data=data)
    sections = [s.Name.rstrip(b"\0").decode() for s in parsed.sections]
    imports = {
        e.dll.decode().lower(): sorted((i.name or b"").decode() for i in e.imports)
        for e in getattr(parsed, "DIRECTORY_ENTRY_IMPORT", [])
    }
    directory = getattr(parsed, "DIRECTORY_ENTRY_EXPORT", None)
    exports = [(s.name or b"").decode() for s in directory.symbols] if directory else []
    return sections, imports, exports


def _layout(data: bytes) -> upx.Layout:
    layout = upx.read_layout(data)
    assert layout is not None
    return layout


# --- detection -----------------------------------------------------------------------------------


def test_intact_upx_file_is_described_from_its_pack_header() -> None:
    data = prebuilt("c_fsum.upx.exe")
    traits = upx.inspect(data, _layout(data))
    assert traits.section_names == ["UPX0", "UPX1"] and traits.stub == "win64 EXE" and traits.layout
    assert traits.version == "4.22" and not traits.tampered
    assert traits.header is not None and traits.header.magic_ok and traits.header.checksum_ok
    described = traits.header.describe()
    assert (described["version"], described["format"], described["method"]) == (13, "win64/pe", "NRV2B")
    assert described["original_file_size"] == len(prebuilt("c_fsum.exe"))


def test_plain_pe_is_not_upx() -> None:
    data = prebuilt("c_fsum.exe")
    assert not upx.inspect(data, _layout(data)).packed
    assert triage_bytes(data, "fsum.exe").root.metadata.get("upx") is None


@pytest.mark.parametrize(
    ("name", "stub"),
    [("c_fsum32.upx.exe", "win32 EXE"), ("c_version.upx.dll", "win64 DLL"), ("c_fsum.upx.exe", "win64 EXE")],
)
def test_stub_at_the_entry_point_is_recognised(name: str, stub: str) -> None:
    data = prebuilt(name)
    assert upx.inspect(data, _layout(data)).stub == stub


def test_renamed_sections_and_erased_magic_are_still_upx_and_called_tampered() -> None:
    original = prebuilt("c_fsum.upx.exe")
    data = erase_magic(rename_sections(original, (b".text", b".data", b".rsrc")))
    traits = upx.inspect(data, _layout(data))
    assert traits.packed and traits.section_names == [] and traits.stub == "win64 EXE"
    assert traits.header is not None and traits.header.offset == original.find(b"UPX!")  # found by checksum
    assert traits.version is None
    assert traits.tampered == [
        "section names changed from UPX0/UPX1 to .text/.data/.rsrc",
        f"pack header magic at 0x{traits.header.offset:x} overwritten with 00000000",
        "UPX version string erased",
    ]


def test_repair_restores_exactly_what_upx_checks() -> None:
    original = prebuilt("c_fsum32.upx.exe")
    scrambled = scramble_header(rename_sections(original, (b"CODE", b"DATA", b".rsrc")))
    layout = _layout(scrambled)
    traits = upx.inspect(scrambled, layout)
    repaired, repairs = upx.repair(scrambled, layout, traits.header)
    assert [r.split(" (")[0] for r in repairs] == [
        "section 0 renamed 'CODE' -> 'UPX0'", "section 1 renamed 'DATA' -> 'UPX1'", "pack header at 0x1f5 restored",
    ]  # fmt: skip
    assert repaired == original  # magic, version byte and checksum byte recomputed as upx wrote them


def test_header_erased_entirely_is_reported_and_not_repaired() -> None:
    data = bytearray(prebuilt("c_fsum.upx.exe"))
    at = data.find(b"UPX!")
    data[at : at + 32] = bytes(32)
    traits = upx.inspect(bytes(data), _layout(bytes(data)))
    assert traits.packed and traits.header is None
    assert "pack header erased (not found by magic nor by checksum)" in traits.tampered


# --- unpacking through the engine ----------------------------------------------------------------


@needs_upx
def test_packed_tool_is_unpacked_into_a_child_like_the_original_and_stays_below_malicious() -> None:
    report = triage_bytes(prebuilt("c_fsum.upx.exe"), "fsum.exe")
    root = report.root
    assert _findings(root) >= {"upx.packed"} and not _findings(root) & {"upx.tampered", "upx.not_unpacked"}
    assert root.metadata["upx"]["unpack"]["status"] == "unpacked"
    assert root.facts["packer"] == "UPX 4.22 (NRV2B) - unpacked"
    child = _unpacked(report)
    assert (child.name, child.path, child.type) == ("fsum.exe", "upx-unpacked", "pe")
    assert child.metadata["pe"]["version_info"]["OriginalFilename"] == "fsum.exe"
    assert not {"pe.wx_section", "pe.packed_section", "pe.dynamic_imports_only"} & _findings(root)
    assert report.verdict != "malicious"


@needs_upx
@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: rename_sections(d, (b".text", b".data", b".rsrc")),
        erase_magic,
        lambda d: scramble_header(rename_sections(d, (b"CODE", b"DATA"))),
    ],
    ids=["renamed", "erased-magic", "scrambled"],
)
@pytest.mark.parametrize("name", ["c_fsum.upx.exe", "c_fsum32.upx.exe", "c_version.upx.dll"])
def test_tampered_variants_are_repaired_and_unpack_to_the_same_program(name: str, tamper) -> None:
    intact = triage_bytes(prebuilt(name), name)
    report = triage_bytes(tamper(prebuilt(name)), name)
    assert {"upx.packed", "upx.tampered"} <= _findings(report.root)
    assert "upx.not_unpacked" not in _findings(report.root)
    unpack = report.root.metadata["upx"]["unpack"]
    assert unpack["input"] == "repaired" and unpack["repairs"]
    assert _unpacked(report).sha256 == _unpacked(intact).sha256
    assert "tampered headers (repaired) - unpacked" in report.root.facts["packer"]


@needs_upx
def test_unpacked_image_matches_the_program_that_was_packed() -> None:
    report = triage_bytes(prebuilt("c_version.upx.dll"), "version.dll")
    child = _unpacked(report)
    assert child.size == len(prebuilt("c_version.dll"))
    assert (
        child.metadata["pe"]["imphash"]
        == triage_bytes(prebuilt("c_version.dll"), "v.dll").root.metadata["pe"]["imphash"]
    )
    assert "pe.proxy_dll" in _findings(child)


@needs_upx
def test_go_downloader_hidden_by_tampered_upx_is_revealed_to_every_analyzer() -> None:
    """The RestyLink case: the Go build markers and YARA matches only exist in the unpacked child."""
    name = "go_stager.upx_tampered.dll"
    if not (Path(upx.__file__).parents[1] / "samples" / "prebuilt" / name).is_file():
        pytest.skip("the Go samples are not built")
    report = triage_bytes(prebuilt(name), "version.dll")
    assert "golang" not in report.root.metadata
    child = _unpacked(report)
    assert {"golang", "yara"} <= set(child.metadata)
    assert report.verdict == "malicious"


@needs_upx
def test_header_beyond_repair_says_packed_content_not_analysed() -> None:
    data = bytearray(prebuilt("c_fsum.upx.exe"))
    at = data.find(b"UPX!")
    data[at : at + 32] = bytes(32)
    report = triage_bytes(bytes(data), "fsum.exe")
    (finding,) = [f for f in report.root.findings if f.id == "upx.not_unpacked"]
    assert finding.evidence.endswith("packed, unpacked content not analysed")
    assert not [c for c in report.root.children if "upx-unpacked" in c.labels]
    assert report.verdict != "clean"


def test_missing_upx_is_reported_not_mistaken_for_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upx, "find_upx", lambda: None)
    report = triage_bytes(prebuilt("c_fsum.upx.exe"), "fsum.exe")
    (finding,) = [f for f in report.root.findings if f.id == "upx.not_unpacked"]
    assert finding.evidence == "upx is not installed: packed, unpacked content not analysed"
    assert report.root.facts["packer"].endswith("packed, unpacked content not analysed")
    assert report.verdict == "suspicious" and not report.root.children


@needs_upx
def test_original_larger_than_the_member_limit_is_not_unpacked() -> None:
    config = Config(limits=Limits(max_member_bytes=12_000))
    report = triage_bytes(prebuilt("c_fsum.upx.exe"), "fsum.exe", config)
    ids = _findings(report.root)
    assert {"upx.not_unpacked", "limit.member_size"} <= ids
    assert "the unpacked image grew past 12,000 bytes" in report.root.metadata["upx"]["unpack"]["reason"]


@needs_upx
def test_output_past_the_size_limit_is_stopped_by_the_file_size_limit() -> None:
    """A header that lies about the original's size passes the first check; RLIMIT_FSIZE stops upx."""
    data = bytearray(prebuilt("c_fsum.upx.exe"))
    at = data.find(b"UPX!")
    data[at + 24 : at + 28] = (1000).to_bytes(4, "little")  # claims a 1,000-byte original
    report = triage_bytes(bytes(data), "fsum.exe", Config(limits=Limits(max_member_bytes=12_000)))
    assert {"upx.not_unpacked", "limit.member_size"} <= _findings(report.root)
    (attempt,) = report.root.metadata["upx"]["unpack"]["attempts"]
    assert attempt == {
        "input": "repaired",
        "ok": False,
        "message": "the unpacked image grew past 12,000 bytes",
    }


@needs_upx
def test_upx_refusal_message_does_not_leak_the_private_temp_path(tmp_path: Path) -> None:
    data = bytearray(prebuilt("c_fsum.upx.exe"))
    at = data.find(b"UPX!")
    data[at + 12 : at + 16] = b"\xde\xad\xbe\xef"  # the packed data's adler32: upx finds the mismatch
    report = triage_bytes(bytes(data), "fsum.exe")
    unpack = report.root.metadata["upx"]["unpack"]
    assert unpack["status"] == "not unpacked"
    assert all("restytriage-" not in a["message"] and "/tmp" not in a["message"] for a in unpack["attempts"])


# --- the public corpus -------------------------------------------------------------------------

CORPUS_UPX = {
    "yara/tests/data/079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885.upx": (
        "3.96",
        "win32/pe",
    ),
    "yara/tests/data/e3d45a2865818756068757d7e319258fef40dad54532ee4355b86bc129f27345": ("3.03", "win32/pe"),
    "strelka/fixtures/test_upx.exe": ("4.01", "win64/pe"),
    "upx-testsuite/files/packed/i386-win32.pe/upx-3.91.exe": ("3.91", "win32/pe"),
    "upx-testsuite/files/packed/i386-win32.pe/upx-3.95.exe": ("3.95", "win32/pe"),
    "upx-testsuite/files/packed/amd64-win64.pe/upx-3.95.exe": ("3.95", "win64/pe"),
}


@needs_upx
@pytest.mark.parametrize(
    ("relative", "expected"), CORPUS_UPX.items(), ids=[Path(p).name[:16] for p in CORPUS_UPX]
)
def test_corpus_upx_files_are_detected_and_unpacked(
    corpus: Path, relative: str, expected: tuple[str, str]
) -> None:
    report = triage(corpus / relative)
    meta = report.root.metadata["upx"]
    assert (meta["version"], meta["header"]["format"]) == expected
    assert meta["unpack"]["status"] == "unpacked" and "upx.tampered" not in _findings(report.root)
    assert _unpacked(report).type == "pe"


@needs_upx
def test_unpacked_quicken_dll_has_the_original_sections_imports_and_exports(corpus: Path) -> None:
    folder = corpus / "yara" / "tests" / "data"
    original = (folder / "079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885").read_bytes()
    report = triage(folder / "079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885.upx")
    child = _unpacked(report)
    sections = [s["name"] for s in child.metadata["pe"]["sections"]]
    imports = {
        e["dll"].lower(): sorted(e["functions"]) for e in child.metadata["pe"]["imports"] if not e["delayed"]
    }
    exports = {s["name"]: s["rva"] for s in child.metadata["pe"]["exports"]["symbols"]}
    expected_sections, expected_imports, expected_exports = _shape(original)
    assert sections == expected_sections and imports == expected_imports
    assert sorted(exports) == sorted(expected_exports) and exports["CP_PutItem"] == 0x106C


@needs_upx
def test_corpus_upx_tampered_copy_is_repaired(corpus: Path) -> None:
    data = (corpus / "strelka" / "fixtures" / "test_upx.exe").read_bytes()
    report = triage_bytes(erase_magic(rename_sections(data, (b"aaa", b"bbb", b"ccc"))), "test_upx.exe")
    assert {"upx.packed", "upx.tampered"} <= _findings(report.root)
    assert report.root.metadata["upx"]["unpack"]["status"] == "unpacked"


# --- hostile input -------------------------------------------------------------------------------

PACKED = prebuilt("c_fsum.upx.exe")
HEADER_AT = PACKED.find(b"UPX!")


@settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(st.tuples(st.integers(0, 1023), st.integers(0, 255)), min_size=1, max_size=16),
    cut=st.integers(0x200, len(PACKED)),
)
def test_mutated_upx_headers_never_escape_the_analyzers(edits: list[tuple[int, int]], cut: int) -> None:
    """Mutations of the PE headers, section table and pack header, on a possibly truncated file."""
    data = bytearray(PACKED[:cut])
    for offset, value in edits:
        target = offset if offset < 0x200 else HEADER_AT - 0x200 + offset
        if target < len(data):
            data[target] = value
    report = triage_bytes(bytes(data), "mutated.exe")
    assert not [e for node in model.walk(report.root) for e in node.errors if e.analyzer in ("upx", "pe")]
