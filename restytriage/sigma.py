"""Sigma evaluation of one implied process-creation event: loading rule sets, matching events.

Importing pySigma (with pyparsing and yaml) costs more CPU than triaging a shortcut, and parsing
the ~1,200 SigmaHQ process_creation rules about a second, so loading a rule set goes:

1. scan: every ``*.yml``/``*.yaml`` file below the folders with its mtime and size, the key of an
   in-process cache;
2. the disk key: sha256 over each file's path and content, pySigma's version, the source of the
   two modules that define and build the cached form, and ``CACHE_FORMAT``;
3. on a disk-cache miss only, ``restytriage.sigma_parse`` (pySigma) turns each file into the plain
   rule form of ``restytriage.sigma_compile`` (or the reason it is skipped); the form is encoded
   with msgspec and saved atomically as ``cache_dir()/sigma/<key>.rules``;
4. ``restytriage.sigma_compile`` compiles the encoded form into predicates in both cases, read from
   disk or just built: one compile path, which every fresh load exercises.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import msgspec

from restytriage import __version__
from restytriage.config import Config, cache_dir, shipped
from restytriage.sigma_compile import ParsedRule, Pred, SkippedFile, compile_predicate, prepare_event

__all__ = ["CompiledRule", "RuleSet", "SigmaMatch", "clear_memory_cache", "default_rule_dirs", "load_rules"]

CACHE_FORMAT = 1  # bump when the layout of a cache file changes
CACHE_KEEP = 8  # rule sets kept on disk (least recently used go first)
# The modules that define and build the cached form: editing either invalidates the disk cache.
_FORM_SOURCES = tuple(Path(__file__).with_name(name) for name in ("sigma_compile.py", "sigma_parse.py"))
_LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_TECHNIQUE = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)


@dataclass(frozen=True)
class SigmaMatch:
    rule_id: str
    title: str
    level: str
    tags: tuple[str, ...]
    techniques: tuple[str, ...]  # ("T1059.003",) from attack.tXXXX tags, upper-cased
    path: str  # rule file


@dataclass(frozen=True, slots=True)
class CompiledRule:
    meta: SigmaMatch  # returned as-is on a match, so matching allocates nothing per rule
    predicate: Pred
    severity: int

    @classmethod
    def of(cls, rule: ParsedRule, path: str) -> CompiledRule:
        techniques = tuple(m[1].upper() for t in rule.tags if (m := _TECHNIQUE.fullmatch(t)))
        meta = SigmaMatch(rule.rule_id, rule.title, rule.level, rule.tags, techniques, path)
        return cls(meta, compile_predicate(rule), _LEVELS.get(rule.level, -1))


@dataclass
class RuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    from_cache: bool = False  # compiled from the disk cache, without parsing any rule file

    def match(self, event: Mapping[str, str]) -> list[SigmaMatch]:
        """Every rule matching ``event``, most severe first. Never raises."""
        prepared = prepare_event(event)
        hits: list[CompiledRule] = []
        for rule in self.rules:
            try:
                if rule.predicate(prepared):
                    hits.append(rule)
            except Exception:  # one rule's bug must not hide the other rules' verdicts
                continue
        hits.sort(key=lambda r: -r.severity)  # stable: ties keep load (path) order
        return [r.meta for r in hits]


class _CachedSet(msgspec.Struct, array_like=True, gc=False):
    """A cache file's payload: every rule file's parsed form (or skip reason) for one key."""

    format: int
    key: str
    files: tuple[ParsedRule | SkippedFile, ...]  # one per rule file, in load order


_DECODER = msgspec.msgpack.Decoder(_CachedSet)
_ENCODER = msgspec.msgpack.Encoder()


# --------------------------------------------------------------------------- loading


def default_rule_dirs() -> list[Path]:
    """The team's rules: the repo's ``sigma/`` folder, shipped in the package as data/sigma."""
    folder = shipped("sigma")
    return [folder] if folder.is_dir() else []


def rule_dirs_for(config: Config) -> list[Path]:
    """The folders a run with this config evaluates: the team's (unless left out), then --sigma ones."""
    return [*(default_rule_dirs() if config.builtin_rules else []), *config.sigma_dirs]


def sigma_cache_dir() -> Path:
    return cache_dir() / "sigma"


_CACHE: dict[tuple[Any, ...], RuleSet] = {}
_FROZEN: dict[tuple[str, ...], RuleSet] = {}  # rule folders -> the set `freeze` fixed for this process


def load_rules(dirs: Sequence[Path]) -> RuleSet:
    """Load and compile all ``*.yml``/``*.yaml`` rules below ``dirs``; never raises for a bad rule.

    Cached in-process on every file's (path, mtime, size) and on disk on their content: a stat walk
    takes a few ms, compiling from the disk cache ~0.1 s for SigmaHQ's rules (a few ms for the
    team's), parsing them with pySigma about a second. The cached RuleSet is shared: don't mutate it.
    """
    if (frozen := _FROZEN.get(tuple(map(str, dirs)))) is not None:
        return frozen
    files: list[tuple[str, int, int]] = []
    missing: list[tuple[str, str]] = []
    for d in map(str, dirs):
        if os.path.isdir(d):
            files.extend(_scan(d))
        else:
            missing.append((d, "rule directory not found"))
    memo_key = (tuple(map(str, dirs)), tuple(files))
    if (cached := _CACHE.get(memo_key)) is not None:
        return cached
    sources = [(path, _read(path)) for path, _, _ in files]
    key = _disk_key(sources)
    folder = sigma_cache_dir()
    parsed = _decode(_read_cache(folder, key), key, len(sources))
    from_cache = parsed is not None
    if parsed is None:
        from restytriage.sigma_parse import parse_file  # pySigma: only when a rule file changed

        entries = tuple(parse_file(content) for _, content in sources)
        data = _encode(_CachedSet(CACHE_FORMAT, key, entries))
        with suppress(OSError):  # a read-only or full cache folder only costs start-up time
            _save(folder, key, data)
        parsed = _decode(data, key, len(sources))  # compile what later runs will read
        assert parsed is not None
    ruleset = RuleSet(skipped=missing, from_cache=from_cache)
    with _collector_paused():
        for (path, _), entry in zip(sources, parsed, strict=True):
            if isinstance(entry, SkippedFile):
                ruleset.skipped.append((path, entry.reason))
                continue
            try:
                ruleset.rules.append(CompiledRule.of(entry, path))
            except Exception as exc:  # e.g. a regex RE2 rejects: skip the rule, never abort the load
                ruleset.skipped.append((path, f"{type(exc).__name__}: {exc}"))
    if len(_CACHE) >= 8:  # a handful of rule sets per process at most; don't grow without bound
        _CACHE.clear()
    _CACHE[memo_key] = ruleset
    return ruleset


def set_key(dirs: Sequence[Path]) -> str:
    """The key of the rule files below `dirs` (paths and contents), without parsing them."""
    files = [path for d in map(str, dirs) if os.path.isdir(d) for path, _, _ in _scan(d)]
    return _disk_key([(path, _read(path)) for path in files])


def freeze(dirs: Sequence[Path]) -> RuleSet:
    """Load the rules below `dirs` and keep them as they are now for the rest of this process, without
    the stat walk each load does to notice edited files: batch workers evaluate one rule set for a
    whole scan, whose cache key already fixed the rules."""
    ruleset = _FROZEN[tuple(map(str, dirs))] = load_rules(dirs)
    return ruleset


def clear_memory_cache() -> None:
    """Forget rule sets loaded by this process (benchmarks and tests measure cold and warm loads)."""
    _CACHE.clear()
    _FROZEN.clear()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Compiling SigmaHQ's rules creates tens of thousands of closures and tuples, none of them
    garbage: left running, the cyclic collector walks them again and again (a third of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _scan(root: str) -> list[tuple[str, int, int]]:
    """(path, mtime_ns, size) of every rule file below root, sorted for a stable rule order."""
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.endswith((".yml", ".yaml")):
                continue
            try:  # a file may vanish mid-walk: leave it out rather than fail the whole load
                stat = os.stat(path := os.path.join(dirpath, name))
            except OSError:
                continue
            found.append((path, stat.st_mtime_ns, stat.st_size))
    return sorted(found)


def _read(path: str) -> bytes | OSError:
    """A rule file's content, or the error that will be its skip reason."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        return exc


@cache
def _form_recipe() -> bytes:
    """What else decides the cached form: the cache layout, pySigma and the form's own code."""
    from importlib.metadata import version  # ~25 ms unless loaded already (the CLI's typer has)

    digest = hashlib.sha256(f"format {CACHE_FORMAT} pySigma {version('pySigma')}".encode())
    for source in _FORM_SOURCES:
        try:
            digest.update(b"\0" + source.read_bytes())
        except OSError:  # a frozen build without sources: its release decides instead
            digest.update(f"\0restytriage {__version__}".encode())
    return digest.digest()


def _disk_key(sources: Sequence[tuple[str, bytes | OSError]]) -> str:
    digest = hashlib.sha256(_form_recipe())
    for path, content in sources:
        state = hashlib.sha256(content).digest() if isinstance(content, bytes) else repr(content).encode()
        digest.update(b"\0" + os.fsencode(path) + b"\0" + state)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the disk cache
# A file is the sha256 of the payload, then the msgpack payload: damage of any kind (truncation,
# a flipped bit) reads as a miss and the rules are parsed again.


def _encode(cached: _CachedSet) -> bytes:
    payload = _ENCODER.encode(cached)
    return hashlib.sha256(payload).digest() + payload


def _decode(data: bytes | None, key: str, count: int) -> tuple[ParsedRule | SkippedFile, ...] | None:
    if data is None or hashlib.sha256(data[32:]).digest() != data[:32]:
        return None
    try:
        cached = _DECODER.decode(data[32:])
    except msgspec.DecodeError:  # written by another layout of the rule form
        return None
    valid = cached.format == CACHE_FORMAT and cached.key == key and len(cached.files) == count
    return cached.files if valid else None


def _read_cache(folder: Path, key: str) -> bytes | None:
    path = folder / f"{key}.rules"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    with suppress(OSError):  # a read-only cache folder still serves its entries
        os.utime(path)  # most recently used: kept by _prune
    return data


def _save(folder: Path, key: str, data: bytes) -> None:
    """Write atomically (temp file + rename): concurrent batch workers may save the same key."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".rules")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temp, folder / f"{key}.rules")
    finally:
        Path(temp).unlink(missing_ok=True)
    _prune(folder)


def _prune(folder: Path) -> None:
    entries: list[tuple[int, Path]] = []
    for path in folder.glob("*.rules"):
        with suppress(OSError):  # another process may prune at the same time
            entries.append((path.stat().st_mtime_ns, path))
    for _, stale in sorted(entries, reverse=True)[CACHE_KEEP:]:
        stale.unlink(missing_ok=True)
