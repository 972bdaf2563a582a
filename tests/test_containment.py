"""Containment: triaging the whole sample set opens no network connection and starts no program but upx."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from restytriage.engine import triage
from restytriage.model import walk


class Forbidden(AssertionError):
    pass


def test_whole_sample_set_runs_without_network_or_foreign_processes(
    built_samples: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def no_network(*args, **kwargs):
        raise Forbidden(f"network use attempted: {args!r}")

    def only_upx(args, *rest, **kwargs):
        argv = [str(a) for a in (args if isinstance(args, list | tuple) else [args])]
        started.append(argv)
        if Path(argv[0]).name not in {"upx", "upx-ucl"} or kwargs.get("shell"):
            raise Forbidden(f"program start attempted: {argv!r}")
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(subprocess, "Popen", only_upx)
    for attr in ("system", "execv", "execve", "execvp", "spawnv", "spawnve", "posix_spawn", "posix_spawnp"):
        if hasattr(os, attr):
            monkeypatch.setattr(os, attr, no_network)
    assert built_samples
    for name, path in built_samples.items():
        report = triage(path)
        errors = [e.message for node in walk(report.root) for e in node.errors if "Forbidden" in e.message]
        assert not errors, (name, errors)
    for argv in started:
        assert "-d" in argv, argv  # upx only ever decompresses
