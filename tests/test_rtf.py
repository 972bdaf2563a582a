"""The RTF analyzer: OLE Package droppers, exploit classes, raw object data, DDE fields."""

from __future__ import annotations

import binascii
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from restytriage.cfb import build_cfb
from restytriage.engine import triage_bytes
from restytriage.model import Report, walk
from restytriage.samples.cfb_writer import build_ole10native

EQUATION_CLSID = "0002CE02-0000-0000-C000-000000000046"


def ole1_object(class_name: bytes, data: bytes) -> bytes:
    """An OLE 1.0 embedded object (MS-OLEDS 2.2.4/2.2.5): header, class/topic/item names, data."""

    def text(value: bytes) -> bytes:
        return struct.pack("<I", len(value) + 1) + value + b"\x00"

    return (
        struct.pack("<II", 0x00000501, 2)
        + text(class_name)
        + text(b"")
        + text(b"")
        + struct.pack("<I", len(data))
        + data
    )


def rtf_with_object(
    payload: bytes, class_name: bytes, header: bytes = b"{\\rtf1", update: bool = True
) -> bytes:
    hexdata = binascii.hexlify(payload)
    # Word ignores whitespace inside \objdata; wrap like real documents do.
    wrapped = b"\r\n".join(hexdata[i : i + 128] for i in range(0, len(hexdata), 128))
    flags = b"\\objemb" + (b"\\objupdate" if update else b"")
    return (
        header + b"\\ansi\\deff0{\\fonttbl{\\f0 Calibri;}}\\pard Please wait...\\par"
        b"{\\object"
        + flags
        + b"\\objw100\\objh100{\\*\\objclass "
        + class_name
        + b"}{\\*\\objdata "
        + wrapped
        + b"}}}"
    )


def ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def test_package_dropper_gives_its_file_as_a_child() -> None:
    script = b'<?XML version="1.0"?><scriptlet><script language="JScript">var x = 1;</script></scriptlet>'
    package = build_ole10native(
        "update.sct", script, "C:\\Users\\a\\update.sct", "C:\\Users\\a\\AppData\\Local\\Temp\\update.sct"
    )[4:]
    report = triage_bytes(rtf_with_object(ole1_object(b"Package", package), b"Package"), "invoice.rtf")
    node = report.root
    assert node.type == "rtf" and not node.errors
    (child,) = node.children
    assert child.name == "update.sct" and child.labels == ["embedded-object", "package"]
    assert child.size == len(script)
    assert {"rtf.package_object", "rtf.executable_object", "rtf.objupdate"} <= ids(report)
    (entry,) = node.metadata["rtf"]["objects"]
    assert entry["package"]["temp_path"].endswith("Temp\\update.sct")


def test_equation_editor_object_is_an_exploit() -> None:
    equation = build_cfb({"\x01Ole10Native": b"\x1c\x00\x00\x00" + bytes(40)}, clsids={"": EQUATION_CLSID})
    report = triage_bytes(rtf_with_object(ole1_object(b"Equation.3", equation), b"Equation.3"), "eq.rtf")
    node = report.root
    assert "rtf.exploit_object" in ids(report) and report.verdict == "malicious"
    (entry,) = node.metadata["rtf"]["objects"]
    assert entry["class"] == "Equation.3" and entry["clsid"] == EQUATION_CLSID
    assert "CVE-2017-11882" in entry["clsid_description"]
    assert node.children[0].type == "ole"


def test_ole2link_url_becomes_an_ioc() -> None:
    url = "http://198.51.100.44/template.hta"
    link = build_cfb({"\x01Ole": b"\x01\x00\x00\x02" + bytes(16) + url.encode("utf-16-le") + b"\x00\x00"})
    report = triage_bytes(rtf_with_object(ole1_object(b"OLE2Link", link), b"OLE2Link"), "link.rtf")
    assert "rtf.exploit_object" in ids(report)
    assert ("url", url) in {(i.type, i.value) for i in report.iocs}


def test_raw_object_data_and_truncated_header() -> None:
    shellcode = b"\x90" * 64 + b"\xeb\xfe" + bytes(30)
    report = triage_bytes(
        rtf_with_object(shellcode, b"Word.Document.8", header=b"{\\rt", update=False), "x.doc"
    )
    node = report.root
    assert node.type == "rtf"
    assert {"rtf.malformed_object", "rtf.header_anomaly"} <= ids(report)
    assert "rtf.objupdate" not in ids(report)
    (child,) = node.children
    assert child.size == len(shellcode)


def test_dde_field_in_rtf() -> None:
    body = (
        b'{\\rtf1\\ansi{\\field{\\*\\fldinst DDEAUTO c:\\\\\\\\windows\\\\\\\\system32\\\\\\\\cmd.exe "/k calc.exe"}'
        b"{\\fldrslt x}}\\par{\\field{\\*\\fldinst PAGE}{\\fldrslt 1}}}"
    )
    report = triage_bytes(body, "dde.rtf")
    node = report.root
    assert "rtf.dde_auto" in ids(report)
    assert node.facts["DDE"] == 'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'


def test_plain_rtf_is_clean() -> None:
    report = triage_bytes(b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Calibri;}}\\pard Hello\\par}", "letter.rtf")
    assert report.verdict == "clean" and not report.root.findings and not report.root.children


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=1500))
def test_hostile_rtf_never_breaks_the_analyzer(tail: bytes) -> None:
    report = triage_bytes(b"{\\rtf1{\\object\\objemb{\\*\\objdata " + tail, "r.rtf")
    assert not [e for node in walk(report.root) for e in node.errors if e.analyzer == "rtf"]
