"""Exports others consume: STIX 2.1 (validated by the stix2 library), IOC lists, self-contained HTML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from restytriage.engine import triage_bytes
from restytriage.model import IOC, Report
from restytriage.render.html import render_html
from restytriage.render.iocs import defang, render_iocs
from restytriage.render.stix import build_bundle, render_stix


@pytest.fixture()
def report() -> Report:
    found = triage_bytes(b"<not a shortcut>", "請求書.pdf\u202eknl.lnk")
    found.iocs += [
        IOC(
            type="url", value="https://cdn.restylink.invalid/s'tage?a=1", context="lnk command line", node="0"
        ),
        IOC(type="ip", value="203.0.113.7", context="macro", node="0"),
        IOC(type="domain", value="update.restylink.invalid", context="macro", node="0"),
    ]
    return found


@pytest.mark.parametrize(
    ("ioc_type", "value", "expected"),
    [
        ("url", "https://cdn.restylink.invalid/a.b?x=1.2", "hxxps://cdn[.]restylink[.]invalid/a.b?x=1.2"),
        ("url", "HTTP://203.0.113.7/x", "hxxp://203[.]0[.]113[.]7/x"),
        ("domain", "update.restylink.invalid", "update[.]restylink[.]invalid"),
        ("ip", "198.51.100.23", "198.51.100[.]23"),
        ("email", "ops@restylink.invalid", "ops[@]restylink[.]invalid"),
        ("sha256", "ab" * 32, "ab" * 32),
    ],
)
def test_defang(ioc_type: str, value: str, expected: str) -> None:
    assert defang(ioc_type, value) == expected


def test_ioc_csv_is_defanged_unless_live(report: Report) -> None:
    csv_text = render_iocs(report.iocs)
    assert csv_text.splitlines()[0] == "type,value,context,node"
    assert "hxxps://cdn[.]restylink[.]invalid" in csv_text and "https://" not in csv_text
    assert "203.0.113.7" in render_iocs(report.iocs, "lines", live=True).splitlines()


def test_stix_bundle_validates_and_links_everything(report: Report) -> None:
    import stix2

    bundle = stix2.parse(render_stix([report]), allow_custom=False)
    by_type: dict[str, list] = {}
    for obj in bundle.objects:
        by_type.setdefault(obj.type, []).append(obj)
    assert by_type["file"][0].hashes["SHA-256"] == report.file.sha256
    analysis = by_type["malware-analysis"][0]
    assert analysis.result == report.verdict == "suspicious" and analysis.sample_ref == by_type["file"][0].id
    patterns = {i.pattern for i in by_type["indicator"]}
    assert "[url:value = 'https://cdn.restylink.invalid/s\\'tage?a=1']" in patterns
    assert "[ipv4-addr:value = '203.0.113.7']" in patterns
    attack_ids = {p.external_references[0].external_id for p in by_type["attack-pattern"]}
    assert attack_ids == {"T1036.002"}
    # Real ATT&CK STIX ids, so threat-intel platforms merge rather than duplicate.
    assert by_type["attack-pattern"][0].id == "attack-pattern--77eae145-55db-4519-8ae5-77b0c7215d69"
    relationship_types = {r.relationship_type for r in by_type["relationship"]}
    assert {"indicates", "uses", "static-analysis-of"} <= relationship_types


def test_clean_report_bundles_as_benign() -> None:
    bundle = build_bundle([triage_bytes(b"plain text\n", "notes.txt")])
    analysis = next(o for o in bundle.objects if o.type == "malware-analysis")
    assert analysis.result == "benign"
    assert not [o for o in bundle.objects if o.type == "malware"]


def test_html_is_self_contained_and_escapes_hostile_names(report: Report) -> None:
    page = render_html([report])
    assert "<script" not in page.lower() and " src=" not in page and "<link" not in page
    assert "\u202e" in page  # shown faithfully, but as text
    assert "<not a shortcut>" not in page
    assert "hxxps://cdn[.]restylink[.]invalid" in page and "https://cdn.restylink" not in page
    links = set(re.findall(r"href='([^']+)'", page))
    assert links and all(link.startswith(("https://attack.mitre.org/techniques/", "#")) for link in links)
    assert "MALICIOUS" in page.upper() and report.file.sha256 in page


def test_html_overview_for_several_reports(report: Report) -> None:
    page = render_html([report, triage_bytes(b"plain", "notes.txt")])
    assert page.count("<section class='report'") == 2 and "2 files" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_html_renders_in_a_real_browser(report: Report, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html([report]), "utf-8")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,900",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1200, 900)
    assert len(png) > 20_000  # a rendered page, not a blank canvas


def test_cli_writes_every_export(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from restytriage.cli import app

    sample = tmp_path / "invoice.pdf.lnk"
    sample.write_bytes(b"x")
    out = {ext: tmp_path / f"r.{ext}" for ext in ("html", "stix", "csv", "json")}
    result = CliRunner().invoke(
        app,
        [
            "triage",
            str(sample),
            "--json",
            str(out["json"]),
            "--html",
            str(out["html"]),
            "--stix",
            str(out["stix"]),
            "--iocs",
            str(out["csv"]),
        ],
    )
    assert result.exit_code == 10, result.output
    assert json.loads(out["json"].read_text())["verdict"] == "suspicious"
    assert out["html"].read_text().startswith("<!DOCTYPE html>")
    assert json.loads(out["stix"].read_text())["type"] == "bundle"
    assert out["csv"].read_text().startswith("type,value")


def test_ioc_exports_cannot_become_spreadsheet_formulas_or_break_lines() -> None:
    from restytriage.model import IOC
    from restytriage.render.iocs import render_iocs

    iocs = [
        IOC(type="filepath", value="=cmd|' /C calc'!A0", context="+shortcut"),
        IOC(type="filepath", value="C:\\t\\a\nb.exe", context="copy"),
    ]
    rows = render_iocs(iocs, "csv").splitlines()
    assert rows[1] == "filepath,'=cmd|' /C calc'!A0,'+shortcut,"
    assert rows[2] == "filepath,C:\\t\\a\\nb.exe,copy," and len(rows) == 3
    assert render_iocs(iocs, "lines").splitlines() == ["=cmd|' /C calc'!A0", "C:\\t\\a\\nb.exe"]


def test_every_output_takes_dash_for_stdout_and_bad_options_get_plain_errors(tmp_path: Path) -> None:
    import subprocess
    import sys

    sample = tmp_path / "invoice.pdf.lnk"
    sample.write_bytes(b"x")

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "restytriage", "triage", str(sample), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=60)

    done = run("--iocs", "-", "--iocs-format", "lines")
    assert done.returncode == 10 and not (tmp_path / "-").exists()
    assert "Indicators" not in done.stdout  # stdout carries the export alone, not the report
    done = run("--json", str(tmp_path / "missing" / "r.json"))
    assert done.returncode == 1 and "internal error" not in done.stderr
    assert "cannot write" in done.stderr and "No such file or directory" in done.stderr
    done = run("--max-seconds", "nan")
    assert done.returncode == 1 and "--max-seconds must be between 0 and" in done.stderr
