"""Shared fixtures: the public corpus (optional), a private cache folder for every test run, and an
audit log of what the process does (files written, programs started, network, native libraries)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


class Refused(RuntimeError):
    """Raised by the audit hook to stop an action a test forbids (before it happens)."""


class AuditLog:
    """The process's own audit events (PEP 578) while recording: unlike patched functions, they
    also see calls made through references a library took before a test could patch anything."""

    WATCHED = ("socket.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
               "os.forkpty", "os.startfile", "ctypes.", "urllib.", "http.client.", "ftplib.", "smtplib.",
               "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.", "os.mkdir", "os.rename",
               "os.link", "os.symlink", "shutil.copyfile", "shutil.move")  # fmt: skip

    def __init__(self) -> None:
        self.active = False
        self.refuse: Callable[[str, tuple], bool] = lambda event, args: False
        self.events: list[tuple[str, tuple]] = []

    def hook(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "open":
            if not _writing(args):
                return
        elif not event.startswith(self.WATCHED):
            return
        self.events.append((event, args))
        if self.refuse(event, args):
            raise Refused(f"{event} refused in this test: {args!r}"[:300])

    @contextmanager
    def recording(self, refuse: Callable[[str, tuple], bool] | None = None) -> Iterator[AuditLog]:
        self.events, self.refuse = [], refuse or (lambda event, args: False)
        self.active = True
        try:
            yield self
        finally:
            self.active = False

    def of(self, *prefixes: str) -> list[tuple[str, tuple]]:
        return [(event, args) for event, args in self.events if event.startswith(prefixes)]

    def written(self) -> list[Path]:
        """Paths opened for writing or created (both ends of a rename, link or copy)."""
        return [
            Path(os.fsdecode(arg))
            for event, args in self.events
            for arg in args[: CREATING.get(event, 0)]
            if isinstance(arg, str | bytes | os.PathLike)
        ]


CREATING = {
    "open": 1,
    "os.mkdir": 1,
    "os.rename": 2,
    "os.link": 2,
    "os.symlink": 2,
    "shutil.copyfile": 2,
    "shutil.move": 2,
}


def _writing(args: tuple) -> bool:
    if len(args) < 3:
        return False
    mode, flags = args[1], args[2]
    return (isinstance(mode, str) and bool(set(mode) & set("wax+"))) or (
        isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    )


_AUDIT = AuditLog()
sys.addaudithook(_AUDIT.hook)  # hooks cannot be removed: one for the session, switched on by tests


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    yield _AUDIT
    _AUDIT.active = False


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Compiled-rule and report caches go to a throwaway folder, never the user's cache.
    os.environ["RESTYTRIAGE_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip("public corpus (../shared/corpus) not present")
    return CORPUS


@pytest.fixture(scope="session")
def built_samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from restytriage.samples import build_all

    folder = tmp_path_factory.mktemp("samples")
    return {sample.name: path for sample, path in build_all(folder)}
