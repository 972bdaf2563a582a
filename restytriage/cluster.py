"""Batch work on an existing Dask distributed cluster (`scan --cluster tcp://HOST:8786`).

Imported only when --cluster is given, so the local path never pays for Dask. Workers that see the
same files (shared filesystem) read them by path; otherwise the client ships the bytes. Results
stream back as they complete, into the same cache, JSONL and summary as a local run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from restytriage.batch import FileEntry, Outcome, outcome_of, sha256_of, triage_to_json
from restytriage.config import Config


def _triage_bytes_to_json(data: bytes, name: str, config: Config) -> tuple[str, bytes | None, str]:
    from restytriage.engine import triage_bytes
    from restytriage.model import to_json

    try:
        return "ok", to_json(triage_bytes(data, name, config)), ""
    except Exception as err:
        return "error", None, f"{type(err).__name__}: {err}"[:300]


def _sees(path: str, sha256: str) -> bool:
    try:
        return sha256_of(Path(path)) == sha256
    except OSError:
        return False


def run_on_cluster(address: str, entries: Sequence[FileEntry], config: Config) -> Iterator[Outcome]:
    from distributed import Client, as_completed

    if not entries:
        return
    with Client(address, timeout="20s") as client:
        probe = entries[0]
        seen = client.run(_sees, probe.paths[0], probe.sha256)
        shared = bool(seen) and all(seen.values())
        futures = {}
        started = {}
        for entry in entries:
            if shared:
                future = client.submit(triage_to_json, entry.paths[0], entry.sha256, config, pure=False)
            else:
                data = Path(entry.paths[0]).read_bytes()
                future = client.submit(
                    _triage_bytes_to_json, data, Path(entry.paths[0]).name, config, pure=False
                )
            futures[future] = entry
            started[future] = time.monotonic()
        for future in as_completed(futures):
            entry = futures[future]
            seconds = time.monotonic() - started[future]
            try:
                status, report_json, reason = future.result()
            except Exception as err:
                yield Outcome(entry, "crash", reason=f"{type(err).__name__}: {err}"[:300], seconds=seconds)
                continue
            yield outcome_of(entry, status, report_json, reason, seconds)
