"""Run settings: limits and user inputs. Plain frozen dataclasses so they pickle to workers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Passwords that quarantines and malware exchanges conventionally use for archives.
QUARANTINE_PASSWORDS = ("infected", "malware", "virus", "password")


MAX_DEPTH_CEILING = 100  # deeper trees would not survive JSON encoding or a terminal
MAX_SECONDS_CEILING = (
    86_400.0  # a day per file: past that, a limit is a mistake (or nan, which disables every check)
)


@dataclass(frozen=True)
class Limits:
    max_depth: int = 10  # nesting levels below the root (at most MAX_DEPTH_CEILING)
    max_children: int = 1000  # objects taken from one container
    max_total_bytes: int = 1 << 30  # bytes unpacked across the whole tree
    max_member_bytes: int = 256 << 20  # bytes unpacked for one object
    max_ratio: float = 200.0  # output/compressed bytes of one member before it counts as a bomb
    max_seconds: float = 120.0  # wall time for one file and everything inside it


@dataclass(frozen=True)
class Config:
    limits: Limits = field(default_factory=Limits)
    passwords: tuple[str, ...] = ()  # the user's, tried before QUARANTINE_PASSWORDS
    yara_dirs: tuple[Path, ...] = ()  # extra rule folders beside the built-in ones
    sigma_dirs: tuple[Path, ...] = ()
    builtin_rules: bool = True

    @property
    def all_passwords(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.passwords, *QUARANTINE_PASSWORDS)))

    def __post_init__(self) -> None:
        if not 0 <= self.limits.max_depth <= MAX_DEPTH_CEILING:
            raise ValueError(f"max_depth must be between 0 and {MAX_DEPTH_CEILING}")


def shipped(name: str) -> Path:
    """A folder shipped with the package (data/yara and data/sigma link to the repo's top-level ones)."""
    return (Path(__file__).parent / "data" / name).resolve()


def cache_dir() -> Path:
    """Where compiled rules and the batch cache live (RESTYTRIAGE_CACHE_DIR overrides)."""
    override = os.environ.get("RESTYTRIAGE_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("restytriage"))
