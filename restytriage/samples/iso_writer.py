"""A writer of ISO 9660 disc images (Joliet, optionally Rock Ridge and UDF) for the sample set.

Built on pycdlib, made deterministic: pycdlib stamps volumes, directories and UDF descriptors with
the current local time and draws a random UDF volume-set id, so `build()` runs it under a fixed
clock read as UTC and a seeded random source. Files can be hidden (the ISO 9660/Joliet existence
bit, the UDF "hidden" file characteristic) and placed in only some namespaces, which is how the
hostile images are made: a hidden DLL beside a lure, a file only UDF readers see.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from unittest import mock

SECTOR = 2048
ISO9660, JOLIET, UDF = "iso9660", "joliet", "udf"
EVERYWHERE = frozenset({ISO9660, JOLIET, UDF})
FIXED_TIME = datetime(2022, 4, 12, 8, 30, tzinfo=UTC)  # the RestyLink wave: spring 2022
UDF_HIDDEN = 0x01  # ECMA-167 4/14.4.3 file characteristics: "existence" (do not show the file)


@dataclass(frozen=True)
class IsoFile:
    path: str  # the long name as Joliet/UDF/Rock Ridge show it, "/"-separated: "docs/Invoice.pdf.exe"
    data: bytes
    hidden: bool = False
    namespaces: frozenset[str] = EVERYWHERE  # where it appears (of those the image has)


def build(
    files: list[IsoFile],
    volume_id: str = "CDROM",
    application: str = "",
    publisher: str = "",
    *,
    joliet: bool = True,
    rock_ridge: bool = False,
    udf: bool = False,
    moment: datetime = FIXED_TIME,
) -> bytes:
    """The image's bytes; the same arguments always give the same bytes."""
    import pycdlib

    with _fixed_clock(moment):
        iso = pycdlib.PyCdlib()
        iso.new(
            interchange_level=1,
            vol_ident=volume_id,
            app_ident_str=application,
            pub_ident_str=publisher,
            joliet=3 if joliet else None,
            rock_ridge="1.09" if rock_ridge else None,
            udf="2.60" if udf else None,
        )
        names = _ShortNames()
        for file in files:
            parts = PurePosixPath(file.path).parts
            for depth in range(1, len(parts)):
                if names.directory(parts[:depth]) is None:
                    iso.add_directory(
                        iso_path=names.add_directory(parts[:depth]),
                        joliet_path="/" + "/".join(parts[:depth]) if joliet else None,
                        udf_path="/" + "/".join(parts[:depth]) if udf else None,
                        rr_name=parts[depth - 1] if rock_ridge else None,
                    )
            long_path = "/" + "/".join(parts)
            paths = {}
            if ISO9660 in file.namespaces:
                paths["iso_path"] = names.add_file(parts) + ";1"
            if joliet and JOLIET in file.namespaces:
                paths["joliet_path"] = long_path
            if udf and UDF in file.namespaces:
                paths["udf_path"] = long_path
            if not paths:
                raise ValueError(
                    f"{file.path}: none of its namespaces {sorted(file.namespaces)} is in this image"
                )
            rr_name = {"rr_name": parts[-1]} if rock_ridge and "iso_path" in paths else {}
            iso.add_fp(io.BytesIO(file.data), len(file.data), **paths, **rr_name)
            if file.hidden:
                _hide(iso, paths)
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
    return out.getvalue()


@contextmanager
def _fixed_clock(moment: datetime) -> Iterator[None]:
    seeded = random.Random(moment.timestamp())
    with (
        mock.patch("time.time", return_value=moment.timestamp()),
        mock.patch("time.localtime", time.gmtime),
        mock.patch("random.getrandbits", seeded.getrandbits),
    ):
        yield


def _hide(iso: Any, paths: dict[str, str]) -> None:
    if "iso_path" in paths:
        iso.set_hidden(iso_path=paths["iso_path"])
    if "joliet_path" in paths:
        iso.set_hidden(joliet_path=paths["joliet_path"])
    if "udf_path" in paths:  # pycdlib has no setter for UDF: mark the File Identifier Descriptor
        iso.get_record(udf_path=paths["udf_path"]).file_ident.file_characteristics |= UDF_HIDDEN


class _ShortNames:
    """ISO 9660 level-1 names (8.3, upper case, d-characters) for long names, unique per folder."""

    def __init__(self) -> None:
        self._directories: dict[tuple[str, ...], str] = {(): ""}  # long path parts -> ISO 9660 path
        self._used: dict[tuple[str, ...], set[str]] = {}

    def directory(self, parts: tuple[str, ...]) -> str | None:
        return self._directories.get(parts)

    def add_directory(self, parts: tuple[str, ...]) -> str:
        path = f"{self._directories[parts[:-1]]}/{self._unique(parts[:-1], parts[-1], '')}"
        self._directories[parts] = path
        return path

    def add_file(self, parts: tuple[str, ...]) -> str:
        stem, dot, extension = parts[-1].rpartition(".")
        if not dot:
            stem, extension = extension, ""
        return f"{self._directories[parts[:-1]]}/{self._unique(parts[:-1], stem, extension)}"

    def _unique(self, folder: tuple[str, ...], stem: str, extension: str) -> str:
        base = (
            "".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in stem.upper()) or "_"
        )
        suffix = "".join(ch for ch in extension.upper() if ch.isascii() and ch.isalnum())[:3]
        used = self._used.setdefault(folder, set())
        candidate, counter = base[:8], 0
        while f"{candidate}.{suffix}".rstrip(".") in used:
            counter += 1
            candidate = f"{base[: 7 - len(str(counter))]}~{counter}"
        name = f"{candidate}.{suffix}".rstrip(".")
        used.add(name)
        return name
