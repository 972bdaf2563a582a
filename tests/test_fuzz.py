"""Fuzzing every parser boundary with hypothesis, seeded from the sample set and the public corpus.

Three layers:
- each analyzer's `analyze()` on mutated seeds of the types it claims (bit flips, truncations,
  4-byte fields set to extreme values, deletions, splices of other seeds). The engine would turn any
  exception into a finding, so what fails here is narrower: an exception raised by our own code, or
  an exception type that says "unchecked parse" wherever it comes from (IndexError, KeyError,
  struct.error, TypeError, RecursionError, ...), or a call that ignores the time limit;
- a sweep that sets every 4-byte field of the seeds' headers to 0xFFFFFFFF in turn (and every
  number of two PDFs to an extreme);
- the engine on mutated seeds of every type and on any name: it always returns a report that
  encodes and validates against docs/report.schema.json, within the time limit and a memory ceiling.
Inputs that once broke an analyzer are kept in tests/regressions/ and replayed here.

RESTYTRIAGE_FUZZ_SCALE multiplies every example count (e.g. 20 for a longer local run).
"""

from __future__ import annotations

import binascii
import gzip
import json
import os
import re
import signal
import struct
import time
import traceback
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from restytriage import analyzers
from restytriage.analysis import Analysis, Context, Item
from restytriage.blob import Blob, LimitExceeded, OutOfTime
from restytriage.config import Config, Limits
from restytriage.engine import triage_bytes
from restytriage.identify import identify
from restytriage.model import to_builtins, to_json, walk
from restytriage.samples import all_samples, iso_writer
from restytriage.samples.cfb_writer import build_ole10native

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
REGRESSIONS = Path(__file__).parent / "regressions"
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((ROOT / "docs" / "report.schema.json").read_text("utf-8"))
)
PACKAGE = str(ROOT / "restytriage")

SCALE = max(1, int(os.environ.get("RESTYTRIAGE_FUZZ_SCALE", "1")))
MAX_SEED = 64 << 10  # larger seeds make each example slow without reaching other code
LIMIT_S = 4.0  # the run's wall-time limit in these tests
GRACE_S = 6.0  # how far past it one call may go (the limit is cooperative) before it counts as a hang
MEMORY_CEILING = 256 << 20  # traced peak for one small input: a few MiB are normal
CONFIG = Config(
    limits=Limits(max_seconds=LIMIT_S, max_total_bytes=32 << 20, max_member_bytes=8 << 20),
    builtin_rules=True,
)
# Exception types that mean an unchecked read, whichever code raised them.
UNCHECKED = (
    IndexError,
    KeyError,
    struct.error,
    TypeError,
    AttributeError,
    RecursionError,
    ZeroDivisionError,
    OverflowError,
    UnboundLocalError,
    NameError,
    AssertionError,
    MemoryError,
)
EXTREMES = (0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 0x00010000, 0)
GO_MARKERS = (
    b"\xff Go buildinf:",
    b'\xff Go build ID: "',
    b"\xf1\xff\xff\xff\x00\x00",
    b"\xf0\xff\xff\xff\x00\x00",
    b"\xfa\xff\xff\xff\x00\x00",
    b"\xfb\xff\xff\xff\x00\x00",
)


# --- seeds -----------------------------------------------------------------------------------------


def _rtf_seed() -> bytes:
    """An RTF dropper shape (the sample set has none): a DDEAUTO field and an OLE Package object."""

    def text(value: bytes) -> bytes:
        return struct.pack("<I", len(value) + 1) + value + b"\x00"

    package = build_ole10native("invoice.exe", b"MZ" + bytes(62), "C:\\a\\invoice.exe", "C:\\t\\invoice.exe")
    ole1 = (
        struct.pack("<II", 0x501, 2)
        + text(b"Package")
        + text(b"")
        + text(b"")
        + struct.pack("<I", len(package))
    )
    return (
        b'{\\rtf1\\ansi{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc"}}'
        b"{\\object\\objemb\\objupdate{\\*\\objclass Package}{\\*\\objdata "
        + binascii.hexlify(ole1 + package)
        + b"}}}"
    )


def _healthy_iso() -> bytes:
    """An image with a folder (the sample set's images are damaged or UDF-only)."""
    files = [iso_writer.IsoFile("docs/readme.txt", b"hello\r\n"), iso_writer.IsoFile("a.txt", b"x" * 3000)]
    return iso_writer.build(files, volume_id="SWEEP")


def _go_windows(data: bytes) -> bytes:
    """A small stand-in for a Go binary: its headers and a window after each Go marker, so mutations
    reach the build info and pclntab parsers without hashing megabytes per example."""
    pieces = [data[:1024]]
    for marker in GO_MARKERS:
        at = data.find(marker)
        if at >= 0:
            pieces.append(data[max(0, at - 64) : at + (12 << 10)])
    return b"".join(pieces)


@cache
def seeds() -> dict[str, tuple[tuple[str, bytes], ...]]:
    """Seeds by identified type: the sample set, the corpus (when present) and generated shapes."""
    by_type: dict[str, list[tuple[str, bytes]]] = defaultdict(list)

    def add(name: str, data: bytes) -> None:
        if any(marker in data for marker in GO_MARKERS[:2]) and len(data) > MAX_SEED:
            data = _go_windows(data)
        if 0 < len(data) <= MAX_SEED:
            by_type[identify(Blob.of(data), name).name].append((name, data))

    for sample in all_samples():
        add(sample.name, sample.build())
    if CORPUS.is_dir():  # small files, and Go binaries through their marker windows
        for path in sorted(CORPUS.rglob("*")):
            if path.is_file() and path.stat().st_size <= 8 << 20:
                add(str(path.relative_to(CORPUS)), path.read_bytes())
    add("dropper.rtf", _rtf_seed())
    add("healthy.iso", _healthy_iso())
    return {kind: tuple(found) for kind, found in by_type.items()}


def seeds_for(module: ModuleType) -> list[tuple[str, bytes]]:
    claimed = set(module.TYPES) - {"*"} or {"zip", "lnk", "ole", "pe", "pdf", "ooxml", "iso", "data"}
    return [seed for kind in sorted(claimed) for seed in seeds().get(kind, ())]


# --- mutations ---------------------------------------------------------------------------------------

_position = st.integers(min_value=0, max_value=1 << 20)
_edit = st.one_of(
    st.tuples(st.just("flip"), _position, st.integers(0, 7)),
    st.tuples(st.just("byte"), _position, st.integers(0, 255)),
    st.tuples(st.just("field"), _position, st.sampled_from(EXTREMES)),
    st.tuples(st.just("short"), _position, st.sampled_from((0xFFFF, 0x8000, 0))),
    st.tuples(st.just("cut"), _position, st.just(0)),
    st.tuples(st.just("delete"), _position, st.integers(1, 512)),
    st.tuples(st.just("splice"), _position, st.integers(0, 1 << 16)),
)


def mutate(data: bytes, edits: list[tuple[str, int, int]], donor: bytes) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        if not out:
            break
        at = where % len(out)
        if kind == "flip":
            out[at] ^= 1 << value
        elif kind == "byte":
            out[at] = value
        elif kind == "field":
            out[at : at + 4] = struct.pack("<I", value)
        elif kind == "short":
            out[at : at + 2] = struct.pack("<H", value)
        elif kind == "cut":
            del out[max(1, at) :]
        elif kind == "delete":
            del out[at : at + value]
        elif donor:
            start = value % len(donor)
            out[at:at] = donor[start : start + 256]
    return bytes(out)


# --- running one analyzer ------------------------------------------------------------------------------


def unchecked_failure(err: BaseException) -> str | None:
    """Why an exception out of an analyzer is a bug, or None when it is a library's own parse error."""
    frames = traceback.extract_tb(err.__traceback__)
    ours = [f for f in frames if f.filename.startswith(PACKAGE)]
    if frames and frames[-1].filename.startswith(PACKAGE):
        where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}"
        return f"{type(err).__name__} raised by our code at {where}: {err}"
    if isinstance(err, UNCHECKED):
        where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
        return f"{type(err).__name__} from a library, unguarded at {where}: {err}"
    return None


class _Hung(BaseException):
    """Raised by the alarm in a call still running past the hang limit (analyzers catch Exception)."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Interrupt a direct analyzer call stuck in a library loop: the engine boxes analyzers in time,
    a direct call has nothing else to stop it and would hang the test run."""

    def ring(signum: int, frame: object) -> None:
        raise _Hung

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_analyzer(
    module: ModuleType, data: bytes, name: str, tmp: Path, hang_after: float = LIMIT_S + GRACE_S
) -> bool:
    """One direct call, as the engine makes it (False: not a type it claims); fails on a bug or a hang."""
    blob = Blob.of(data)
    filetype = identify(blob, name).name
    if filetype not in module.TYPES and "*" not in module.TYPES:
        return False
    item = Item(blob=blob, name=name, type=filetype, extension=Path(name).suffix[1:].lower(), depth=0)
    started = time.monotonic()
    ctx = Context(CONFIG, tmp, started + LIMIT_S)
    try:
        with _alarm(hang_after):
            result = module.analyze(item, ctx)
    except _Hung:
        pytest.fail(f"{module.NAME} on {name!r} ({len(data)} bytes) still ran after {hang_after:g}s")
    except (LimitExceeded, OutOfTime):
        result = None
    except Exception as err:
        reason = unchecked_failure(err)
        assert reason is None, f"{module.NAME} on {name!r} ({len(data)} bytes): {reason}"
        result = None
    elapsed = time.monotonic() - started
    assert elapsed < hang_after, f"{module.NAME} on {name!r} took {elapsed:.1f}s"
    if result is not None:
        json.dumps(to_builtins(result.metadata))  # what the engine will put in the report
    return True


# --- analyzers, directly ----------------------------------------------------------------------------------

MODULES = {module.NAME: module for module in analyzers.registry()}
EXAMPLES = {  # sized so the whole file runs in about a minute on two cores
    "zip": 300,
    "iso": 300,
    "lnk": 300,
    "ole": 150,
    "ooxml": 300,
    "pdf": 200,
    "rtf": 300,
    "pe": 100,
    "upx": 100,
    "golang": 300,
    "cobaltstrike": 100,
    "compressed": 300,
    "yara": 100,
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_mutated_seeds_never_break_an_analyzer(name: str, tmp_path: Path) -> None:
    module = MODULES[name]
    pool = seeds_for(module)
    assert pool, f"no seeds for {name}"
    examples = EXAMPLES[name] * SCALE
    ran: list[bool] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        seed=st.sampled_from(pool), donor=st.sampled_from(pool), edits=st.lists(_edit, min_size=1, max_size=6)
    )
    def fuzz(seed: tuple[str, bytes], donor: tuple[str, bytes], edits: list[tuple[str, int, int]]) -> None:
        ran.append(run_analyzer(module, mutate(seed[1], edits, donor[1]), seed[0], tmp_path))

    fuzz()
    assert sum(ran) >= examples // 10, f"only {sum(ran)} of {len(ran)} mutations still reached {name}"


_NAME_CHARACTERS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\x00", "\u202e", "\u200f", "\udcff", "\udc80", "/", "\\", ":", ".", " ", "\t"]),
)


@settings(max_examples=150 * SCALE, deadline=None, database=None)
@given(
    name=st.one_of(
        st.text(_NAME_CHARACTERS, max_size=300),
        st.binary(max_size=300).map(lambda raw: raw.decode("utf-8", "surrogateescape")),
    ),
)
def test_any_name_gives_a_valid_report(name: str) -> None:
    report = triage_bytes(b"inert\n", name, Config(builtin_rules=False))
    SCHEMA.validate(json.loads(to_json(report)))
    assert not report.root.errors, report.root.errors


# --- every header field at its extreme --------------------------------------------------------------------


def _sample(name: str) -> bytes:
    return next(s for s in all_samples() if s.name == name).build()


def _pe_headers(data: bytes, start: str = "e_lfanew") -> range:
    """From the DOS header's e_lfanew (or the section table) to the end of the section table, in
    2-byte steps: PE fields are aligned."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    count, optional = struct.unpack_from("<H12xH", data, pe + 6)
    table = pe + 24 + optional
    return range(0x3C if start == "e_lfanew" else table, table + 40 * count, 2)


def _upx_headers(data: bytes) -> list[int]:
    """The section table (names and sizes tell UPX) and every byte of the pack header."""
    pack = data.find(b"UPX!")
    return [*_pe_headers(data, start="sections"), *range(pack - 4, pack + 36)]


def _ole_header_and_directory(data: bytes) -> list[int]:
    first_directory = struct.unpack_from("<I", data, 48)[0]
    directory = 512 + 512 * first_directory
    return [*range(0, 80), *range(directory, directory + 512, 4)]


def _iso_descriptor_and_root(data: bytes) -> list[int]:
    pvd = 16 * 2048
    root = struct.unpack_from("<I", data, pvd + 156 + 2)[0] * 2048
    return [*range(pvd + 80, pvd + 190), *range(root, root + 200)]


def _go_headers(data: bytes) -> list[int]:
    marks = [data.find(marker) for marker in GO_MARKERS]
    return [at + k for at in marks if at >= 0 for k in range(48)]


SWEEPS: dict[str, Callable[[], tuple[str, bytes, list[int] | range]]] = {
    "zip": lambda: ("zip", data := _sample("archive_benign_notes.zip"), range(len(data) - 3)),
    "zip-aes": lambda: ("zip", data := _sample("archive_invoice_aes.zip"), range(len(data) - 3)),
    "ooxml": lambda: (
        "ooxml",
        data := _sample("ooxml_remote_template_https.docx"),
        range(len(data) - 700, len(data) - 3),
    ),
    "lnk": lambda: ("lnk", _sample("seminar_programme.pdf.lnk"), range(400)),
    "ole": lambda: ("ole", data := _sample("meeting_notes.doc"), _ole_header_and_directory(data)),
    "iso": lambda: ("iso", data := _healthy_iso(), _iso_descriptor_and_root(data)),
    "pe": lambda: ("pe", data := _sample("c_fsum.exe"), _pe_headers(data)),
    "upx": lambda: ("upx", data := _sample("c_fsum.upx.exe"), _upx_headers(data)),
    "golang": lambda: ("golang", data := _go_windows(_sample("go_stager.dll")), _go_headers(data)),
}


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
def test_every_header_field_at_its_maximum(sweep: str, tmp_path: Path) -> None:
    name, data, offsets = SWEEPS[sweep]()
    assert run_analyzer(MODULES[name], data, sweep, tmp_path)
    for at in offsets:  # every offset, not only aligned ones: ZIP and LNK fields are unaligned
        run_analyzer(MODULES[name], data[:at] + b"\xff\xff\xff\xff" + data[at + 4 :], sweep, tmp_path)


@pytest.mark.parametrize("sample", ["pdf_with_attachment.pdf", "pdf_openaction_javascript.pdf"])
@pytest.mark.parametrize("value", [b"4294967295", b"-1"])
def test_every_pdf_number_at_an_extreme(sample: str, value: bytes, tmp_path: Path) -> None:
    """The PDF form of a length-field bump: each number (lengths, offsets, object ids) in turn."""
    data = _sample(sample)
    for match in re.finditer(rb"(?<![\w.])\d+(?![\w.])", data):
        run_analyzer(MODULES["pdf"], data[: match.start()] + value + data[match.end() :], sample, tmp_path)


# --- the engine on anything -------------------------------------------------------------------------------


def check_report(data: bytes, name: str) -> None:
    """Any input gives a valid report, in time and within memory (Python allocations, traced)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        report = triage_bytes(data, name, CONFIG)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < LIMIT_S + GRACE_S, f"{name}: {elapsed:.1f}s"
    assert peak < MEMORY_CEILING, f"{name}: {peak:,} bytes at the peak"
    SCHEMA.validate(json.loads(to_json(report)))
    unchecked = [
        (node.name, error.analyzer, error.message)
        for node in walk(report.root)
        for error in node.errors
        if error.message.split(":", 1)[0] in {kind.__name__ for kind in UNCHECKED} | {"error"}
    ]
    assert not unchecked, unchecked


@settings(
    max_examples=300 * SCALE, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(data=st.data())
def test_mutated_seeds_of_every_type_give_a_valid_report_in_time(data: st.DataObject) -> None:
    kinds = sorted(seeds())
    kind = data.draw(st.sampled_from(kinds))
    name, seed = data.draw(st.sampled_from(seeds()[kind]))
    _, donor = data.draw(st.sampled_from(seeds()[data.draw(st.sampled_from(kinds))]))
    check_report(mutate(seed, data.draw(st.lists(_edit, min_size=1, max_size=6)), donor), name)


# --- inputs that once broke something ----------------------------------------------------------------------


def regression_inputs() -> list[Path]:
    return sorted(p for p in REGRESSIONS.iterdir() if p.name.endswith((".bin", ".bin.gz")))


def read_regression(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.name.endswith(".gz") else raw


@pytest.mark.parametrize("path", regression_inputs(), ids=lambda p: p.name)
def test_regression_input_is_handled(path: Path, tmp_path: Path) -> None:
    data = read_regression(path)
    analyzer = path.name.split("-", 1)[0]
    run_analyzer(MODULES[analyzer], data, path.name.removesuffix(".gz"), tmp_path)
    check_report(data, path.name.removesuffix(".gz"))


def test_every_regression_input_is_listed_in_the_readme() -> None:
    readme = (REGRESSIONS / "README.md").read_text("utf-8")
    files = regression_inputs()
    assert files
    for path in files:
        assert f"`{path.name}`" in readme, path.name
        assert path.name.split("-", 1)[0] in MODULES, path.name


def test_fuzz_harness_catches_what_it_is_meant_to(tmp_path: Path) -> None:
    """The harness itself: an unchecked index in analyzer code fails it, a library parse error does not."""

    class Careless:
        NAME, TYPES = "careless", frozenset({"data"})

        @staticmethod
        def analyze(item: Item, ctx: Context) -> Analysis:
            return Analysis("careless", metadata={"tenth": item.blob.read()[10]})

    class Strict(Careless):
        @staticmethod
        def analyze(item: Item, ctx: Context) -> Analysis:
            json.loads(item.blob.read())  # a library's documented parse error: the engine's business
            return Analysis("strict")

    class Stuck(Careless):
        @staticmethod
        def analyze(item: Item, ctx: Context) -> Analysis:
            while True:  # a library loop that never checks the clock
                try:
                    time.sleep(0.05)
                except Exception:  # and swallows what it can
                    continue

    with pytest.raises(pytest.fail.Exception, match="still ran after"):
        run_analyzer(Stuck, bytes(range(5)), "x.bin", tmp_path, hang_after=0.3)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="IndexError"):
        run_analyzer(Careless, bytes(range(5)), "x.bin", tmp_path)  # type: ignore[arg-type]
    assert run_analyzer(Strict, bytes(range(9)), "x.bin", tmp_path)  # type: ignore[arg-type]
    assert mutate(b"\x00" * 8, [("field", 2, 0xFFFFFFFF)], b"") == b"\x00\x00\xff\xff\xff\xff\x00\x00"
    assert mutate(b"abcdef", [("cut", 3, 0), ("splice", 0, 1)], b"XY") == b"Yabc"
