"""Analyzer discovery: every module in this package that defines NAME, TYPES and analyze().

Adding a format is adding one module here (and its finding table in `data/findings/NAME.toml`).
Heavy libraries are imported inside analyze(); even so, importing every analyzer costs a one-file
triage a few hundred milliseconds, so `for_type` imports only the analyzers a node's type needs,
found through a small index cached on disk (rebuilt whenever a module file changes).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
from functools import cache
from pathlib import Path
from types import ModuleType

from restytriage.config import cache_dir

INDEX_FORMAT = 1


@cache
def registry() -> tuple[ModuleType, ...]:
    """Every analyzer module, imported, in run order."""
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "TYPES", "analyze")):
            modules.append(module)
    return tuple(sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.NAME)))


def _index_key() -> str:
    digest = hashlib.sha256(f"{INDEX_FORMAT}".encode())
    for path in sorted(Path(__path__[0]).glob("*.py")):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:24]


@cache
def _index() -> tuple[tuple[str, frozenset[str]], ...]:
    """(module name, claimed types) of every analyzer in run order, without importing them when cached."""
    path = cache_dir() / "analyzers" / f"{_index_key()}.json"
    try:
        return tuple((name, frozenset(types)) for name, types in json.loads(path.read_text("utf-8")))
    except (OSError, ValueError, TypeError):
        pass
    entries = [(module.__name__, sorted(module.TYPES)) for module in registry()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(entries), "utf-8")
        scratch.replace(path)
    except OSError:
        pass  # no cache: the next run imports every analyzer again, nothing worse
    return tuple((name, frozenset(types)) for name, types in entries)


def for_type(type_name: str) -> list[ModuleType]:
    """The analyzers that claim a type, in run order (imported on first use)."""
    return [importlib.import_module(name) for name, types in _index() if type_name in types or "*" in types]
