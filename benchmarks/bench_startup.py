"""Cold start of one-file triage, beside the standalone tools analysts would otherwise run.

Prints the median wall time of `restytriage triage --json -` on a small LNK and a small Office
template from the sample set, next to `lnkparse -j` and `olevba -j` on the same files, plus Python's
own start-up as the floor. Run: python benchmarks/bench_startup.py [--runs N]

Installed packages start from bytecode: the package is compiled first, and PYTHONDONTWRITEBYTECODE
(set in some containers) is dropped for the measured commands, or every run would compile our
modules from source (about 0.08 s more than a user's install pays).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from restytriage.samples import all_samples

BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, env=ENV)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pick(suffixes: tuple[str, ...]):
    return next((s for s in all_samples() if s.name.lower().endswith(suffixes)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    import restytriage

    compileall.compile_dir(Path(restytriage.__file__).parent, quiet=1)
    folder = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        print(f"median of {runs} runs, wall seconds")
        print(f"{'python -c pass (floor)':48} {median_seconds([sys.executable, '-c', 'pass'], runs):7.3f}")
        for suffixes, tool in (((".lnk",), "lnkparse"), ((".dot", ".doc"), "olevba")):
            sample = pick(suffixes)
            if sample is None:
                print(f"no {'/'.join(suffixes)} sample in the set yet")
                continue
            path = folder / sample.name
            path.write_bytes(sample.build())
            ours = median_seconds([str(BIN / "restytriage"), "triage", "--json", "-", str(path)], runs)
            print(f"{'restytriage triage --json - ' + sample.name:48.48} {ours:7.3f}")
            standalone = shutil.which(tool, path=str(BIN)) or shutil.which(tool)
            if standalone:
                theirs = median_seconds([standalone, "-j", str(path)], runs)
                print(
                    f"{tool + ' -j ' + sample.name:48.48} {theirs:7.3f}   (restytriage/{tool} = {ours / theirs:.2f}x)"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
