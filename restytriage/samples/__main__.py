"""`python -m restytriage.samples manifest [PATH]` rewrites the manifest; `build DIR` writes the set."""

import sys
from pathlib import Path

from restytriage.samples import MANIFEST_NAME, build_all, write_manifest

command, *rest = sys.argv[1:] or ["manifest"]
if command == "manifest":
    target = Path(rest[0]) if rest else Path(MANIFEST_NAME)
    write_manifest(target)
    print(f"wrote {target}")
elif command == "build":
    for _sample, path in build_all(Path(rest[0] if rest else "samples")):
        print(path)
else:
    sys.exit("usage: python -m restytriage.samples manifest [PATH] | build [DIR]")
