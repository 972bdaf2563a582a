"""Disc images on real bytes: namespaces and names, hidden files, delivery findings, damage, streaming,
and the full ZIP -> ISO -> files chain through the CLI and the JSON schema."""

from __future__ import annotations

import hashlib
import json
import time
import tracemalloc
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from restytriage.cli import app
from restytriage.engine import triage, triage_bytes
from restytriage.model import Report, json_schema, to_json, walk
from restytriage.samples import archive_samples as samples
from restytriage.samples import iso_writer
from restytriage.samples.iso_writer import IsoFile
from restytriage.samples.pe_samples import prebuilt

MY_ANALYZERS = {"zip", "iso", "compressed"}


def ids(report: Report) -> set[str]:
    return {f.id for node in walk(report.root) for f in node.findings}


def assert_no_crash(report: Report) -> None:
    errors = [
        (n.name, e.analyzer, e.message)
        for n in walk(report.root)
        for e in n.errors
        if e.analyzer in MY_ANALYZERS
    ]
    assert not errors, errors


def test_invoice_image_shows_joliet_names_hidden_dll_and_volume() -> None:
    report = triage_bytes(samples.invoice_iso(), "Invoice_0722.iso")
    root = report.root
    assert root.facts["volume"] == "INVOICE_0722" and root.facts["application"].startswith("IMGBURN")
    assert root.facts["created"] == "2022-04-12T08:30:00+00:00"
    assert root.metadata["iso"]["names_from"] == "joliet"
    assert set(root.metadata["iso"]["namespaces"]) == {"joliet", "iso9660"}
    children = {c.name: c for c in root.children}
    assert set(children) == {"readme.txt", "Invoice_0722.pdf.exe", "version.dll"}
    assert children["version.dll"].sha256 == hashlib.sha256(prebuilt("c_version.dll")).hexdigest()
    assert children["version.dll"].labels == ["hidden"] and children["readme.txt"].labels == []
    assert {"iso.delivers_executable", "iso.hidden_executable"} <= ids(report)
    assert "iso.namespace_mismatch" not in ids(report)
    assert {t.id for t in report.techniques} >= {"T1553.005", "T1204.002", "T1564.001"}


def test_plain_iso9660_names_lose_their_version_suffix() -> None:
    image = iso_writer.build(
        [IsoFile("Report.pdf", b"%PDF-1.4\n"), IsoFile("notes", b"text\n")], joliet=False
    )
    report = triage_bytes(image, "x.iso")
    assert {c.name for c in report.root.children} == {"REPORT.PDF", "NOTES"}
    assert report.root.metadata["iso"]["names_from"] == "iso9660"


def test_rock_ridge_names_are_preferred_over_short_ones() -> None:
    image = iso_writer.build([IsoFile("docs/Quarterly Report.txt", b"q3\n")], joliet=False, rock_ridge=True)
    report = triage_bytes(image, "x.iso")
    assert [c.name for c in report.root.children] == ["docs/Quarterly Report.txt"]
    assert report.root.metadata["iso"]["names_from"] == "rock ridge"


def test_udf_tree_hidden_flag_and_files_other_trees_omit() -> None:
    image = iso_writer.build(
        [
            IsoFile("readme.txt", b"notes\n"),
            IsoFile("lib/helper.dll", prebuilt("c_version.dll"), hidden=True),
            IsoFile("setup.exe", prebuilt("c_fsum.exe"), namespaces=frozenset({iso_writer.UDF})),
            IsoFile("legacy.txt", b"only for old readers\n", namespaces=frozenset({iso_writer.ISO9660})),
        ],
        udf=True,
    )
    report = triage_bytes(image, "x.iso")
    meta = report.root.metadata["iso"]
    assert meta["names_from"] == "udf" and meta["udf"] is True
    children = {c.name: c for c in report.root.children}
    assert set(children) == {"readme.txt", "lib/helper.dll", "setup.exe", "LEGACY.TXT"}
    assert children["lib/helper.dll"].labels == ["hidden"]  # the UDF file characteristic
    assert children["LEGACY.TXT"].labels == ["only in iso9660"]
    mismatch = next(f for f in report.root.findings if f.id == "iso.namespace_mismatch")
    assert "setup.exe" in mismatch.evidence and "LEGACY.TXT" in mismatch.evidence
    assert {"iso.delivers_executable", "iso.hidden_executable"} <= ids(report)


def test_hidden_folder_hides_what_it_holds() -> None:
    image = iso_writer.build([IsoFile("data/payload.dll", prebuilt("c_version.dll")), IsoFile("a.txt", b"a")])
    # hide the folder itself, not the file: Explorer does not show what is inside either
    import pycdlib

    iso = pycdlib.PyCdlib()
    with iso_writer._fixed_clock(iso_writer.FIXED_TIME):
        import io

        iso.open_fp(io.BytesIO(image))
        iso.set_hidden(joliet_path="/data")
        out = io.BytesIO()
        iso.write_fp(out)
        iso.close()
    report = triage_bytes(out.getvalue(), "x.iso")
    assert "hidden" in next(c for c in report.root.children if c.name == "data/payload.dll").labels
    hidden = next(f for f in report.root.findings if f.id == "iso.hidden_file")
    assert "data" in hidden.evidence and "iso.hidden_executable" in ids(report)


def test_shortcut_and_script_in_an_image() -> None:
    image = iso_writer.build(
        [IsoFile("Invoice.lnk", samples.lure_shortcut()), IsoFile("run.js", samples.INERT_SCRIPT)]
    )
    report = triage_bytes(image, "x.iso")
    assert {"iso.delivers_shortcut", "iso.delivers_script"} <= ids(report)
    assert report.verdict == "malicious"


def test_truncated_image_reports_what_it_could_read() -> None:
    report = triage_bytes(
        next(s for s in samples.SAMPLES if s.name == "archive_damaged.iso").build(), "x.iso"
    )
    damaged = next(f for f in report.root.findings if f.id == "iso.damaged")
    assert "shorter than its volume descriptor declares" in damaged.evidence
    assert "runs past the end of the image" in damaged.evidence
    rows = {row["path"]: row for row in report.root.metadata["iso"]["files"]}
    assert {path: row["status"] for path, row in rows.items()} == dict.fromkeys(rows, "partial")
    head = next(c for c in report.root.children if c.name == "Invoice_0722.pdf.exe")
    assert (
        head.type == "pe" and head.size == 65945 - rows["Invoice_0722.pdf.exe"]["offset"]
    )  # the part before the cut
    assert_no_crash(report)


def test_image_cut_after_its_descriptors_still_names_its_volume() -> None:
    report = triage_bytes(samples.invoice_iso()[: 18 * iso_writer.SECTOR], "x.iso")
    assert report.root.facts["volume"] == "INVOICE_0722"
    assert (
        "pycdlib cannot open the image"
        in next(f for f in report.root.findings if f.id == "iso.damaged").evidence
    )


def test_large_file_is_streamed_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = b"\x90" * (64 << 20)
    image = tmp_path / "big.iso"
    image.write_bytes(iso_writer.build([IsoFile("disk.bin", big), IsoFile("a.txt", b"a")]))
    del big
    from restytriage import analyzers
    from restytriage.analyzers import iso

    monkeypatch.setattr(
        analyzers, "for_type", lambda type_name: [iso] if type_name == "iso" else []
    )  # this analyzer's own cost
    tracemalloc.start()
    report = triage(image)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert next(c for c in report.root.children if c.name == "disk.bin").size == 64 << 20
    assert peak < 16 << 20, peak  # the 64 MiB file went to a temp file in 1 MiB pieces


def test_public_images(corpus: Path) -> None:
    joliet = triage(corpus / "strelka" / "fixtures" / "test.iso")
    assert joliet.root.facts["volume"] == "NEW_VOLUME"
    assert [(c.name, c.size) for c in joliet.root.children] == [("lorem.txt", 4015)]
    plain = triage(corpus / "dfvfs" / "test_data" / "iso9660.raw")
    assert sorted(c.name for c in plain.root.children) == [
        "A_DIRECTORY/ANOTHER_FILE",
        "A_DIRECTORY/A_FILE",
        "PASSWORDS.TXT",
    ]
    assert plain.root.facts["application"].startswith("GENISOIMAGE")
    assert [c.name for c in triage(corpus / "corkami" / "mini" / "iso.iso").root.children] == ["ISO.TXT"]
    udf_only = triage(corpus / "strelka" / "fixtures" / "test_udf_1.50.img")
    assert "iso.unsupported" in ids(udf_only) and udf_only.root.metadata["iso"]["udf"] is True
    fake = triage(corpus / "corkami" / "mocks" / "iso9660.bin")
    assert "iso.damaged" in ids(fake)
    for report in (joliet, plain, udf_only, fake):
        assert_no_crash(report)


def _mutated_images() -> st.SearchStrategy[bytes]:
    files = [IsoFile("a/readme.txt", b"notes\n"), IsoFile("b.dll", b"MZ" + bytes(64), hidden=True)]
    seeds = [
        iso_writer.build(files),
        iso_writer.build(files, udf=True),
        iso_writer.build(files, joliet=False, rock_ridge=True),
    ]
    # where the structures are: volume descriptors, path tables, directories (and UDF descriptors)
    start, stop = 16 * iso_writer.SECTOR, 40 * iso_writer.SECTOR

    def mutate(which: int, edits: list[tuple[int, int]], keep: float) -> bytes:
        data = bytearray(seeds[which])
        end = min(stop, len(data))
        for position, value in edits:
            data[start + position % (end - start)] = value
        return bytes(data[: max(1, int(len(data) * keep))])

    return st.builds(
        mutate,
        st.sampled_from(range(len(seeds))),
        st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=10),
        st.floats(0.02, 1.0),
    )


@settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_images())
def test_mutated_images_never_break_the_analyzer(data: bytes) -> None:
    assert_no_crash(triage_bytes(data, "mutated.iso"))


def test_zip_holding_an_iso_reports_every_level_in_the_terminal_and_json(tmp_path: Path) -> None:
    path = tmp_path / "Invoice_0722_iso.zip"
    path.write_bytes(next(s for s in samples.SAMPLES if s.name == path.name).build())
    out = tmp_path / "report.json"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["triage", str(path), "--json", str(out)])
    assert time.monotonic() - started < 20
    assert result.exit_code == 20, result.output
    for shown in ("Invoice_0722.iso", "version.dll", "Invoice_0722.pdf.exe", "readme.txt", "MALICIOUS"):
        assert shown in result.output, shown
    document = json.loads(out.read_text("utf-8"))
    jsonschema.validate(document, json_schema())
    report = triage(path)
    levels = {node.depth: node for node in walk(report.root)}
    assert levels[0].type == "zip" and levels[1].type == "iso" and levels[2].depth == 2
    assert all(len(node.sha256) == 64 and node.md5 and node.sha1 for node in walk(report.root))
    assert json.loads(to_json(report))["verdict"] == document["verdict"] == "malicious"


def test_cli_exit_codes_for_damaged_and_random_input(tmp_path: Path) -> None:
    import os

    cases = {
        "cut.zip": samples.benign_notes()[:100],
        "empty.zip": b"",
        "random.iso": os.urandom(40_000),
        "cut.iso": samples.invoice_iso()[:20_000],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        result = CliRunner().invoke(app, ["triage", str(tmp_path / name), "--json", "-"])
        assert result.exit_code in (0, 10, 20), (name, result.output)
        assert "Traceback" not in result.output, name
