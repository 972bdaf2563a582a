"""Command line: options in, engine call, renderer choice. Nothing else lives here.

Exit codes: 0 clean, 10 suspicious, 20 malicious (the worst verdict for several files),
1 the tool could not run (missing or unreadable file, bad option value), 2 usage error.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from restytriage import __version__

EXIT_CODES = {"clean": 0, "suspicious": 10, "malicious": 20}
EXIT_HELP = "Exit codes: 0 clean, 10 suspicious, 20 malicious, 1 the tool could not run, 2 usage error."

app = typer.Typer(
    help=f"Static triage of suspicious attachments, without executing them. {EXIT_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


class CliError(Exception):
    """A problem the user can fix: shown as one line, exit code 1."""


def _stderr():
    from rich.console import Console

    return Console(stderr=True, soft_wrap=True)  # an error line stays one line: paths unbroken


def _config(
    rules: list[Path] | None = None,
    sigma: list[Path] | None = None,
    passwords: list[str] | None = None,
    max_depth: int | None = None,
    max_seconds: float | None = None,
):
    from dataclasses import replace

    from restytriage.config import MAX_DEPTH_CEILING, MAX_SECONDS_CEILING, Config, Limits

    limits = Limits()
    if max_depth is not None:
        if not 0 <= max_depth <= MAX_DEPTH_CEILING:
            raise CliError(f"--max-depth must be between 0 and {MAX_DEPTH_CEILING}, not {max_depth}")
        limits = replace(limits, max_depth=max_depth)
    if max_seconds is not None:
        if not 0 < max_seconds <= MAX_SECONDS_CEILING:  # also refuses nan, which no clock passes
            raise CliError(f"--max-seconds must be between 0 and {MAX_SECONDS_CEILING:g}, not {max_seconds}")
        limits = replace(limits, max_seconds=max_seconds)
    for location in [*(rules or []), *(sigma or [])]:
        if not location.exists():
            raise CliError(f"rule folder or file not found: {location}")
    return Config(
        limits=limits,
        passwords=tuple(passwords or ()),
        yara_dirs=tuple(rules or ()),
        sigma_dirs=tuple(sigma or ()),
    )


RulesOption = Annotated[
    list[Path] | None,
    typer.Option("--rules", help="Extra YARA rule folder or pack file (repeatable).", show_default=False),
]
SigmaOption = Annotated[
    list[Path] | None,
    typer.Option("--sigma", help="Extra Sigma rule folder (repeatable).", show_default=False),
]
PasswordOption = Annotated[
    list[str] | None,
    typer.Option(
        "--password",
        help="Archive/document password to try (repeatable), before the usual ones.",
        show_default=False,
    ),
]


MaxDepthOption = Annotated[
    int | None, typer.Option(help="Nesting levels to unpack (default 10).", show_default=False)
]
MaxSecondsOption = Annotated[
    float | None, typer.Option(help="Wall-time limit per file (default 120).", show_default=False)
]
HtmlOption = Annotated[
    Path | None, typer.Option("--html", help="Write a self-contained HTML report.", show_default=False)
]
StixOption = Annotated[
    Path | None, typer.Option("--stix", help="Write a STIX 2.1 bundle.", show_default=False)
]
IocsOption = Annotated[
    Path | None,
    typer.Option("--iocs", help="Write the IOCs (defanged unless --live-iocs).", show_default=False),
]
IocFormatOption = Annotated[str, typer.Option("--iocs-format", help="csv or lines.")]
LiveIocsOption = Annotated[bool, typer.Option("--live-iocs", help="Keep IOCs live (not defanged) in --iocs.")]


def _check_ioc_format(ioc_format: str) -> None:
    if ioc_format not in ("csv", "lines"):
        raise CliError(f"--iocs-format must be csv or lines, not {ioc_format!r}")


@app.command(help=f"Analyse one file and print the report. {EXIT_HELP}")
def triage(
    path: Annotated[Path, typer.Argument(help="The file to analyse.", show_default=False, metavar="PATH")],
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json", help="Write the JSON report to FILE, or to stdout with '-'.", show_default=False
        ),
    ] = None,
    rules: RulesOption = None,
    sigma: SigmaOption = None,
    password: PasswordOption = None,
    max_depth: MaxDepthOption = None,
    max_seconds: MaxSecondsOption = None,
    html: HtmlOption = None,
    stix: StixOption = None,
    iocs: IocsOption = None,
    iocs_format: IocFormatOption = "csv",
    live_iocs: LiveIocsOption = False,
) -> None:
    from restytriage.engine import triage as run_triage
    from restytriage.render.exports import write_exports

    _check_ioc_format(iocs_format)
    config = _config(rules, sigma, password, max_depth, max_seconds)
    try:
        report = run_triage(path, config)
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except (PermissionError, IsADirectoryError, OSError) as err:
        raise CliError(f"cannot read {path}: {err.strerror or err}") from None
    if json_out is not None:
        from restytriage.render.json import write_json

        write_json(report, json_out)
    write_exports([report], html, stix, iocs, iocs_format, live_iocs)
    if "-" not in (str(json_out), str(html), str(stix), str(iocs)):  # stdout carries an output
        from rich.console import Console

        from restytriage.render.console import render

        render(report, Console())
    raise typer.Exit(EXIT_CODES[report.verdict])


@app.command(help="Build the inert sample set into DIR and triage every sample.")
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to write the samples.")] = Path("restytriage-demo"),
    show: Annotated[
        str, typer.Option(help="Sample whose full report is printed after the summary.")
    ] = "restylink_invoice.zip",
) -> None:
    from rich.console import Console

    from restytriage.demo import run_demo

    run_demo(directory, show, Console())


@app.command(
    help="Triage every file a manifest lists and compare with its expectations. "
    "Exit 0 when all agree, 3 on any difference, 1 when it cannot run."
)
def verify(
    manifest: Annotated[
        Path,
        typer.Argument(help="samples_manifest.json or a manifest of the same shape.", metavar="MANIFEST"),
    ],
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where the listed files are (default: the manifest's folder).", show_default=False
        ),
    ] = None,
    build: Annotated[
        bool, typer.Option(help="Build restytriage's own sample set into a temp folder and check it.")
    ] = False,
    rules: RulesOption = None,
    sigma: SigmaOption = None,
) -> None:
    import tempfile

    from rich import box
    from rich.console import Console
    from rich.table import Table

    from restytriage.samples import build_all
    from restytriage.verify import verify as run_verify

    if not manifest.is_file():
        raise CliError(f"no such manifest: {manifest}")
    config = _config(rules, sigma)
    with tempfile.TemporaryDirectory(prefix="restytriage-verify-") as scratch:
        if build:
            directory = Path(scratch)
            build_all(directory)
        try:
            total, found = run_verify(manifest, directory, config)
        except (ValueError, KeyError) as err:
            raise CliError(f"bad manifest {manifest}: {err}") from None
    console = Console()
    if found:
        table = Table(
            title=f"{len(found)} difference(s) in {total} file(s)", box=box.SIMPLE_HEAVY, title_justify="left"
        )
        for column in ("file", "aspect", "expected", "actual"):
            table.add_column(column, overflow="fold")
        for diff in found:
            table.add_row(diff.file, diff.aspect, diff.expected, diff.actual)
        console.print(table)
        raise typer.Exit(3)
    console.print(f"all {total} file(s) agree with {manifest}")


VerdictChoice = Annotated[
    str,
    typer.Option(
        "--min-verdict", help="Show and write only files at or above: clean, suspicious, malicious."
    ),
]


def _check_verdict(min_verdict: str) -> None:
    if min_verdict not in EXIT_CODES:
        raise CliError(f"--min-verdict must be clean, suspicious or malicious, not {min_verdict!r}")


@app.command(help=f"Scan files and folders in parallel, with a cache so re-runs resume. {EXIT_HELP}")
def scan(
    paths: Annotated[
        list[Path], typer.Argument(help="Files and folders to scan.", show_default=False, metavar="PATH...")
    ],
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: all cores).", show_default=False)
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Stream one JSON line per file as it finishes.", show_default=False)
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the batch document at the end.", show_default=False)
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="SQLite cache (default: the user cache folder).", show_default=False)
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    rehash: Annotated[
        bool,
        typer.Option(
            "--rehash",
            help="Read every file to hash it, even where the cache holds its unchanged size, inode and times.",
        ),
    ] = False,
    include: Annotated[
        list[str] | None, typer.Option(help="Only paths matching this glob (repeatable).", show_default=False)
    ] = None,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Skip paths matching this glob (repeatable).", show_default=False)
    ] = None,
    cluster: Annotated[
        str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786.", show_default=False)
    ] = None,
    min_verdict: VerdictChoice = "clean",
    worker_memory_mb: Annotated[
        int, typer.Option(help="Address-space ceiling per worker, MiB (0: none).")
    ] = 4096,
    rules: RulesOption = None,
    sigma: SigmaOption = None,
    password: PasswordOption = None,
    max_depth: MaxDepthOption = None,
    max_seconds: MaxSecondsOption = None,
    html: HtmlOption = None,
    stix: StixOption = None,
    iocs: IocsOption = None,
    iocs_format: IocFormatOption = "csv",
    live_iocs: LiveIocsOption = False,
) -> None:

    from rich.console import Console

    from restytriage.batch import scan as run_scan
    from restytriage.cache import default_db
    from restytriage.render.summary import ScanProgress, render_summary

    _check_verdict(min_verdict)
    _check_ioc_format(iocs_format)
    if workers is not None and workers < 1:
        raise CliError(f"--workers must be 1 or more, not {workers}")
    missing = [p for p in paths if not p.exists() and not p.is_symlink()]
    if missing:
        raise CliError(f"no such file or folder: {missing[0]}")
    config = _config(rules, sigma, password, max_depth, max_seconds)
    console = Console(stderr=True)
    stream = open(jsonl, "ab") if jsonl else None  # noqa: SIM115 - closed below; append so resumed runs keep lines
    try:
        with ScanProgress(console) as progress:
            result = run_scan(
                paths,
                config,
                workers=workers,
                include=include or (),
                exclude=exclude or (),
                cache_path=None if no_cache else (cache or default_db()),
                jsonl=stream,
                cluster=cluster,
                worker_memory=worker_memory_mb << 20,
                min_verdict=min_verdict,
                rehash=rehash,
                keep_reports=any(out is not None for out in (json_out, html, stix, iocs)),
                on_listed=progress.listed,
                on_result=progress.advance,
            )
    finally:
        if stream is not None:
            stream.close()
    render_summary(result, console, min_verdict)
    _write_batch_outputs(result, min_verdict, json_out, html, stix, iocs, iocs_format, live_iocs)
    if result.interrupted:
        raise typer.Exit(130)
    raise typer.Exit(EXIT_CODES[result.worst()])


def _write_batch_outputs(result, min_verdict, json_out, html, stix, iocs, iocs_format, live_iocs) -> None:

    from restytriage.batch import write_batch_document
    from restytriage.model import from_json
    from restytriage.render.exports import write_exports
    from restytriage.render.summary import visible

    shown = visible(result.outcomes, min_verdict)
    if json_out is not None:
        with open(json_out, "wb") as out:
            write_batch_document(result, shown, out)
    if html is None and stix is None and iocs is None:
        return  # nothing to export: decoding every report (~0.4 ms each) would be wasted
    reports = [from_json(o.report_json) for o in shown if o.report_json is not None]
    if reports:
        write_exports(reports, html, stix, iocs, iocs_format, live_iocs)


@app.command(help="Rebuild the summary and outputs from the cache, without rescanning.")
def report(
    from_db: Annotated[
        Path, typer.Option("--from", help="The SQLite cache of earlier scans.", show_default=False)
    ],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the batch document.", show_default=False)
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write one JSON line per file.", show_default=False)
    ] = None,
    min_verdict: VerdictChoice = "clean",
    all_versions: Annotated[
        bool,
        typer.Option(
            "--all", help="Any engine or rule version: the newest report of each file, whatever made it."
        ),
    ] = False,
    rules: RulesOption = None,
    sigma: SigmaOption = None,
    password: PasswordOption = None,
    max_depth: MaxDepthOption = None,
    max_seconds: MaxSecondsOption = None,
    html: HtmlOption = None,
    stix: StixOption = None,
    iocs: IocsOption = None,
    iocs_format: IocFormatOption = "csv",
    live_iocs: LiveIocsOption = False,
) -> None:
    """The reports a scan with the same rule, password and limit options stored (or, with --all, the
    newest of each file)."""
    import time

    from rich.console import Console

    from restytriage.batch import FileEntry, ScanResult, jsonl_line, outcome_of
    from restytriage.cache import ReportCache, rules_fingerprint
    from restytriage.render.summary import render_summary, visible

    _check_verdict(min_verdict)
    _check_ioc_format(iocs_format)
    if not from_db.is_file():
        raise CliError(f"no such cache: {from_db}")
    store = ReportCache(from_db, rules_fingerprint(_config(rules, sigma, password, max_depth, max_seconds)))
    try:
        outcomes = []
        for paths, blob in store.entries(current_only=not all_versions):
            outcome = outcome_of(FileEntry("", 0, paths or ["(path unknown)"]), "cached", blob, "", 0.0)
            gist = outcome.gist()
            if gist is not None and gist.file is not None:
                outcome.entry.sha256, outcome.entry.size = gist.file.sha256, gist.file.size
            outcomes.append(outcome)
    finally:
        store.close()
    now = time.time()
    result = ScanResult(outcomes, [], now, now, [])
    if jsonl is not None:
        with open(jsonl, "wb") as stream:
            for outcome in visible(outcomes, min_verdict):
                stream.write(jsonl_line(outcome))
    render_summary(result, Console(), min_verdict)
    _write_batch_outputs(result, min_verdict, json_out, html, stix, iocs, iocs_format, live_iocs)
    raise typer.Exit(EXIT_CODES[result.worst()])


@app.command(help="Print the JSON schema of the report.")
def schema() -> None:
    import json

    from restytriage.model import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@app.command(help="Print the version.")
def version() -> None:
    typer.echo(f"restytriage {__version__}")


def main() -> None:
    try:
        app(prog_name="restytriage")
    except CliError as err:
        _stderr().print(f"restytriage: error: {err}", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        _stderr().print("restytriage: interrupted", markup=False)
        sys.exit(130)
    except OSError as err:  # an output that cannot be written (reads are reported by each command)
        where = f"{err.filename}: " if err.filename else ""
        _stderr().print(f"restytriage: error: cannot write {where}{err.strerror or err}", markup=False)
        sys.exit(1)
    except Exception as err:
        _stderr().print(
            f"restytriage: internal error: {type(err).__name__}: {err}", markup=False, highlight=False
        )
        sys.exit(1)


rules_app = typer.Typer(
    help="The YARA rules: the team's (yara/) and any --rules folders.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")


@rules_app.command("list", help="Show the loaded YARA rules with their meta, and any skipped file.")
def rules_list(rules: RulesOption = None) -> None:
    from rich.console import Console

    from restytriage.rules import list_rules

    list_rules(rules or [], Console())


@rules_app.command(
    "check",
    help="Compile the YARA rules afresh and report broken, duplicate or unsupported ones (exit 1 if any).",
)
def rules_check(rules: RulesOption = None) -> None:
    from rich.console import Console

    from restytriage.rules import check_rules

    raise typer.Exit(check_rules(rules or [], Console()))
