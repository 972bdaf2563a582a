"""Sigma evaluation of one implied process-creation event.

pySigma parses rules and applies value modifiers but only converts rules to SIEM queries, so each
rule is compiled here into plain closures (set look-ups, ``str.endswith(tuple)``, substring tests):
all ~1,200 SigmaHQ process_creation rules evaluate against one event in a few milliseconds.
Regexes and ``?`` globs run on RE2 (a pySigma dependency), which cannot backtrack catastrophically
on attacker-controlled shortcut strings.
"""

from __future__ import annotations

import ipaddress
import operator
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2  # type: ignore[import-untyped]
import sigma.conditions as sc
import sigma.types as st
import yaml
from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.rule.detection import EmptySigmaDetections
from sigma.rule.logsource import EmptyLogSource

from restytriage.config import shipped

__all__ = ["CompiledRule", "RuleSet", "SigmaMatch", "default_rule_dirs", "load_rules"]

# A prepared event maps the lower-cased field name to (value, lower-cased value): field names in
# events vary in case, and lowering each value once per event beats lowering it once per rule.
Entry = tuple[str, str]
Event = dict[str, Entry]
Pred = Callable[[Event], bool]
ValueTest = Callable[[Entry | None, Event], bool]  # entry is None when the field is absent
StrTest = Callable[[str], bool]

_LEVELS = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_TECHNIQUE = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)
_COMPARE: dict[st.CompareOperators, Callable[[Any, Any], bool]] = {
    st.CompareOperators[name]: getattr(operator, fn)
    for name, fn in (("LT", "lt"), ("LTE", "le"), ("GT", "gt"), ("GTE", "ge"), ("NEQ", "ne"))
}
_ANY, _ONE = st.SpecialChars.WILDCARD_MULTI, st.SpecialChars.WILDCARD_SINGLE
# The Sigma spec names "wide" also "utf16le"; pySigma 2.0.1 lacks that alias, so such rules would
# be rejected as using an unknown modifier.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)


class _Unsupported(Exception):
    """A rule construct this evaluator cannot honour: the rule is skipped, never half-matched."""


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
            except Exception:  # one rule's bug must not hide the other rules' verdicts
                continue
        hits.sort(key=lambda r: -r.severity)  # stable: ties keep load (path) order
        return [r.meta for r in hits]


def default_rule_dirs() -> list[Path]:
    """The team's rules: the repo's ``sigma/`` folder, shipped in the package as data/sigma."""
    folder = shipped("sigma")
    return [folder] if folder.is_dir() else []


_CACHE: dict[tuple[Any, ...], RuleSet] = {}


def load_rules(dirs: Sequence[Path]) -> RuleSet:
    """Load and compile all ``*.yml``/``*.yaml`` rules below ``dirs``; never raises.

    Cached in-process on every file's (path, mtime, size): a stat walk takes a few ms, re-parsing
    about a second, and edits still invalidate it. The cached RuleSet is shared: don't mutate it.
    """
    files: list[tuple[str, int, int]] = []
    missing: list[tuple[str, str]] = []
    for d in map(str, dirs):
        if os.path.isdir(d):
            files.extend(_scan(d))
        else:
            missing.append((d, "rule directory not found"))
    key = (tuple(map(str, dirs)), tuple(files))
    if (cached := _CACHE.get(key)) is not None:
        return cached
    ruleset = RuleSet(skipped=missing)
    for path, _, _ in files:
        try:
            ruleset.rules.append(_compile_file(Path(path)))
        except _Unsupported as exc:
            ruleset.skipped.append((path, str(exc)))
        except yaml.YAMLError as exc:
            ruleset.skipped.append((path, f"invalid YAML: {exc}"))
        except Exception as exc:  # pySigma or IO errors: skip the rule, never abort the load
            ruleset.skipped.append((path, f"{type(exc).__name__}: {exc}"))
    if len(_CACHE) >= 8:  # a handful of rule sets per process at most; don't grow without bound
        _CACHE.clear()
    _CACHE[key] = ruleset
    return ruleset


def _scan(root: str) -> list[tuple[str, int, int]]:
    """(path, mtime_ns, size) of every rule file below root, sorted for a stable rule order."""
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.endswith((".yml", ".yaml")):
                continue
            try:  # a file may vanish mid-walk: leave it out rather than fail the whole load
                stat = os.stat(path := os.path.join(dirpath, name))
            except OSError:
                continue
            found.append((path, stat.st_mtime_ns, stat.st_size))
    return sorted(found)


def _compile_file(path: Path) -> CompiledRule:
    rule = SigmaRule.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True)
    # Metadata errors (odd date or tag) don't affect matching; a broken logsource/detection does.
    if isinstance(rule.logsource, EmptyLogSource) or isinstance(rule.detection, EmptySigmaDetections):
        raise _Unsupported(f"invalid rule: {rule.errors[0] if rule.errors else 'no detection'}")
    ls = rule.logsource
    if ls.category != "process_creation" or ls.product not in (None, "windows"):
        raise _Unsupported(f"logsource category={ls.category} product={ls.product}: not process_creation")
    level = rule.level.name.lower() if rule.level is not None else ""
    tags = tuple(str(t) for t in rule.tags)
    techniques = tuple(m[1].upper() for t in tags if (m := _TECHNIQUE.fullmatch(t)))
    meta = SigmaMatch(str(rule.id or ""), rule.title, level, tags, techniques, str(path))
    return CompiledRule(meta, _compile_rule(rule), _LEVELS.get(level, -1))


def _compile_rule(rule: SigmaRule) -> Pred:
    detections = rule.detection
    named: dict[str, Pred] = {}

    def ident(name: str) -> Pred:
        if name not in named:  # compile each named detection once, however often it is referenced
            if name not in detections.detections:
                raise _Unsupported(f"condition references undefined detection '{name}'")
            named[name] = _compile_detection(detections.detections[name])
        return named[name]

    def cond(node: Any) -> Pred:
        node = sc.unwrap_parse_result_operand(node)
        if isinstance(node, sc.ConditionIdentifier):
            return ident(node.identifier)
        if isinstance(node, sc.ConditionSelector):  # "1 of selection_*", "all of them"
            names = [i.identifier for i in node.resolve_referenced_detections(detections)]
            if not names:
                raise _Unsupported(f"'{node.args[0]} of {node.pattern}' matches no detection")
            preds = [ident(n) for n in names]
            return _link(preds, node.cond_class is sc.ConditionAND)
        if isinstance(node, sc.ConditionNOT):
            inner = cond(node.args[0])
            return lambda ev: not inner(ev)
        if isinstance(node, sc.ConditionAND):
            return _link([cond(a) for a in node.args], True)
        if isinstance(node, sc.ConditionOR):
            return _link([cond(a) for a in node.args], False)
        raise _Unsupported(f"unsupported condition element {type(node).__name__}")

    # The unprocessed parse tree keeps identifiers, so shared detections compile only once.
    # Several conditions (a legacy list form) mean: any of them.
    return _link([cond(c.parse(postprocess=False)) for c in detections.parsed_condition], False)


def _compile_detection(det: SigmaDetection) -> Pred:
    preds = [
        _compile_detection(i) if isinstance(i, SigmaDetection) else _compile_item(i)
        for i in det.detection_items
    ]
    return _link(preds, det.item_linking is sc.ConditionAND)


def _compile_item(item: SigmaDetectionItem) -> Pred:
    values = item.value or [st.SigmaNull()]  # pySigma reads an empty value list as null
    if item.value_linking is sc.ConditionAND:  # |all: every value; an expansion stays OR inside
        groups = [_group(v.values if isinstance(v, st.SigmaExpansion) else [v], item.field) for v in values]
    else:
        groups = [_group(values, item.field)]
    tests = [full for _, full in groups]
    plain = [p for p, _ in groups if p is not None]
    pred: Pred
    if item.field is None:  # keyword detection: full-text search over every field's value
        pred = lambda ev: all(any(t(e, ev) for e in ev.values()) for t in tests)  # noqa: E731
    elif len(plain) < len(groups):  # regex, null, cased, ...: the general path
        key = item.field.lower()
        pred = lambda ev: all(t(ev.get(key), ev) for t in tests)  # noqa: E731
    else:  # the fast path: only checks on the lower-cased value of a present field
        key = item.field.lower()
        test = plain[0] if len(plain) == 1 else (lambda s: all(t(s) for t in plain))
        pred = lambda ev: (e := ev.get(key)) is not None and test(e[1])  # noqa: E731
    if item.negated:  # the |neq modifier
        inner = pred
        return lambda ev: not inner(ev)
    return pred


def _group(values: Iterable[st.SigmaType], fieldname: str | None) -> tuple[StrTest | None, ValueTest]:
    """OR-linked values as (check of the lower-cased value alone, if that suffices; full check).

    Strings are bucketed by operation: 30 endswith values become one ``str.endswith(tuple)`` call.
    """
    low: dict[str, list[str]] = defaultdict(list)  # eq, sw, ew, ct (contains), rx (other globs)
    cased: dict[str, list[str]] = defaultdict(list)
    extra: list[ValueTest] = []
    on_missing = False  # only null and exists:false accept an absent field
    for v in _flat(values):
        if isinstance(v, st.SigmaString):
            if fieldname is None:  # a keyword may sit anywhere inside a value
                v = v if v.startswith(_ANY) else _ANY + v
                v = v if v.endswith(_ANY) else v + _ANY
            is_cased = isinstance(v, st.SigmaCasedString)
            _classify(v, is_cased, cased if is_cased else low)
        elif isinstance(v, st.SigmaNull):  # null: field absent or empty
            on_missing = True
            extra.append(lambda e, ev: e is not None and e[0] == "")
        elif isinstance(v, st.SigmaExists):
            on_missing = on_missing or not v.exists
            extra.append(lambda e, ev, x=v.exists: (e is not None) == x)
        elif isinstance(v, st.SigmaTimestampPart):  # checked before SigmaNumber: it is a subclass
            raise _Unsupported("timestamp modifiers are not supported")
        elif isinstance(v, (st.SigmaBool, st.SigmaNumber)):
            low["eq"].append(str(v).lower())  # "true"/"false", "4624": compared as strings
        elif isinstance(v, st.SigmaRegularExpression):
            extra.append(_regex_test(v))
        elif isinstance(v, st.SigmaCompareExpression):
            op, num = _COMPARE[v.op], v.number.number
            extra.append(_typed_test(float, lambda x, op=op, num=num: op(x, num)))
        elif isinstance(v, st.SigmaCIDRExpression):
            extra.append(_typed_test(ipaddress.ip_address, v.network.__contains__))
        elif isinstance(v, st.SigmaFieldReference):
            extra.append(_fieldref_test(v))
        else:
            raise _Unsupported(f"unsupported value type {type(v).__name__}")
    if (cased_test := _bucket_test(cased)) is not None:
        extra.append(lambda e, ev: e is not None and cased_test(e[0]))
    low_test = _bucket_test(low)

    def test(e: Entry | None, ev: Event) -> bool:
        if e is None:
            return on_missing
        return (low_test is not None and low_test(e[1])) or any(t(e, ev) for t in extra)

    return (low_test if low_test is not None and not extra and not on_missing else None), test


def _flat(values: Iterable[st.SigmaType]) -> Iterable[st.SigmaType]:
    for v in values:  # windash/base64offset expansions are plain alternatives inside an OR
        if isinstance(v, st.SigmaExpansion):
            yield from _flat(v.values)
        else:
            yield v


def _classify(v: st.SigmaString, cased: bool, bucket: dict[str, list[str]]) -> None:
    """File a wildcard string under eq / sw / ew / ct, or as an RE2 regex for any other glob."""
    norm: Callable[[str], str] = (lambda s: s) if cased else str.lower
    segments, single = [""], False  # literal text between '*'s (escaped \* \? stay literal)
    for part in v.s:
        if isinstance(part, st.Placeholder):
            raise _Unsupported(f"placeholder %{part.name}% needs a processing pipeline")
        if part is _ANY:
            segments.append("")
        elif part is _ONE:
            single = True
        else:
            segments[-1] += norm(str(part))
    first, last, n = segments[0], segments[-1], len(segments)
    if single or n > 3 or (n == 3 and (first or last)) or (n == 2 and first and last):
        # Any other glob becomes one RE2 regex: linear time, no backtracking on hostile input.
        rx = (".*" if p is _ANY else "." if p is _ONE else re.escape(norm(str(p))) for p in v.s)
        bucket["rx"].append("".join(rx))
    elif n == 1:
        bucket["eq"].append(first)
    elif n == 2 and not first:  # also '*' alone: endswith("") is always true
        bucket["ew"].append(last)
    elif n == 2:
        bucket["sw"].append(first)
    else:
        bucket["ct"].append(segments[1])


def _bucket_test(b: dict[str, list[str]]) -> StrTest | None:
    """One closure for a bucket, containing only the checks that are actually needed."""
    checks: list[StrTest] = []
    if b["eq"]:
        checks.append(frozenset(b["eq"]).__contains__)
    if prefixes := tuple(b["sw"]):
        checks.append(lambda s: s.startswith(prefixes))
    if suffixes := tuple(b["ew"]):
        checks.append(lambda s: s.endswith(suffixes))
    needles = tuple(dict.fromkeys(b["ct"]))
    if len(needles) == 1:
        needle = needles[0]
        checks.append(lambda s: needle in s)
    elif len(needles) > 16:  # long lists (emoji, cmdlets): one linear RE2 scan beats N finds
        checks.append(_re2_test("|".join(map(re.escape, needles)), full=False))
    elif needles:
        checks.append(lambda s: any(n in s for n in needles))
    if b["rx"]:
        checks.append(_re2_test("|".join(b["rx"]), full=True))
    if len(checks) <= 1:
        return checks[0] if checks else None
    return lambda s: any(c(s) for c in checks)


def _re2_test(pattern: str, full: bool) -> StrTest:
    rx = re2.compile(f"(?s)(?:{pattern})")
    run = rx.fullmatch if full else rx.search
    return lambda s: run(s) is not None


def _regex_test(v: st.SigmaRegularExpression) -> ValueTest:
    flags = "".join(sorted(v.sigma_to_re_flag[f] for f in v.flags))
    # pySigma's default policy already rejected regexes RE2 cannot compile.
    search = re2.compile((f"(?{flags})" if flags else "") + str(v.regexp)).search
    # Sigma regexes are unanchored and case-sensitive unless |i, so: search the original value.
    return lambda e, ev: e is not None and search(e[0]) is not None


def _typed_test(convert: Callable[[str], Any], check: Callable[[Any], bool]) -> ValueTest:
    """Numeric and IP comparisons: a value that does not parse simply does not match."""

    def test(e: Entry | None, ev: Event) -> bool:
        try:
            return e is not None and check(convert(e[0].strip()))
        except ValueError:
            return False

    return test


def _fieldref_test(v: st.SigmaFieldReference) -> ValueTest:
    # fieldref|startswith: this field's value starts with the referenced field's value, etc.
    op = {(False, False): operator.eq, (True, False): str.startswith, (False, True): str.endswith}.get(
        (v.starts_with, v.ends_with), operator.contains
    )
    ref = v.field.lower()
    return lambda e, ev: e is not None and (o := ev.get(ref)) is not None and op(e[1], o[1])


def _link(preds: list[Pred], conj: bool) -> Pred:
    """AND (conj) / OR of predicates; two operands ("selection and not filter") skip a generator."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return (lambda ev: a(ev) and b(ev)) if conj else (lambda ev: a(ev) or b(ev))
    return (lambda ev: all(p(ev) for p in preds)) if conj else (lambda ev: any(p(ev) for p in preds))


def _prepare(event: Mapping[str, str]) -> Event:
    prepared: Event = {}
    for k, v in event.items():
        if v is None:  # a None value is an absent field (Sigma null)
            continue
        s = v if isinstance(v, str) else str(v)  # Sysmon JSON carries ints (ProcessId, ...)
        prepared[str(k).lower()] = (s, s.lower())
    return prepared
