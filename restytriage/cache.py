"""The embedded report cache: SQLite (standard library), one row per (sha256, engine, rules).

A re-run skips files whose content, engine version and rule set are unchanged; changing the rules or
upgrading the tool invalidates naturally because both are part of the key (so do other limits or
passwords: see `rules_fingerprint`). The paths table also keeps
each path's (device, inode, size, mtime, ctime) from when it was hashed, so an unchanged file is not
even read again. Each result is committed
as it arrives (WAL mode), so Ctrl-C loses at most the files in flight. A cache that cannot be written
(full disk, read-only) is switched off with one warning; the scan goes on.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from restytriage import __version__
from restytriage.config import Config, cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    sha256 TEXT NOT NULL, engine TEXT NOT NULL, rules TEXT NOT NULL,
    verdict TEXT NOT NULL, score INTEGER NOT NULL, seconds REAL NOT NULL,
    report BLOB NOT NULL, stored REAL NOT NULL,
    PRIMARY KEY (sha256, engine, rules)
);
CREATE TABLE IF NOT EXISTS paths (
    path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, seen REAL NOT NULL,
    device INTEGER, inode INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER
);
"""
SIGNATURE_COLUMNS = ("device", "inode", "size", "mtime_ns", "ctime_ns")

Signature = tuple[int, int, int, int, int]  # (device, inode, size, mtime_ns, ctime_ns) of a path


def default_db() -> Path:
    return cache_dir() / "cache.sqlite3"


def rules_fingerprint(config: Config) -> str:
    """Everything besides the content and the engine that decides a report: the YARA and Sigma rule
    files the run would load (as each loader keys its own set: pack files, includes outside their
    folder and all), the limits, and the passwords tried on encrypted content."""
    from restytriage import rules, sigma

    digest = hashlib.sha256(repr(config.limits).encode())
    digest.update(b"\0".join(p.encode("utf-8", "surrogatepass") for p in config.all_passwords))
    digest.update(rules.set_key(config).encode() + sigma.set_key(sigma.rule_dirs_for(config)).encode())
    return digest.hexdigest()[:32]


class ReportCache:
    def __init__(self, path: Path, rules: str, engine: str = __version__) -> None:
        self.path = path
        self.rules = rules
        self.engine = engine
        self.warning: str | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(paths)")}
        for column in SIGNATURE_COLUMNS:  # caches written before signatures were kept
            if column not in present:
                self._db.execute(f"ALTER TABLE paths ADD COLUMN {column} INTEGER")

    def signatures(self) -> dict[str, tuple[Signature, str]]:
        """Each path's recorded signature and the sha256 its content had then."""
        if self._db is None:
            return {}
        try:
            rows = self._db.execute(
                f"SELECT path, sha256, {', '.join(SIGNATURE_COLUMNS)} FROM paths WHERE mtime_ns IS NOT NULL"
            ).fetchall()
        except sqlite3.Error as err:  # a damaged database: hash everything, scan without it
            self._disable(err)
            return {}
        return {
            path: (tuple(rest), sha256)  # type: ignore[misc]
            for path, sha256, *rest in rows
            if isinstance(path, str) and isinstance(sha256, str) and all(isinstance(v, int) for v in rest)
        }

    def _write_paths(self, sha256: str, paths: Iterable[str], signatures: Mapping[str, Signature]) -> None:
        assert self._db is not None
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO paths VALUES (?,?,?,?,?,?,?,?)",
            [(p, sha256, now, *signatures.get(p, (None,) * len(SIGNATURE_COLUMNS))) for p in paths],
        )

    def get(self, sha256: str) -> tuple[bytes, str, int] | None:
        """(report JSON, verdict, score) of this content, or None: the verdict comes from its column,
        so a re-run need not decode the report to sort and count it."""
        if self._db is None:
            return None
        try:
            row = self._db.execute(
                "SELECT report, verdict, score FROM reports WHERE sha256=? AND engine=? AND rules=?",
                (sha256, self.engine, self.rules),
            ).fetchone()
        except sqlite3.Error as err:
            self._disable(err)
            return None
        try:
            return (zlib.decompress(row[0]), str(row[1]), int(row[2])) if row else None
        except (zlib.error, TypeError, ValueError):  # a damaged row: analyse the file again
            return None

    def put(
        self,
        sha256: str,
        verdict: str,
        score: int,
        seconds: float,
        report_json: bytes,
        paths: list[str],
        signatures: Mapping[str, Signature],
    ) -> None:
        if self._db is None:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?,?,?,?)",
                    (
                        sha256,
                        self.engine,
                        self.rules,
                        verdict,
                        score,
                        seconds,
                        zlib.compress(report_json, 6),
                        time.time(),
                    ),
                )
                self._write_paths(sha256, paths, signatures)
        except sqlite3.Error as err:  # full disk, read-only file, locked for too long
            self._disable(err)

    def remember_paths(self, found: Iterable[tuple[str, list[str], Mapping[str, Signature]]]) -> None:
        """Where cached contents were seen again: (sha256, paths, signatures), in one transaction."""
        if self._db is None:
            return
        try:
            with self._db:
                self._db.execute("BEGIN")
                for sha256, paths, signatures in found:
                    self._write_paths(sha256, paths, signatures)
        except sqlite3.Error as err:
            self._disable(err)

    def _disable(self, err: sqlite3.Error) -> None:
        self.warning = f"cache disabled after an error: {err}"
        self.close()

    def entries(self, current_only: bool = True) -> Iterator[tuple[list[str], bytes]]:
        """Every cached report with the paths it was seen at (for `report --from`): those of this
        engine and rule set, or with `current_only` False the newest report of each content."""
        if self._db is None:
            return
        where, args = ("WHERE engine=? AND rules=?", (self.engine, self.rules)) if current_only else ("", ())
        rows = self._db.execute(
            f"SELECT sha256, report FROM reports {where} ORDER BY stored", args
        ).fetchall()
        newest = dict(rows)  # later (newer) rows of one content replace earlier ones
        for sha256, blob in newest.items():
            paths = [
                p
                for (p,) in self._db.execute("SELECT path FROM paths WHERE sha256=? ORDER BY path", (sha256,))
            ]
            yield paths, zlib.decompress(blob)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def open_cache(path: Path, rules: str) -> tuple[ReportCache | None, str | None]:
    """The cache, or None and a warning when it cannot be opened (the scan runs without it)."""
    try:
        return ReportCache(path, rules), None
    except (sqlite3.Error, OSError) as err:
        return None, f"cache {path} unavailable ({err}); scanning without it"
