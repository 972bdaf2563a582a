"""Cobalt Strike beacon configurations and stagers, on inert replicas built by the sample builders."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import model
from restytriage.analysis import Analysis, Context, Item
from restytriage.analyzers import cobaltstrike
from restytriage.blob import Blob, LimitExceeded, OutOfTime
from restytriage.config import Config
from restytriage.engine import triage_bytes
from restytriage.samples import go_samples
from restytriage.samples.go_samples import (
    BEACON_URI,
    BEACON_USER_AGENT,
    C2_HOST,
    C2_IP,
    PIPE_NAME,
    SPAWNTO_X64,
    SPAWNTO_X86,
    STAGER_URI_X64,
    STAGER_URI_X86,
    STAGER_USER_AGENT,
    WATERMARK,
    beacon_config_block,
    beacon_dll,
    prebuilt,
    stager_blob,
    xorencoded,
)


def _run(data: bytes, tmp_path: Path, kind: str = "data", metadata: dict | None = None) -> Analysis:
    ctx = Context(Config(), tmp_path, deadline=float("inf"))
    item = Item(blob=Blob.of(data), name="sample.bin", type=kind, extension="bin", depth=0)
    item.metadata.update(metadata or {})
    return cobaltstrike.analyze(item, ctx)


def _ids(analysis: Analysis) -> set[str]:
    return {f.id for f in analysis.findings}


def _filler(size: int, seed: int = 7) -> bytes:
    return bytes((seed * 131 + i * 29 + (i >> 7)) & 0xFF for i in range(size))


def test_ror13_hashes_match_block_api() -> None:
    assert cobaltstrike.ror13_hash("kernel32.dll", "LoadLibraryA") == 0x0726774C
    assert cobaltstrike.ror13_hash("wininet.dll", "InternetOpenA") == 0xA779563A
    assert cobaltstrike.ror13_hash("wininet.dll", "InternetConnectA") == 0xC69F8957
    assert cobaltstrike.ror13_hash("ws2_32.dll", "connect") == 0x6174A599


def test_checksum8_uris() -> None:
    assert cobaltstrike.checksum8_kind(STAGER_URI_X86) == "x86"
    assert cobaltstrike.checksum8_kind(STAGER_URI_X64) == "x64"
    assert cobaltstrike.checksum8_kind("/rLg9") == ""
    assert cobaltstrike.checksum8_kind("/rLe9/more") == ""  # only the bare four-character path


@pytest.mark.parametrize("key", [0x2E, 0x69, 0x00, 0x5C])
def test_beacon_config_any_single_byte_key(key: int, tmp_path: Path) -> None:
    blob = _filler(0x1800) + beacon_config_block(key=key) + _filler(0x900, seed=3)
    assert cobaltstrike.xor_key_candidates(blob) == [key]
    out = _run(blob, tmp_path)
    beacon = out.metadata["beacon"]
    assert beacon["xor_key"] == f"{key:#04x}" and beacon["source"] == "file"
    assert beacon["protocol"] == "https" and beacon["port"] == 443
    assert beacon["domains"] == [C2_HOST, C2_IP] and beacon["uris"] == [BEACON_URI]
    assert (beacon["sleeptime_ms"], beacon["jitter_percent"], beacon["watermark"]) == (60000, 20, WATERMARK)
    assert beacon["user_agent"] == BEACON_USER_AGENT and beacon["pipename"] == PIPE_NAME
    assert (beacon["spawnto_x86"], beacon["spawnto_x64"]) == (SPAWNTO_X86, SPAWNTO_X64)
    assert beacon["version"].startswith("Cobalt Strike 4.0")  # the highest setting is 55 (EXIT_FUNK)
    assert len(beacon["public_key_sha256"]) == 64
    assert _ids(out) == {"cobaltstrike.beacon_http"}
    assert out.findings[0].techniques == ["T1071.001"]
    iocs = {(i.type, i.value) for i in out.iocs}
    assert {
        ("url", f"https://{C2_HOST}{BEACON_URI}"),
        ("url", f"https://{C2_IP}{BEACON_URI}"),
        ("domain", C2_HOST),
        ("ip", C2_IP),
        ("user_agent", BEACON_USER_AGENT),
        ("filepath", PIPE_NAME),
        ("filepath", SPAWNTO_X86),
    } <= iocs
    assert out.facts["Beacon"] == f"https, port 443, sleep 60000 ms, jitter 20%, watermark {WATERMARK}"


@pytest.mark.parametrize(
    ("protocol", "finding", "technique"),
    [
        (0, "cobaltstrike.beacon_http", "T1071.001"),
        (1, "cobaltstrike.beacon_dns", "T1071.004"),
        (2, "cobaltstrike.beacon_smb", "T1071.002"),
        (4, "cobaltstrike.beacon_tcp", "T1095"),
        (4 | 16, "cobaltstrike.beacon_tcp", "T1095"),
    ],
)
def test_beacon_transport_decides_the_technique(
    protocol: int, finding: str, technique: str, tmp_path: Path
) -> None:
    out = _run(_filler(0x400) + beacon_config_block(protocol=protocol, port=8080), tmp_path)
    assert _ids(out) == {finding}
    assert out.findings[0].techniques == [technique]
    urls = [i.value for i in out.iocs if i.type == "url"]
    assert urls == (
        [f"http://{C2_HOST}:8080{BEACON_URI}", f"http://{C2_IP}:8080{BEACON_URI}"] if protocol == 0 else []
    )


def test_beacon_dll_and_xorencoded_payload(tmp_path: Path) -> None:
    dll = _run(beacon_dll(), tmp_path, kind="pe")
    assert dll.metadata["beacon"]["source"] == "file"
    encoded = xorencoded(beacon_dll())
    assert cobaltstrike.xor_key_candidates(encoded) == []  # the rolling XOR hides the block...
    out = _run(encoded, tmp_path)
    assert out.metadata["beacon"]["source"] == "xorencoded payload"  # ...until the payload is decoded
    assert out.metadata["beacon"]["domains"] == [C2_HOST, C2_IP]
    assert _run(encoded, tmp_path, kind="pe").metadata == {}  # only raw blobs are xorencoded payloads


def test_damaged_settings_keep_what_parses(tmp_path: Path) -> None:
    plain = bytearray(go_samples.beacon_settings())
    # SETTING_C2_REQUEST (12) with a transform program of unknown steps, appended before the end marker.
    plain += bytes.fromhex("000c00030010") + bytes.fromhex("000000ff" * 4)
    block = bytes(b ^ 0x2E for b in bytes(plain).ljust(0x1000, b"\x00"))
    out = _run(_filler(0x200) + block, tmp_path)
    beacon = out.metadata["beacon"]
    assert beacon["domains"] == [C2_HOST, C2_IP]
    assert beacon["watermark"] == WATERMARK


@pytest.mark.parametrize(
    ("arch", "uri", "host", "port", "url"),
    [
        ("x86", STAGER_URI_X86, C2_HOST, 443, f"https://{C2_HOST}{STAGER_URI_X86}"),
        ("x64", STAGER_URI_X64, C2_IP, 8080, f"http://{C2_IP}:8080{STAGER_URI_X64}"),
    ],
)
def test_stager(arch: str, uri: str, host: str, port: int, url: str, tmp_path: Path) -> None:
    out = _run(_filler(300) + stager_blob(arch, uri, host, port), tmp_path)
    stager = out.metadata["stager"]
    assert (stager["arch"], stager["transport"], stager["port"], stager["host"]) == (arch, "http", port, host)
    assert stager["uri"] == uri and stager["uri_checksum8"] == arch and stager["url"] == url
    assert stager["user_agent"] == STAGER_USER_AGENT
    assert stager["apis"][:3] == [
        "kernel32.dll!LoadLibraryA",
        "wininet.dll!InternetOpenA",
        "wininet.dll!InternetConnectA",
    ]
    assert _ids(out) == {"cobaltstrike.stager_http", "cobaltstrike.stager_uri"}
    assert ("ip" if host == C2_IP else "domain", host) in {(i.type, i.value) for i in out.iocs}
    assert {"T1105", "T1071.001"} <= {t for f in out.findings for t in f.techniques}


def test_stager_needs_network_api_hashes(tmp_path: Path) -> None:
    from restytriage.analyzers.cobaltstrike import ror13_hash

    kernel_only = b"".join(
        b"\x68" + ror13_hash("kernel32.dll", f).to_bytes(4, "little")
        for f in ("LoadLibraryA", "VirtualAlloc", "ExitProcess", "Sleep")
    )
    assert _run(kernel_only, tmp_path).metadata == {}


def test_stager_uri_from_go_strings(tmp_path: Path) -> None:
    urls = [
        f"https://{C2_HOST}{STAGER_URI_X86}",
        f"http://{C2_IP}:8080{STAGER_URI_X64}",
        "https://example.org/abcd",
    ]
    out = _run(b"\x00" * 64, tmp_path, kind="pe", metadata={"golang": {"indicators": {"urls": urls}}})
    assert _ids(out) == {"cobaltstrike.stager_uri"}
    assert out.metadata["stager_uris"] == [f"{urls[0]} (x86 beacon)", f"{urls[1]} (x64 beacon)"]


def test_samples_through_the_engine() -> None:
    for sample in go_samples.SAMPLES:
        if not sample.name.startswith("cs_"):
            continue
        report = triage_bytes(sample.build(), sample.name)
        assert report.verdict == "malicious", sample.name
        ids = {f.id for n in model.walk(report.root) for f in n.findings}
        assert set(sample.findings) <= ids, sample.name
        facts = [n.facts for n in model.walk(report.root)]
        for key, text in sample.facts:
            assert any(text in f.get(key, "") for f in facts), (sample.name, key)


def test_no_false_positives_on_go_and_corpus_pes(corpus: Path, tmp_path: Path) -> None:
    files = [
        "strelka/fixtures/test.exe",
        "yara/tests/data/079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885",  # Authenticode: RSA OIDs
        "goresym/testproject/testproject.exe",
        "plaso/test_data/test_pe.exe",
    ]
    for path in files:
        if (corpus / path).is_file():
            data = (corpus / path).read_bytes()
            assert cobaltstrike.xor_key_candidates(data) == [], path  # certificate OIDs are not key records
            assert _run(data, tmp_path, kind="pe").metadata == {}, path
    signed = (corpus / files[1]).read_bytes()
    assert cobaltstrike.ASN1_RSA_ENCRYPTION in signed
    assert _run(prebuilt("go_hello.exe"), tmp_path, kind="pe").metadata == {}


_BLOCK = _filler(0x300) + beacon_config_block()


@settings(
    max_examples=40,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.integers(0x300, 0x300 + 0x400), st.integers(0, 255)), min_size=1, max_size=32))
def test_mutated_beacon_blocks_never_raise(tmp_path: Path, changes: list[tuple[int, int]]) -> None:
    data = bytearray(_BLOCK)
    for offset, value in changes:
        data[offset] = value
    with contextlib.suppress(LimitExceeded, OutOfTime):
        _run(bytes(data), tmp_path)


@settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096), st.sampled_from([b"", stager_blob()[:40], cobaltstrike.ASN1_RSA_ENCRYPTION]))
def test_random_blobs_never_raise_out_of_triage(body: bytes, marker: bytes) -> None:
    report = triage_bytes(body + marker + body[:64], "blob.bin")
    for node in model.walk(report.root):
        assert not [e for e in node.errors if e.analyzer == "cobaltstrike"], node.errors


def test_stager_strings_without_block_api(tmp_path: Path) -> None:
    # Custom stagers hash differently; their URI and User-Agent header strings remain.
    strings = b"".join(
        s + b"\x00"
        for s in (b"/rLe9", b"User-Agent: " + STAGER_USER_AGENT.encode() + b"\r\n", C2_HOST.encode())
    )
    out = _run(_filler(500) + strings, tmp_path)
    assert _ids(out) == {"cobaltstrike.stager_uri"}
    assert out.metadata["stager_uris"] == [
        f"{C2_HOST}/rLe9 (x86 beacon, beside User-Agent: {STAGER_USER_AGENT})"
    ]
    assert _run(_filler(500) + b"/rLe9\x00" + C2_HOST.encode() + b"\x00", tmp_path).metadata == {}


@pytest.mark.parametrize("shift", [0, 3, 10, 11])
def test_xor_key_search_sees_a_config_across_its_chunk_boundary(shift: int) -> None:
    beacon = next(s for s in go_samples.SAMPLES if s.name == "cs_beacon_x64.dll").build()
    oid_at = beacon.find(bytes(b ^ 0x2E for b in cobaltstrike.ASN1_RSA_ENCRYPTION))
    padding = b"\x90" * (cobaltstrike.XOR_CHUNK - oid_at - shift)
    assert cobaltstrike.xor_key_candidates(padding + beacon) == [0x2E]
