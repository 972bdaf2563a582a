"""Regenerate docs/findings.md from restytriage/data/findings/*.toml: python docs/make_findings_table.py"""

from pathlib import Path

from restytriage.findings import catalogue

out = Path(__file__).resolve().parent / "findings.md"
out.write_text(catalogue(), "utf-8")
print(f"{out} written")
