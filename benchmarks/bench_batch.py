"""Batch-scan benchmark: throughput, the cache, peak memory, and the shell loop it replaces.

    python benchmarks/bench_batch.py [--files 2048] [--workers N] [--iso-gib 1] [--iso-member-mib 0]
                                     [--inflated-mib 192] [--loop-files 96] [--keep]

Builds a quarantine of `--files` unique inert samples in a temp folder (copies of every sample in
`restytriage.samples`, each copy made unique by an edit its format ignores: a ZIP comment, the LNK
access time, the gzip MTIME, the PDF /ID, or trailing bytes), then runs the `restytriage scan`
command line in cold subprocesses, as users do, and prints:
- files/s and MB/s of a cold scan with 1 worker and with all workers (same folder, fresh caches),
  the speed-up, the mean time a file took in a worker, and the CPU time of the process tree with the
  time its processes waited for a core other work held (/proc/PID/schedstat: on a shared machine
  that, not the pool, is what bends the speed-up);
- the time of the cached re-run, as a share of the first run;
- peak memory of the batch (the parent, the largest other process, all processes together, and the
  private part, sampled from /proc), and of `restytriage triage` on a disc image of `--iso-gib` GiB
  (a shortcut, a DLL and one large pseudo-random member past the per-member limit, written by
  pycdlib from a generator-backed file object: never held in memory) and on one DLL inflated to
  `--inflated-mib` MiB (padded the way droppers pad to slip past sandboxes). A peak over the 300 MB
  target triggers a second, watched triage that names the analyzer calls that made it;
- beside them, a bash loop running olevba, lnkparse and yara on every file, as an analyst script
  would, over an even spread of `--loop-files` files (their cold starts make a loop over every file
  take about ten minutes), extrapolated to the whole folder, as a ratio.
Nothing is executed but the tools; everything is written to the temp folder, removed at the end.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from restytriage.blob import Blob
from restytriage.identify import identify
from restytriage.samples import Sample, all_samples

BIN = Path(sys.executable).parent
RULES_DIR = Path(__file__).resolve().parents[1] / "yara"
MIB = 1 << 20
SAMPLE_EVERY = 0.05  # seconds between /proc samples of the measured process tree
TARGET_CACHED_SHARE = 0.05
TARGET_PEAK_MB = 300
EOCD = b"PK\x05\x06"
VERDICT_EXIT_CODES = (0, 10, 20)  # clean, suspicious, malicious; 1 and 2 mean the tool failed
PDF_ID = re.compile(rb"/ID\s*\[\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*\]")


# ----------------------------------------------------------------------------- the quarantine


def unique_copy(data: bytes, filetype: str, index: int) -> bytes:
    """`data` made unique for copy `index` by an edit its format ignores, so every copy is analysed
    like the original (checked during development: same verdict, same finding ids)."""
    tag = f"bench-copy-{index:06d}".encode()
    if filetype in ("zip", "ooxml"):
        at = data.rfind(EOCD)
        if at >= 0 and at + 22 <= len(data):
            (comment_size,) = struct.unpack_from("<H", data, at + 20)
            if at + 22 + comment_size == len(data):  # no bytes after the archive: extend its comment
                comment = data[at + 22 :] + tag
                return data[: at + 20] + struct.pack("<H", len(comment)) + comment
    elif filetype == "lnk" and len(data) >= 0x4C:
        (accessed,) = struct.unpack_from("<Q", data, 0x24)  # FILETIME, 100 ns ticks
        if accessed:
            return data[:0x24] + struct.pack("<Q", accessed + index * 10_000_000) + data[0x2C:]
    elif filetype == "gzip" and len(data) >= 10:
        (mtime,) = struct.unpack_from("<L", data, 4)
        return data[:4] + struct.pack("<L", (mtime + index) & 0xFFFFFFFF) + data[8:]
    elif filetype == "pdf":
        found = PDF_ID.search(data)
        if found:  # a fresh document id of the same length: every xref offset stays right
            start, end = found.span(1)
            fresh = hashlib.md5(tag + data[start:end]).hexdigest().encode()
            fresh = (fresh * (1 + (end - start) // len(fresh)))[: end - start]
            return data[:start] + fresh + data[end:]
    return data + b"\0" + tag  # PE overlay, bytes after a CFB/ISO image or raw shellcode


@dataclass
class Quarantine:
    folder: Path
    files: int
    size: int
    mix: collections.Counter[str]
    files_by_type: dict[str, list[Path]]


def build_quarantine(folder: Path, wanted: int) -> Quarantine:
    """`wanted` unique files: round after round of the whole sample set, one folder per round
    (like one folder per quarantined message), under the samples' own names."""
    samples: list[tuple[Sample, bytes, str]] = []
    for sample in all_samples():
        data = sample.build()
        samples.append((sample, data, identify(Blob.of(data), sample.name).name))
    mix: collections.Counter[str] = collections.Counter()
    by_type: dict[str, list[Path]] = collections.defaultdict(list)
    digests: set[str] = set()
    size = 0
    for index in range(wanted):
        round_, position = divmod(index, len(samples))
        sample, data, filetype = samples[position]
        copy = unique_copy(data, filetype, round_)
        path = folder / f"message-{round_:04d}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(copy)
        digests.add(hashlib.sha256(copy).hexdigest())
        mix[filetype] += 1
        by_type[filetype].append(path)
        size += len(copy)
    if len(digests) != wanted:
        raise SystemExit(f"only {len(digests)} of {wanted} copies are unique: fix unique_copy()")
    return Quarantine(folder, wanted, size, mix, dict(by_type))


# ----------------------------------------------------------------------------- measuring processes


@dataclass
class Measured:
    seconds: float
    returncode: int
    peak_parent_kib: int = 0  # VmHWM of the process we started
    peak_worker_kib: int = 0  # the largest VmHWM among its descendants (workers; forkserver; tracker)
    peak_total_kib: int = 0  # the largest sampled sum of VmRSS over the whole tree
    peak_anon_kib: int = 0  # the largest sampled sum of RssAnon (private memory, without mapped files)
    processes: int = 0
    maxrss_kib: int = 0  # wait4's ru_maxrss: the exact peak RSS of the process we started (and of
    # descendants it reaped itself; not of pool workers, whose forkserver it never reaps)
    cpu_parent: float = 0.0  # CPU seconds of the process we started
    cpu_total: float = 0.0  # CPU seconds of the whole tree (each process's last sample)
    cpu_wait: float = 0.0  # seconds the tree's processes were ready to run but had no free core
    stderr: str = ""


def _status(pid: int) -> dict[str, int]:
    values = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return values


def _schedstat(pid: int) -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of one process's own threads."""
    try:
        with open(f"/proc/{pid}/schedstat") as fh:
            on_cpu, waiting, _ = fh.read().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def _descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as fh:
                    children = [int(c) for c in fh.read().split()]
            except OSError:
                continue
            found.extend(children)
            pending.extend(children)
    return found


def measure(command: list[str], env: dict[str, str]) -> Measured:
    """Run `command`, sampling the memory of it and all its descendants until it exits."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result = Measured(0.0, 0)
    peaks: dict[int, int] = {}
    cpu: dict[int, tuple[float, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total = anon = 0
            for pid in [process.pid, *_descendants(process.pid)]:
                status = _status(pid)
                scheduled = _schedstat(pid)
                if scheduled is not None:
                    cpu[pid] = scheduled
                if status:
                    peaks[pid] = max(peaks.get(pid, 0), status.get("VmHWM", 0))
                    total += status.get("VmRSS", 0)
                    anon += status.get("RssAnon", 0)
            result.peak_total_kib = max(result.peak_total_kib, total)
            result.peak_anon_kib = max(result.peak_anon_kib, anon)
            done.wait(SAMPLE_EVERY)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.stderr.read() if process.stderr else b""  # drains it so the child never blocks
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # already reaped: Popen must not wait again
    result.seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    result.returncode = process.returncode
    result.maxrss_kib = usage.ru_maxrss
    result.cpu_parent = cpu.get(process.pid, (0.0, 0.0))[0]
    result.cpu_total = sum(on_cpu for on_cpu, _ in cpu.values())
    result.cpu_wait = sum(waiting for _, waiting in cpu.values())
    result.peak_parent_kib = peaks.pop(process.pid, 0)
    result.peak_worker_kib = max(peaks.values(), default=0)
    result.processes = 1 + len(peaks)
    result.stderr = stderr.decode("utf-8", "replace")[-2000:]
    return result


# ----------------------------------------------------------------------------- the scans


@dataclass
class ScanRun:
    label: str
    measured: Measured
    statuses: collections.Counter[str]
    verdicts: dict[str, str]  # sha256 -> verdict
    per_file_ms: float  # mean time a worker spent on one file (its own clock, from the JSONL)


def scan(label: str, folder: Path, workers: int, cache: Path, env: dict[str, str], out: Path) -> ScanRun:
    out.unlink(missing_ok=True)
    command = [str(BIN / "restytriage"), "scan", str(folder), "--workers", str(workers)]
    measured = measure([*command, "--cache", str(cache), "--jsonl", str(out)], env)
    if measured.returncode not in VERDICT_EXIT_CODES:
        raise SystemExit(f"{label}: exit code {measured.returncode}\n{measured.stderr}")
    statuses: collections.Counter[str] = collections.Counter()
    verdicts = {}
    worker_seconds = 0.0
    with open(out, "rb") as lines:
        for line in lines:
            record = json.loads(line)
            statuses[record["status"]] += 1
            worker_seconds += record["seconds"]
            if record["report"]:
                verdicts[record["sha256"]] = record["report"]["verdict"]
    per_file_ms = 1000 * worker_seconds / max(1, statuses["ok"])
    return ScanRun(label, measured, statuses, verdicts, per_file_ms)


# ----------------------------------------------------------------------------- the large inputs


class PatternStream(io.RawIOBase):
    """`size` bytes of incompressible content made on the fly, never held whole: a random MiB
    rotated by a different amount in each MiB, so no two blocks are equal and nothing compresses."""

    def __init__(self, size: int, seed: int) -> None:
        super().__init__()
        self._size = size
        self._position = 0
        self._block = random.Random(seed).randbytes(MIB)
        self._current: tuple[int, bytes] = (-1, b"")  # (MiB index, its content): reads are small

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int = -1) -> bytes:
        end = self._size if size is None or size < 0 else min(self._size, self._position + size)
        parts = []
        while self._position < end:
            index, offset = divmod(self._position, MIB)
            if self._current[0] != index:
                shift = (index * 7919) % MIB
                self._current = (index, self._block[shift:] + self._block[:shift])
            take = min(MIB - offset, end - self._position)
            parts.append(self._current[1][offset : offset + take])
            self._position += take
        return b"".join(parts)


def sample_bytes(suffix: str) -> tuple[str, bytes]:
    sample = next(s for s in all_samples() if s.name.lower().endswith(suffix))
    return sample.name, sample.build()


def build_iso(path: Path, total: int, member: int) -> int:
    """A UDF+Joliet image of about `total` bytes, written by pycdlib from file objects straight to
    disk: a lure shortcut, a DLL, optionally a `member`-byte data file (small enough to be unpacked
    and analysed), and one large file of pseudo-random bytes filling the rest (past the per-member
    limit, so its copy is stopped there: the image must still be streamed, never read whole)."""
    import pycdlib

    small = [sample_bytes(".lnk"), sample_bytes(".dll")]
    large = max(MIB, total - member - sum(len(data) for _, data in small) - 4 * MIB)  # room for metadata
    members = [(name, io.BytesIO(data), len(data)) for name, data in small]
    if member:
        members.append(("update.dat", PatternStream(member, seed=2021), member))
    members.append(("install_data.bin", PatternStream(large, seed=2022), large))
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, udf="2.60", vol_ident="INVOICE")
    for index, (name, stream, size) in enumerate(members):
        iso.add_fp(stream, size, iso_path=f"/FILE{index}.;1", joliet_path=f"/{name}", udf_path=f"/{name}")
    with open(path, "wb") as out:
        iso.write_fp(out, blocksize=MIB)
    iso.close()
    return path.stat().st_size


def build_inflated_dll(path: Path, total: int) -> int:
    """A sample DLL followed by an overlay of pseudo-random bytes up to `total` bytes."""
    _, dll = sample_bytes(".dll")
    stream = PatternStream(max(0, total - len(dll)), seed=7)
    with open(path, "wb") as out:
        out.write(dll)
        while chunk := stream.read(8 * MIB):
            out.write(chunk)
    return path.stat().st_size


def triage_peak(path: Path, env: dict[str, str], out: Path) -> tuple[Measured, dict]:
    command = [str(BIN / "restytriage"), "triage", "--json", str(out), str(path)]
    measured = measure(command, env)
    if measured.returncode not in VERDICT_EXIT_CODES:
        raise SystemExit(f"triage of {path.name}: exit code {measured.returncode}\n{measured.stderr}")
    report = json.loads(out.read_text("utf-8"))
    return measured, report


PROBE = """
import json, mmap, os, struct, sys, time
from pathlib import Path
from restytriage import analyzers, engine

def memory(pid):
    found = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                found[key] = int(rest.split()[0])
    return found["VmRSS"], found["RssAnon"]

# A forked sampler: a thread would be held up by the GIL during the very calls that allocate most.
shared = mmap.mmap(-1, 16)
me = os.getpid()
if os.fork() == 0:
    while True:
        try:
            rss, anon = memory(me)
        except OSError:
            os._exit(0)
        top_rss, top_anon = struct.unpack_from("<QQ", shared)
        struct.pack_into("<QQ", shared, 0, max(top_rss, rss), max(top_anon, anon))
        time.sleep(0.002)

calls = []
def watched(module):
    analyze = module.analyze
    def run(item, ctx):
        struct.pack_into("<QQ", shared, 0, *memory(me))
        try:
            return analyze(item, ctx)
        finally:
            rss, anon = memory(me)
            top_rss, top_anon = struct.unpack_from("<QQ", shared)
            calls.append((module.NAME, item.name, item.blob.size, max(top_rss, rss), max(top_anon, anon)))
    module.analyze = run
for module in analyzers.registry():
    watched(module)
engine.triage(Path(sys.argv[1]))
print(json.dumps(calls))
"""


def analyzer_peaks(path: Path, env: dict[str, str]) -> list[tuple[str, str, int, int, int]]:
    """The memory of each analyzer call of a triage (a second run, sampled every 2 ms by a forked
    watcher): (analyzer, object, its size, peak RSS KiB, peak private KiB during the call)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, check=False
    )
    return [tuple(entry) for entry in json.loads(done.stdout or "[]")]


# ----------------------------------------------------------------------------- the shell loop


LOOP = """
for f in "$@"; do
    olevba -j "$f"
    lnkparse -j "$f"
    yara -d filename= -d filepath= -d extension= -d filetype= "$RULES"/*.yar "$f"
done >/dev/null 2>&1
"""


def shell_loop(files: list[Path], env: dict[str, str]) -> float:
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "RULES": str(RULES_DIR)}
    started = time.perf_counter()
    subprocess.run(["bash", "-c", LOOP, "loop", *map(str, files)], env=env, check=False)
    return time.perf_counter() - started


def spread(paths: list[Path], count: int) -> list[Path]:
    """`count` paths evenly spread over the list (so the mix of types is the quarantine's)."""
    if count <= 0:
        return []
    if count >= len(paths):
        return paths
    step = len(paths) / count
    return [paths[int(i * step)] for i in range(count)]


# ----------------------------------------------------------------------------- the report


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def note(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def row(label: str, text: str) -> None:
    print(f"{label:36} {text}")


def scan_row(run: ScanRun, quarantine: Quarantine) -> None:
    m = run.measured
    row(
        f"cold scan, {run.label}",
        f"{m.seconds:7.1f} s {quarantine.files / m.seconds:7.1f} files/s {quarantine.size / MIB / m.seconds:6.2f} MB/s"
        f"  (per file in a worker {run.per_file_ms:.0f} ms; CPU {m.cpu_total:.0f} s, of it the parent"
        f" {m.cpu_parent:.1f} s; {m.cpu_wait:.0f} s spent waiting for a busy core)",
    )


def memory_row(run: ScanRun) -> None:
    m = run.measured
    row(
        f"peak memory, {run.label}",
        f"parent {mib(m.peak_parent_kib)}, largest other process {mib(m.peak_worker_kib)}, "
        f"all {m.processes} processes together {mib(m.peak_total_kib)} (private {mib(m.peak_anon_kib)})",
    )


def triage_row(label: str, size: int, measured: Measured, report: dict) -> None:
    peak_mb = measured.maxrss_kib * 1024 / 1e6
    private_mb = measured.peak_anon_kib * 1024 / 1e6
    limits = "; ".join(report["stats"]["limits_hit"]) or "none"
    row(
        f"triage {label}",
        f"{size / (1 << 30):.2f} GiB in {measured.seconds:.1f} s: peak RSS {peak_mb:,.0f} MB, of it private "
        f"{private_mb:,.0f} MB (target < {TARGET_PEAK_MB} MB: RSS {'meets' if peak_mb < TARGET_PEAK_MB else 'MISSES'}, "
        f"private {'meets' if private_mb < TARGET_PEAK_MB else 'MISSES'}); {report['stats']['nodes']} nodes, "
        f"{report['verdict']}; limits hit: {limits}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=2048, help="unique files in the quarantine")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="'all workers' (default: cores)"
    )
    parser.add_argument("--iso-gib", type=float, default=1.0, help="disc image size (0: skip)")
    parser.add_argument(
        "--iso-member-mib",
        type=int,
        default=0,
        help="also put a data member of this size in the image (analysed)",
    )
    parser.add_argument("--inflated-mib", type=int, default=192, help="inflated DLL size (0: skip)")
    parser.add_argument(
        "--loop-files", type=int, default=96, help="files the standalone-tool loop runs on (0: skip)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (its path is printed)")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    env = {**os.environ, "RESTYTRIAGE_CACHE_DIR": str(work / "user-cache")}  # compiled rules: not the user's
    jsonl = work / "out.jsonl"
    try:
        started = time.perf_counter()
        quarantine = build_quarantine(work / "quarantine", options.files)
        mix = ", ".join(f"{kind} {count}" for kind, count in quarantine.mix.most_common())
        built = time.perf_counter() - started
        note(f"quarantine of {quarantine.files} files built in {built:.1f} s; scanning with 1 worker")

        single = scan("1 worker", quarantine.folder, 1, work / "cache-1.sqlite3", env, jsonl)
        note(f"1 worker: {single.measured.seconds:.1f} s; scanning with {options.workers}")
        every = scan(
            f"{options.workers} workers",
            quarantine.folder,
            options.workers,
            work / "cache-n.sqlite3",
            env,
            jsonl,
        )
        cached = scan(
            "cached re-run", quarantine.folder, options.workers, work / "cache-n.sqlite3", env, jsonl
        )
        note(
            f"{options.workers} workers: {every.measured.seconds:.1f} s, cached re-run {cached.measured.seconds:.1f} s"
        )

        large = []
        if options.iso_gib > 0:
            path = work / "large.iso"
            size = build_iso(path, int(options.iso_gib * (1 << 30)), options.iso_member_mib * MIB)
            note(f"ISO of {size / (1 << 30):.2f} GiB written; triaging it")
            large.append(("disc image", path, size, *triage_peak(path, env, work / "iso.json")))
        if options.inflated_mib > 0:
            path = work / "inflated.dll"
            size = build_inflated_dll(path, options.inflated_mib * MIB)
            large.append(
                ("inflated DLL (extra case)", path, size, *triage_peak(path, env, work / "inflated.json"))
            )
        raisers = {}
        for label, path, _, measured, _ in large:
            if measured.maxrss_kib * 1024 / 1e6 >= TARGET_PEAK_MB:
                note(f"{label}: peak over the target; triaging again to see which analyzer raised it")
                raisers[label] = analyzer_peaks(path, env)
            path.unlink()

        everything = sorted(p for paths in quarantine.files_by_type.values() for p in paths)
        loop_files = spread(everything, options.loop_files)
        if loop_files:
            note(f"standalone-tool loop over {len(loop_files)} files")
        loop_seconds = shell_loop(loop_files, env) if loop_files else 0.0

        load = os.getloadavg()
        print(f"quarantine: {quarantine.files} unique files, {quarantine.size / MIB:.1f} MB ({mix})")
        print(
            f"machine: {os.cpu_count()} cores; load average {load[0]:.1f} / {load[2]:.1f} (1 / 15 min) at the end"
        )
        print("-" * 110)
        for run, status in ((single, "ok"), (every, "ok"), (cached, "cached")):
            if run.statuses[status] != quarantine.files:
                print(f"  note: {run.label}: {dict(run.statuses)} (expected {quarantine.files} {status})")
        differing = sum(1 for sha, verdict in single.verdicts.items() if every.verdicts.get(sha) != verdict)
        if differing:
            print(f"  note: {differing} file(s) got another verdict with {options.workers} workers")
        scan_row(single, quarantine)
        scan_row(every, quarantine)
        speedup = single.measured.seconds / every.measured.seconds
        row(
            "speed-up",
            f"{speedup:7.2f}x with {options.workers} workers (linear: {options.workers}x); a file took a worker "
            f"{single.per_file_ms:.0f} ms alone, {every.per_file_ms:.0f} ms beside the others",
        )
        share = cached.measured.seconds / every.measured.seconds
        row(
            "cached re-run",
            f"{cached.measured.seconds:7.2f} s = {share:.1%} of the first run "
            f"(target < {TARGET_CACHED_SHARE:.0%}: {'meets' if share < TARGET_CACHED_SHARE else 'MISSES'})",
        )
        memory_row(single)
        memory_row(every)
        for label, _, size, measured, report in large:
            triage_row(label, size, measured, report)
            heavy = [c for c in raisers.get(label, []) if max(c[3], c[4]) * 1024 / 1e6 >= TARGET_PEAK_MB / 2]
            for analyzer, name, object_size, rss, private in sorted(heavy, key=lambda c: -max(c[3], c[4]))[
                :4
            ]:
                row(
                    "",
                    f"  during {analyzer} on {name} ({object_size / 1e6:,.0f} MB): RSS up to "
                    f"{rss * 1024 / 1e6:,.0f} MB, private up to {private * 1024 / 1e6:,.0f} MB",
                )
        if loop_files:
            per_file = loop_seconds / len(loop_files)
            whole = per_file * quarantine.files
            row(
                "shell loop olevba+lnkparse+yara",
                f"{loop_seconds:7.1f} s for {len(loop_files)} files = {per_file:.2f} s/file; "
                f"{whole:,.0f} s for all {quarantine.files} (extrapolated)",
            )
            row(
                "  loop time / restytriage scan",
                f"{whole / single.measured.seconds:7.1f}x (1 worker), {whole / every.measured.seconds:.1f}x "
                f"({options.workers} workers)",
            )
            if not shutil.which("yara"):
                print("  note: no yara CLI on this machine: the loop ran olevba and lnkparse only")
    finally:
        if options.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
