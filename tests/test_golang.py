"""Go build markers on real Go binaries (the committed replicas and the public corpus) and on
synthetic layouts the toolchain here cannot produce (pre-1.18 pointer build info, big-endian and
32-bit tables, every pclntab magic)."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import gobinary, model
from restytriage.analysis import Analysis, Context, Item
from restytriage.analyzers import golang
from restytriage.blob import Blob, LimitExceeded, OutOfTime
from restytriage.config import Config
from restytriage.engine import triage, triage_bytes
from restytriage.samples.go_samples import C2_HOST, C2_IP, GO_VERSION, HELLO_MODULE, STAGER_MODULE, prebuilt

ELF_BASE = 0x400000


def _run(data: bytes, tmp_path: Path, name: str = "sample.exe", metadata: dict | None = None) -> Analysis:
    ctx = Context(Config(), tmp_path, deadline=float("inf"))
    kind = "elf" if data.startswith(b"\x7fELF") else "pe"
    item = Item(blob=Blob.of(data), name=name, type=kind, extension=name.rsplit(".", 1)[-1], depth=0)
    item.metadata.update(metadata or {})
    return golang.analyze(item, ctx)


def _ids(analysis: Analysis) -> set[str]:
    return {f.id for f in analysis.findings}


# --------------------------------------------------------------------------- the committed replicas


def test_stager_dll_build_info_build_id_and_functions(tmp_path: Path) -> None:
    out = _run(prebuilt("go_stager.dll"), tmp_path, "go_stager.dll")
    meta = out.metadata
    assert meta["go_version"] == GO_VERSION and meta["version_source"] == "buildinfo"
    assert meta["module"] == STAGER_MODULE
    assert meta["build_id"] == "rlk-stager-replica/2022-04"
    info = meta["buildinfo"]
    assert info["layout"] == "inline" and info["pointer_size"] == 8 and not info["big_endian"]
    assert info["dependencies"] == [
        {
            "path": "github.com/restylink-replica/beaconcfg",
            "version": "v0.3.1",
            "sum": "h1:V3Pbt/fmTqvX7QVj/PciDbdSdL0XqxGlaUbkhNkk2Lk=",
        }
    ]
    assert info["settings"]["-buildmode"] == "c-shared"
    assert info["settings"]["CGO_ENABLED"] == "1"
    assert (info["settings"]["GOOS"], info["settings"]["GOARCH"]) == ("windows", "amd64")
    assert meta["pclntab"]["version_family"] == "1.20+" and meta["pclntab"]["magic"] == "0xfffffff1"
    functions = meta["functions"]
    assert {"main.fetchStage", "main.decodeConfig", "main.sideloadEntry"} <= set(
        functions["main_module_functions"]
    )
    assert "github.com/restylink-replica/beaconcfg.Decode" in functions["dependency_functions"]
    assert functions["cgo_exports"] == ["sideloadEntry"]
    assert not any(
        f.startswith(("runtime.", "internal/", "strings.")) for f in functions["main_module_functions"]
    )
    assert out.facts["Go functions"] == "main.fetchStage, main.decodeConfig, main.sideloadEntry"
    assert {
        "golang.loader_functions",
        "golang.sideload_functions",
        "golang.config_decoding_functions",
        "golang.c_shared",
        "golang.ip_url",
        "golang.browser_user_agent",
    } <= _ids(out)


def test_stager_dll_strings_are_cut_where_go_packs_them(tmp_path: Path) -> None:
    # In the binary the URLs run straight into the next literal ("...rLe9too many references...").
    data = prebuilt("go_stager.dll")
    assert b"https://cdn.restylink.invalid/rLe9too" in data
    iocs = {(i.type, i.value) for i in _run(data, tmp_path).iocs}
    assert iocs == {
        ("url", f"https://{C2_HOST}/rLe9"),
        ("url", f"http://{C2_IP}:8080/rLf9"),
        ("domain", C2_HOST),
        ("ip", C2_IP),
        (
            "user_agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/96.0.4664.110 Safari/537.36",
        ),
    }


def test_benign_go_program_is_clean(tmp_path: Path) -> None:
    out = _run(prebuilt("go_hello.exe"), tmp_path, "go_hello.exe")
    assert out.facts["Go version"] == GO_VERSION and out.facts["Go module"] == HELLO_MODULE
    assert _ids(out) == {"golang.go_binary"}
    assert out.iocs == []
    assert out.metadata["functions"]["main_module_functions"] == ["main.main"]  # greeting() is inlined
    report = triage_bytes(prebuilt("go_hello.exe"), "go_hello.exe")
    assert report.verdict == "clean"


def test_packed_copy_hides_go_markers_until_unpacked(tmp_path: Path) -> None:
    assert _run(prebuilt("go_stager.upx.dll"), tmp_path).metadata == {}
    if shutil.which("upx") is None:
        pytest.skip("upx not installed: the UPX analyzer cannot unpack")
    for name in ("go_stager.upx.dll", "go_stager.upx_tampered.dll"):
        report = triage_bytes(prebuilt(name), name)
        unpacked = [n for n in model.walk(report.root) if n.facts.get("Go module") == STAGER_MODULE]
        assert unpacked and unpacked[0].depth == 1, name
        assert report.verdict == "malicious"


# --------------------------------------------------------------------------- the public corpus

CORPUS_EXPECTED = [
    # file, Go version, module (buildinfo "mod" line), main package path, pclntab family, main functions
    ("goretk-testdata/gold-windows-386-1.10.0", "go1.10", "", "", "1.2-1.15", {"main.main", "main.(*simpleStruct).String"}),
    ("goretk-testdata/gold-windows-386-1.22.0", "go1.22.0", "github.com/goretk/gore/gold", "github.com/goretk/gore/gold", "1.20+", {"main.main", "main.(*simpleStruct).String"}),
    ("goretk-testdata/gold-windows-amd64-1.16.0", "go1.16", "", "command-line-arguments", "1.16-1.17", {"main.main", "main.(*simpleStruct).String"}),
    ("goretk-testdata/gold-windows-amd64-1.18.0", "go1.18", "", "command-line-arguments", "1.18-1.19", {"main.main", "main.(*simpleStruct).String"}),
    ("goretk-testdata/gold-windows-amd64-1.22.0", "go1.22.0", "github.com/goretk/gore/gold", "github.com/goretk/gore/gold", "1.20+", {"main.main", "main.(*simpleStruct).String"}),
    ("goretk-testdata/windows-pie-ext", "go1.21.3", "", "command-line-arguments", "1.20+", {"main.main", "main.(*simpleStruct).String"}),
    ("goresym/testproject/testproject.exe", "go1.22.5", "", "command-line-arguments", "1.20+", {"main.main", "main.sum", "main.main.func1"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CORPUS_EXPECTED, ids=[c[0] for c in CORPUS_EXPECTED])
def test_corpus_go_binaries(case: tuple, corpus: Path, tmp_path: Path) -> None:
    path, version, module, package, family, functions = case
    out = _run((corpus / path).read_bytes(), tmp_path)
    meta = out.metadata
    assert meta["go_version"] == version
    assert meta["module"] == module and meta["main_package"] == package
    assert meta["pclntab"]["version_family"] == family
    assert functions <= set(meta["functions"]["main_module_functions"])
    assert meta["build_id"].count("/") == 3  # actionID/contentID pairs, as go build writes them
    assert _ids(out) == {"golang.go_binary"}  # the gore golden program and GoReSym's test are benign
    assert out.facts["Go version"] == version


def test_corpus_non_go_pe_is_ignored(corpus: Path, tmp_path: Path) -> None:
    for path in ("strelka/fixtures/test.exe", "corkami/mini/pe64.exe", "yara/tests/data/tiny"):
        if (corpus / path).is_file():
            assert _run((corpus / path).read_bytes(), tmp_path).metadata == {}, path


# --------------------------------------------------------------------------- synthetic layouts


def _elf(body: bytes, bits: int, big_endian: bool, machine: int) -> tuple[bytes, int]:
    """An ELF whose single PT_LOAD maps the whole file at ELF_BASE; returns it and the body's offset."""
    e = ">" if big_endian else "<"
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 2 if big_endian else 1, 1]) + bytes(9)
    if bits == 64:
        head_size, ph_size = 64, 56
        offset = 0x100
        size = offset + len(body)
        header = ident + struct.pack(
            e + "HHIQQQIHHHHHH", 2, machine, 1, ELF_BASE, 64, 0, 0, 64, 56, 1, 0, 0, 0
        )
        program = struct.pack(e + "IIQQQQQQ", 1, 5, 0, ELF_BASE, ELF_BASE, size, size, 0x1000)
    else:
        head_size, ph_size = 52, 32
        offset = 0x100
        size = offset + len(body)
        header = ident + struct.pack(
            e + "HHIIIIIHHHHHH", 2, machine, 1, ELF_BASE, 52, 0, 0, 52, 32, 1, 0, 0, 0
        )
        program = struct.pack(e + "IIIIIIII", 1, 0, ELF_BASE, ELF_BASE, size, size, 5, 0x1000)
    assert len(header) == head_size and len(program) == ph_size
    return (header + program).ljust(offset, b"\x00") + body, offset


MODINFO = (
    "path\tgithub.com/example/implant/cmd/agent\n"
    "mod\tgithub.com/example/implant\tv1.4.2\th1:Q2hpbGRyZW5Pb2ZUaGVNb2R1bGVTdW1zYWFhYWE=\n"
    "dep\tgolang.org/x/sys\tv0.1.0\th1:c3lzLXN1bS1vZi10aGUtbW9kdWxlLWNhY2hl=\n"
    "dep\tgithub.com/example/transport\tv0.0.0-20220101000000-abcdef123456\n"
    "=>\t../transport\t\t\n"
    "build\t-buildmode=exe\n"
    'build\t-ldflags="-s -w -X main.server=https://c2.example.invalid"\n'
    "build\tCGO_ENABLED=0\n"
    "build\tGOOS=linux\n"
    "build\tvcs=git\n"
    "build\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n"
    "build\tvcs.time=2022-04-12T06:19:44Z\n"
)


def _framed(modinfo: str) -> bytes:
    return gobinary.MODINFO_START + modinfo.encode() + gobinary.MODINFO_END


def _pointer_buildinfo(bits: int, big_endian: bool, version: str, modinfo: bytes) -> bytes:
    """Go 1.13-1.17 layout: the header points at two Go string headers (pointer, length)."""
    e = ">" if big_endian else "<"
    word = "I" if bits == 32 else "Q"
    size = bits // 8
    # body layout (offsets relative to the body, which sits at file offset 0x100 = VA ELF_BASE + 0x100)
    header_at, strings_at = 0, 0x40
    version_at, modinfo_at = 0x80, 0x80 + len(version)
    va = ELF_BASE + 0x100
    headers = struct.pack(e + word * 4, va + version_at, len(version), va + modinfo_at, len(modinfo))
    blob = golang.BUILDINFO_MAGIC + bytes([size, 1 if big_endian else 0])
    blob += struct.pack(e + word * 2, va + strings_at, va + strings_at + 2 * size)
    body = bytearray(blob.ljust(0x40, b"\x00"))
    body[strings_at : strings_at + len(headers)] = headers
    body = body.ljust(version_at, b"\x00") + version.encode() + modinfo
    assert header_at == 0
    return bytes(body)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _inline_buildinfo(version: str, modinfo: bytes, big_endian: bool = False) -> bytes:
    """Go 1.18+ layout: flags bit 2 set, then varint-prefixed version and module info."""
    head = golang.BUILDINFO_MAGIC + bytes([8, 2 | int(big_endian)])
    return (
        head.ljust(32, b"\x00") + _uvarint(len(version)) + version.encode() + _uvarint(len(modinfo)) + modinfo
    )


@pytest.mark.parametrize(
    ("bits", "big_endian", "machine"), [(32, True, 8), (64, False, 62), (32, False, 3), (64, True, 21)]
)
def test_pointer_buildinfo_any_width_and_byte_order(bits: int, big_endian: bool, machine: int) -> None:
    data, _ = _elf(
        _pointer_buildinfo(bits, big_endian, "go1.17.13", _framed(MODINFO)), bits, big_endian, machine
    )
    image = golang.parse_image(data)
    assert image is not None and image.pointer_size == bits // 8 and image.big_endian == big_endian
    info = golang.find_buildinfo(data, image)
    assert info is not None and info.layout == "pointers" and info.pointer_size == bits // 8
    _assert_modinfo(info, "go1.17.13")


def test_inline_buildinfo_big_endian_without_address_map() -> None:
    data = b"\x00" * 48 + _inline_buildinfo("go1.21.0 X:boringcrypto", _framed(MODINFO), big_endian=True)
    info = golang.find_buildinfo(data, None)  # the inline layout needs no section table
    assert info is not None and info.layout == "inline" and info.big_endian
    _assert_modinfo(info, "go1.21.0 X:boringcrypto")


def _assert_modinfo(info: golang.BuildInfo, version: str) -> None:
    assert info.go_version == version
    assert info.path == "github.com/example/implant/cmd/agent"
    assert info.main == {
        "path": "github.com/example/implant",
        "version": "v1.4.2",
        "sum": "h1:Q2hpbGRyZW5Pb2ZUaGVNb2R1bGVTdW1zYWFhYWE=",
    }
    assert info.deps[0]["path"] == "golang.org/x/sys" and info.deps[0]["version"] == "v0.1.0"
    assert info.deps[1]["replace"] == {"path": "../transport", "version": "", "sum": ""}
    assert info.settings["-ldflags"] == "-s -w -X main.server=https://c2.example.invalid"
    assert info.settings["vcs.revision"] == "0123456789abcdef0123456789abcdef01234567"
    assert info.settings["vcs.time"] == "2022-04-12T06:19:44Z"
    assert info.settings["GOOS"] == "linux"
    assert info.problems == []


def test_buildinfo_without_framing_or_with_bad_lines_is_reported() -> None:
    unframed = b"\x00" * 16 + _inline_buildinfo("go1.20.1", b"x" * 40)
    info = golang.find_buildinfo(unframed, None)
    assert info is not None and info.go_version == "go1.20.1" and info.main == {}
    assert info.problems and "without the usual framing" in info.problems[0]
    odd = b"\x00" * 16 + _inline_buildinfo("go1.20.1", _framed("path\tx\nbogus line\nbuild\tnovalue\n"))
    info = golang.find_buildinfo(odd, None)
    assert info is not None and len(info.problems) == 2


def test_buildinfo_rejects_garbage_versions_and_truncation() -> None:
    assert golang.find_buildinfo(b"\x00" * 16 + _inline_buildinfo("not-a-version", b""), None) is None
    assert golang.find_buildinfo(_inline_buildinfo("go1.22.0", _framed(MODINFO))[:40], None) is None
    pointer = golang.BUILDINFO_MAGIC + b"\x08\x00" + struct.pack("<QQ", 0xDEAD0000, 0xBEEF0000)
    data, _ = _elf(pointer, 64, False, 62)
    assert golang.find_buildinfo(data, golang.parse_image(data)) is None  # pointers outside the file


NAMES = [
    "go:buildid",
    "runtime.main",
    "runtime.goexit",
    "main.fetchStage",
    "github.com/x/loader.Run",
    "main.télécharger",  # Go identifiers may be any Unicode letter
    "main.main",
]


def _pclntab(magic: int, pointer_size: int, big_endian: bool, names: list[str]) -> bytes:
    """A function table of one of the four layouts, holding `names`."""
    e = ">" if big_endian else "<"
    word = "I" if pointer_size == 4 else "Q"
    head = struct.pack(e + "I", magic) + bytes([0, 0, 1, pointer_size])
    nametab = b"".join(n.encode() + b"\x00" for n in names)
    name_offsets = [sum(len(n.encode()) + 1 for n in names[:i]) for i in range(len(names))]
    count = len(names)
    if magic == 0xFFFFFFFB:  # Go 1.2-1.15: names relative to the table start, funcs after functab
        functab_at = 8 + pointer_size
        funcs_at = functab_at + (2 * count + 1) * pointer_size + 4
        func_size = pointer_size + 4
        names_at = funcs_at + count * func_size
        table = head + struct.pack(e + word, count)
        for i in range(count):
            table += struct.pack(e + word * 2, 0x401000 + 16 * i, funcs_at + i * func_size)
        table += struct.pack(e + word, 0x401000 + 16 * count) + struct.pack(e + "I", 0)
        for i in range(count):
            table += struct.pack(e + word + "i", 0x401000 + 16 * i, names_at + name_offsets[i])
        return table + nametab
    fields = 7 if magic == 0xFFFFFFFA else 8
    header_size = 8 + fields * pointer_size
    names_rel = header_size
    pcln_rel = names_rel + len(nametab)
    if magic == 0xFFFFFFFA:  # Go 1.16-1.17: functab of (entry, funcoff) words, _func {entry, nameoff}
        entry, func_size, entry_format = 2 * pointer_size, pointer_size + 4, e + word * 2
        values = [count, 0, names_rel, 0, 0, 0, pcln_rel]
    else:  # Go 1.18+: functab of uint32 (entryoff, funcoff), _func {entryoff, nameoff}
        entry, func_size, entry_format = 8, 8, e + "II"
        values = [count, 0, 0x401000, names_rel, 0, 0, 0, pcln_rel]
    funcs_rel = (count + 1) * entry
    functab = b"".join(struct.pack(entry_format, 16 * i, funcs_rel + i * func_size) for i in range(count))
    functab += struct.pack(entry_format, 16 * count, 0)
    first = word if magic == 0xFFFFFFFA else "I"
    funcs = b"".join(struct.pack(e + first + "i", 16 * i, name_offsets[i]) for i in range(count))
    return head + struct.pack(e + word * fields, *values) + nametab + functab + funcs


@pytest.mark.parametrize("magic", sorted(gobinary.PCLNTAB_FAMILIES))
@pytest.mark.parametrize(("pointer_size", "big_endian"), [(8, False), (4, False), (8, True), (4, True)])
def test_pclntab_every_layout(magic: int, pointer_size: int, big_endian: bool) -> None:
    data = (
        b"\xff\xff\xff\xf1\x00\x00\x09\x09 decoy"
        + bytes(64)
        + _pclntab(magic, pointer_size, big_endian, NAMES)
    )
    table = golang.find_pclntab(data)
    assert table is not None
    assert (table.magic, table.pointer_size, table.big_endian) == (magic, pointer_size, big_endian)
    assert table.family == gobinary.PCLNTAB_FAMILIES[magic] and table.function_count == len(NAMES)
    assert table.names == NAMES
    summary = golang.summarise_functions(table.names, "")
    assert summary["main_module_functions"] == ["main.fetchStage", "main.télécharger", "main.main"]
    assert summary["dependency_functions"] == ["github.com/x/loader.Run"]


def test_pclntab_needs_the_runtime_and_clean_names() -> None:
    assert golang.find_pclntab(_pclntab(0xFFFFFFF1, 8, False, ["main.a", "main.b"])) is None
    broken = bytearray(_pclntab(0xFFFFFFF1, 8, False, NAMES))
    broken[8 + 8 * 8 + 2] = 0x01  # a control byte in the first name
    assert golang.find_pclntab(bytes(broken)) is None


def test_version_string_fallback_is_bounded_by_the_table_family() -> None:
    data = b"xxgo1.21.3yy go1.10go1.9.7 go1.10"
    assert golang.guess_version(data, "1.2-1.15") == "go1.10"
    assert golang.guess_version(data, "1.20+") == "go1.21.3"
    assert golang.guess_version(b"nothing here", "1.20+") == ""


def test_elf_build_id_note() -> None:
    note = struct.pack("<III", 4, 20, 4) + b"Go\x00\x00" + b"abcdefghij/klmnopqrs"
    assert golang.find_build_id(b"\x00" * 32 + note) == "abcdefghij/klmnopqrs"
    assert golang.find_build_id(b'\xff Go build ID: "a/b/c/d"\n \xff') == "a/b/c/d"
    assert golang.find_build_id(b"Go\x00\x00" + b"\x00" * 32) == ""


# --------------------------------------------------------------------------- names and strings


@pytest.mark.parametrize(
    ("symbol", "package"),
    [
        ("main.fetchStage", "main"),
        ("main.(*Config).StageURL", "main"),
        ("github.com/a/b.(*T).M", "github.com/a/b"),
        ("gopkg.in/yaml%2ev3.Unmarshal", "gopkg.in/yaml%2ev3"),
        ("main.Map[go.shape.struct { a/b.T }]", "main"),
        ("internal/abi.(*Type).Kind", "internal/abi"),
        ("go:buildid", ""),
    ],
)
def test_package_of(symbol: str, package: str) -> None:
    assert golang.package_of(symbol) == package


def test_user_packages() -> None:
    assert golang.is_user_package("main") and golang.is_user_package("github.com/x/y")
    assert golang.is_user_package("mytool/util")  # GOPATH-era path without a dot
    for std in (
        "runtime",
        "net/http",
        "vendor/golang.org/x/net/dns/dnsmessage",
        "internal/abi",
        "type:",
        "_cgoexp_x",
        "cmd/go/internal/work",
    ):
        assert not golang.is_user_package(std), std


def test_behaviour_words() -> None:
    hits = golang.behaviour_hits(
        [
            "main.fetchStage",
            "main.downloadPayload",
            "main.injectShellcode",
            "main.(*Loader).sideloadEntry",
            "main.installScheduledTask",
            "main.isVM",
            "main.decryptConfig",
            # benign names that share words
            "main.(*taskStats).add",
            "main.(*genOpts).setTask",
            "main.getPayloadSize",
            "main.writeRemoteRef",
            "main.main.func1",
        ]
    )
    assert hits == {
        "golang.loader_functions": ["main.fetchStage", "main.downloadPayload"],
        "golang.injection_functions": ["main.injectShellcode"],
        "golang.sideload_functions": ["main.(*Loader).sideloadEntry"],
        "golang.persistence_functions": ["main.installScheduledTask"],
        "golang.evasion_functions": ["main.isVM"],
        "golang.config_decoding_functions": ["main.decryptConfig"],
    }


def test_garble_looking_packages() -> None:
    assert golang.looks_garbled({"main": 3, "Kd8sGh2Xq": 4, "pQ7zLmN0a": 2, "Zx9Wv3Tr": 5})
    assert not golang.looks_garbled({"main": 3, "github.com/spf13/cobra": 40, "golang.org/x/sys/windows": 20})


def test_indicators_filter_noise() -> None:
    found = golang.indicators(
        [
            "https://golang.org/issue/1234",
            "https://github.com/evil/payloads/raw/main/stage.bin",
            "*godebugs.Info",
            "runtime.info",
            "2.5.4.10",
            "1.2.0.4",
            "127.0.0.1",
            "this.root.host=e.host;function(){return a.top}",
            "connect to 203.0.113.9:443 failed",
            "host=update.badcdn.xyz;port=443",
            "Go-http-client/1.1",
        ],
        packages=frozenset({"godebugs"}),
    )
    assert found.urls == ["https://github.com/evil/payloads/raw/main/stage.bin"]
    assert found.hosts == ["update.badcdn.xyz"]  # github.com is a code host: kept in the URL only
    assert found.ips == ["203.0.113.9"]
    assert found.user_agents == []
    assert found.dropped == 1


def test_string_areas_skip_code_unless_strings_live_there(corpus: Path) -> None:
    new = prebuilt("go_stager.dll")
    image = golang.parse_image(new)
    table = golang.find_pclntab(new)
    assert image is not None and table is not None
    code = [(r.offset, r.offset + r.size) for r in image.regions if r.executable]
    areas = golang.string_areas(new, image, table)
    assert not any(start < c_end and end > c_start for start, end in areas for c_start, c_end in code)
    assert all(not (start < table.names_end and end > table.offset) for start, end in areas)
    old = (corpus / "goretk-testdata/gold-windows-386-1.10.0").read_bytes()  # rodata inside .text
    old_image = golang.parse_image(old)
    assert old_image is not None
    old_areas = golang.string_areas(old, old_image, golang.find_pclntab(old))
    assert any(r.executable and start >= r.offset for r in old_image.regions for start, _ in old_areas)


# --------------------------------------------------------------------------- hostile input


def _regions(data: bytes) -> list[int]:
    """Offsets worth corrupting: the build info blob, the pclntab header and its first function entries."""
    table = golang.find_pclntab(data)
    assert table is not None
    info = data.find(golang.BUILDINFO_MAGIC)
    return [*range(info, info + 400), *range(table.offset, table.offset + 160)]


_STAGER = prebuilt("go_stager.dll")
_HOT = _regions(_STAGER)


@settings(
    max_examples=25,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.tuples(st.sampled_from(_HOT), st.integers(0, 255)), min_size=1, max_size=24))
def test_corrupted_go_markers_never_raise(tmp_path: Path, changes: list[tuple[int, int]]) -> None:
    data = bytearray(_STAGER)
    for offset, value in changes:
        data[offset] = value
    try:
        out = _run(bytes(data), tmp_path)
    except (LimitExceeded, OutOfTime):
        return
    assert isinstance(out.metadata, dict)


@settings(max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([b"MZ", b"\x7fELF\x02\x01\x01", b"\x7fELF\x01\x02\x01", b""]),
    st.binary(max_size=2048),
    st.sampled_from(
        [
            b"",
            golang.BUILDINFO_MAGIC,
            b"\xf1\xff\xff\xff\x00\x00\x01\x08",
            b"\xff\xff\xff\xfb\x00\x00\x04\x04",
        ]
    ),
    st.binary(max_size=512),
)
def test_random_bytes_never_raise_out_of_triage(
    prefix: bytes, body: bytes, marker: bytes, tail: bytes
) -> None:
    report = triage_bytes(prefix + body + marker + tail, "random.bin")
    for node in model.walk(report.root):
        assert not [e for e in node.errors if e.analyzer in ("golang", "cobaltstrike")], node.errors


def test_committed_samples_through_the_engine() -> None:
    report = triage(
        Path(__file__).resolve().parents[1] / "restytriage" / "samples" / "prebuilt" / "go_stager.dll"
    )
    assert report.verdict == "malicious"
    assert {"T1105", "T1574.001", "T1071.001"} <= {t.id for t in report.techniques}
    assert report.root.facts["Go module"] == STAGER_MODULE
