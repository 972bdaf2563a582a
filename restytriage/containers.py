"""What archives and disc images deliver to the user, and how their analyzers word it.

Shared by the container analyzers (ZIP, ISO): which files inside would run when double-clicked,
the short lists their evidence lines show, and the one finding for a spent unpacked-size budget.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from restytriage import findings
from restytriage.analysis import Analysis, Context
from restytriage.identify import EXECUTABLE_TYPES, SCRIPT_EXTENSIONS

# What a container delivers to the user, by content type or by the extension Windows acts on.
SHORTCUT_EXTENSIONS = frozenset(
    ["lnk", "url", "website", "appref-ms", "settingcontent-ms", "library-ms", "searchconnector-ms"]
)
INSTALLER_EXTENSIONS = frozenset(["msi", "msix", "msixbundle", "appx", "appxbundle"])
DISK_IMAGE_EXTENSIONS = frozenset(["iso", "img", "vhd", "vhdx", "udf"])


def delivered_kind(filetype: str, name: str) -> str | None:
    """What running (double-clicking) this object would mean: shortcut, script, executable, disk image."""
    extension = PurePosixPath(name.replace("\\", "/")).suffix.lower().lstrip(".")
    if filetype == "lnk" or extension in SHORTCUT_EXTENSIONS:
        return "shortcut"
    if filetype in EXECUTABLE_TYPES or (extension in INSTALLER_EXTENSIONS and filetype in ("ole", "zip")):
        return "executable"
    if extension in SCRIPT_EXTENSIONS and filetype in ("text", "html", "xml", "data"):
        return "script"
    if filetype == "iso" or extension in DISK_IMAGE_EXTENSIONS:
        return "disk image"
    return None


def listing(items: list[str], shown: int = 8, separator: str = ", ") -> str:
    """The first few items of a list for an evidence line, and how many more there are."""
    text = separator.join(items[:shown])
    return text + (f"{separator}and {len(items) - shown} more" if len(items) > shown else "")


def report_exhausted(ctx: Context, out: Analysis, what: str) -> None:
    """The tree's unpacked-size budget is spent: say so once, unless an extraction already did."""
    if not any(f.id == "limit.total_bytes" for f in [*ctx.limit_hits, *out.findings]):
        out.findings.append(
            findings.make(
                "limit.total_bytes",
                out.analyzer,
                f"{what} left unextracted: the tree already unpacked {ctx.budget.total:,} bytes",
            )
        )
