"""Coverage-guided fuzzing of each analyzer with atheris (libFuzzer), seeded from the sample set and
the public corpus. Not part of the test suite: run it when an analyzer changes.

    /work/venv/bin/pip install atheris
    python benchmarks/fuzz_atheris.py --seconds 60                  # every analyzer, 60 s each
    python benchmarks/fuzz_atheris.py --seconds 300 --only zip,ole  # some, longer

Each analyzer runs in its own process (libFuzzer owns the process it fuzzes): the analyzer and the
libraries it calls are instrumented, libFuzzer's corpus starts from the seeds of the types the
analyzer claims, and every input is handed to `analyze()` as the engine would. A finding is what
tests/test_fuzz.py calls a bug (an exception raised by our code, or an unchecked IndexError, KeyError,
struct.error, TypeError, RecursionError, ... from anywhere); it is saved under --out and the fuzzing
goes on. libFuzzer itself stops a run on an input slower than --timeout seconds or one that pushes
the process past --rss-mb, and saves that input too. The summary gives executions, executions/s,
coverage and findings per analyzer.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

ANALYZERS = (
    "zip",
    "iso",
    "lnk",
    "ole",
    "ooxml",
    "pdf",
    "rtf",
    "pe",
    "upx",
    "golang",
    "cobaltstrike",
    "compressed",
    "yara",
)
MAX_LEN = 256 << 10


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per analyzer")
    parser.add_argument("--only", default="", help="comma-separated analyzers (default: all)")
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="where findings are saved")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=2048, help="memory ceiling of a fuzzing process")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("libfuzzer", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker, args.out, args.scratch, args.libfuzzer)
    names = [n for n in args.only.split(",") if n] or list(ANALYZERS)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"{'analyzer':<14}{'execs':>10}{'execs/s':>10}{'cov':>8}{'findings':>10}  stopped by")
    with tempfile.TemporaryDirectory(prefix="restytriage-atheris-") as scratch:
        # Compiled rules and every run's temp files stay in one folder, removed at the end.
        os.environ.setdefault("RESTYTRIAGE_CACHE_DIR", str(Path(scratch) / "cache"))
        for name in names:
            print(_run_one(name, args, Path(scratch) / name), flush=True)
    return 0


def _run_one(name: str, args: argparse.Namespace, scratch: Path) -> str:
    """One analyzer in a child process; its libFuzzer statistics summarised on one line."""
    corpus = scratch / "corpus"
    corpus.mkdir(parents=True)
    _write_seeds(name, corpus)
    command = [
        sys.executable,
        __file__,
        "--worker",
        name,
        "--out",
        str(args.out),
        "--scratch",
        str(scratch),
        "--",
        str(corpus),
        f"-max_total_time={args.seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        f"-max_len={MAX_LEN}",
        f"-artifact_prefix={args.out.resolve()}/{name}-",
        "-print_final_stats=1",
        "-close_fd_mask=1",  # the analyzers' libraries print to stdout
    ]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    elapsed = time.monotonic() - started
    log = done.stderr
    execs = _stat(log, "stat::number_of_executed_units")
    coverage = re.findall(r"cov: (\d+)", log)
    findings = sorted(set(re.findall(r"^FINDING (.+)$", log, re.MULTILINE)))
    stopped = "time" if done.returncode == 0 else _stop_reason(log, done.returncode)
    for finding in findings:
        print(f"  {name}: {finding}", file=sys.stderr)
    rate = execs / elapsed if elapsed else 0.0
    return f"{name:<14}{execs:>10}{rate:>10.0f}{coverage[-1] if coverage else '?':>8}{len(findings):>10}  {stopped}"


def _stat(log: str, key: str) -> int:
    match = re.search(rf"{re.escape(key)}:\s*(\d+)", log)
    return int(match.group(1)) if match else 0


def _stop_reason(log: str, code: int) -> str:
    for pattern, reason in (
        (r"ERROR: libFuzzer: timeout", "a slow input (saved)"),
        (r"ERROR: libFuzzer: out-of-memory", "memory ceiling (input saved)"),
        (r"Uncaught Python exception", "uncaught exception (saved)"),
    ):
        if re.search(pattern, log):
            return reason
    return f"exit {code}: {log.strip().splitlines()[-1][:80] if log.strip() else ''}"


def _write_seeds(name: str, corpus: Path) -> None:
    from test_fuzz import MODULES, seeds_for

    for label, data in seeds_for(MODULES[name]):
        if len(data) <= MAX_LEN:
            (corpus / hashlib.sha1(label.encode() + data).hexdigest()).write_bytes(data)


def _worker(name: str, out: Path, scratch: Path, libfuzzer_args: list[str]) -> int:
    """In the child: instrument the analyzer and its libraries, then let libFuzzer drive it."""
    import atheris
    from test_fuzz import CONFIG, MODULES, seeds_for, unchecked_failure

    from restytriage.analysis import Context, Item
    from restytriage.blob import Blob, LimitExceeded
    from restytriage.identify import identify

    module = MODULES[name]
    work = scratch / "run"  # the analyzers' temp files (a private copy for olefile, upx's folder)
    work.mkdir()
    seen: set[str] = set()

    def one_input(data: bytes) -> None:
        blob = Blob.of(data)
        filetype = identify(blob, "fuzz").name
        if filetype not in module.TYPES and "*" not in module.TYPES:
            return
        item = Item(blob=blob, name=f"fuzz.{filetype}", type=filetype, extension=filetype, depth=0)
        try:
            module.analyze(item, Context(CONFIG, work, time.monotonic() + CONFIG.limits.max_seconds))
        except LimitExceeded:
            return
        except Exception as err:
            reason = unchecked_failure(err)
            if reason is None:
                return
            key = re.sub(r":\s.*", "", reason)  # the exception type and where, not the message
            if key not in seen:
                seen.add(key)
                path = out / f"{name}-{type(err).__name__}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
                path.write_bytes(data)
                print(f"FINDING {reason[:300]} -> {path}", file=sys.stderr, flush=True)

    # Import everything the analyzer touches before instrumenting, so the libraries are covered too.
    for _label, data in seeds_for(module)[:8]:
        one_input(data)
    atheris.instrument_all()
    atheris.Setup([sys.argv[0], *libfuzzer_args], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
