"""OLE/CFB Office files: the CFB + MS-OVBA writer, the ole analyzer on the inert samples, and the
public corpus (oletools, POI, vbastomp, strelka test data) with the results their authors documented."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import time
import zipfile
from pathlib import Path

import msoffcrypto
import olefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oletools.oleobj import OleNativeStream
from oletools.olevba import VBA_Parser, decompress_stream

from restytriage.cfb import build_cfb
from restytriage.config import Config
from restytriage.engine import triage, triage_bytes
from restytriage.model import Node, Report, walk
from restytriage.samples import manifest_entry
from restytriage.samples import office_samples as office
from restytriage.samples.cfb_writer import (
    CLSID_EXCEL_WORKBOOK,
    CLSID_WORD_DOCUMENT,
    EmbeddedFile,
    _ovba_encrypt,
    build_vba_project_bin,
    build_word_document,
    compress_vba,
    module_source,
)
from restytriage.vba import EXCERPT_CHARS, fold_expressions
from restytriage.verify import differences

# --- helpers ----------------------------------------------------------------------------------------


def finding_ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def ole_errors(report: Report) -> list[str]:
    return [e.message for node in walk(report.root) for e in node.errors if e.analyzer == "ole"]


def node_named(report: Report, name: str) -> Node:
    return next(node for node in walk(report.root) if node.name == name)


def ovba_decrypt(hex_text: str) -> tuple[int, bytes]:
    """MS-OVBA 2.4.3.3 decryption (the reader's side), to check the writer against Office's output."""
    data = bytes.fromhex(hex_text)
    seed, version_enc, project_key_enc = data[:3]
    project_key = seed ^ project_key_enc
    unencrypted, encrypted1, encrypted2 = project_key, project_key_enc, version_enc
    plain = bytearray()
    for byte in data[3:]:
        value = byte ^ ((encrypted2 + unencrypted) & 0xFF)
        plain.append(value)
        encrypted2, encrypted1, unencrypted = encrypted1, byte, value
    ignored = (seed & 6) // 2
    (length,) = struct.unpack_from("<I", plain, ignored)
    return seed ^ version_enc, bytes(plain[ignored + 4 : ignored + 4 + length])


# --- the CFB writer ---------------------------------------------------------------------------------


def test_cfb_round_trip_through_olefile() -> None:
    streams = {
        "Empty": b"",
        "Tiny": b"x",
        "MiniEdge": bytes(range(64)) * 63 + b"\x01" * 63,  # 4095 bytes: last size in the ministream
        "Regular": b"R" * 4096,
        "Storage/Inner/Deep": b"deep" * 5000,
        "Storage/\x01CompObj": b"c" * 100,
    }
    data = build_cfb(streams, {"": CLSID_WORD_DOCUMENT, "Storage": CLSID_EXCEL_WORKBOOK})
    with olefile.OleFileIO(data) as ole:
        assert not ole.parsing_issues
        assert ole.root.clsid == CLSID_WORD_DOCUMENT
        assert ole.getclsid("Storage") == CLSID_EXCEL_WORKBOOK
        for path, content in streams.items():
            assert ole.openstream(path).read() == content, path
    assert build_cfb(streams) == build_cfb(streams)


def _black_height(entries: list, sid: int) -> int:
    if sid == olefile.NOSTREAM:
        return 1
    node = entries[sid]
    left, right = _black_height(entries, node.sid_left), _black_height(entries, node.sid_right)
    assert left == right, f"unequal black heights under {node.name!r}"
    if node.color == 0:  # red: both children black (or empty)
        for child in (node.sid_left, node.sid_right):
            assert child == olefile.NOSTREAM or entries[child].color == 1
    return left + node.color


def _in_order(entries: list, sid: int) -> list[str]:
    if sid == olefile.NOSTREAM:
        return []
    node = entries[sid]
    return [*_in_order(entries, node.sid_left), node.name, *_in_order(entries, node.sid_right)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 12, 31, 40])
def test_cfb_siblings_form_a_sorted_red_black_tree(count: int) -> None:
    names = [f"S{'x' * (i % 5)}{i:03d}" for i in range(count)]
    with olefile.OleFileIO(build_cfb({name: b"." for name in names})) as ole:
        entries = ole.direntries
        top = ole.root.sid_child
        assert entries[top].color == 1
        _black_height(entries, top)
        ordered = _in_order(entries, top)
        assert ordered == sorted(names, key=lambda n: (len(n), n.upper()))


def test_cfb_with_difat_sectors() -> None:
    # 120 x 70 kB needs more FAT sectors than the header's 109 DIFAT slots.
    streams = {f"S{i}": bytes([i]) * 70_000 for i in range(120)}
    with olefile.OleFileIO(build_cfb(streams)) as ole:
        assert ole.num_difat_sectors >= 1
        assert all(ole.openstream(name).read() == data for name, data in streams.items())


@pytest.mark.parametrize(
    "data",
    [b"", b"a", b"abcabcabcabc" * 400, bytes(range(256)) * 40, random.Random(7).randbytes(9000)],
    ids=["empty", "one", "repetitive", "sequence", "random"],
)
def test_vba_compression_round_trips_through_olevba(data: bytes) -> None:
    packed = compress_vba(data)
    assert bytes(decompress_stream(bytearray(packed))) == data
    if data.startswith(b"abcabc"):
        assert len(packed) < len(data) // 10


def test_project_stream_encryption_decodes() -> None:
    project_id = "{25EA01CF-D038-4991-8591-4DA5D887DA0C}"
    version, plain = ovba_decrypt(_ovba_encrypt(b"\x00\x00\x00\x00", project_id, 0x31))
    assert (version, plain) == (2, bytes(4))


def test_project_stream_matches_office_encryption(corpus: Path) -> None:
    # Word's own CMG value for this project ID decodes with the same algorithm to the same key.
    project_id = "{25EA01CF-D038-4991-8591-4DA5D887DA0C}"
    with olefile.OleFileIO(
        corpus / "vbastomp/original_files_b4_stomping/2016x32samples/2016x32_word_msgbox_b4_stomped.doc"
    ) as ole:
        text = ole.openstream("Macros/PROJECT").read().decode("latin-1")
    assert project_id in text
    cmg = text.split('CMG="', 1)[1].split('"', 1)[0]
    seed = bytes.fromhex(cmg)[0]
    assert ovba_decrypt(cmg)[0] == 2
    assert bytes.fromhex(cmg)[2] == bytes.fromhex(_ovba_encrypt(b"", project_id, seed))[2]  # same project key


def test_olevba_extracts_the_written_source_exactly() -> None:
    modules = {"ThisDocument": 'Sub AutoOpen()\n    MsgBox "会議"\nEnd Sub', "Tools": "Sub Tidy()\nEnd Sub\n"}
    data = build_word_document(modules, codepage=932)
    parser = VBA_Parser("sample.doc", data=data)
    extracted = {stream.rsplit("/", 1)[1]: code for _, stream, _, code in parser.extract_macros()}
    assert extracted == {name: module_source(name, code) for name, code in modules.items()}
    assert "Attribute VB_TemplateDerived = True" in extracted["ThisDocument"]
    with olefile.OleFileIO(build_vba_project_bin({"Module1": "Sub A()\nEnd Sub"})) as ole:
        assert ole.exists("VBA/dir") and ole.exists("PROJECT") and ole.exists("VBA/Module1")


def test_word_document_metadata_fib_and_package() -> None:
    data = build_word_document(
        {"NewMacros": "Sub AutoExec()\nEnd Sub"},
        template=True,
        codepage=932,
        author="佐藤 健一",
        last_saved_by="Administrator",
        embedded=[EmbeddedFile("a.txt", b"hello", "C:\\a.txt")],
    )
    with olefile.OleFileIO(data) as ole:
        meta = ole.get_metadata()
        assert meta.codepage == 932
        assert meta.author.decode("cp932") == "佐藤 健一"
        assert meta.last_saved_by == b"Administrator"
        assert meta.create_time.year == 2022
        ident, _, _, lid, _, flags = struct.unpack_from("<HHHHHH", ole.openstream("WordDocument").read(12))
        assert (ident, lid, flags & 1) == (0xA5EC, 0x0411, 1)
        package = OleNativeStream(ole.openstream("ObjectPool/_1577691246/\x01Ole10Native").read())
        assert (package.filename, package.data) == ("a.txt", b"hello")
    with olefile.OleFileIO(build_word_document(None, codepage=1252)) as ole:
        (flags,) = struct.unpack_from("<H", ole.openstream("WordDocument").read(12), 10)
        assert flags & 1 == 0


def test_word_rc4_encryption_opens_with_msoffcrypto() -> None:
    data = build_word_document(None, codepage=1252, text="secret body", password="pw1")
    office_file = msoffcrypto.OfficeFile(io.BytesIO(data))
    assert office_file.is_encrypted()
    with pytest.raises(msoffcrypto.exceptions.InvalidKeyError):
        office_file.load_key(password="wrong")
    office_file.load_key(password="pw1")
    plain = io.BytesIO()
    office_file.decrypt(plain)
    with olefile.OleFileIO(plain.getvalue()) as ole:
        assert "secret body".encode("utf-16-le") in ole.openstream("WordDocument").read()
    with olefile.OleFileIO(data) as ole:
        assert "secret body".encode("utf-16-le") not in ole.openstream("WordDocument").read()


# --- the analyzer on the inert samples --------------------------------------------------------------


@pytest.mark.parametrize("sample", office.SAMPLES, ids=[s.name for s in office.SAMPLES])
def test_samples_meet_their_expectations(sample) -> None:
    data = sample.build()
    assert data == sample.build()
    report = triage_bytes(data, sample.name)
    assert list(differences(manifest_entry(sample, data), report)) == []
    assert not ole_errors(report)


@pytest.fixture(scope="module")
def restylink_report() -> Report:
    return triage_bytes(office.restylink_template(), "restylink_startup_template.dot")


def test_restylink_template_iocs_and_source(restylink_report: Report) -> None:
    iocs = {(i.type, i.value) for i in restylink_report.iocs}
    assert ("url", office.PAYLOAD_URL) in iocs
    assert ("domain", "update.restylink.invalid") in iocs
    assert ("ip", office.FALLBACK_HOST) in iocs
    assert ("filepath", "%APPDATA%\\Microsoft\\Templates\\msoffupd.dll") in iocs
    root = restylink_report.root
    macros = root.metadata["ole"]["macros"]
    sources = {m["name"]: m["source"] for m in macros["modules"]}
    assert sources["NewMacros"] == module_source(
        "NewMacros", office.restylink_macro(), template_derived=False
    )
    assert macros["mraptor"]["flags"] == "AWX"
    assert macros["projects"] == ["TemplateProject"]
    assert 'source = "' + office.PAYLOAD_URL + '"' in macros["deobfuscated_source"]
    assert len(root.facts["macro source"]) <= EXCERPT_CHARS
    assert "AutoExec" in root.facts["macro behaviour"] and "writes files" in root.facts["macro behaviour"]
    assert root.metadata["ole"]["properties"]["codepage"] == 932
    assert root.metadata["ole"]["fib"]["fDot"] is True


def test_encrypted_invoice_is_analysed_once_in_the_decrypted_child() -> None:
    report = triage_bytes(office.encrypted_invoice(), "invoice_protected.doc")
    root = report.root
    assert "modules" not in root.metadata["ole"].get("macros", {})
    (child,) = root.children
    assert child.labels == ["decrypted"] and child.path == "decrypted"
    assert {f.id for f in child.findings} >= {"ole.autoexec", "ole.vba_download"}
    assert not child.metadata["ole"]["fib"]["fEncrypted"]


def test_package_payload_becomes_a_child() -> None:
    report = triage_bytes(office.package_document(), "shipping_label.doc")
    child = node_named(report, "setup.cmd")
    assert child.sha256 == hashlib.sha256(office.SETUP_SCRIPT).hexdigest()
    assert child.labels == ["embedded", "ole-package"]


def test_user_password_decrypts() -> None:
    data = office.locked_document()
    report = triage_bytes(data, "locked.doc", Config(passwords=(office.UNKNOWN_PASSWORD,)))
    assert "ole.encrypted" in finding_ids(report)
    assert "ole.encrypted_unknown_password" not in finding_ids(report)
    assert report.root.children[0].labels == ["decrypted"]


def test_embedded_word_document_is_rewrapped_as_a_child() -> None:
    inner = build_word_document({"ThisDocument": "Sub AutoOpen()\nEnd Sub"}, codepage=1252)
    with olefile.OleFileIO(inner) as ole:
        inner_streams = {"/".join(p): ole.openstream(p).read() for p in ole.listdir()}
    outer_streams = {"WordDocument": b"\xec\xa5" + bytes(4094)}
    outer_streams |= {f"ObjectPool/_42/{path}": data for path, data in inner_streams.items()}
    outer = build_cfb(outer_streams, {"": CLSID_WORD_DOCUMENT, "ObjectPool/_42": CLSID_WORD_DOCUMENT})
    report = triage_bytes(outer, "outer.doc")
    assert "ole.embedded_object" in {f.id for f in report.root.findings}
    assert "ole.autoexec" not in {f.id for f in report.root.findings}  # reported by the child only
    child = node_named(report, "_42.doc")
    assert child.type == "ole" and "ole.autoexec" in {f.id for f in child.findings}


def test_expression_folding() -> None:
    code = 'u = StrReverse("moc.elpmaxe//:ptth") & ("/" & ChrW(&H61)) + Chr(98)\r\np = Environ("TEMP") & "\\x.exe"'
    folded, found = fold_expressions(code)
    assert dict(found) == {
        "http://example.com/ab": code.splitlines()[0],
        "%TEMP%\\x.exe": code.splitlines()[1],
    }
    assert folded.splitlines()[0] == 'u = "http://example.com/ab"'
    long_chain = "x = " + " & ".join(f"Chr({ord(c)})" for c in "powershell -enc " * 400)
    started = time.monotonic()
    _, found = fold_expressions(long_chain)
    assert found[0][0] == "powershell -enc " * 400
    assert time.monotonic() - started < 2


def test_remote_attached_template() -> None:
    url = "http://templates.restylink.invalid/meeting.dotm"
    report = triage_bytes(build_word_document(None, codepage=1252, attached_template=url), "remote.doc")
    assert "ole.remote_template" in finding_ids(report)
    assert ("url", url) in {(i.type, i.value) for i in report.iocs}


def test_property_sets_with_hostile_vector_counts_stay_fast() -> None:
    # olefile loops over a vector count read from the file (billions here); ours reads scalars only.
    data = bytearray(build_word_document(None, codepage=1252, author="abc"))
    marker = struct.pack("<HHI", 0x001E, 0, 4) + b"abc\x00"
    at = data.index(marker)
    data[at : at + 8] = struct.pack("<HHI", 0x101E, 0, 0xFFFFFFF0)  # VT_VECTOR | VT_LPSTR
    report = triage_bytes(bytes(data), "vector.doc")
    assert report.stats.duration_s < 10
    assert not ole_errors(report)


@settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    cut=st.integers(min_value=0, max_value=20_000),
    flips=st.lists(st.tuples(st.integers(min_value=0, max_value=20_000), st.integers(0, 255)), max_size=12),
)
def test_mutated_documents_never_break_the_analyzer(cut: int, flips: list[tuple[int, int]]) -> None:
    data = bytearray(office.restylink_template())
    for position, value in flips:
        data[position % len(data)] = value
    mutated = bytes(data[: max(cut, 520)])
    report = triage_bytes(mutated, "mutated.dot")
    assert report.root.type in {"ole", "data", "text"}
    assert not ole_errors(report), ole_errors(report)


# --- the public corpus ------------------------------------------------------------------------------


def _strip_attributes(code: str) -> str:
    return "".join(line for line in code.splitlines(keepends=True) if not line.startswith("Attribute "))


@pytest.mark.parametrize("folder", ["document", "spreadsheet"])
def test_poi_simple_macro_source(corpus: Path, folder: str) -> None:
    suffix = "doc" if folder == "document" else "xls"
    report = triage(corpus / f"poi/{folder}/SimpleMacro.{suffix}")
    modules = {m["name"]: m["source"] for m in report.root.metadata["ole"]["macros"]["modules"]}
    expected = (corpus / f"poi/{folder}/SimpleMacro.vba").read_bytes().decode("latin-1")
    assert _strip_attributes(modules["Module1"]).rstrip("\r\n") == expected.rstrip("\r\n")
    assert finding_ids(report) & {"ole.autoexec", "ole.mraptor_suspicious", "ole.xlm_macros"} == set()
    assert report.verdict == "clean"


@pytest.mark.parametrize(
    ("path", "trigger", "stomped"),
    [
        (
            "vbastomp/original_files_b4_stomping/2016x32samples/2016x32_word_msgbox_b4_stomped.doc",
            "AutoOpen",
            False,
        ),
        (
            "vbastomp/original_files_b4_stomping/2016x32samples/2016x32_excel_msgbox_b4_stomped.xls",
            "Workbook_Open",
            False,
        ),
        (
            "vbastomp/original_files_b4_stomping/2003x32samples/2003x32_word_msgbox_b4_stomped.doc",
            "AutoOpen",
            False,
        ),
        ("vbastomp/2016x32/2016x32_word_msgbox_stomped_fakecode.doc", "AutoOpen", True),
        ("vbastomp/2016x32/2016x32_word_msgbox_stomped_random.doc", "AutoOpen", True),
        ("vbastomp/2016x32/2016x32_excel_msgbox_stomped_fakecode.xls", "Workbook_Open", True),
        ("vbastomp/2003x32/2003x32_word_msgbox_stomped_fakecode.doc", "AutoOpen", True),
    ],
)
def test_vba_stomping(corpus: Path, path: str, trigger: str, stomped: bool) -> None:
    report = triage(corpus / path)
    found = finding_ids(report)
    assert ("ole.vba_stomping" in found) is stomped
    assert trigger in report.root.facts["auto-exec"]
    if stomped:
        assert report.verdict == "malicious"
        assert "This message comes from the P-code" in report.root.metadata["ole"]["macros"]["pcode"]
    else:
        assert report.verdict == "suspicious"


@pytest.mark.parametrize(
    "name", ["excel4_sample_macro.xls", "excel4_sample_macro.xlt", "excel4_sample_macro_excel5_format.xls"]
)
def test_excel4_macros(corpus: Path, name: str) -> None:
    report = triage(corpus / "oletools/excel4-macros" / name)
    found = finding_ids(report)
    assert {"ole.xlm_macros", "ole.autoexec"} <= found
    assert "Auto_Open" in report.root.facts["auto-exec"]
    assert ("ole.template" in found) is name.endswith(".xlt")


def test_strelka_xls_vba_and_xlm(corpus: Path) -> None:
    report = triage(corpus / "strelka/fixtures/test.xls")
    assert {"ole.xlm_macros", "ole.vba_macros", "ole.autoexec"} <= finding_ids(report)
    assert ("url", "https://www.example.com/path/to/resource") in {(i.type, i.value) for i in report.iocs}


@pytest.mark.parametrize(
    ("path", "md5"),
    [
        ("oletools/oleobj/embedded-simple-2007.doc", "bd5c063a5a43f67b3c50dc7b0f1195af"),
        ("oletools/oleobj/embedded-simple-2007.dot", "bd5c063a5a43f67b3c50dc7b0f1195af"),
        ("oletools/oleobj/embedded-simple-2007.xls", "ab8c65e4c0fc51739aa66ca5888265b4"),
        ("oletools/oleobj/embedded-unicode.doc", "264397735b6f09039ba0adf0dc9fb942"),
        ("oletools/oleobj/sample_with_lnk_file.doc", "6aedb1a876d4ad5236f1fbbbeb7274f3"),
        ("oletools/oleobj/sample_with_lnk_file.ppt", "6aedb1a876d4ad5236f1fbbbeb7274f3"),
        ("oletools/oleobj/sample_with_calc_embedded.doc", "40e85286357723f326980a3b30f84e4f"),
        ("strelka/fixtures/test_pe_object.doc", "94bd8abe1aa6405335edd191d5698ab5"),
    ],
)
def test_embedded_objects_become_children(corpus: Path, path: str, md5: str) -> None:
    report = triage(corpus / path)
    assert md5 in {node.md5 for node in walk(report.root) if node.depth > 0}


def test_template_without_macros_is_only_a_template(corpus: Path) -> None:
    report = triage(corpus / "oletools/oleobj/embedded-simple-2007.dot")
    found = finding_ids(report)
    assert "ole.template" in found and "ole.template_autoexec" not in found and "ole.vba_macros" not in found
    assert "FIB fDot" in report.root.facts["template"]


def test_linked_package_is_reported(corpus: Path) -> None:
    report = triage(corpus / "oletools/oleobj/sample_with_lnk_to_calc.doc")
    (finding,) = [f for f in report.root.findings if f.id == "ole.package_executable"]
    assert "calc.exe" in finding.evidence and "link" in finding.evidence


@pytest.mark.parametrize(
    ("path", "password", "child_type"),
    [
        ("oletools/encrypted/autostart-encrypt-standardpassword.xls", None, "ole"),
        ("oletools/encrypted/autostart-encrypt-standardpassword.xlsm", None, "ooxml"),
        ("strelka/fixtures/test_password.doc", "Password1!", "ole"),
        ("strelka/fixtures/test_password.docx", "Password1!", "ooxml"),
    ],
)
def test_encrypted_documents_decrypt(corpus: Path, path: str, password: str | None, child_type: str) -> None:
    report = triage(corpus / path, Config(passwords=(password,) if password else ()))
    root_ids = {f.id for f in report.root.findings}
    assert ("ole.default_password" if password is None else "ole.encrypted") in root_ids
    (child,) = [c for c in report.root.children if "decrypted" in c.labels]
    assert child.type == child_type
    if path.endswith("standardpassword.xls"):
        assert "Auto_Open" in child.facts["auto-exec"]


@pytest.mark.parametrize(
    "path",
    ["oletools/encrypted/encrypted.doc", "oletools/encrypted/encrypted.xls", "oletools/encrypted/encrypted.docx",
     "strelka/fixtures/test_password_brute.doc"],
)  # fmt: skip
def test_encrypted_documents_without_password(corpus: Path, path: str) -> None:
    report = triage(corpus / path)
    assert "ole.encrypted_unknown_password" in finding_ids(report)
    assert "password unknown" in report.root.facts["encryption"]


@pytest.mark.parametrize("name", ["dde-test-from-office2003.doc", "dde-test-from-office2016.doc"])
def test_dde_fields(corpus: Path, name: str) -> None:
    with zipfile.ZipFile(corpus / f"oletools/msodde/{name}.zip") as archive:
        data = archive.read(name, pwd=b"infected-test")
    report = triage_bytes(data, name)
    (finding,) = [f for f in report.root.findings if f.id == "ole.dde"]
    assert "calc.exe" in finding.evidence.lower()
    assert "ole.dde" not in finding_ids(triage(corpus / "oletools/msodde/harmless-clean.doc"))


def test_clean_documents_stay_clean(corpus: Path) -> None:
    for path in (
        "oletools/msodde/harmless-clean.doc",
        "strelka/fixtures/test.doc",
        "strelka/fixtures/test_classic.doc",
    ):
        report = triage(corpus / path)
        assert report.verdict == "clean", (path, report.reasons)
        assert not finding_ids(report) & {"ole.vba_macros", "ole.malformed"}


def test_powerpoint_vba_is_reported_once(corpus: Path) -> None:
    report = triage(corpus / "oletools/olevba/sample_with_vba.ppt")
    assert "Action_Click" in report.root.facts["auto-exec"]
    assert not report.root.children


@pytest.mark.parametrize(
    "path",
    ["poi/poifs/60256.bin", "poi/poifs/61300.bin", "poi/poifs/BlockSize4096.zvi", "poi/poifs/ReferencesInvalidSectors.mpp",
     "poi/poifs/only-zero-byte-streams.ole2",
     "poi/document/clusterfuzz-testcase-minimized-POIHWPFFuzzer-5418937293340672.doc"],
)  # fmt: skip
def test_malformed_files_never_crash(corpus: Path, path: str) -> None:
    report = triage(corpus / path)
    assert report.root.type == "ole"
    assert not ole_errors(report)
    if path.endswith("61300.bin"):  # POI still reads PID_CODEPAGE = 1252 despite the bad stream size
        assert report.root.metadata["ole"]["properties"]["codepage"] == 1252


def test_a_looping_storage_tree_is_not_handed_to_recursive_readers() -> None:
    """olevba lists the storage tree recursively: on a tree that holds its root it went to the
    recursion limit, where a garbage collection cannot even run finalizers (pytest then fails some
    other test with an unraisable RecursionError). Nothing may recurse on it any more."""
    import gzip
    import sys

    from restytriage.model import to_json

    data = gzip.decompress(
        (Path(__file__).parent / "regressions" / "ole-storage-holds-root.bin.gz").read_bytes()
    )
    triage_bytes(b"warm up", "w.txt")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(250)  # far below what the loop needs, far above what the tool needs
    try:
        report = triage_bytes(data, "looped.doc")
    finally:
        sys.setrecursionlimit(limit)
    assert "RecursionError" not in to_json(report).decode()
    assert report.root.metadata["ole"]["macros_error"].startswith("not read: the storage tree loops")
