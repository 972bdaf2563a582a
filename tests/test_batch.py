"""Batch scans: walking, dedupe, streaming JSONL, cache and resume, crashes and hangs, Dask."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from restytriage.batch import LocalPool, Skipped, collect, scan, walk
from restytriage.cache import ReportCache, rules_fingerprint
from restytriage.config import Config, Limits

CONFIG = Config()


def quarantine(root: Path) -> Path:
    (root / "inbox" / "deep").mkdir(parents=True)
    (root / "inbox" / "invoice.pdf.lnk").write_bytes(b"not really a shortcut")
    (root / "inbox" / "notes.txt").write_bytes(b"meeting at ten\n")
    (root / "inbox" / "deep" / "copy-of-notes.txt").write_bytes(b"meeting at ten\n")
    (root / "inbox" / "deep" / "skip.tmp").write_bytes(b"scratch")
    os.symlink(root / "inbox", root / "inbox" / "deep" / "loop")  # a loop a naive walk would follow
    return root / "inbox"


def test_walk_never_follows_symlinks_and_applies_globs(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    found = list(walk([inbox], exclude=["*.tmp"]))
    files = sorted(Path(f[0]).name for f in found if not isinstance(f, Skipped))
    skipped = [f for f in found if isinstance(f, Skipped)]
    assert files == ["copy-of-notes.txt", "invoice.pdf.lnk", "notes.txt"]
    assert [s.reason for s in skipped] == ["symbolic link not followed"]
    only_lnk = [f for f in walk([inbox], include=["*.lnk"]) if not isinstance(f, Skipped)]
    assert [Path(f[0]).name for f in only_lnk] == ["invoice.pdf.lnk"]


def test_identical_files_are_scanned_once_but_every_path_is_listed(tmp_path: Path) -> None:
    entries, _ = collect([quarantine(tmp_path)], exclude=["*.tmp"])
    notes = next(e for e in entries if len(e.paths) == 2)
    assert sorted(Path(p).name for p in notes.paths) == ["copy-of-notes.txt", "notes.txt"]
    assert len(entries) == 2


def test_unreadable_file_is_recorded_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = quarantine(tmp_path)
    from restytriage import batch

    real = batch.sha256_of

    def flaky(path: Path) -> str:
        if path.name == "notes.txt":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(batch, "sha256_of", flaky)
    entries, skipped = collect([inbox], exclude=["*.tmp"])
    assert any(s.path.endswith("notes.txt") and "Permission denied" in s.reason for s in skipped)
    assert {Path(p).name for e in entries for p in e.paths} == {"copy-of-notes.txt", "invoice.pdf.lnk"}


def test_scan_streams_jsonl_and_a_rerun_comes_from_the_cache(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    db, lines = tmp_path / "cache.db", tmp_path / "out.jsonl"
    with open(lines, "wb") as stream:
        first = scan([inbox], CONFIG, workers=2, exclude=["*.tmp"], cache_path=db, jsonl=stream)
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert {r["status"] for r in records} == {"ok"} and len(records) == 2
    lnk = next(r for r in records if r["path"].endswith(".lnk"))
    assert lnk["report"]["verdict"] == "suspicious" and first.worst() == "suspicious"
    again = scan([inbox], CONFIG, workers=2, exclude=["*.tmp"], cache_path=db)
    assert {o.status for o in again.outcomes} == {"cached"}
    assert sorted(o.verdict for o in again.outcomes) == sorted(o.verdict for o in first.outcomes)
    # A different rule set (here: other limits) must not reuse old reports.
    other = Config(limits=Limits(max_depth=3))
    assert rules_fingerprint(other) != rules_fingerprint(CONFIG)
    assert {o.status for o in scan([inbox], other, workers=1, exclude=["*.tmp"], cache_path=db).outcomes} == {
        "ok"
    }


def test_cache_keeps_paths_and_rebuilds_reports(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    db = tmp_path / "cache.db"
    scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    store = ReportCache(db, rules_fingerprint(CONFIG))
    rebuilt = {
        tuple(sorted(Path(p).name for p in paths)): json.loads(blob)["verdict"]
        for paths, blob in store.entries()
    }
    store.close()
    assert rebuilt == {("invoice.pdf.lnk",): "suspicious", ("copy-of-notes.txt", "notes.txt"): "clean"}


def test_read_only_cache_warns_and_the_scan_goes_on(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    db = tmp_path / "cache.db"
    ReportCache(db, "x").close()
    connection = sqlite3.connect(db)
    connection.execute(
        "CREATE TRIGGER no_writes BEFORE INSERT ON reports BEGIN SELECT RAISE(FAIL, 'disk full'); END"
    )
    connection.commit()
    connection.close()
    result = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert len(result.outcomes) == 2 and all(o.status == "ok" for o in result.outcomes)
    assert any("cache disabled" in w and "disk full" in w for w in result.warnings)


# Work functions the pool runs in its workers (module level so they pickle by reference).
def crash_on_lnk(path: str, sha256: str, config: Config):
    if path.endswith(".lnk"):
        os._exit(3)
    return "ok", b'{"verdict": "clean", "score": 0}', ""


def hang_on_lnk(path: str, sha256: str, config: Config):
    if path.endswith(".lnk"):
        time.sleep(60)
    return "ok", b'{"verdict": "clean", "score": 0}', ""


def spill_then_hang_on_lnk(path: str, sha256: str, config: Config):
    import tempfile

    folder = tempfile.mkdtemp(prefix="restytriage-")  # where a run spills large children
    (Path(folder) / "blob-000001.bin").write_bytes(b"spilled child")
    Path(path + ".where").write_text(folder)
    if path.endswith(".lnk"):
        time.sleep(60)
    return "ok", b'{"verdict": "clean", "score": 0}', ""


@pytest.mark.parametrize(("work", "status"), [(crash_on_lnk, "crash"), (hang_on_lnk, "timeout")])
def test_a_crashing_or_hanging_file_costs_only_itself(tmp_path: Path, work, status: str) -> None:
    entries, _ = collect([quarantine(tmp_path)], exclude=["*.tmp"])
    from restytriage import batch

    batch_grace = batch.GRACE_SECONDS
    batch.GRACE_SECONDS = 0.5
    try:
        pool = LocalPool(1, Config(limits=Limits(max_seconds=0.5)), work=work)
        try:
            outcomes = {Path(o.entry.paths[0]).name: o for o in pool.run(entries * 1)}
        finally:
            pool.close()
    finally:
        batch.GRACE_SECONDS = batch_grace
    assert outcomes["invoice.pdf.lnk"].status == status
    others = [o for name, o in outcomes.items() if name != "invoice.pdf.lnk"]
    assert others and all(o.status == "ok" for o in others)


def test_dask_cluster_gives_the_local_results(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    inbox = quarantine(tmp_path)
    local = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"])
    with distributed.LocalCluster(
        n_workers=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = scan([inbox], CONFIG, exclude=["*.tmp"], cluster=cluster.scheduler_address)
    summary = {o.entry.sha256: (o.status, o.verdict, o.score) for o in local.outcomes}
    assert summary == {o.entry.sha256: (o.status, o.verdict, o.score) for o in remote.outcomes}


# Work functions that report what the worker process looked like when it handled a file.
def report_gc_freeze(path: str, sha256: str, config: Config):
    import gc

    return "ok", json.dumps({"verdict": "clean", "score": 0, "frozen": gc.get_freeze_count()}).encode(), ""


def report_start(path: str, sha256: str, config: Config):
    return "ok", json.dumps({"verdict": "clean", "score": 0, "began": time.time()}).encode(), ""


def test_workers_hide_their_libraries_from_the_garbage_collector(tmp_path: Path) -> None:
    # pefile runs a full collection per PE: it must not walk every imported library each time.
    entries, _ = collect([quarantine(tmp_path)], exclude=["*.tmp"])
    pool = LocalPool(1, CONFIG, work=report_gc_freeze)
    try:
        frozen = [json.loads(o.report_json or b"{}")["frozen"] for o in pool.run(entries)]
    finally:
        pool.close()
    assert len(frozen) == 2 and min(frozen) > 10_000  # analyzers, rules and Sigma were loaded before


def test_a_worker_starts_its_next_file_while_the_last_result_is_recorded(tmp_path: Path) -> None:
    entries, _ = collect([quarantine(tmp_path)], exclude=["*.tmp"])
    pool = LocalPool(1, CONFIG, work=report_start)
    outcomes, recorded_at = [], []
    try:
        for outcome in pool.run(entries):
            outcomes.append(outcome)
            if len(outcomes) == 1:
                time.sleep(1.0)  # a slow consumer: cache write, JSONL, progress
            recorded_at.append(time.time())
    finally:
        pool.close()
    assert json.loads(outcomes[1].report_json or b"{}")["began"] < recorded_at[0]


def test_a_capped_read_costs_only_the_bytes_the_file_holds(tmp_path: Path) -> None:
    import tracemalloc

    from restytriage.blob import Blob

    path = tmp_path / "small.bin"
    path.write_bytes(b"MZ" + bytes(4094))
    tracemalloc.start()
    try:
        data = Blob(path=path).read(256 << 20)  # analyzers cap reads generously (e.g. 192 MiB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data == b"MZ" + bytes(4094) and peak < 1 << 20


def test_a_run_makes_its_temp_folder_only_when_a_child_spills(monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import random
    import tempfile
    import zipfile

    from restytriage import blob
    from restytriage.engine import triage_bytes

    made: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def counting_mkdtemp(*args, **kwargs) -> str:
        made.append(real_mkdtemp(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", counting_mkdtemp)
    assert triage_bytes(b"meeting at ten\n", "notes.txt").verdict == "clean"
    assert made == []  # a file without children needs no folder (making one costs ms per file)
    monkeypatch.setattr(blob, "IN_MEMORY_MAX", 1024)  # so a 4 KiB member spills to disk
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data.bin", random.Random(1).randbytes(4096))
    report = triage_bytes(archive.getvalue(), "parcel.zip")
    assert report.root.children[0].size == 4096
    assert len(made) == 1 and not Path(made[0]).exists()  # made once, removed at the end


def test_a_cached_rerun_records_new_paths_and_keeps_verdicts_without_decoding(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    db = tmp_path / "cache.db"
    first = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    (inbox / "forwarded-invoice.pdf.lnk").write_bytes(b"not really a shortcut")  # same content, new path
    again = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert {o.status for o in again.outcomes} == {"cached"}
    assert {(o.verdict, o.score) for o in again.outcomes} == {(o.verdict, o.score) for o in first.outcomes}
    store = ReportCache(db, rules_fingerprint(CONFIG))
    seen = {tuple(sorted(Path(p).name for p in paths)) for paths, _ in store.entries()}
    store.close()
    assert ("forwarded-invoice.pdf.lnk", "invoice.pdf.lnk") in seen


def test_a_file_changed_after_listing_is_reported_not_scanned_as_listed(tmp_path: Path) -> None:
    from restytriage.batch import triage_to_json

    inbox = quarantine(tmp_path)
    entries, _ = collect([inbox], exclude=["*.tmp"])
    lnk = next(e for e in entries if e.paths[0].endswith(".lnk"))
    assert triage_to_json(lnk.paths[0], lnk.sha256, CONFIG)[0] == "ok"
    Path(lnk.paths[0]).write_bytes(b"swapped for something else")
    assert triage_to_json(lnk.paths[0], lnk.sha256, CONFIG) == (
        "error",
        None,
        "file changed since it was listed",
    )


def test_summary_lists_the_strongest_files_and_points_to_the_rest() -> None:
    from rich.console import Console

    from restytriage.batch import FileEntry, Outcome, ScanResult
    from restytriage.render.summary import MAX_FLAGGED_ROWS, render_summary

    outcomes = [
        Outcome(
            FileEntry(f"{i:064x}", 1, [f"q/file{i}.lnk"]),
            "ok",
            b'{"reasons": ["x (50)"]}',
            "suspicious",
            30 + i,
        )
        for i in range(MAX_FLAGGED_ROWS + 10)
    ]
    console = Console(record=True, width=200)
    render_summary(ScanResult(outcomes, [], 0.0, 1.0, []), console)
    text = console.export_text()
    flagged = text[text.index("Files that matter") : text.index("... and 10 more flagged file(s)")]
    assert f"q/file{MAX_FLAGGED_ROWS + 9}.lnk" in flagged and "q/file9.lnk" not in flagged  # strongest first
    assert flagged.count(".lnk") == MAX_FLAGGED_ROWS


def _age(folder: Path, seconds: float = 3600) -> None:
    """Date every file back, as files in a quarantine share are: a file written this very second may
    change again within its timestamp's granularity, so its signature is not trusted (git's racy rule)."""
    past = time.time() - seconds
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (past, past))


def _counting_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from restytriage import batch

    read: list[str] = []
    real = batch.sha256_of

    def counted(path: Path) -> str:
        read.append(path.name)
        return real(path)

    monkeypatch.setattr(batch, "sha256_of", counted)
    return read


def test_a_rerun_reads_no_unchanged_file_and_rereads_a_changed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = quarantine(tmp_path)
    _age(inbox)
    db = tmp_path / "cache.db"
    read = _counting_hashes(monkeypatch)
    first = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert sorted(read) == ["copy-of-notes.txt", "invoice.pdf.lnk", "notes.txt"]
    read.clear()
    again = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert read == [] and {o.status for o in again.outcomes} == {"cached"}
    assert {o.entry.sha256 for o in again.outcomes} == {o.entry.sha256 for o in first.outcomes}
    # Same size, mtime put back: the ctime still moves, so the swap is seen and the file read again.
    notes = inbox / "notes.txt"
    before = notes.stat()
    notes.write_bytes(b"meeting at two\n")
    os.utime(notes, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert notes.stat().st_size == before.st_size and notes.stat().st_mtime_ns == before.st_mtime_ns
    read.clear()
    changed = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert read == ["notes.txt"]
    fresh = next(o for o in changed.outcomes if str(notes) in o.entry.paths)
    assert fresh.status == "ok" and fresh.entry.paths == [str(notes)]  # no longer a copy of the other
    read.clear()
    scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db, rehash=True)
    assert sorted(read) == ["copy-of-notes.txt", "invoice.pdf.lnk", "notes.txt"]


def test_a_file_written_just_now_is_hashed_again_next_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = quarantine(tmp_path)  # every file written this second
    db = tmp_path / "cache.db"
    read = _counting_hashes(monkeypatch)
    scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    read.clear()
    again = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert sorted(read) == ["copy-of-notes.txt", "invoice.pdf.lnk", "notes.txt"]
    assert {o.status for o in again.outcomes} == {"cached"}


def test_a_cache_from_before_signatures_is_upgraded_in_place(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    _age(inbox)
    db = tmp_path / "cache.db"
    old = sqlite3.connect(db)
    old.executescript(
        """CREATE TABLE reports (
            sha256 TEXT NOT NULL, engine TEXT NOT NULL, rules TEXT NOT NULL,
            verdict TEXT NOT NULL, score INTEGER NOT NULL, seconds REAL NOT NULL,
            report BLOB NOT NULL, stored REAL NOT NULL, PRIMARY KEY (sha256, engine, rules));
        CREATE TABLE paths (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, seen REAL NOT NULL);
        INSERT INTO paths VALUES ('/elsewhere/old.lnk', 'ab', 0);"""
    )
    old.commit()
    old.close()
    scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    store = ReportCache(db, rules_fingerprint(CONFIG))
    known = store.signatures()
    store.close()
    assert sorted(Path(p).name for p in known) == ["copy-of-notes.txt", "invoice.pdf.lnk", "notes.txt"]
    notes = inbox / "notes.txt"
    info = notes.stat()
    assert known[str(notes)][0] == (
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


def test_a_worker_freezes_its_rules_and_stops_rechecking_the_folders(tmp_path: Path) -> None:
    """A batch worker's scan fixed its rules; walking the rule folders before each file (38 ms for a
    500-file pack) would cost more than the analysis. A plain process still notices edits."""
    import shutil

    from restytriage import rules, sigma
    from restytriage.batch import _warm_up

    pack, detections = tmp_path / "pack", tmp_path / "sigma"
    pack.mkdir()
    detections.mkdir()
    (pack / "a.yar").write_text('rule first_word { strings: $a = "alpha" condition: $a }\n')
    team_rules = sorted((Path(rules.__file__).parents[1] / "sigma").glob("*.yml"))
    shutil.copy(team_rules[0], detections)
    config = Config(yara_dirs=(pack,), sigma_dirs=(detections,), builtin_rules=False)
    rules.clear_memory_cache()
    sigma.clear_memory_cache()
    try:
        assert [i.name for i in rules.ruleset_for(config).infos] == ["first_word"]
        (pack / "b.yar").write_text('rule second_word { strings: $b = "beta" condition: $b }\n')
        assert {i.name for i in rules.ruleset_for(config).infos} == {"first_word", "second_word"}
        _warm_up(config)
        (pack / "c.yar").write_text('rule third_word { strings: $c = "gamma" condition: $c }\n')
        frozen = rules.ruleset_for(config)
        assert {i.name for i in frozen.infos} == {"first_word", "second_word"}
        shutil.copy(team_rules[1], detections)
        assert len(sigma.load_rules(sigma.rule_dirs_for(config)).rules) == 1
    finally:
        rules.clear_memory_cache()
        sigma.clear_memory_cache()
    assert "third_word" in {i.name for i in rules.ruleset_for(config).infos}
    assert len(sigma.load_rules(sigma.rule_dirs_for(config)).rules) == 2


def test_without_outputs_that_need_them_reports_are_not_kept_to_the_end(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    lines = tmp_path / "out.jsonl"
    with open(lines, "wb") as stream:
        result = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], jsonl=stream, keep_reports=False)
    assert all(o.report_json is None for o in result.outcomes)
    lnk = next(o for o in result.outcomes if o.entry.paths[0].endswith(".lnk"))
    gist = lnk.gist()
    assert gist is not None and gist.verdict == "suspicious" and gist.reasons  # what summaries read
    assert len(lines.read_text().splitlines()) == 2  # the reports went out as they came
    kept = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"])
    assert all(o.report_json for o in kept.outcomes)


def test_scan_and_report_write_the_batch_document(tmp_path: Path) -> None:
    """`--json` is streamed a file at a time, each report copied as is: it must still be one valid
    document, list only the files at or above --min-verdict, and count them all."""
    import jsonschema
    from typer.testing import CliRunner

    from restytriage.cli import app

    inbox = quarantine(tmp_path)
    db, document = tmp_path / "cache.db", tmp_path / "batch.json"
    args = ["scan", str(inbox), "--exclude", "*.tmp", "--workers", "1", "--cache", str(db)]
    result = CliRunner().invoke(app, [*args, "--json", str(document), "--min-verdict", "suspicious"])
    assert result.exit_code == 10, result.output
    batch = json.loads(document.read_text("utf-8"))
    assert batch["batch_schema_version"] == "1.0" and batch["counts"] == {"suspicious": 1, "clean": 1}
    (listed,) = batch["files"]
    assert listed["paths"][0].endswith("invoice.pdf.lnk") and listed["status"] == "ok"
    schema = json.loads((Path(__file__).parents[1] / "docs" / "report.schema.json").read_text())
    jsonschema.validate(listed["report"], schema)
    rebuilt = tmp_path / "rebuilt.json"
    result = CliRunner().invoke(app, ["report", "--from", str(db), "--json", str(rebuilt)])
    assert result.exit_code == 10, result.output
    again = json.loads(rebuilt.read_text("utf-8"))
    assert {f["sha256"]: f["report"]["verdict"] for f in again["files"]} == {
        f.entry.sha256: f.verdict for f in scan([inbox], CONFIG, exclude=["*.tmp"], cache_path=db).outcomes
    }


def test_the_cache_key_covers_passwords_pack_files_and_includes(tmp_path: Path) -> None:
    """A re-run with a password, an edited single-file pack or an edited include outside the pack's
    folder must not get the old report back."""
    base = Config(builtin_rules=False)
    assert rules_fingerprint(Config(passwords=("s3cret",))) != rules_fingerprint(Config())
    pack = tmp_path / "pack.yar"
    shared = tmp_path / "shared" / "strings.yar"
    shared.parent.mkdir()
    shared.write_text('rule shared_word { strings: $a = "alpha" condition: $a }\n')
    pack.write_text(f'include "{shared}"\nrule own_word {{ strings: $b = "beta" condition: $b }}\n')
    with_pack = Config(yara_dirs=(pack,), builtin_rules=False)
    before = rules_fingerprint(with_pack)
    assert before != rules_fingerprint(base)
    shared.write_text('rule shared_word { strings: $a = "gamma" condition: $a }\n')
    after_include = rules_fingerprint(with_pack)
    assert after_include != before
    pack.write_text(pack.read_text().replace("beta", "delta"))
    assert rules_fingerprint(with_pack) not in (before, after_include)


def test_a_damaged_cache_row_is_analysed_again(tmp_path: Path) -> None:
    inbox = quarantine(tmp_path)
    db = tmp_path / "cache.db"
    scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    connection = sqlite3.connect(db)
    connection.execute("UPDATE reports SET report = x'00ff00ff'")
    connection.commit()
    connection.close()
    again = scan([inbox], CONFIG, workers=1, exclude=["*.tmp"], cache_path=db)
    assert {o.status for o in again.outcomes} == {"ok"} and not again.warnings


def test_a_killed_worker_leaves_no_temp_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung worker is killed mid-file, so its run never cleans up: the pool removes its folder."""
    from restytriage import batch

    inbox = quarantine(tmp_path)
    entries, _ = collect([inbox], exclude=["*.tmp"])
    monkeypatch.setattr(batch, "GRACE_SECONDS", 0.5)
    pool = LocalPool(1, Config(limits=Limits(max_seconds=0.5)), work=spill_then_hang_on_lnk)
    try:
        outcomes = {Path(o.entry.paths[0]).name: o.status for o in pool.run(entries)}
    finally:
        pool.close()
    assert outcomes["invoice.pdf.lnk"] == "timeout" and "ok" in outcomes.values()
    spilled = [Path((inbox / name).read_text()) for name in ("invoice.pdf.lnk.where", "notes.txt.where")]
    assert all(folder.name.startswith("restytriage-") for folder in spilled)
    assert [folder for folder in spilled if folder.exists()] == []


def slow_triage(path: str, sha256: str, config: Config, data: bytes | None = None):
    if path.endswith(".lnk"):
        time.sleep(4)
    return "ok", b'{"verdict": "clean", "score": 0}', ""


def test_a_cluster_without_the_files_gets_their_bytes_checked_and_a_hang_costs_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    distributed = pytest.importorskip("distributed")
    from restytriage import cluster

    inbox = quarantine(tmp_path)
    (inbox / "agenda.txt").write_bytes(b"agenda\n")
    entries, _ = collect([inbox], exclude=["*.tmp"])
    (inbox / "notes.txt").unlink()  # the first path of the notes content: vanished
    (inbox / "agenda.txt").write_bytes(b"agenda, revised\n")  # changed since it was listed
    monkeypatch.setattr(cluster, "_sees", lambda path, sha256: False)  # workers see no shared files
    with distributed.LocalCluster(
        n_workers=1, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
    ) as local:
        outcomes = {
            Path(o.entry.paths[0]).name: (o.status, o.reason)
            for o in cluster.run_on_cluster(local.scheduler_address, entries, CONFIG)
        }
        assert outcomes["agenda.txt"] == ("error", "file changed since it was listed")
        assert outcomes["notes.txt"] == ("error", "unreadable: No such file or directory")
        assert outcomes["invoice.pdf.lnk"][0] == "ok"
        monkeypatch.setattr(cluster, "triage_to_json", slow_triage)
        monkeypatch.setattr(cluster, "GRACE_SECONDS", 0.2)
        hasty = Config(limits=Limits(max_seconds=0.3))
        slow = {
            Path(o.entry.paths[0]).name: o.status
            for o in cluster.run_on_cluster(local.scheduler_address, entries, hasty)
        }
    assert slow["invoice.pdf.lnk"] == "timeout"


def test_report_from_the_cache_matches_the_scan_options_and_lists_each_file_once(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from restytriage.cli import app

    inbox = quarantine(tmp_path)
    db, out = tmp_path / "cache.db", tmp_path / "batch.json"
    base = ["--exclude", "*.tmp", "--workers", "1", "--cache", str(db)]
    for extra in ([], ["--max-seconds", "60"]):  # the same files under two rule-and-limit keys
        assert CliRunner().invoke(app, ["scan", str(inbox), *base, *extra]).exit_code == 10

    def files(*options: str) -> list[str]:
        result = CliRunner().invoke(app, ["report", "--from", str(db), "--json", str(out), *options])
        assert result.exit_code in (0, 10), result.output
        return sorted(Path(f["paths"][0]).name for f in json.loads(out.read_text())["files"])

    both = ["copy-of-notes.txt", "invoice.pdf.lnk"]
    assert files() == both
    assert files("--max-seconds", "60") == both
    assert files("--max-seconds", "30") == []
    assert files("--all") == both  # not one entry per rule set
