"""YARA benchmark: rule compile time (cold and cached) and scan throughput, beside the `yara` CLI.

    python benchmarks/bench_yara.py [--rules DIR]... [--large-mb 256]

Measures, for the team's rules plus any --rules folders:
- compile: cold (empty caches), from the disk cache in this process, and the start-up of a fresh
  process that loads the cached set (what every `restytriage triage` pays);
- scan: MB/s of `RuleSet.match` (the analyzer's path: by file path, as for temp files and the root)
  over the sample set (built into a temp folder, plus the prebuilt PE samples) and over one large
  generated file; and the same rules and data through the `yara` command line when installed
  (compiled once with `yarac`, one thread, its fixed start-up measured on an empty file and taken
  out), so the Python path's cost over the C scanner shows.
Nothing is executed but YARA; the large file is pseudo-random bytes with text lines mixed in.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from restytriage import rules
from restytriage.blob import Blob
from restytriage.samples import all_samples

PREBUILT = Path(rules.__file__).resolve().parent / "samples" / "prebuilt"
EXTERNAL_FLAGS = [flag for name in rules.EXTERNAL_NAMES for flag in ("-d", f"{name}=")]


def best_of(repeats: int, action) -> float:
    """The fastest of `repeats` timed runs: the least disturbed by the machine."""
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return min(timings)


def write_large_file(path: Path, megabytes: int) -> None:
    generator = random.Random(20220412)
    line = b"GET /rLe9 HTTP/1.1\r\nUser-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64)\r\n\r\n"
    with open(path, "wb") as out:
        for _ in range(megabytes):
            out.write(generator.randbytes((1 << 20) - 4 * len(line)) + line * 4)


def measure_compile(extra: list[Path], cache: Path) -> None:
    os.environ[rules.CACHE_ENV] = str(cache)
    rules.clear_memory_cache()
    cold = best_of(1, lambda: rules.load_rules(extra))
    ruleset = rules.load_rules(extra)
    rules.clear_memory_cache()
    cached = best_of(5, lambda: (rules.clear_memory_cache(), rules.load_rules(extra)))
    script = (
        "import time; t = time.perf_counter(); from restytriage import rules; "
        f"s = rules.load_rules({[str(p) for p in extra]!r}); "
        "print(time.perf_counter() - t, s.from_cache)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    process = min(float(run.stdout.split()[0]) for run in runs)
    assert all(run.stdout.split()[1] == "True" for run in runs), "the fresh process did not use the cache"
    print(
        f"rules: {len(ruleset.infos)} from {len(ruleset.sources)} file(s); {len(ruleset.problems)} file(s) skipped"
    )
    print(f"compile cold (per-file checks + combined compile + save): {cold * 1000:8.1f} ms")
    print(f"load from the disk cache (in process):                    {cached * 1000:8.1f} ms")
    print(f"fresh process: import + load cached rules:                {process * 1000:8.1f} ms")


def python_scan(ruleset: rules.RuleSet, files: list[Path]) -> float:
    def run() -> None:
        for path in files:
            ruleset.match(Blob(path=path), {"filename": path.name}, 600)

    return best_of(3, run)


def cli_scan(compiled: Path, files: list[Path], listing: Path) -> float | None:
    """Seconds the `yara` CLI spends scanning `files` (one thread), its start-up taken out."""
    if not shutil.which("yara"):
        return None
    listing.write_text("".join(f"{path}\n" for path in files), "utf-8")
    empty = listing.with_name("empty.bin")
    empty.write_bytes(b"")
    base = ["yara", "-C", "-w", "-p", "1", *EXTERNAL_FLAGS, str(compiled)]
    startup = best_of(3, lambda: subprocess.run([*base, str(empty)], capture_output=True, check=True))
    total = best_of(
        3, lambda: subprocess.run([*base, "--scan-list", str(listing)], capture_output=True, check=True)
    )
    return max(total - startup, 1e-9)


def compile_for_cli(ruleset: rules.RuleSet, target: Path) -> Path | None:
    if not shutil.which("yarac"):
        return None
    # NAMESPACE:FILE on yarac's command line: our namespaces' own ':' would split there.
    sources = [f"{namespace.replace(':', '/')}:{path}" for namespace, path in ruleset.sources.items()]
    subprocess.run(["yarac", "-w", *EXTERNAL_FLAGS, *sources, str(target)], check=True, capture_output=True)
    return target


def build_samples(folder: Path) -> list[Path]:
    """The sample set plus the prebuilt PEs; a sample whose builder fails is named and left out."""
    folder.mkdir(parents=True)
    written = []
    for sample in all_samples():
        try:
            data = sample.build()
        except Exception as err:
            print(f"note: sample {sample.name} not built ({type(err).__name__}: {err})")
            continue
        path = folder / sample.name
        path.write_bytes(data)
        written.append(path)
    return written + sorted(p for p in PREBUILT.iterdir() if p.is_file() and p.suffix in {".exe", ".dll"})


def report_scan(
    label: str, ruleset: rules.RuleSet, files: list[Path], compiled: Path | None, scratch: Path
) -> None:
    size = sum(path.stat().st_size for path in files) / (1 << 20)
    python = python_scan(ruleset, files)
    line = f"{label:<34} {len(files):>5} file(s) {size:9.1f} MB   python {size / python:8.1f} MB/s"
    cli = cli_scan(compiled, files, scratch / f"{label.split()[0]}.list") if compiled else None
    if cli is not None:
        line += f"   yara CLI {size / cli:8.1f} MB/s   python/CLI time {python / cli:5.2f}x"
    else:
        line += "   (yara CLI not installed)"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rules", action="append", type=Path, default=[], help="extra rule folder (repeatable)"
    )
    parser.add_argument("--large-mb", type=int, default=256, help="size of the generated large file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-yara-") as folder:
        scratch = Path(folder)
        measure_compile(args.rules, scratch / "cache")
        ruleset = rules.load_rules(args.rules)
        compiled = compile_for_cli(ruleset, scratch / "rules.yarc")

        samples = build_samples(scratch / "samples")
        large = scratch / "large.bin"
        write_large_file(large, args.large_mb)

        cli_version = (
            subprocess.run(["yara", "--version"], capture_output=True, text=True).stdout.strip()
            if shutil.which("yara")
            else "absent"
        )
        import yara

        print(f"yara-python {yara.__version__} (libyara {yara.YARA_VERSION}); yara CLI {cli_version}")
        report_scan("sample set (by path)", ruleset, samples, compiled, scratch)
        report_scan(f"large file ({args.large_mb} MB)", ruleset, [large], compiled, scratch)


if __name__ == "__main__":
    main()
