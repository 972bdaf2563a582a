"""Batch scans of quarantine folders: walk, dedupe, cache, run in parallel, stream results.

The local pool is our own: one process per worker, each fed one file at a time, watched by the
parent. A file that hangs past its time limit or kills its worker is recorded ("timeout", "crash")
and the worker replaced; nothing else in the batch is touched, which concurrent.futures' pools
(broken wholesale by one dead worker) cannot promise. Workers import analyzers and compile rules
once, when they start.
"""

from __future__ import annotations

import contextlib
import fnmatch
import gc
import hashlib
import json
import multiprocessing as mp
import os
import queue
import shutil
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgspec

from restytriage import __version__
from restytriage.cache import Signature
from restytriage.config import Config

BATCH_SCHEMA_VERSION = "1.0"
GRACE_SECONDS = 10.0  # past the engine's own cooperative limit before a worker is killed
WARM_UP_SECONDS = 300.0  # a worker that has not begun its file by then (imports, rule compile) is replaced
DEFAULT_WORKER_MEMORY = 4 << 30  # address-space ceiling per worker (RLIMIT_AS)
VERDICT_RANK = {"clean": 0, "suspicious": 1, "malicious": 2}


RACY_SECONDS = 2  # a file changed this recently may change again within its mtime's granularity (FAT: 2 s)


@dataclass
class FileEntry:
    """One unique content (by sha256) and every path it was found at.

    `signatures` holds, for the paths whose (device, inode, size, mtime, ctime) can vouch for this
    content next time, that signature: a re-run takes the sha256 of an unchanged file from the cache
    instead of reading it again (git's index does the same).
    """

    sha256: str
    size: int
    paths: list[str]
    signatures: dict[str, Signature] = field(default_factory=dict)


@dataclass
class Skipped:
    path: str
    reason: str


class _Named(msgspec.Struct):
    id: str
    name: str


class _Indicator(msgspec.Struct):
    type: str
    value: str


class _File(msgspec.Struct):
    sha256: str
    size: int


class Gist(msgspec.Struct):
    """What summaries read of a report. Decoding only these fields (msgspec skips the rest unparsed) is
    several times faster than decoding the report, and small enough to keep for every file."""

    file: _File | None = None  # tolerant: reports cached by older versions are read too
    verdict: str = "clean"
    score: int = 0
    reasons: list[str] = []
    techniques: list[_Named] = []
    iocs: list[_Indicator] = []


_GIST_DECODER = msgspec.json.Decoder(Gist)


@dataclass
class Outcome:
    """The result for one unique file: a report, or why there is none."""

    entry: FileEntry
    status: str  # ok, cached, timeout, crash, error
    report_json: bytes | None = None
    verdict: str | None = None
    score: int = 0
    seconds: float = 0.0
    reason: str = ""
    _gist: Gist | None = field(default=None, repr=False)

    def gist(self) -> Gist | None:
        if self._gist is None and self.report_json is not None:
            self._gist = _GIST_DECODER.decode(self.report_json)
        return self._gist


# ----------------------------------------------------------------------------- walking


def _matches(relative: str, patterns: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)


def _excluded(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    relative = relative.replace(os.sep, "/")
    return bool(include and not _matches(relative, include)) or _matches(relative, exclude)


def walk(
    roots: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Iterator[tuple[Path, os.stat_result] | Skipped]:
    """Regular files under the roots (never following symlinks), or why a path was skipped."""
    for root in roots:
        try:
            info = root.lstat()
        except OSError as err:
            yield Skipped(str(root), f"unreadable: {err.strerror or err}")
            continue
        if stat.S_ISLNK(info.st_mode):
            yield Skipped(str(root), "symbolic link not followed")
            continue
        if stat.S_ISREG(info.st_mode):
            yield root, info
            continue
        pending = [root]
        while pending:
            folder = pending.pop()
            try:
                with os.scandir(folder) as listing:
                    entries = sorted(listing, key=lambda e: e.name)
            except OSError as err:
                yield Skipped(str(folder), f"unreadable folder: {err.strerror or err}")
                continue
            for entry in entries:
                try:
                    if entry.is_symlink():
                        yield Skipped(entry.path, "symbolic link not followed")
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif not entry.is_file(follow_symlinks=False):
                        yield Skipped(entry.path, "not a regular file (device, FIFO or socket)")
                    elif (include or exclude) and _excluded(
                        os.path.relpath(entry.path, root), include, exclude
                    ):
                        continue
                    else:
                        yield Path(entry.path), entry.stat(follow_symlinks=False)
                except OSError as err:
                    yield Skipped(entry.path, f"unreadable: {err.strerror or err}")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def signature_of(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def collect(
    roots: Sequence[Path],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    known: Mapping[str, tuple[Signature, str]] | None = None,
) -> tuple[list[FileEntry], list[Skipped]]:
    """Unique contents to analyse (hashed here: duplicates and cache hits then cost no worker).

    `known` maps paths to the signature and sha256 recorded when they were last hashed; a file whose
    signature is unchanged is not read again.
    """
    unique: dict[str, FileEntry] = {}
    skipped: list[Skipped] = []
    known = known or {}
    for found in walk(roots, include, exclude):
        if isinstance(found, Skipped):
            skipped.append(found)
            continue
        path, info = found
        name, signature = str(path), signature_of(info)
        recorded = known.get(name)
        if recorded is not None and recorded[0] == signature:
            digest = recorded[1]
        else:
            try:
                digest = sha256_of(path)
            except OSError as err:
                skipped.append(Skipped(name, f"unreadable: {err.strerror or err}"))
                continue
        entry = unique.get(digest)
        if entry is None:
            entry = unique[digest] = FileEntry(digest, info.st_size, [])
        entry.paths.append(name)
        if info.st_mtime_ns < time.time_ns() - RACY_SECONDS * 1_000_000_000:
            entry.signatures[name] = signature
    return list(unique.values()), skipped


# ----------------------------------------------------------------------------- workers


def _limit_memory(max_bytes: int) -> None:
    if max_bytes > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _warm_up(config: Config) -> None:
    """Import every analyzer and load the rules once per worker, before the first file; the rules
    are then frozen for the worker's life (the scan's cache key fixed them)."""
    from restytriage import analyzers, rules, sigma

    analyzers.registry()
    rules.freeze(config)
    sigma.freeze(sigma.rule_dirs_for(config))


def triage_to_json(
    path: str, expected_sha256: str, config: Config, data: bytes | None = None
) -> tuple[str, bytes | None, str]:
    """(status, report JSON, reason) for one file, read at `path` or, for a Dask worker that cannot
    see the client's files, from the `data` read there; shared by local workers and Dask tasks."""
    from restytriage.engine import triage, triage_bytes
    from restytriage.model import to_json

    try:
        report = triage(Path(path), config) if data is None else triage_bytes(data, Path(path).name, config)
        if report.file.sha256 != expected_sha256:  # the engine hashes the file anyway: no second pass
            return "error", None, "file changed since it was listed"
        return "ok", to_json(report), ""
    except FileNotFoundError:
        return "error", None, "file vanished before it was analysed"
    except MemoryError:
        return "crash", None, "worker memory ceiling reached"
    except Exception as err:
        return "error", None, f"{type(err).__name__}: {err}"[:300]


Work = Callable[[str, str, Config], tuple[str, bytes | None, str]]


def _freeze_long_lived() -> None:
    """Hide what is alive now (imported libraries, compiled rules) from the cyclic garbage collector.

    pefile runs a full collection each time a PE is closed; in a worker holding every analyzer's
    libraries that walk cost more than analysing a small file. Frozen objects are still freed by
    reference counting; only this file's leftovers are collected first, so none of them is kept.
    """
    gc.collect()
    gc.freeze()


def _worker(tasks: Any, results: Any, config: Config, memory: int, work: Work, temp_root: str) -> None:
    import tempfile

    tempfile.tempdir = temp_root  # the parent removes it if it has to kill this worker mid-file
    _limit_memory(memory)
    with contextlib.suppress(Exception):  # a bad rule pack shows in each report, not as a dead worker
        _warm_up(config)
    modules = 0
    while True:
        if len(sys.modules) != modules:  # analyzers import their libraries on first use
            _freeze_long_lived()
            modules = len(sys.modules)
        task = tasks.get()
        if task is None:
            return
        key, path, sha256 = task
        results.put((os.getpid(), key, "started", None, "", 0.0))
        started = time.perf_counter()
        status, report_json, reason = work(path, sha256, config)
        results.put((os.getpid(), key, status, report_json, reason, time.perf_counter() - started))


@dataclass
class _Slot:
    process: Any
    tasks: Any
    temp_root: str  # the worker's temp folder: every run's spilled children and upx copies
    current: FileEntry | None = None
    started: float = 0.0  # when the file was handed over, then when the worker said it began
    running: bool = False


class LocalPool:
    def __init__(
        self, workers: int, config: Config, memory: int = DEFAULT_WORKER_MEMORY, work: Work = triage_to_json
    ) -> None:
        self._work = work
        self._context = mp.get_context(
            "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
        )
        self._config = config
        self._memory = memory
        self._results = self._context.Queue()
        self._slots = [self._start() for _ in range(max(1, workers))]
        self._hard_limit = config.limits.max_seconds + GRACE_SECONDS

    def _start(self) -> _Slot:
        import tempfile

        tasks = self._context.SimpleQueue()
        temp_root = tempfile.mkdtemp(prefix="restytriage-worker-")
        process = self._context.Process(
            target=_worker,
            args=(tasks, self._results, self._config, self._memory, self._work, temp_root),
            daemon=True,
        )
        process.start()
        return _Slot(process, tasks, temp_root)

    def _replace(self, slot: _Slot) -> None:
        """Kill the worker (a hung or dead one never cleaned up its run) and start another."""
        if slot.process.is_alive():
            slot.process.kill()
        slot.process.join(5)
        shutil.rmtree(slot.temp_root, ignore_errors=True)
        fresh = self._start()
        slot.process, slot.tasks, slot.temp_root = fresh.process, fresh.tasks, fresh.temp_root
        slot.current, slot.running = None, False

    def _hand_out(self, pending: list[FileEntry]) -> int:
        """Give each idle worker its next file; returns how many were handed out."""
        handed = 0
        for slot in self._slots:
            if slot.current is None and pending:
                slot.current, slot.started = pending.pop(), time.monotonic()
                slot.tasks.put((slot.current.sha256, slot.current.paths[0], slot.current.sha256))
                handed += 1
        return handed

    def run(self, entries: Iterable[FileEntry]) -> Iterator[Outcome]:
        pending = list(entries)
        pending.reverse()
        busy = 0
        while pending or busy:
            busy += self._hand_out(pending)
            try:
                pid, key, status, report_json, reason, seconds = self._results.get(timeout=0.2)
            except queue.Empty:
                pass
            else:
                slot = next((s for s in self._slots if s.process.pid == pid and s.current is not None), None)
                if slot is not None and slot.current is not None and slot.current.sha256 == key:
                    if status == "started":
                        slot.started, slot.running = time.monotonic(), True
                    else:
                        entry = slot.current
                        slot.current, slot.running = None, False
                        busy -= 1
                        busy += self._hand_out(pending)  # the worker goes on while this result is recorded
                        yield outcome_of(entry, status, report_json, reason, seconds)
            now = time.monotonic()
            for slot in self._slots:
                if slot.current is None:
                    continue
                if not slot.process.is_alive():
                    entry, code = slot.current, slot.process.exitcode
                    self._replace(slot)
                    busy -= 1
                    yield Outcome(
                        entry, "crash", reason=f"worker died (exit code {code})", seconds=now - slot.started
                    )
                elif now - slot.started > (self._hard_limit if slot.running else WARM_UP_SECONDS):
                    entry = slot.current
                    self._replace(slot)
                    busy -= 1
                    reason = (
                        f"no result after {self._hard_limit:g}s"
                        if slot.running
                        else f"the worker did not start it within {WARM_UP_SECONDS:g}s (imports, rules)"
                    )
                    yield Outcome(entry, "timeout", reason=reason, seconds=now - slot.started)

    def close(self) -> None:
        for slot in self._slots:
            if slot.process.is_alive():
                if slot.current is None:
                    slot.tasks.put(None)
                    slot.process.join(2)
                if slot.process.is_alive():
                    slot.process.kill()
            slot.process.join(2)
            shutil.rmtree(slot.temp_root, ignore_errors=True)


def outcome_of(
    entry: FileEntry, status: str, report_json: bytes | None, reason: str, seconds: float
) -> Outcome:
    outcome = Outcome(entry, status, report_json, reason=reason, seconds=seconds)
    gist = outcome.gist()
    if gist is not None:
        outcome.verdict, outcome.score = gist.verdict, gist.score
    return outcome


# ----------------------------------------------------------------------------- the scan


@dataclass
class ScanResult:
    outcomes: list[Outcome]
    skipped: list[Skipped]
    started: float
    finished: float
    warnings: list[str]
    interrupted: bool = False

    def worst(self) -> str:
        verdicts = [o.verdict for o in self.outcomes if o.verdict]
        return max(verdicts, key=VERDICT_RANK.__getitem__, default="clean")


def _file_record(outcome: Outcome, head: dict[str, Any]) -> bytes:
    """One file's JSON object: `head`, the outcome's fields, then its report copied as the JSON it
    already is (never decoded and encoded again)."""
    head |= {
        "paths": outcome.entry.paths,
        "sha256": outcome.entry.sha256,
        "status": outcome.status,
        "reason": outcome.reason,
        "seconds": round(outcome.seconds, 3),
    }
    body = json.dumps(head, ensure_ascii=False)[:-1].encode()
    return body + b', "report": ' + (outcome.report_json or b"null") + b"}"


def jsonl_line(outcome: Outcome) -> bytes:
    return _file_record(outcome, {"path": outcome.entry.paths[0]}) + b"\n"


def scan(
    roots: Sequence[Path],
    config: Config,
    *,
    workers: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    cache_path: Path | None = None,
    jsonl: IO[bytes] | None = None,
    cluster: str | None = None,
    worker_memory: int = DEFAULT_WORKER_MEMORY,
    min_verdict: str = "clean",
    rehash: bool = False,
    keep_reports: bool = True,
    on_listed: Callable[[int, int], None] | None = None,
    on_result: Callable[[Outcome], None] | None = None,
) -> ScanResult:
    """Scan everything under `roots`; results stream to `jsonl`, the cache and `on_result` as they come.

    `min_verdict` filters what goes to `jsonl` (files without a report always do), not what is cached.
    `rehash` reads every file even where the cache vouches for its content by its unchanged signature.
    Without `keep_reports` an outcome keeps only its gist once the report is streamed and cached: a
    scan of 100,000 files would otherwise hold every report (tens of KB each) until the end.
    """
    from restytriage.cache import open_cache, rules_fingerprint

    started = time.time()
    warnings: list[str] = []
    cache = None
    if cache_path is not None:
        cache, warning = open_cache(cache_path, rules_fingerprint(config))
        if warning:
            warnings.append(warning)
    known = cache.signatures() if cache is not None and not rehash else None
    entries, skipped = collect(roots, include, exclude, known)
    if on_listed:
        on_listed(len(entries), sum(e.size for e in entries))
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if (
            jsonl is not None
            and VERDICT_RANK.get(outcome.verdict or "malicious", 2) >= VERDICT_RANK[min_verdict]
        ):
            jsonl.write(jsonl_line(outcome))
            jsonl.flush()
        if cache is not None and outcome.status == "ok" and outcome.report_json is not None:
            cache.put(
                outcome.entry.sha256,
                outcome.verdict or "clean",
                outcome.score,
                outcome.seconds,
                outcome.report_json,
                outcome.entry.paths,
                outcome.entry.signatures,
            )
        if on_result:
            on_result(outcome)
        if not keep_reports and outcome.report_json is not None:
            outcome.gist()
            outcome.report_json = None

    to_run = []
    seen_again: list[FileEntry] = []
    for entry in entries:
        cached = cache.get(entry.sha256) if cache is not None else None
        if cached is None:
            to_run.append(entry)
            continue
        report_json, verdict, score = cached
        seen_again.append(entry)
        record(Outcome(entry, "cached", report_json, verdict, score))
    if cache is not None and seen_again:
        cache.remember_paths((e.sha256, e.paths, e.signatures) for e in seen_again)
    interrupted = False
    try:
        if cluster:
            from restytriage.cluster import run_on_cluster

            for outcome in run_on_cluster(cluster, to_run, config):
                record(outcome)
        elif to_run:
            pool = LocalPool(min(workers or os.cpu_count() or 1, len(to_run)), config, worker_memory)
            try:
                for outcome in pool.run(to_run):
                    record(outcome)
            finally:
                pool.close()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if cache is not None:
            if cache.warning:
                warnings.append(cache.warning)
            cache.close()
    return ScanResult(outcomes, skipped, started, time.time(), warnings, interrupted)


def write_batch_document(result: ScanResult, files: Sequence[Outcome], out: IO[bytes]) -> None:
    """The `--json` document of a scan (its own small, versioned layout; see docs/schema.md) listing
    `files`, written one file at a time so that no scan, however large, is held whole in memory."""
    counts: dict[str, int] = {}
    for outcome in result.outcomes:
        key = outcome.verdict or outcome.status
        counts[key] = counts.get(key, 0) + 1
    head = {
        "batch_schema_version": BATCH_SCHEMA_VERSION,
        "tool": {"name": "restytriage", "version": __version__},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(result.finished)),
        "interrupted": result.interrupted,
        "counts": counts,
        "skipped": [{"path": s.path, "reason": s.reason} for s in result.skipped],
        "warnings": result.warnings,
    }
    out.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "files": [')
    for index, outcome in enumerate(files):
        out.write((b", " if index else b"") + _file_record(outcome, {}))
    out.write(b"]}")
