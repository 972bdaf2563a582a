"""PE traits on real PEs: the committed mingw samples and the public corpus (malformed ones included)."""

from __future__ import annotations

import hashlib
import io
import struct
import tomllib
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pefile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import findings, model
from restytriage.analysis import Analysis, Context, Item, Sibling
from restytriage.analyzers import pe
from restytriage.blob import Blob
from restytriage.config import Config
from restytriage.engine import triage, triage_bytes
from restytriage.entropy import shannon_entropy
from restytriage.samples.pe_samples import prebuilt

NOW = datetime(2025, 1, 1, tzinfo=UTC).timestamp()


def _ids(report: model.Report) -> set[str]:
    return {f.id for node in model.walk(report.root) for f in node.findings}


def _pe_node_findings(node: model.Node) -> set[str]:
    return {f.id for f in node.findings if f.analyzer == "pe"}


def _run_pe(data: bytes, name: str, tmp_path: Path, **item_fields: Any) -> Analysis:
    """The PE analyzer alone on an item placed as `item_fields` say (depth, siblings, ...)."""
    ctx = Context(Config(), tmp_path, deadline=float("inf"))
    item = Item(blob=Blob.of(data), name=name, type="pe", extension=name.rsplit(".", 1)[-1], depth=0)
    for key, value in item_fields.items():
        setattr(item, key, value)
    return pe.analyze(item, ctx)


def _with_overlay(data: bytes, overlay: bytes) -> bytes:
    return data + overlay


def _with_signature(data: bytes, certificate: bytes, after: bytes) -> bytes:
    """`data` with a certificate table appended and the security directory pointing at it."""
    parsed = pefile.PE(data=data, fast_load=True)
    entry = parsed.OPTIONAL_HEADER.DATA_DIRECTORY[4].get_file_offset()
    patched = bytearray(data)
    struct.pack_into("<II", patched, entry, len(data), len(certificate))
    return bytes(patched) + certificate + after


# --- the committed samples ----------------------------------------------------------------------


def test_benign_tool_headers_and_version_info_are_read() -> None:
    report = triage_bytes(prebuilt("c_fsum.exe"), "fsum.exe")
    meta = report.root.metadata["pe"]
    expected = pefile.PE(data=prebuilt("c_fsum.exe"))
    assert (meta["format"], meta["kind"], meta["machine"], meta["subsystem"]) == (
        "PE32+",
        "EXE",
        "AMD64",
        "WINDOWS_CUI",
    )
    assert meta["timestamp"]["utc"].startswith("2022-04-12") and meta["timestamp"]["note"] is None
    assert meta["imphash"] == expected.get_imphash()
    assert [s["name"] for s in meta["sections"]] == [s.Name.rstrip(b"\0").decode() for s in expected.sections]
    assert meta["entry_point"]["section"] == ".text"
    assert meta["version_info"]["OriginalFilename"] == "fsum.exe"
    assert {"KERNEL32.dll", "msvcrt.dll"} <= {entry["dll"] for entry in meta["imports"]}
    assert len(meta["tls_callbacks"]) >= 1  # mingw's CRT registers TLS callbacks in every program
    assert report.verdict == "clean" and not _pe_node_findings(report.root)


def test_proxy_dll_forwarding_to_system32_is_flagged_and_its_imports_grouped() -> None:
    report = triage_bytes(prebuilt("c_version.dll"), "c_version.dll")
    meta = report.root.metadata["pe"]
    assert meta["exports"]["dll_name"] == "version.dll"
    assert all(
        s["forwarder"].startswith("C:\\Windows\\System32\\version.") for s in meta["exports"]["symbols"]
    )
    assert meta["capabilities"]["network"] == [
        "WinHttpConnect", "WinHttpOpen", "WinHttpOpenRequest", "WinHttpReadData", "WinHttpReceiveResponse", "WinHttpSendRequest",
    ]  # fmt: skip
    assert {"pe.proxy_dll", "pe.imports_network"} <= _pe_node_findings(report.root)
    assert "T1574.001" in {t.id for t in report.techniques}


def test_resource_carrying_a_program_becomes_a_child_that_is_analysed() -> None:
    report = triage_bytes(prebuilt("c_carrier.exe"), "carrier.exe")
    assert "pe.embedded_executable" in _pe_node_findings(report.root)
    (resource,) = report.root.metadata["pe"]["resources"]
    assert (resource["type"], resource["name"], resource["lang"], resource["content"]) == (
        "RCDATA",
        "101",
        1033,
        "pe",
    )
    (child,) = report.root.children
    assert child.labels == ["resource"] and child.offset == resource["offset"]
    assert child.metadata["pe"]["version_info"]["OriginalFilename"] == "fsum.exe"


def test_overlay_is_carved_into_its_files_and_leftover_bytes() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(zipfile.ZipInfo("readme.txt", (2022, 1, 1, 0, 0, 0)), "hello")
    config_blob = b"CFG1" + bytes(range(256)) * 2
    original = prebuilt("c_fsum.exe")
    report = triage_bytes(
        _with_overlay(original, config_blob + archive.getvalue() + prebuilt("c_sideload_host.exe")), "x.exe"
    )
    (overlay,) = report.root.metadata["pe"]["overlay"]
    assert overlay["offset"] == len(original)
    assert [f["type"] for f in overlay["files"]] == ["data", "zip", "pe"]
    children = {child.name: child for child in report.root.children}
    assert children[f"overlay@0x{len(original):x}"].size == len(config_blob)
    assert children[f"overlay@0x{len(original) + len(config_blob):x}.zip"].type == "zip"
    assert "pe.embedded_executable" in _pe_node_findings(report.root)


def test_authenticode_signature_is_not_overlay_but_data_after_it_is() -> None:
    certificate = struct.pack("<IHH", 264, 0x0200, 2) + b"\x30\x82" + bytes(256)
    report = triage_bytes(
        _with_signature(prebuilt("c_fsum.exe"), certificate, b"campaign=rlk;" * 8), "signed.exe"
    )
    meta = report.root.metadata["pe"]
    assert meta["authenticode"] == {
        "offset": len(prebuilt("c_fsum.exe")), "size": len(certificate), "verified": False,
        "length": 264, "revision": "0002", "certificate_type": 2,
    }  # fmt: skip
    (appended,) = meta["overlay"]
    assert appended["offset"] == len(prebuilt("c_fsum.exe")) + len(certificate) and appended["size"] == 13 * 8
    assert "pe.data_after_signature" in _pe_node_findings(report.root)
    assert report.root.facts["signature"].startswith("Authenticode signature present")


def test_signature_alone_leaves_no_overlay() -> None:
    certificate = struct.pack("<IHH", 24, 0x0200, 2) + bytes(16)
    report = triage_bytes(_with_signature(prebuilt("c_fsum.exe"), certificate, b""), "signed.exe")
    assert "overlay" not in report.root.metadata["pe"] and not report.root.children


# --- side-loading ------------------------------------------------------------------------------


def test_host_next_to_the_windows_named_dll_it_imports_is_a_sideloading_pair(tmp_path: Path) -> None:
    out = _run_pe(prebuilt("c_sideload_host.exe"), "app/UpdateHelper.exe", tmp_path, depth=1,
                  siblings=(Sibling("app/VERSION.dll", "pe"), Sibling("readme.txt", "text")))  # fmt: skip
    assert "pe.sideload_host_windows_dll" in {f.id for f in out.findings}
    assert out.metadata["sideloads"] == [{"dll": "app/VERSION.dll", "how": "imports it"}]


def test_host_next_to_an_ordinary_dll_it_imports_is_the_weaker_finding(tmp_path: Path) -> None:
    out = _run_pe(
        prebuilt("c_sideload_host.exe"),
        "UpdateHelper.exe",
        tmp_path,
        depth=1,
        siblings=(Sibling("msvcrt.dll", "pe"),),
    )
    assert {f.id for f in out.findings} & {"pe.sideload_host", "pe.sideload_host_windows_dll"} == {
        "pe.sideload_host"
    }


def test_host_beside_dlls_it_does_not_load_is_not_flagged(tmp_path: Path) -> None:
    siblings = (Sibling("winmm.dll", "pe"), Sibling("version.dll", "text"))  # the second is not a PE
    out = _run_pe(prebuilt("c_sideload_host.exe"), "UpdateHelper.exe", tmp_path, depth=1, siblings=siblings)
    assert not {f.id for f in out.findings} & {"pe.sideload_host", "pe.sideload_host_windows_dll"}


def test_windows_dll_name_counts_only_when_delivered_inside_something(tmp_path: Path) -> None:
    delivered = _run_pe(prebuilt("c_version.dll"), "Update/version.dll", tmp_path, depth=1, parent_type="iso")
    assert "pe.sideload_dll_name" in {f.id for f in delivered.findings}
    alone = _run_pe(prebuilt("c_version.dll"), "version.dll", tmp_path, depth=0)
    assert "pe.sideload_dll_name" not in {f.id for f in alone.findings}
    unpacked = _run_pe(prebuilt("c_version.dll"), "version.dll", tmp_path, depth=1, labels=("upx-unpacked",))
    assert "pe.sideload_dll_name" not in {f.id for f in unpacked.findings}


def test_sideloading_zip_sample_is_malicious_with_both_halves_flagged() -> None:
    from restytriage.samples.pe_samples import sideload_pair

    report = triage_bytes(sideload_pair(), "update.zip")
    assert report.verdict == "malicious"
    assert {"pe.sideload_dll_name", "pe.sideload_host_windows_dll", "upx.packed"} <= _ids(report)


# --- the data tables -----------------------------------------------------------------------------


def test_capabilities_come_from_the_table_with_a_w_suffixes() -> None:
    assert pe.capability_of("CreateProcessW") == pe.capability_of("CreateProcessA") == "execution"
    assert pe.capability_of("URLDownloadToFileW") == "network"
    assert pe.capability_of("DnsQuery_A") == "network"
    assert pe.capability_of("GetProcAddress") is None
    assert pe.capability_of("CheckRemoteDebuggerPresent") == "anti_analysis"


def test_process_injection_needs_two_of_its_functions() -> None:
    assert pe.group_capabilities(["SetThreadContext", "Sleep"]) == {}  # what every Go program imports
    assert pe.group_capabilities(["VirtualAllocEx", "WriteProcessMemory", "CreateRemoteThread"]) == {
        "process_injection": ["CreateRemoteThread", "VirtualAllocEx", "WriteProcessMemory"]
    }


def test_every_capability_group_has_its_finding_and_table_entries_are_unique() -> None:
    from importlib import resources

    table = tomllib.loads((resources.files("restytriage") / "data" / "pe_traits.toml").read_text("utf-8"))
    names = [api.lower() for spec in table["capabilities"].values() for api in spec["functions"]]
    assert len(names) == len(set(names))
    for group in table["capabilities"]:
        assert f"pe.imports_{group}" in findings.definitions()
    assert "version.dll" in pe.sideload_names() and "kernel32.dll" not in pe.sideload_names()


@pytest.mark.parametrize(
    ("value", "reproducible", "expected"),
    [
        (0, False, "zero"),
        (0x2A425E19, False, "fixed value written by Borland/Delphi linkers"),
        (int(NOW) + 10 * 86_400, False, "in the future"),
        (int(NOW) + 10 * 86_400, True, "reproducible build: a hash, not a date"),
        (1_649_721_600, False, None),
    ],
)
def test_timestamps_that_are_not_build_times_are_named(
    value: int, reproducible: bool, expected: str | None
) -> None:
    assert pe.judge_timestamp(value, reproducible, NOW) == expected


def test_future_timestamp_is_a_finding() -> None:
    data = bytearray(prebuilt("c_fsum.exe"))
    (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
    struct.pack_into("<I", data, pe_offset + 8, 0xF0000000)  # 2097
    report = triage_bytes(bytes(data), "x.exe")
    assert "pe.timestamp_future" in _pe_node_findings(report.root)


def test_entropy_of_known_data() -> None:
    assert shannon_entropy(b"") == 0.0
    assert shannon_entropy(b"A" * 100) == 0.0
    assert shannon_entropy(bytes(range(256)) * 4) == pytest.approx(8.0)
    assert shannon_entropy(bytes(range(256)) * 4096) == pytest.approx(8.0)  # sampled past 256 KiB


# --- the public corpus -------------------------------------------------------------------------


def _corpus_pes(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.read_bytes()[:2] == b"MZ")


def test_every_corpus_pe_is_analysed_without_an_exception(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UPX and PE analyzers, as the engine chains them, on every MZ file of the corpus (the
    malformed corkami set included): an exception here is a crash the engine would have caught.
    Unpacking is left to test_upx.py: here upx is made absent so only parsing is timed."""
    from restytriage.analyzers import upx

    monkeypatch.setattr(upx, "find_upx", lambda: None)
    paths = _corpus_pes(corpus)
    assert len(paths) >= 100
    malformed = []
    for path in paths:
        ctx = Context(Config(), tmp_path, deadline=float("inf"))
        item = Item(blob=Blob(path=path), name=path.name, type="pe", extension="", depth=0)
        packing = upx.analyze(item, ctx)
        if packing.metadata:
            item.metadata["upx"] = packing.metadata
        if "pe.malformed" in {f.id for f in pe.analyze(item, ctx).findings}:
            malformed.append(path.name)
    assert sorted(malformed) == ["d_tiny.dll", "mz.bin", "pe.bin"]  # the three pefile refuses outright


def test_corpus_expectations_from_upstream_tests(corpus: Path) -> None:
    data = corpus / "yara" / "tests" / "data"
    tiny = triage(data / "tiny").root.metadata["pe"]
    assert tiny["imphash"] == "1720bf764274b7a4052bbef0a71adc0d" and tiny["section_count"] == 7
    assert tiny["entry_point"]["rva"] == 0x14E0
    overlay = triage(data / "tiny-overlay").root.metadata["pe"]["overlay"]
    assert overlay == [{"offset": 0x8000, "size": 7, "entropy": overlay[0]["entropy"], "padding": True}]
    assert triage(data / "tiny-idata-5200").root.metadata["pe"]["imports"] == []
    plaso = corpus / "plaso" / "test_data"
    test_pe = triage(plaso / "test_pe.exe").root.metadata["pe"]
    assert test_pe["imphash"] == "8d0739063fc8f9955cc6696b462544ab"
    assert test_pe["timestamp"]["utc"] == "2015-04-21T14:53:56+00:00"
    assert {(i["dll"], i["delayed"]) for i in test_pe["imports"]} == {
        ("KERNEL32.dll", False),
        ("USER32.dll", True),
    }
    assert triage(plaso / "test_driver.sys").root.metadata["pe"]["kind"] == "driver"
    delayed = triage(data / "pe_imports").root.metadata["pe"]["imports"]
    assert {"dll": "USER32.dll", "delayed": True, "functions": ["MessageBeep", "MessageBoxA"]} in delayed
    mtxex = triage(data / "mtxex.dll").root.metadata["pe"]["exports"]["symbols"]
    assert any(s["forwarder"] == "COMSVCS.GetObjectContext" for s in mtxex)


def test_signed_dll_rich_header_and_signature(corpus: Path) -> None:
    path = (
        corpus
        / "yara"
        / "tests"
        / "data"
        / "079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885"
    )
    meta = triage(path).root.metadata["pe"]
    expected = pefile.PE(str(path))
    assert meta["rich_header"]["hash"] == expected.get_rich_header_hash()
    assert {"product": 157, "build": 40219, "count": 1} in meta["rich_header"]["entries"]
    assert meta["authenticode"]["certificate_type"] == 2 and "overlay" not in meta
    assert any(e.get("pdb", "").endswith("custprof.pdb") for e in meta["debug"])


QUICKEN_DLL = "yara/tests/data/079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885"


def test_a_valid_signature_names_its_signer_chain_and_timestamp(corpus: Path) -> None:
    node = triage(corpus / QUICKEN_DLL).root
    record = node.metadata["pe"]["authenticode"]
    (signature,) = record["signatures"]
    assert record["verified"] and signature["verified"]
    assert (
        signature["signed_digest"] == signature["file_digest"] == "f4ca190ec9052243b8882d492b1c12d04da7817f"
    )
    assert signature["signer"]["subject"].endswith("/O=Quicken, Inc./OU=Operations/CN=Quicken, Inc.")
    assert [c["subject"].rsplit("/CN=", 1)[1] for c in signature["chain"]] == [
        "Quicken, Inc.",
        "Symantec Class 3 SHA256 Code Signing CA",
    ]
    assert signature["countersigned"] == "2018-06-05T16:35:51Z"
    # The file carries the leaf and the Symantec CA; the CA's issuer is a root in Microsoft's store.
    assert signature["trusted_root"] == "VeriSign Class 3 Public Primary Certification Authority - G5"
    assert node.facts["signature"] == (
        "Authenticode valid: Quicken, Inc. (issued by Symantec Class 3 SHA256 Code Signing CA), "
        "countersigned 2018-06-05T16:35:51Z - chains to VeriSign Class 3 Public Primary Certification "
        "Authority - G5 (Microsoft root store; revocation not checked)"
    )
    assert not [f for f in node.findings if f.id.startswith("pe.signature")]


def test_an_intact_signature_without_a_trusted_root_is_flagged(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from restytriage import authenticode

    monkeypatch.setattr(authenticode, "_microsoft_roots", lambda: {})  # a store that trusts nobody
    node = triage(corpus / QUICKEN_DLL).root
    (finding,) = [f for f in node.findings if f.id.startswith("pe.signature")]
    assert finding.id == "pe.signature_untrusted" and finding.techniques == ["T1553.002"]
    assert finding.evidence == "signature by Quicken, Inc.: no chain to a root Microsoft trusts"
    assert node.facts["signature"].endswith("- does not chain to a root Microsoft trusts")


def test_a_signed_file_changed_after_signing_fails_verification(corpus: Path) -> None:
    data = bytearray((corpus / QUICKEN_DLL).read_bytes())
    parsed = pefile.PE(data=bytes(data), fast_load=True)
    code = next(s for s in parsed.sections if s.Name.startswith(b".text"))
    data[code.PointerToRawData + 0x10] ^= 0xFF  # one byte of code, inside what the signature covers
    report = triage_bytes(bytes(data), "custprof.dll")
    (finding,) = [f for f in report.root.findings if f.id == "pe.signature_invalid"]
    assert finding.evidence.startswith("signature by Quicken, Inc.: the file's sha1 digest ")
    assert "the file changed after it was signed" in finding.evidence and finding.techniques == ["T1036.001"]
    assert report.root.facts["signature"].startswith("Authenticode INVALID: Quicken, Inc.")
    assert report.root.metadata["pe"]["authenticode"]["verified"] is False


def test_a_signature_that_never_matched_its_file_is_invalid(corpus: Path) -> None:
    node = triage(corpus / "corkami/PE/bin/signature.exe").root  # corkami: "a (wrong) signature"
    (finding,) = [f for f in node.findings if f.id.startswith("pe.signature")]
    assert finding.id == "pe.signature_invalid"
    assert finding.evidence.startswith(
        "signature by Internet Widgits Pty Ltd: the file's sha1 digest c31534a1"
    )


def test_a_self_signed_signer_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    """The judgement, on the record YARA's pe module gives for a certificate issued to and by itself
    (no self-signed sample is committed: making one needs a signing tool the project does not ship)."""
    from restytriage import authenticode

    name = b"/C=JP/O=Resty Tools/CN=Resty Tools"
    raw = {
        "verified": 1, "digest_alg": b"sha256", "digest": b"ab" * 32, "file_digest": b"ab" * 32,
        "signer_info": {"chain": [{"subject": name, "issuer": name, "serial": b"01", "not_before": 1,
                                   "not_after": 2_000_000_000, "thumbprint": b"cd" * 20}]},
        "countersignatures": [],
    }  # fmt: skip
    signature = authenticode._signature(raw)
    assert signature.self_signed and signature.verified and signature.signer is not None
    assert signature.signer.not_after == "2033-05-18T03:33:20Z"
    monkeypatch.setattr(authenticode, "signatures", lambda data, table: [signature])
    certificate = struct.pack("<IHH", 24, 0x0200, 2) + bytes(16)
    report = triage_bytes(_with_signature(prebuilt("c_fsum.exe"), certificate, b""), "tool.exe")
    (finding,) = [f for f in report.root.findings if f.id == "pe.signature_self_signed"]
    assert finding.evidence == f"Resty Tools: issued to and by {name.decode()}"
    assert finding.techniques == ["T1553.002"]


def test_an_unreadable_signature_is_said_to_be_so() -> None:
    certificate = struct.pack("<IHH", 24, 0x0200, 2) + bytes(16)
    report = triage_bytes(_with_signature(prebuilt("c_fsum.exe"), certificate, b""), "signed.exe")
    assert report.root.facts["signature"] == "Authenticode signature present but unreadable"
    assert "signatures" not in report.root.metadata["pe"]["authenticode"]


def test_dotnet_metadata_is_read(corpus: Path) -> None:
    node = triage(corpus / "strelka" / "fixtures" / "test.exe").root
    net = node.metadata["pe"]["dotnet"]
    assert (net["runtime"], net["assembly"], net["module"]) == ("v4.0.30319", "HelloWorld", "HelloWorld.exe")
    assert net["references"] == ["mscorlib"] and "CLR_ILONLY" in net["flags"]
    assert node.facts[".NET"] == "v4.0.30319, HelloWorld"
    assert node.metadata["pe"]["timestamp"]["note"] == "reproducible build: a hash, not a date"
    assert "pe.entry_point_unusual" not in _pe_node_findings(node)  # .NET images need no native entry


def test_overlay_zip_of_the_strelka_fixture_is_carved(corpus: Path) -> None:
    report = triage(corpus / "strelka" / "fixtures" / "test_overlay_zip.exe")
    (child,) = report.root.children
    assert (child.name, child.type, child.offset) == ("overlay@0x1000.zip", "zip", 4096)
    assert (
        hashlib.sha256((corpus / "strelka" / "fixtures" / "test.zip").read_bytes()).hexdigest()
        == child.sha256
    )


# --- hostile input -------------------------------------------------------------------------------

SEEDS = [prebuilt("c_fsum.exe")[:4096], prebuilt("c_version.dll")[:4096]]


@settings(max_examples=40, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), max_size=24),
    cut=st.integers(64, 4096),
)
def test_mutated_headers_never_escape_the_analyzer(
    seed: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(seed[:cut])
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    report = triage_bytes(bytes(data), "mutated.dll")
    assert not [e for node in model.walk(report.root) for e in node.errors if e.analyzer == "pe"]


@settings(max_examples=30, deadline=5000)
@given(st.binary(min_size=0, max_size=512))
def test_random_bytes_behind_mz_never_escape_the_analyzer(tail: bytes) -> None:
    report = triage_bytes(b"MZ" + tail, "random.exe")
    assert not [e for node in model.walk(report.root) for e in node.errors if e.analyzer == "pe"]
