"""Batch work on an existing Dask distributed cluster (`scan --cluster tcp://HOST:8786`).

Imported only when --cluster is given, so the local path never pays for Dask. Workers that see the
same files (shared filesystem) read them by path; otherwise the client reads each file as its turn
comes, checks it is still the content it listed, and ships the bytes. Only a small window of files is
in flight at once; results stream back as they complete, into the same cache, JSONL and summary as a
local run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from restytriage.batch import GRACE_SECONDS, FileEntry, Outcome, outcome_of, sha256_of, triage_to_json
from restytriage.config import Config

TASKS_PER_THREAD = 2  # files handed to the cluster ahead of results: a bounded window, not the whole scan


def _sees(path: str, sha256: str) -> bool:
    try:
        return sha256_of(Path(path)) == sha256
    except OSError:
        return False


def _shipped(entry: FileEntry) -> bytes | str:
    """The file's bytes to ship to a worker that cannot read it, or why they cannot be had."""
    try:
        data = Path(entry.paths[0]).read_bytes()
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        return "file changed since it was listed"
    return data


def run_on_cluster(address: str, entries: Sequence[FileEntry], config: Config) -> Iterator[Outcome]:
    """Results as they complete. A task that has not answered within twice the hard time limit of a
    local worker is given up and recorded as `timeout` (Dask cannot kill a thread: a task stuck in a
    library loop keeps its thread until the worker restarts, but the scan goes on)."""
    from distributed import Client, wait

    if not entries:
        return
    patience = 2 * (config.limits.max_seconds + GRACE_SECONDS)  # a task may queue behind one other
    with Client(address, timeout="20s") as client:
        probe = entries[0]
        seen = client.run(_sees, probe.paths[0], probe.sha256)
        shared = bool(seen) and all(seen.values())
        window = max(4, TASKS_PER_THREAD * sum(client.nthreads().values()))
        queue = list(reversed(entries))
        pending: dict[Any, tuple[FileEntry, float]] = {}
        while queue or pending:
            while queue and len(pending) < window:
                entry = queue.pop()
                data = None if shared else _shipped(entry)
                if isinstance(data, str):
                    yield Outcome(entry, "error", reason=data)
                    continue
                future = client.submit(triage_to_json, entry.paths[0], entry.sha256, config, data, pure=False)
                pending[future] = (entry, time.monotonic())
            try:
                done = wait(list(pending), timeout=1.0, return_when="FIRST_COMPLETED").done
            except TimeoutError:
                done = set()
            now = time.monotonic()
            for future in list(pending):
                entry, started = pending[future]
                if future in done:
                    del pending[future]
                    try:
                        status, report_json, reason = future.result()
                    except Exception as err:
                        yield Outcome(
                            entry, "crash", reason=f"{type(err).__name__}: {err}"[:300], seconds=now - started
                        )
                        continue
                    yield outcome_of(entry, status, report_json, reason, now - started)
                elif now - started > patience:
                    del pending[future]
                    future.cancel()
                    yield Outcome(
                        entry, "timeout", reason=f"no result after {patience:g}s", seconds=now - started
                    )
