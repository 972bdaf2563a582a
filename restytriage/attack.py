"""ATT&CK technique names from the offline table in data/attack.json (see docs/make_attack_table.py)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def _table() -> dict[str, dict]:
    text = (resources.files("restytriage") / "data" / "attack.json").read_text("utf-8")
    return json.loads(text)["techniques"]


def name(technique_id: str) -> str:
    entry = _table().get(technique_id.upper())
    return entry["name"] if entry else "unknown technique"


def stix_id(technique_id: str) -> str | None:
    entry = _table().get(technique_id.upper())
    return entry["stix_id"] if entry else None


def url(technique_id: str) -> str:
    return "https://attack.mitre.org/techniques/" + technique_id.upper().replace(".", "/")
