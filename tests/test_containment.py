"""Containment: triaging the whole sample set opens no network connection and starts no program but upx."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import AuditLog

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


NETWORK = ("socket.", "urllib.", "http.client.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
           "telnetlib.", "webbrowser.")  # fmt: skip
PROGRAMS = (
    "subprocess.",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "os.startfile",
)


def _upx_only(event: str, args: tuple) -> bool:
    """What the audit hook refuses: anything but `upx -d` (the one program the tool may start)."""
    if event == "subprocess.Popen":
        return Path(os.fsdecode(args[0])).name not in {"upx", "upx-ucl"}
    return event.startswith((*NETWORK, *PROGRAMS, "ctypes."))


def test_whole_sample_set_under_audit_hooks(
    built_samples: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit: AuditLog
) -> None:
    """The same proof through the interpreter's audit events, which also see urllib, http.client,
    ctypes and calls through references libraries took before any patching; and every file written
    stays in the run's private temp folder (or the compiled-rule cache)."""
    import tempfile

    from restytriage.config import cache_dir

    triage(next(iter(built_samples.values())))  # import and compile before recording
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with audit.recording(refuse=_upx_only):
        reports = {name: triage(path) for name, path in built_samples.items()}
    refused = [
        (n, e.message)
        for n, r in reports.items()
        for node in walk(r.root)
        for e in node.errors
        if "refused" in e.message
    ]
    assert not refused, refused
    assert not audit.of(*NETWORK, "ctypes."), audit.of(*NETWORK, "ctypes.")
    started = audit.of(*PROGRAMS)
    assert started or not shutil.which("upx"), "the UPX samples should have been unpacked"
    for event, (executable, argv, cwd, env) in started:
        argv = [os.fsdecode(a) for a in argv]
        assert event == "subprocess.Popen" and Path(os.fsdecode(executable)).name == "upx", argv
        assert argv[1] == "-d" and env == {}, argv  # decompress only, with an empty environment
        packed = Path(argv[-1])
        assert packed.name == "packed.bin" and packed.is_relative_to(tmp_path), packed  # a private copy
        assert Path(os.fsdecode(cwd)).is_relative_to(tmp_path), cwd
    cache = cache_dir().resolve()
    outside = [
        p
        for p in audit.written()
        if not p.resolve().is_relative_to(tmp_path.resolve()) and p != Path(os.devnull)  # upx's stdin
    ]
    assert all(p.resolve().is_relative_to(cache) for p in outside), outside
    assert list(tmp_path.iterdir()) == []  # every run's folder is gone


def test_signature_trust_is_decided_offline(corpus: Path, audit: AuditLog) -> None:
    """Chain building could reach for the network (AIA fetches, revocation lists): it must not."""
    signed = corpus / "yara/tests/data/079a472d22290a94ebb212aa8015cdc8dd28a968c6b4d3b88acdd58ce2d3b885"
    with audit.recording(refuse=_upx_only):
        report = triage(signed)
    assert not audit.of(*NETWORK, "ctypes."), audit.of(*NETWORK, "ctypes.")
    (signature,) = report.root.metadata["pe"]["authenticode"]["signatures"]
    assert signature["verified"] and signature["trusted_root"]  # the trust check did run


def test_the_audit_hook_stops_each_way_out(audit: AuditLog) -> None:
    """The hook sees (and refuses, before anything happens) each route the proof above relies on."""
    import ctypes
    import http.client
    import subprocess as sp
    import urllib.request

    attempts = [
        lambda: urllib.request.urlopen("http://192.0.2.1/stager"),  # TEST-NET-1: never routed
        lambda: http.client.HTTPConnection("192.0.2.1", 80, timeout=1).connect(),
        lambda: socket.create_connection(("192.0.2.1", 443), timeout=1),
        lambda: ctypes.CDLL(None),
        lambda: sp.run(["true"], check=False),
        lambda: os.system("true"),
    ]
    with audit.recording(refuse=lambda event, args: True):
        for attempt in attempts:
            with pytest.raises(Exception, match="refused in this test"):
                attempt()
    seen = {event for event, _ in audit.events}
    assert {"urllib.Request", "http.client.connect", "socket.getaddrinfo", "ctypes.dlopen"} <= seen, seen
    assert {"subprocess.Popen", "os.system"} <= seen, seen
