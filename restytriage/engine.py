"""The triage engine: an explicit work queue of objects, each identified and handed to the analyzers
that claim its type; children re-enter the same queue under the limits. It knows no format.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from restytriage import __version__, analyzers, findings, verdict
from restytriage.analysis import Child, Context, Item, Sibling
from restytriage.blob import Blob, LimitExceeded, OutOfTime
from restytriage.config import Config
from restytriage.identify import FileType, identify
from restytriage.model import (
    IOC,
    SCHEMA_VERSION,
    AnalyzerError,
    FileSummary,
    Node,
    Report,
    Stats,
    Tool,
    sanitized,
    to_builtins,
    walk,
)


@dataclass
class _Task:
    blob: Blob
    name: str
    path: str
    depth: int
    filetype: FileType
    node_id: str
    parent: Node | None = None
    parent_type: str | None = None
    offset: int | None = None
    labels: list[str] = field(default_factory=list)
    siblings: tuple[Sibling, ...] = ()


def triage(path: Path, config: Config | None = None) -> Report:
    """Analyse one file on disk (read in place, never modified)."""
    path = Path(path)
    if not stat.S_ISREG(os.stat(path).st_mode):  # before opening: opening a FIFO would block forever
        raise IsADirectoryError(f"{path} is not a regular file")
    with open(path, "rb"):  # fail early, with the OS's reason, if it cannot be read
        pass
    return triage_blob(Blob(path=path), path.name, config)


def triage_bytes(data: bytes, name: str, config: Config | None = None) -> Report:
    return triage_blob(Blob.of(data), name, config)


def triage_blob(blob: Blob, name: str, config: Config | None = None) -> Report:
    config = config or Config()
    started = time.monotonic()
    ctx = Context(config, None, started + config.limits.max_seconds)
    try:
        root = _run(blob, name, ctx)
    finally:
        ctx.cleanup()
    return _report(root, ctx, time.monotonic() - started)


def _run(blob: Blob, name: str, ctx: Context) -> Node:
    queue = deque([_Task(blob, name, "", 0, identify(blob, name), "0")])
    seen: dict[str, str] = {}  # sha256 -> node id: identical objects are analysed once (quines, loops)
    root: Node | None = None
    out_of_time = False
    while queue:
        task = queue.popleft()
        node = _new_node(task)
        if task.parent is None:
            root = node
        else:
            task.parent.children.append(node)
        if not out_of_time:
            try:
                ctx.check_time()
            except OutOfTime as hit:
                out_of_time = True
                node.findings.append(findings.make(hit.finding_id, "engine", hit.evidence))
        if out_of_time:
            node.errors.append(AnalyzerError("engine", "not analysed: the wall-time limit was reached"))
        elif node.sha256 in seen:
            node.duplicate_of = seen[node.sha256]
            if node.id.startswith(node.duplicate_of + "."):  # it holds itself: a quine, never unpacked twice
                node.findings.append(
                    findings.make(
                        "engine.self_containing", "engine", f"identical to its container {node.duplicate_of}"
                    )
                )
        else:
            seen[node.sha256] = node.id
            children = _analyze(task, node, ctx)
            out_of_time = any(f.id == "limit.time" for f in node.findings)
            queue.extend(_child_tasks(task, node, children, ctx))
        if task.parent is not None:  # the root is the user's own file: nothing to release
            ctx.budget.release(task.blob)
    assert root is not None
    return root


def _new_node(task: _Task) -> Node:
    hashes = task.blob.hashes()
    suffix = PurePosixPath(task.name.replace("\\", "/")).suffix
    return Node(
        id=task.node_id,
        name=task.name,
        path=task.path,
        depth=task.depth,
        size=task.blob.size,
        md5=hashes.md5,
        sha1=hashes.sha1,
        sha256=hashes.sha256,
        type=task.filetype.name,
        description=task.filetype.description,
        extension=suffix[1:].lower().strip() if suffix else "",
        offset=task.offset,
        labels=list(task.labels),
    )


def _analyze(task: _Task, node: Node, ctx: Context) -> list[Child]:
    item = Item(
        blob=task.blob,
        name=task.name,
        type=node.type,
        extension=node.extension,
        depth=task.depth,
        parent_type=task.parent_type,
        siblings=task.siblings,
        labels=tuple(task.labels),
    )
    children: list[Child] = []
    for module in analyzers.for_type(node.type):
        if any(f.id == "limit.time" for f in node.findings):
            break  # an analyzer ran out of time and reported what it had: nothing more runs here
        ctx.limit_hits = []
        try:
            with _time_box(ctx):
                result = module.analyze(item, ctx)
        except OutOfTime as hit:
            node.findings.append(findings.make(hit.finding_id, module.NAME, hit.evidence))
            break
        except LimitExceeded as hit:
            node.findings.append(findings.make(hit.finding_id, module.NAME, hit.evidence))
            continue
        except Exception as err:
            message = f"{type(err).__name__}: {err}"[:500]
            node.errors.append(AnalyzerError(module.NAME, message))
            node.findings.append(findings.make("engine.analyzer_error", module.NAME, message))
            continue
        finally:
            node.findings.extend(ctx.limit_hits)
        if result.metadata:
            node.metadata[module.NAME] = to_builtins(result.metadata)
            item.metadata[module.NAME] = node.metadata[module.NAME]
        node.facts.update({key: str(value) for key, value in result.facts.items()})
        node.findings.extend(result.findings)
        node.iocs.extend(
            IOC(type=i.type, value=i.value, context=i.context, node=node.id) for i in result.iocs
        )
        children.extend(result.children)
    return children


@contextmanager
def _time_box(ctx: Context) -> Iterator[None]:
    """Stop an analyzer stuck in a pure-Python loop (a library's, which cannot call check_time).

    A SIGALRM timer raises OutOfTime inside it at the file's deadline, which no `except Exception` in
    the analyzer or its libraries can swallow. Only possible in the main
    thread (the CLI and batch workers); in Dask threads the cluster client gives the task up instead.
    """
    remaining = ctx.deadline - time.monotonic()
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise OutOfTime(f"wall-time limit of {ctx.config.limits.max_seconds:g}s reached")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _child_tasks(task: _Task, node: Node, children: list[Child], ctx: Context) -> list[_Task]:
    limits = ctx.config.limits
    if not children:
        return []
    if task.depth + 1 > limits.max_depth:
        node.findings.append(
            findings.make(
                "limit.depth",
                "engine",
                f"{len(children)} object(s) at depth {task.depth + 1} not analysed (limit {limits.max_depth})",
            )
        )
        for child in children:
            ctx.budget.release(child.blob)
        return []
    if len(children) > limits.max_children:
        node.findings.append(
            findings.make(
                "limit.children",
                "engine",
                f"{len(children)} objects inside, only the first {limits.max_children} analysed",
            )
        )
        for child in children[limits.max_children :]:
            ctx.budget.release(child.blob)
        children = children[: limits.max_children]
    types = [identify(child.blob, child.name) for child in children]
    siblings = tuple(Sibling(c.name, t.name) for c, t in zip(children, types, strict=True))
    return [
        _Task(
            blob=child.blob,
            name=child.name,
            path=child.path or child.name,
            depth=task.depth + 1,
            filetype=filetype,
            node_id=f"{node.id}.{index}",
            parent=node,
            parent_type=node.type,
            offset=child.offset,
            labels=child.labels,
            siblings=siblings[:index] + siblings[index + 1 :],
        )
        for index, (child, filetype) in enumerate(zip(children, types, strict=True))
    ]


def _report(root: Node, ctx: Context, duration: float) -> Report:
    nodes = list(walk(root))
    all_findings = [f for n in nodes for f in n.findings]
    outcome = verdict.decide(all_findings)
    iocs: dict[tuple[str, str], IOC] = {}
    for node in nodes:
        for ioc in node.iocs:
            iocs.setdefault((ioc.type, ioc.value.lower()), ioc)
    return sanitized(
        Report(
            schema_version=SCHEMA_VERSION,
            tool=Tool("restytriage", __version__),
            generated=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            file=FileSummary(root.name, root.size, root.md5, root.sha1, root.sha256, root.type),
            verdict=outcome.verdict,
            score=outcome.score,
            reasons=outcome.reasons,
            techniques=verdict.techniques(all_findings),
            iocs=sorted(iocs.values(), key=lambda i: (i.type, i.value)),
            stats=Stats(
                nodes=len(nodes),
                bytes_unpacked=ctx.budget.total,
                duration_s=round(duration, 3),
                limits_hit=sorted(
                    {f"{f.id}: {f.evidence}" for f in all_findings if f.id.startswith("limit.")}
                ),
            ),
            root=root,
        )
    )
