"""Analyzer discovery: every module in this package that defines NAME, TYPES and analyze().

Adding a format is adding one module here (and its finding table in `data/findings/NAME.toml`).
Modules must import cheaply: heavy libraries are imported inside analyze().
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType


@cache
def registry() -> tuple[ModuleType, ...]:
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if all(hasattr(module, attr) for attr in ("NAME", "TYPES", "analyze")):
            modules.append(module)
    return tuple(sorted(modules, key=lambda m: (getattr(m, "ORDER", 50), m.NAME)))


def for_type(type_name: str) -> list[ModuleType]:
    """The analyzers that claim a type, in run order."""
    return [m for m in registry() if type_name in m.TYPES or "*" in m.TYPES]
