"""YARA rule management: find rule files, compile them once, cache the compiled set, list and check.

The team's rules live in the top-level `yara/` folder; `--rules DIR` (repeatable) adds folders or
single pack files (YARA Forge, signature-base, bartblaze, ...). Loading a set goes:

1. discovery: every *.yar/*.yara/*.rule/*.rules file under each folder, in a stable order. A file
   that another rule file includes is compiled inside its includer, not on its own; a pure index
   file (only `include` lines) is replaced by the files it includes, so one broken member does not
   take the whole pack down;
2. the cache key: sha256 over every file reached (path and content, includes too), the external
   variable names and the YARA version. An in-process cache and an on-disk cache (compiled rules
   saved with `Rules.save`, plus a JSON sidecar with the listing and the problems) are keyed by it;
3. on a miss, each root file is compiled alone to find the broken ones (the yara message names
   file and line), the ones importing a module this YARA lacks, and the ones redefining a rule name
   already loaded: those are skipped and recorded in `RuleSet.problems`; the rest are compiled
   together, one namespace per file.

Analysis only calls `ruleset_for(config)` and `RuleSet.match`; the `rules list` / `rules check`
commands call `list_rules` / `check_rules`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restytriage.config import cache_dir, shipped

if TYPE_CHECKING:
    from rich.console import Console

    import yara
    from restytriage.blob import Blob
    from restytriage.config import Config

RULE_SUFFIXES = frozenset({".yar", ".yara", ".rule", ".rules"})
# LOKI/THOR's external variables, so public rules that reason about names compile and work here.
EXTERNAL_NAMES = ("filename", "filepath", "extension", "filetype")
EXTERNALS: dict[str, str] = dict.fromkeys(EXTERNAL_NAMES, "")
MAX_MATCH_DATA = 64  # bytes of each matched string that YARA keeps (the report truncates to this)
CACHE_FORMAT = 1  # bump when the sidecar layout or the key recipe changes
CACHE_KEEP = 8  # compiled sets kept on disk (least recently used go first)
BUILTIN_LABEL = "restytriage"

_COMMENT = re.compile(rb"/\*.*?\*/|//[^\n]*", re.S)
_INCLUDE = re.compile(rb'^[ \t]*include[ \t]+"([^"\n]+)"', re.M)
_IMPORT = re.compile(rb'^[ \t]*import[ \t]+"([^"\n]+)"', re.M)
_RULE = re.compile(rb"^[ \t]*(?:(?:private|global)[ \t]+)*rule[ \t]+[A-Za-z_]", re.M)
_ERROR_AT = re.compile(r"^(?P<file>.+?)\((?P<line>\d+)\): (?P<message>.*)$", re.S)


@dataclass(frozen=True)
class RuleProblem:
    """Why a rule file (or folder) was left out of the set."""

    source: str  # the file (or folder) concerned
    kind: str  # syntax, unsupported_module, include, duplicate, unreadable, missing
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}({self.line})" if self.line is not None else self.source
        return f"{where}: {self.message} [{self.kind}]"


@dataclass(frozen=True)
class RuleInfo:
    name: str
    namespace: str
    source: str  # the compiled root file (an included rule is listed under its includer)
    tags: tuple[str, ...]
    meta: dict[str, Any]


@dataclass(frozen=True)
class _Root:
    path: Path
    namespace: str


@dataclass
class _Plan:
    """What one combination of rule folders amounts to, before compiling."""

    roots: list[_Root]
    reached: dict[Path, bytes]  # every file read: roots, includes and index files
    problems: list[RuleProblem]
    key: str


@dataclass
class RuleSet:
    rules: yara.Rules | None
    key: str
    infos: tuple[RuleInfo, ...] = ()
    problems: tuple[RuleProblem, ...] = ()  # skipped files (never fatal)
    warnings: tuple[str, ...] = ()  # YARA compiler warnings of the loaded rules
    sources: dict[str, str] = field(default_factory=dict)  # namespace -> rule file
    compile_seconds: float = 0.0  # time to build (or load) this set in this process
    from_cache: bool = False

    def match(self, blob: Blob, externals: Mapping[str, str], timeout: int) -> Scan:
        """Scan one object: by path when it is on disk, so nothing large is read into memory.

        Objects up to WHOLE_SCAN_MAX (the largest member the engine ever extracts) are scanned whole,
        as the `yara` tool would. Larger ones (disc images, huge samples given directly) are scanned
        in memory-mapped windows of SCAN_WINDOW bytes that overlap by more than any match YARA
        records, and the matches merged: YARA maps a file whole, so a 1 GiB image would otherwise
        hold 1 GiB of page cache in the process. Raises yara.TimeoutError / yara.Error as YARA does.
        """
        import yara

        scan = Scan([], [], [])
        if self.rules is None:
            return scan

        def on_warning(kind: int, message: Any) -> int:
            if kind == yara.CALLBACK_TOO_MANY_MATCHES:
                scan.saturated.append(f"{message.rule} {message.string}")
            return yara.CALLBACK_CONTINUE

        values = {name: _external_value(externals.get(name, "")) for name in EXTERNAL_NAMES}
        deadline = time.monotonic() + timeout
        starts = []
        for start, window in _windows(blob):
            starts.append(start)
            remaining = max(1, int(deadline - time.monotonic()))
            with window as data:
                target = {"filepath": data} if isinstance(data, str) else {"data": data}
                found = self.rules.match(
                    **target, externals=values, timeout=remaining, warnings_callback=on_warning
                )
            scan.add(found, start)
        if len(starts) > 1:
            scan.windows = starts
        return scan


WHOLE_SCAN_MAX = 256 << 20  # objects up to this size are scanned whole (Limits.max_member_bytes)
SCAN_WINDOW = 64 << 20  # above it, windows of this size ...
WINDOW_OVERLAP = 1 << 20  # ... overlapping by this much: YARA never records a match this long


@dataclass(frozen=True)
class MatchedInstance:
    offset: int  # in the object, not the window
    matched_data: bytes
    matched_length: int
    xor_key: int | None


@dataclass
class MatchedString:
    identifier: str
    instances: list[MatchedInstance]


@dataclass
class RuleMatch:
    rule: str
    namespace: str
    tags: list[str]
    meta: dict[str, Any]
    strings: list[MatchedString]


@dataclass
class Scan:
    """What one object's scan found: merged across windows when it was scanned in windows."""

    matches: list[RuleMatch]
    saturated: list[str]  # "rule $string" pairs whose matches YARA stopped recording
    windows: list[int]  # offsets of the windows, when the object was too large to scan whole

    def add(self, found: Sequence[yara.Match], start: int) -> None:
        known = {(m.namespace, m.rule): m for m in self.matches}
        for match in found:
            merged = known.get((match.namespace, match.rule))
            if merged is None:
                merged = RuleMatch(match.rule, match.namespace, list(match.tags), dict(match.meta), [])
                known[(match.namespace, match.rule)] = merged
                self.matches.append(merged)
            strings = {s.identifier: s for s in merged.strings}
            for string in match.strings:
                target = strings.get(string.identifier)
                if target is None:
                    target = strings[string.identifier] = MatchedString(string.identifier, [])
                    merged.strings.append(target)
                seen = {i.offset for i in target.instances}  # the overlap finds some twice
                for i in string.instances:
                    if start + i.offset not in seen:
                        target.instances.append(
                            MatchedInstance(start + i.offset, i.matched_data, i.matched_length, i.xor_key)
                        )


def _windows(blob: Blob) -> Iterator[tuple[int, AbstractContextManager[Any]]]:
    """(offset, context giving what to scan): the bytes or path whole, or mapped windows of a big file."""
    if blob.data is not None or blob.size <= WHOLE_SCAN_MAX:
        whole: Any = blob.data if blob.data is not None else str(blob.path)
        yield 0, nullcontext(whole)
        return
    import mmap

    assert blob.path is not None
    size, step = blob.size, SCAN_WINDOW - WINDOW_OVERLAP
    with open(blob.path, "rb") as fh:
        for start in range(0, size - WINDOW_OVERLAP, step):
            yield (
                start,
                mmap.mmap(fh.fileno(), min(SCAN_WINDOW, size - start), offset=start, access=mmap.ACCESS_READ),
            )


def _external_value(value: str) -> str:
    # YARA takes C strings: drop NUL and make lone surrogates (undecodable names) representable.
    return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


# ---------------------------------------------------------------------------------------------
# Discovery and the cache key


def builtin_rule_dir() -> Path:
    """The team's rules: the repo's `yara/` folder, shipped in the package as data/yara."""
    return shipped("yara")


def rule_folders(extra: Sequence[Path] = (), builtin: bool = True) -> list[tuple[str, Path]]:
    """(label, folder-or-file) pairs in load order: the team's rules first, then each --rules."""
    folders = [(BUILTIN_LABEL, builtin_rule_dir())] if builtin else []
    labels = {label for label, _ in folders}
    for entry in extra:
        path = Path(entry).expanduser()
        label = path.stem if path.is_file() else path.name or str(path)
        base, count = label, 1
        while label in labels:
            count += 1
            label = f"{base}#{count}"
        labels.add(label)
        folders.append((label, path))
    return folders


def _rule_files(folder: Path) -> list[Path]:
    if folder.is_file():
        return [folder]
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):  # .git, editor swap files
            continue
        if path.suffix.lower() in RULE_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _includes(path: Path, text: bytes) -> list[Path]:
    """The files `path` includes, resolved as YARA does: relative to the including file."""
    stripped = _COMMENT.sub(b"", text)
    found = []
    for raw in _INCLUDE.findall(stripped):
        target = Path(os.fsdecode(raw))
        found.append((target if target.is_absolute() else path.parent / target).resolve())
    return found


def _is_index(text: bytes) -> bool:
    """A file of include lines only (packs' index.yar): its members are compiled one by one."""
    stripped = _COMMENT.sub(b"", text)
    return bool(_INCLUDE.search(stripped)) and not _RULE.search(stripped)


def _read(path: Path, reached: dict[Path, bytes], problems: list[RuleProblem]) -> bytes | None:
    if path in reached:
        return reached[path]
    try:
        content = path.read_bytes()
    except OSError as err:
        problems.append(RuleProblem(str(path), "unreadable", err.strerror or str(err)))
        return None
    reached[path] = content
    return content


def _plan(folders: Sequence[tuple[str, Path]]) -> _Plan:
    import yara

    reached: dict[Path, bytes] = {}
    problems: list[RuleProblem] = []
    candidates: list[tuple[str, Path, Path]] = []  # (label, folder, file) in load order
    for label, folder in folders:
        if not folder.exists():
            problems.append(RuleProblem(str(folder), "missing", "rule folder or file not found"))
            continue
        candidates.extend((label, folder, path.resolve()) for path in _rule_files(folder))

    # Files included by a rule file are compiled inside it; index files give way to their members.
    included: set[Path] = set()
    expanded: list[tuple[str, Path, Path]] = []
    pending = deque(candidates)
    seen_index: set[Path] = set()
    while pending:
        label, folder, path = pending.popleft()
        text = _read(path, reached, problems)
        if text is None:
            continue
        if _is_index(text):
            if path not in seen_index:
                seen_index.add(path)
                pending.extendleft((label, folder, member) for member in reversed(_includes(path, text)))
            continue
        expanded.append((label, folder, path))
        stack = _includes(path, text)
        while stack:
            member = stack.pop()
            if member in included:
                continue
            included.add(member)
            member_text = _read(member, reached, problems) if member.exists() else None
            if member_text is not None:
                stack.extend(_includes(member, member_text))

    roots: list[_Root] = []
    taken: set[Path] = set()
    for label, folder, path in expanded:
        if path in included or path in taken:
            continue
        taken.add(path)
        base = folder.parent if folder.is_file() else folder
        try:
            relative = path.relative_to(base.resolve()).as_posix()
        except ValueError:  # an index member outside the folder
            relative = path.as_posix()
        roots.append(_Root(path, f"{label}:{relative}"))

    digest = hashlib.sha256()
    recipe = {
        "format": CACHE_FORMAT,
        "yara": [yara.__version__, yara.YARA_VERSION],
        "externals": sorted(EXTERNAL_NAMES),
        "roots": [[root.namespace, str(root.path)] for root in roots],
    }
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    for path in sorted(reached):
        digest.update(os.fsencode(path) + b"\0" + hashlib.sha256(reached[path]).digest())
    return _Plan(roots, reached, problems, digest.hexdigest())


# ---------------------------------------------------------------------------------------------
# Compiling


def _problem_from_error(root: Path, err: Exception) -> RuleProblem:
    text = str(err).strip()
    at = _ERROR_AT.match(text)
    source, line, message = (at["file"], int(at["line"]), at["message"]) if at else (str(root), None, text)
    if "unknown module" in message:
        kind = "unsupported_module"
    elif "include" in message:
        kind = "include"
    else:
        kind = "syntax"
    if source != str(root):
        message = f"{message} (in a file included by {root})"
    return RuleProblem(source, kind, message, line)


def _unsupported_modules(root: Path, reached: Mapping[Path, bytes]) -> list[str]:
    """Modules imported by a root or its includes that this YARA build lacks (cuckoo, magic, ...)."""
    import yara

    available = set(yara.modules)
    missing: list[str] = []
    stack, visited = [root], set()
    while stack:
        path = stack.pop()
        if path in visited or path not in reached:
            continue
        visited.add(path)
        imported = (m.decode("utf-8", "replace") for m in _IMPORT.findall(_COMMENT.sub(b"", reached[path])))
        missing.extend(module for module in imported if module not in available)
        stack.extend(_includes(path, reached[path]))
    return sorted(set(missing))


def _compile(plan: _Plan) -> RuleSet:
    import yara

    started = time.perf_counter()
    problems = list(plan.problems)
    good: dict[str, str] = {}
    infos: list[RuleInfo] = []
    owner: dict[str, str] = {}  # public rule name -> file that defined it first
    for root in plan.roots:
        missing = _unsupported_modules(root.path, plan.reached)
        if missing:
            available = ", ".join(sorted(yara.modules))
            problems.append(
                RuleProblem(
                    str(root.path),
                    "unsupported_module",
                    f"imports module(s) {', '.join(missing)} not built into this YARA (has: {available})",
                )
            )
            continue
        try:
            alone = yara.compile(filepath=str(root.path), externals=EXTERNALS, includes=True)
        except yara.Error as err:
            problems.append(_problem_from_error(root.path, err))
            continue
        defined = [rule for rule in alone if not rule.is_private]
        clashes = [rule.identifier for rule in defined if rule.identifier in owner]
        if clashes:
            more = f" and {len(clashes) - 1} more" if len(clashes) > 1 else ""
            problems.append(
                RuleProblem(
                    str(root.path),
                    "duplicate",
                    f'rule "{clashes[0]}"{more} already defined in {owner[clashes[0]]}',
                )
            )
            continue
        for rule in defined:
            owner[rule.identifier] = str(root.path)
            infos.append(
                RuleInfo(rule.identifier, root.namespace, str(root.path), tuple(rule.tags), dict(rule.meta))
            )
        good[root.namespace] = str(root.path)
    compiled = None
    warnings: tuple[str, ...] = ()
    if good:
        try:
            compiled = yara.compile(filepaths=good, externals=EXTERNALS, includes=True)
            warnings = tuple(compiled.warnings)
        except yara.Error as err:  # each file compiled alone, so only resources can fail here
            problems.append(RuleProblem("(all rule files together)", "syntax", str(err)))
            good, infos = {}, []
    return RuleSet(
        rules=compiled,
        key=plan.key,
        infos=tuple(infos),
        problems=tuple(problems),
        warnings=warnings,
        sources=good,
        compile_seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------
# Caches


def yara_cache_dir() -> Path:
    return cache_dir() / "yara"


def _sidecar(ruleset: RuleSet) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "key": ruleset.key,
        "infos": [asdict(info) for info in ruleset.infos],
        "problems": [asdict(problem) for problem in ruleset.problems],
        "warnings": list(ruleset.warnings),
        "sources": ruleset.sources,
    }


def _save(ruleset: RuleSet, folder: Path) -> None:
    """Write the compiled rules, then the sidecar, each atomically (temp file + rename)."""
    if ruleset.rules is None:
        return
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    compiled_path, sidecar_path = folder / f"{ruleset.key}.yarc", folder / f"{ruleset.key}.json"
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".yarc")
    os.close(fd)
    try:
        ruleset.rules.save(filepath=temp)
        os.replace(temp, compiled_path)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(_sidecar(ruleset), out, ensure_ascii=False)
        os.replace(temp, sidecar_path)
    finally:
        Path(temp).unlink(missing_ok=True)
    _prune(folder)


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("*.yarc"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for stale in entries[CACHE_KEEP:]:
        stale.unlink(missing_ok=True)
        stale.with_suffix(".json").unlink(missing_ok=True)


def _load_cached(key: str, folder: Path) -> RuleSet | None:
    import yara

    compiled_path, sidecar_path = folder / f"{key}.yarc", folder / f"{key}.json"
    if not (compiled_path.is_file() and sidecar_path.is_file()):
        return None
    started = time.perf_counter()
    try:
        sidecar = json.loads(sidecar_path.read_text("utf-8"))
        if sidecar.get("format") != CACHE_FORMAT or sidecar.get("key") != key:
            return None
        compiled = yara.load(filepath=str(compiled_path))
        ruleset = RuleSet(
            rules=compiled,
            key=key,
            infos=tuple(
                RuleInfo(i["name"], i["namespace"], i["source"], tuple(i["tags"]), i["meta"])
                for i in sidecar["infos"]
            ),
            problems=tuple(RuleProblem(**p) for p in sidecar["problems"]),
            warnings=tuple(sidecar["warnings"]),
            sources=dict(sidecar["sources"]),
            compile_seconds=time.perf_counter() - started,
            from_cache=True,
        )
    except (OSError, ValueError, KeyError, TypeError, yara.Error):  # a damaged entry is rebuilt
        return None
    os.utime(compiled_path)  # most recently used: kept by _prune
    return ruleset


_lock = threading.Lock()
_by_key: dict[str, RuleSet] = {}  # per-process cache: batch workers compile (or load) once
# (folders) -> (stat fingerprint of every file the plan read, its key): skips re-hashing unchanged packs
_fingerprints: dict[tuple[tuple[str, str], ...], tuple[tuple[tuple[str, int, int], ...], str]] = {}
_frozen: dict[tuple[tuple[str, str], ...], RuleSet] = {}  # (folders) -> the set `freeze` fixed


def _fingerprint(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...] | None:
    try:
        return tuple((str(p), (s := p.stat()).st_mtime_ns, s.st_size) for p in paths)
    except OSError:
        return None


def load_rules(extra: Sequence[Path] = (), builtin: bool = True, use_disk_cache: bool = True) -> RuleSet:
    """The compiled rule set for these folders: from memory, from the disk cache, or compiled now.

    Never raises for a bad rule file (see `RuleSet.problems`); an empty set has `rules` None.
    """
    import yara

    folders = rule_folders(extra, builtin)
    memo_key = tuple((label, str(path)) for label, path in folders)
    if (frozen := _frozen.get(memo_key)) is not None:
        return frozen
    with _lock:
        # Reports keep 64 bytes of each match: YARA need not copy more (a process-wide setting).
        yara.set_config(max_match_data=MAX_MATCH_DATA)
        remembered = _fingerprints.get(memo_key)
        if remembered is not None:
            stats, key = remembered
            listing = [Path(p) for p, _, _ in stats]
            current = {p.resolve() for _, folder in folders if folder.exists() for p in _rule_files(folder)}
            if key in _by_key and current <= set(listing) and _fingerprint(listing) == stats:
                return _by_key[key]
        plan = _plan(folders)
        stats = _fingerprint(sorted(plan.reached))
        if stats is not None:
            _fingerprints[memo_key] = (stats, plan.key)
        if plan.key in _by_key:
            return _by_key[plan.key]
        folder = yara_cache_dir()
        ruleset = _load_cached(plan.key, folder) if use_disk_cache else None
        if ruleset is None:
            ruleset = _compile(plan)
            if use_disk_cache:
                with suppress(OSError):  # a read-only or full cache folder only costs start-up time
                    _save(ruleset, folder)
        _by_key[plan.key] = ruleset
        return ruleset


def set_key(config: Config) -> str:
    """The key of the rule set this config loads (every file it reaches, includes too), without
    compiling it."""
    return _plan(rule_folders(config.yara_dirs, config.builtin_rules)).key


def ruleset_for(config: Config) -> RuleSet:
    return load_rules(config.yara_dirs, builtin=config.builtin_rules)


def freeze(config: Config) -> RuleSet:
    """Load the config's rules and keep them as they are now for the rest of this process.

    Each load otherwise walks every rule folder to notice edited files (1.5 ms for the team's rules,
    38 ms for a 500-file pack): right for a long-lived process, waste in a batch worker, whose scan
    fixed its rules when it computed its cache key.
    """
    folders = rule_folders(config.yara_dirs, config.builtin_rules)
    ruleset = ruleset_for(config)
    _frozen[tuple((label, str(path)) for label, path in folders)] = ruleset
    return ruleset


def clear_memory_cache() -> None:
    """Forget compiled sets held by this process (benchmarks and tests measure cold paths)."""
    with _lock:
        _by_key.clear()
        _fingerprints.clear()
        _frozen.clear()


# ---------------------------------------------------------------------------------------------
# `restytriage rules list` / `rules check`


def list_rules(extra: Sequence[Path], console: Console, builtin: bool = True) -> RuleSet:
    """Print every loaded rule with its meta, grouped by rule file, then any skipped file."""
    from rich.padding import Padding
    from rich.text import Text

    ruleset = load_rules(extra, builtin)
    console.print(f"{len(ruleset.infos)} YARA rule(s) from {len(ruleset.sources)} file(s)", highlight=False)
    namespace = None
    for info in ruleset.infos:
        if info.namespace != namespace:
            namespace = info.namespace
            console.print(Text.assemble("\n", (namespace, "bold"), "  ", (info.source, "dim")))
        meta = info.meta
        grade = meta.get("score", meta.get("severity"))
        head = Text.assemble(("  " + info.name, "cyan"))
        if grade is not None:
            head.append(f"  score {grade}" if "score" in meta else f"  severity {grade}")
        if techniques := techniques_of(meta):
            head.append("  " + " ".join(techniques), "magenta")
        console.print(head)
        if description := str(meta.get("description", "")):
            console.print(Padding(Text(description), (0, 0, 0, 6)))
        if credit := ", ".join(str(meta[key]) for key in ("author", "date", "reference") if key in meta):
            console.print(Padding(Text(credit, style="dim"), (0, 0, 0, 6)))
    _print_problems(ruleset, console)
    return ruleset


def check_rules(extra: Sequence[Path], console: Console, builtin: bool = True) -> int:
    """Compile afresh (no cache) and report problems; returns the exit code: 0 clean, 1 problems."""
    clear_memory_cache()
    ruleset = load_rules(extra, builtin, use_disk_cache=False)
    console.print(
        f"{len(ruleset.infos)} rule(s) from {len(ruleset.sources)} file(s) compiled in "
        f"{ruleset.compile_seconds:.2f}s",
        highlight=False,
    )
    _print_problems(ruleset, console)
    if not ruleset.problems:
        console.print("no problems", highlight=False)
    return 1 if ruleset.problems else 0


def _print_problems(ruleset: RuleSet, console: Console) -> None:
    for problem in ruleset.problems:
        console.print(f"skipped {problem}", markup=False, highlight=False, soft_wrap=True)
    for warning in ruleset.warnings:
        console.print(f"warning {warning}", markup=False, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------------------------
# Reading rule meta (shared by the analyzer and the listing)

# Meta keys public packs use for ATT&CK ids; the team's rules use `attack = "T1137.001, T1204.002"`.
TECHNIQUE_KEYS = frozenset(
    [
        "attack",
        "mitre_attack",
        "mitre_att",
        "mitre",
        "technique",
        "techniques",
        "attack_id",
        "mitre_technique",
        "mitre_techniques",
    ]
)
_TECHNIQUE = re.compile(r"\bT\d{4}(?:\.\d{3})?\b", re.IGNORECASE)


def techniques_of(meta: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    for key, value in meta.items():
        if key.lower() in TECHNIQUE_KEYS and isinstance(value, str):
            found.extend(t.upper() for t in _TECHNIQUE.findall(value))
    return sorted(set(found))
