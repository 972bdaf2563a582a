"""Engine behaviour that holds for any format: errors, limits, identification, schema, verdict."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import analyzers, findings
from restytriage.analysis import Analysis, Child
from restytriage.blob import Blob
from restytriage.config import Config, Limits
from restytriage.engine import triage_bytes
from restytriage.identify import identify
from restytriage.model import json_schema, to_json, walk
from restytriage.verdict import decide

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text("utf-8"))


def validate(report) -> None:
    jsonschema.validate(json.loads(to_json(report)), SCHEMA)


def test_published_schema_is_current() -> None:
    assert json_schema() == SCHEMA, "regenerate docs/report.schema.json with `restytriage schema`"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (b"MZ" + b"\0" * 100, "pe"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504, "ole"),
        (b"%PDF-1.7\n%%EOF", "pdf"),
        (b"Rar!\x1a\x07\x01\x00", "rar"),
        (b"plain words\n", "text"),
        (bytes(range(256)) * 4, "data"),
    ],
)
def test_identification_is_by_content(data: bytes, expected: str) -> None:
    assert identify(Blob.of(data), "misleading.docx").name == expected


def test_every_finding_definition_is_well_formed() -> None:
    table = findings.definitions()
    assert table
    for definition in table.values():
        assert 0 <= definition.score <= 100, definition.id
        assert definition.title, definition.id
        prefix = definition.id.split(".")[0]
        assert prefix in {m.NAME for m in analyzers.registry()} | {"engine", "limit"}, definition.id
        for technique in definition.techniques:
            assert technique.startswith("T") and technique[1:5].isdigit(), (definition.id, technique)


def test_verdict_counts_each_signal_once() -> None:
    one = findings.make("names.double_extension", "test")
    assert decide([one]).score == one.score
    assert decide([one, one, one]).score == one.score
    two = decide([one, findings.make("names.bidi_override", "test")])
    assert two.score > one.score and two.verdict == "malicious"


def test_empty_random_and_truncated_inputs_give_a_valid_report() -> None:
    for data in (
        b"",
        os.urandom(4096),
        b"PK\x03\x04" + b"\0" * 10,
        b"MZ",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    ):
        report = triage_bytes(data, "x.bin")
        validate(report)
        assert report.verdict in {"clean", "suspicious", "malicious"}


def test_an_analyzer_that_raises_becomes_an_error_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(item, ctx):
        raise RuntimeError("boom")

    names = next(m for m in analyzers.registry() if m.NAME == "names")
    monkeypatch.setattr(names, "analyze", explode)
    report = triage_bytes(b"hello", "a.txt")
    assert report.root.errors[0].message == "RuntimeError: boom"
    assert "engine.analyzer_error" in {f.id for f in report.root.findings}


class _Nester:
    """A fake container analyzer: every object holds one child one byte longer (endless nesting)."""

    NAME = "nester"
    TYPES = frozenset({"text"})
    ORDER = 50

    @staticmethod
    def analyze(item, ctx) -> Analysis:
        out = Analysis("nester")
        out.children.append(Child(name="inner.txt", blob=Blob.of(item.blob.read() + b"x")))
        return out


def test_depth_limit_stops_endless_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzers, "for_type", lambda type_name: [_Nester])
    report = triage_bytes(b"seed", "seed.txt", Config(limits=Limits(max_depth=5)))
    nodes = list(walk(report.root))
    assert len(nodes) == 6
    assert any(f.id == "limit.depth" for n in nodes for f in n.findings)
    validate(report)


def test_wall_time_limit_reports_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    class SlowNester(_Nester):
        @staticmethod
        def analyze(item, ctx) -> Analysis:
            time.sleep(0.01)
            return _Nester.analyze(item, ctx)

    monkeypatch.setattr(analyzers, "for_type", lambda type_name: [SlowNester])
    report = triage_bytes(b"seed", "seed.txt", Config(limits=Limits(max_depth=100, max_seconds=0.05)))
    assert any(f.id == "limit.time" for n in walk(report.root) for f in n.findings)


def test_identical_objects_are_analysed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    class Twins(_Nester):
        @staticmethod
        def analyze(item, ctx) -> Analysis:
            out = Analysis("nester")
            if item.depth == 0:
                out.children += [Child("a.txt", Blob.of(b"same")), Child("b.txt", Blob.of(b"same"))]
            return out

    monkeypatch.setattr(analyzers, "for_type", lambda type_name: [Twins])
    report = triage_bytes(b"root", "root.txt")
    first, second = report.root.children
    assert first.duplicate_of is None and second.duplicate_of == first.id


def test_undecodable_names_survive_into_json() -> None:
    report = triage_bytes(b"x", "bad\udcff\u202ename.txt")
    assert b"bad\\\\xff" in to_json(report)
    validate(report)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.text(max_size=40))
def test_any_bytes_and_name_give_a_schema_valid_report(data: bytes, name: str) -> None:
    validate(triage_bytes(data, name))


def test_an_analyzer_stuck_in_a_loop_is_stopped_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stuck(_Nester):
        @staticmethod
        def analyze(item, ctx) -> Analysis:
            while True:  # a library loop that never calls ctx.check_time()
                pass

    monkeypatch.setattr(analyzers, "for_type", lambda type_name: [Stuck])
    started = time.monotonic()
    report = triage_bytes(b"seed", "seed.txt", Config(limits=Limits(max_seconds=0.3)))
    assert time.monotonic() - started < 5
    assert [f.id for f in report.root.findings] == ["limit.time"]
    validate(report)


def test_the_deadline_cannot_be_swallowed_by_a_broad_except(monkeypatch: pytest.MonkeyPatch) -> None:
    """Libraries (olefile, pefile) and our own fallbacks catch Exception around their parsing: the
    alarm must pass through them, and so must a cooperative check_time() inside such a block."""
    ran: list[str] = []

    class Swallows(_Nester):
        @staticmethod
        def analyze(item, ctx) -> Analysis:
            started = time.monotonic()
            while time.monotonic() - started < 3:  # bounded, so a swallowed deadline fails, not hangs
                try:
                    if "armed" in ran:
                        ctx.check_time()
                    sum(range(10_000))  # the alarm lands in here
                except Exception:
                    ran.append("swallowed")
            return Analysis("swallows")

    class After(_Nester):
        NAME = "after"

        @staticmethod
        def analyze(item, ctx) -> Analysis:
            ran.append("after")
            return Analysis("after")

    monkeypatch.setattr(analyzers, "for_type", lambda type_name: [Swallows, After])
    started = time.monotonic()
    report = triage_bytes(b"seed", "seed.txt", Config(limits=Limits(max_seconds=0.3)))
    assert time.monotonic() - started < 5
    assert [f.id for f in report.root.findings] == ["limit.time"]
    assert "after" not in ran  # nothing more runs once the file is out of time
    ran.append("armed")
    triage_bytes(b"seed", "seed.txt", Config(limits=Limits(max_seconds=0.3)))  # check_time() inside
    assert ran.count("swallowed") == 0


def test_a_triage_imports_only_the_analyzers_its_types_need(tmp_path: Path) -> None:
    import subprocess
    import sys

    sample = tmp_path / "notes.txt"
    sample.write_bytes(b"plain words\n")
    probe = (
        "import sys; from pathlib import Path; from restytriage.engine import triage; "
        f"triage(Path({str(sample)!r})); "
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('restytriage.analyzers.')))"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=os.environ
        )
        for _ in range(2)  # the first run may build the analyzer index; the second must use it
    ]
    assert runs[1].stdout.strip() == "['names', 'yara']"


def test_every_declared_technique_is_a_current_attack_technique() -> None:
    """ATT&CK retires and merges ids (T1574.002 became part of T1574.001 in v17): a stale id shows as
    "unknown technique" in reports and drops out of the STIX export."""
    from restytriage import attack

    stale = {
        (finding_id, technique)
        for finding_id, definition in findings.definitions().items()
        for technique in definition.techniques
        if attack.stix_id(technique) is None
    }
    assert stale == set()


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: it must be refused before that."""
    import subprocess
    import sys

    fifo = tmp_path / "inbox.lnk"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "restytriage", "triage", str(fifo)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 1 and "not a regular file" in " ".join(done.stderr.split()), done.stderr


def test_a_verdict_made_of_weak_signals_still_names_them() -> None:
    weak = [findings.make("yara.match", "yara", title=f"YARA weak_{i}", score=9) for i in range(4)]
    outcome = decide(weak)
    assert outcome.verdict == "suspicious" and outcome.score == 31
    assert outcome.reasons[:2] == ["YARA weak_0 (9)", "YARA weak_1 (9)"]
    assert decide(weak[:1]).reasons == []  # clean: nothing to explain


def test_the_findings_catalogue_is_current() -> None:
    page = (Path(__file__).parents[1] / "docs" / "findings.md").read_text("utf-8")
    assert page == findings.catalogue(), "regenerate docs/findings.md with python docs/make_findings_table.py"
    assert all(f"`{finding_id}`" in page for finding_id in findings.definitions())
