"""Sigma evaluation of one implied process-creation event.

pySigma parses the rules and applies the value modifiers; pySigma itself only converts rules into
SIEM queries, so the matching is done here: every rule is compiled once into plain Python closures
(set look-ups, ``str.startswith``/``endswith`` with tuples, substring tests) so that evaluating all
of SigmaHQ's ~1,200 process_creation rules against an event takes about a millisecond.
Regular expressions and ``?`` wildcards run on RE2 (a pySigma dependency): event strings come from
attacker-controlled shortcuts, and RE2 cannot backtrack catastrophically.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2  # type: ignore[import-untyped]
from sigma.conditions import (
    ConditionAND,
    ConditionIdentifier,
    ConditionNOT,
    ConditionOR,
    ConditionSelector,
    unwrap_parse_result_operand,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.rule.detection import EmptySigmaDetections
from sigma.rule.logsource import EmptyLogSource
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SigmaType,
    SpecialChars,
)

__all__ = ["CompiledRule", "RuleSet", "SigmaMatch", "default_rule_dirs", "load_rules"]

# A prepared event maps the lower-cased field name to (value, lower-cased value): field names in
# events vary in case, and lowering each value once per event beats lowering it once per rule.
Entry = tuple[str, str]
Event = dict[str, Entry]
Pred = Callable[[Event], bool]
ValueTest = Callable[[Entry | None, Event], bool]  # entry is None when the field is absent
StrTest = Callable[[str], bool]

_LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")
_RE2_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}
_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: operator.lt,
    CompareOperators.LTE: operator.le,
    CompareOperators.GT: operator.gt,
    CompareOperators.GTE: operator.ge,
    CompareOperators.NEQ: operator.ne,
}


class _Unsupported(Exception):
    """A rule construct this evaluator cannot honour; the rule is skipped, not half-matched."""


@dataclass(frozen=True)
class SigmaMatch:
    rule_id: str
    title: str
    level: str
    tags: tuple[str, ...]
    techniques: tuple[str, ...]  # ("T1059.003",) from attack.tXXXX tags, upper-cased
    path: str  # rule file


@dataclass(frozen=True, slots=True)
class CompiledRule:
    meta: SigmaMatch  # returned as-is on a match, so matching allocates nothing per rule
    predicate: Pred
    severity: int


@dataclass
class RuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    def match(self, event: Mapping[str, str]) -> list[SigmaMatch]:
        """Every rule matching ``event``, most severe first. Never raises."""
        prepared = _prepare(event)
        hits: list[CompiledRule] = []
        for rule in self.rules:
            try:
                if rule.predicate(prepared):
                    hits.append(rule)
            except Exception:  # a rule bug must not hide the other rules' verdicts
                continue
        hits.sort(key=lambda r: -r.severity)  # stable: ties keep load (path) order
        return [r.meta for r in hits]


def default_rule_dirs() -> list[Path]:
    """The team's rules: repo checkout's top-level ``sigma/``, else the copy inside a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "sigma", here / "data" / "sigma"):
        if candidate.is_dir():
            return [candidate]
    return []


_CACHE: dict[tuple[Any, ...], RuleSet] = {}


def load_rules(dirs: Sequence[Path]) -> RuleSet:
    """Load and compile all ``*.yml``/``*.yaml`` rules below ``dirs``.

    Cached in-process on every file's (path, mtime, size): stat-ing is far cheaper than
    re-parsing, and edited or added rules still invalidate the cache.
    """
    files: list[Path] = []
    missing: list[tuple[str, str]] = []
    for d in map(Path, dirs):
        if d.is_dir():
            files.extend(sorted(p for p in d.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()))
        else:
            missing.append((str(d), "rule directory not found"))
    key = (
        tuple(str(d) for d in dirs),
        tuple((str(p), st.st_mtime_ns, st.st_size) for p in files for st in [p.stat()]),
    )
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    ruleset = RuleSet(skipped=missing)
    for path in files:
        try:
            ruleset.rules.append(_compile_file(path))
        except _Unsupported as exc:
            ruleset.skipped.append((str(path), str(exc)))
        except Exception as exc:  # pySigma/YAML errors: skip the rule, never abort the load
            ruleset.skipped.append((str(path), f"{type(exc).__name__}: {exc}"))
    if len(_CACHE) > 8:  # a few rule sets at most per process; don't grow without bound
        _CACHE.clear()
    _CACHE[key] = ruleset
    return ruleset


def _compile_file(path: Path) -> CompiledRule:
    rule = SigmaRule.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True)
    # Metadata errors (odd date, tag) don't affect matching; broken logsource/detection do.
    if isinstance(rule.logsource, EmptyLogSource) or isinstance(rule.detection, EmptySigmaDetections):
        raise _Unsupported(f"invalid rule: {rule.errors[0] if rule.errors else 'no detection'}")
    ls = rule.logsource
    if ls.category != "process_creation" or ls.product not in (None, "windows"):
        raise _Unsupported(f"logsource category={ls.category} product={ls.product} not process_creation")
    return CompiledRule(_meta(rule, path), _compile_rule(rule), _LEVELS.get(_level(rule), -1))


def _level(rule: SigmaRule) -> str:
    return rule.level.name.lower() if rule.level is not None else ""


def _meta(rule: SigmaRule, path: Path) -> SigmaMatch:
    tags = tuple(str(t) for t in rule.tags)
    techniques = tuple(
        t.name.upper() for t in rule.tags if t.namespace == "attack" and _TECHNIQUE.fullmatch(t.name)
    )
    rid = str(rule.id) if rule.id is not None else ""
    return SigmaMatch(rid, rule.title, _level(rule), tags, techniques, str(path))


def _compile_rule(rule: SigmaRule) -> Pred:
    detections = rule.detection
    named: dict[str, Pred] = {}

    def ident(name: str) -> Pred:
        if name not in named:
            if name not in detections.detections:
                raise _Unsupported(f"condition references undefined detection '{name}'")
            named[name] = _compile_detection(detections.detections[name])
        return named[name]

    def cond(node: Any) -> Pred:
        node = unwrap_parse_result_operand(node)
        if isinstance(node, ConditionIdentifier):
            return ident(node.identifier)
        if isinstance(node, ConditionSelector):  # "1 of sel_*", "all of them"
            names = [i.identifier for i in node.resolve_referenced_detections(detections)]
            if not names:
                raise _Unsupported(f"selector '{node.args[0]} of {node.pattern}' matches no detection")
            preds = [ident(n) for n in names]
            return _all(preds) if node.cond_class is ConditionAND else _any(preds)
        if isinstance(node, ConditionNOT):
            inner = cond(node.args[0])
            return lambda ev: not inner(ev)
        if isinstance(node, ConditionAND):
            return _all([cond(a) for a in node.args])
        if isinstance(node, ConditionOR):
            return _any([cond(a) for a in node.args])
        raise _Unsupported(f"unsupported condition element {type(node).__name__}")

    # Several conditions (a legacy list form) mean: any of them.
    return _any([cond(c.parse(postprocess=False)) for c in detections.parsed_condition])


def _compile_detection(det: SigmaDetection) -> Pred:
    preds = [
        _compile_detection(i) if isinstance(i, SigmaDetection) else _compile_item(i)
        for i in det.detection_items
    ]
    return _all(preds) if det.item_linking is ConditionAND else _any(preds)


def _compile_item(item: SigmaDetectionItem) -> Pred:
    keyword = item.field is None
    values = item.value
    if not values:  # pySigma reads an empty value list as "field is null"
        values = [SigmaNull()]
    if item.value_linking is ConditionAND:  # |all: every value; expansions stay OR inside
        groups = [v.values if isinstance(v, SigmaExpansion) else [v] for v in values]
    else:
        groups = [values]
    tests = [_or_test(g, keyword) for g in groups]
    if keyword:  # keyword (field-less) detections search every field's value
        if any(isinstance(v, (SigmaNull, SigmaExists, SigmaFieldReference)) for v in _flat(values)):
            raise _Unsupported("null/exists/fieldref value needs a field")

        def pred(ev: Event) -> bool:
            return all(any(t(e, ev) for e in ev.values()) for t in tests)
    else:
        key = item.field.lower()  # type: ignore[union-attr]
        if len(tests) == 1:
            test = tests[0]

            def pred(ev: Event) -> bool:
                return test(ev.get(key), ev)
        else:

            def pred(ev: Event) -> bool:
                entry = ev.get(key)
                return all(t(entry, ev) for t in tests)

    if item.negated:  # the |neq modifier
        inner = pred
        return lambda ev: not inner(ev)
    return pred


def _flat(values: Iterable[SigmaType]) -> Iterable[SigmaType]:
    for v in values:
        if isinstance(v, SigmaExpansion):
            yield from _flat(v.values)
        else:
            yield v


def _or_test(values: Iterable[SigmaType], keyword: bool) -> ValueTest:
    """One test for OR-linked values: plain strings are grouped into one set/tuple per operation."""
    buckets: dict[bool, tuple[set[str], list[str], list[str], list[str], list[StrTest]]] = {
        cased: (set(), [], [], [], []) for cased in (False, True)
    }
    extra: list[ValueTest] = []
    on_missing = False  # what an absent field yields: only null / exists:false accept it
    for v in _flat(values):
        if isinstance(v, SigmaString):
            if keyword and not v.startswith(SpecialChars.WILDCARD_MULTI):
                v = SpecialChars.WILDCARD_MULTI + v  # full-text search: a keyword may sit anywhere
            if keyword and not v.endswith(SpecialChars.WILDCARD_MULTI):
                v = v + SpecialChars.WILDCARD_MULTI
            cased = isinstance(v, SigmaCasedString)
            _classify(v, cased, buckets[cased])
        elif isinstance(v, SigmaNull):
            on_missing = True
            extra.append(lambda e, ev: e is not None and e[0] == "")
        elif isinstance(v, SigmaExists):
            on_missing = on_missing or not v.exists
            if v.exists:
                extra.append(lambda e, ev: e is not None)
        elif isinstance(v, SigmaTimestampPart):  # before SigmaNumber: it is a subclass
            raise _Unsupported("timestamp modifiers are not supported")
        elif isinstance(v, SigmaBool):
            buckets[False][0].add("true" if v.boolean else "false")
        elif isinstance(v, SigmaNumber):
            buckets[False][0].add(str(v.number).lower())
        elif isinstance(v, SigmaRegularExpression):
            extra.append(_regex_test(v))
        elif isinstance(v, SigmaCompareExpression):
            extra.append(_compare_test(v))
        elif isinstance(v, SigmaCIDRExpression):
            extra.append(_cidr_test(v))
        elif isinstance(v, SigmaFieldReference):
            extra.append(_fieldref_test(v))
        else:
            raise _Unsupported(f"unsupported value type {type(v).__name__}")
    low = _str_test(*buckets[False])
    orig = _str_test(*buckets[True])

    def test(e: Entry | None, ev: Event) -> bool:
        if e is None:
            return on_missing
        if low is not None and low(e[1]):
            return True
        if orig is not None and orig(e[0]):
            return True
        return any(t(e, ev) for t in extra)

    return test


def _classify(
    v: SigmaString, cased: bool, b: tuple[set[str], list[str], list[str], list[str], list[StrTest]]
) -> None:
    """Sort a wildcard string into equals / startswith / endswith / contains / general glob."""
    eq, sw, ew, ct, fns = b
    norm: Callable[[str], str] = (lambda s: s) if cased else str.lower
    segments: list[str] = [""]  # literal text between '*' wildcards
    single = False
    for part in v.s:
        if isinstance(part, Placeholder):
            raise _Unsupported(f"placeholder %{part.name}% needs a processing pipeline")
        if part is SpecialChars.WILDCARD_MULTI:
            segments.append("")
        elif part is SpecialChars.WILDCARD_SINGLE:
            single = True
        else:
            segments[-1] += norm(part)
    if single:  # '?' present: hand the whole glob to RE2 (linear time)
        pattern = "".join(
            ".*" if p is SpecialChars.WILDCARD_MULTI else "." if p is SpecialChars.WILDCARD_SINGLE else re.escape(norm(str(p)))
            for p in v.s
        )
        fns.append(re2.compile("(?s)" + pattern).fullmatch)
    elif len(segments) == 1:
        eq.add(segments[0])
    elif segments == ["", ""]:
        fns.append(lambda s: True)  # bare '*': any value of a present field
    elif len(segments) == 2 and segments[0] == "":
        ew.append(segments[1])
    elif len(segments) == 2 and segments[1] == "":
        sw.append(segments[0])
    elif len(segments) == 3 and segments[0] == segments[2] == "":
        ct.append(segments[1])
    else:
        fns.append(_glob(segments))


def _glob(segments: list[str]) -> StrTest:
    """'*'-only glob by greedy leftmost search: exact for '*' and without any backtracking."""
    first, mid, last = segments[0], segments[1:-1], segments[-1]
    fixed = len(first) + len(last)

    def match(s: str) -> bool:
        if len(s) < fixed or not s.startswith(first) or not s.endswith(last):
            return False
        pos, end = len(first), len(s) - len(last)
        for seg in mid:
            i = s.find(seg, pos, end)
            if i < 0:
                return False
            pos = i + len(seg)
        return True

    return match


def _str_test(eq: set[str], sw: list[str], ew: list[str], ct: list[str], fns: list[StrTest]) -> StrTest | None:
    """Combine one bucket into a single closure containing only the non-empty checks."""
    checks: list[StrTest] = list(fns)
    if ct:
        needles = tuple(dict.fromkeys(ct))
        if len(needles) == 1:
            needle = needles[0]
            checks.insert(0, lambda s: needle in s)
        else:
            checks.insert(0, lambda s: any(n in s for n in needles))
    if ew:
        suffixes = tuple(ew)
        checks.insert(0, lambda s: s.endswith(suffixes))
    if sw:
        prefixes = tuple(sw)
        checks.insert(0, lambda s: s.startswith(prefixes))
    if eq:
        checks.insert(0, frozenset(eq).__contains__)
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    return lambda s: any(c(s) for c in checks)


def _regex_test(v: SigmaRegularExpression) -> ValueTest:
    flags = "".join(sorted(_RE2_FLAGS[f] for f in v.flags))
    try:
        rx = re2.compile((f"(?{flags})" if flags else "") + str(v.regexp))
    except re2.error as exc:
        raise _Unsupported(f"regex not RE2-compatible: {exc}") from exc
    search = rx.search  # Sigma regexes are unanchored and case-sensitive unless |i
    return lambda e, ev: e is not None and search(e[0]) is not None


def _compare_test(v: SigmaCompareExpression) -> ValueTest:
    op, number = _COMPARE[v.op], v.number.number

    def test(e: Entry | None, ev: Event) -> bool:
        try:
            return e is not None and op(float(e[0]), number)
        except ValueError:
            return False

    return test


def _cidr_test(v: SigmaCIDRExpression) -> ValueTest:
    network = v.network

    def test(e: Entry | None, ev: Event) -> bool:
        try:
            return e is not None and ipaddress.ip_address(e[0].strip()) in network
        except ValueError:
            return False

    return test


def _fieldref_test(v: SigmaFieldReference) -> ValueTest:
    ref, starts, ends = v.field.lower(), v.starts_with, v.ends_with

    def test(e: Entry | None, ev: Event) -> bool:
        other = ev.get(ref)
        if e is None or other is None:
            return False
        s, r = e[1], other[1]
        if starts and ends:
            return r in s
        if starts:
            return s.startswith(r)
        if ends:
            return s.endswith(r)
        return s == r

    return test


def _all(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) and b(ev)
    return lambda ev: all(p(ev) for p in preds)


def _any(preds: list[Pred]) -> Pred:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ev: a(ev) or b(ev)
    return lambda ev: any(p(ev) for p in preds)


def _prepare(event: Mapping[str, str]) -> Event:
    prepared: Event = {}
    for k, v in event.items():
        if v is None:  # a None value is an absent field (Sigma null)
            continue
        s = v if isinstance(v, str) else str(v)  # Sysmon JSON carries ints (ProcessId, ...)
        prepared[str(k).lower()] = (s, s.lower())
    return prepared
