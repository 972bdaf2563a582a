"""The plain rule form ``restytriage.sigma`` caches on disk, and its compilation to predicates.

``restytriage.sigma_parse`` builds the form from pySigma's objects, only when a rule file changed;
every load compiles it here into plain closures (set look-ups, ``str.endswith(tuple)``, substring
tests): all ~1,200 SigmaHQ process_creation rules evaluate against one event in a few milliseconds.
Regexes and ``?`` globs run on RE2, which cannot backtrack catastrophically on attacker-controlled
shortcut strings. The form is plain data that msgspec encodes as nested arrays whose first item
names the class (``["Not", ["Ref", "filter"]]``); decoding validates every field.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import msgspec
import re2  # type: ignore[import-untyped]

# A prepared event maps the lower-cased field name to (value, lower-cased value): field names in
# events vary in case, and lowering each value once per event beats lowering it once per rule.
Entry = tuple[str, str]
Event = dict[str, Entry]
Pred = Callable[[Event], bool]
ValueTest = Callable[[Entry | None, Event], bool]  # entry is None when the field is absent
StrTest = Callable[[str], bool]


# --------------------------------------------------------------------------- the rule form


# gc=False: the form is a tree without cycles, and untracked objects keep the collector from
# walking the ~100,000 of a SigmaHQ set again and again while it is decoded.
class _Plain(msgspec.Struct, frozen=True, array_like=True, tag=True, gc=False):
    pass


class Text(_Plain):
    """A string after modifiers (wildcards, windash, base64, ...) and where it must sit in the value."""

    op: Literal["equals", "startswith", "endswith", "contains", "glob"]
    value: str  # lower-cased unless cased; for "glob", an RE2 pattern matching the whole value
    cased: bool


class Null(_Plain):
    """``null``: the field is absent or empty."""


class Exists(_Plain):
    present: bool  # |exists: true / false


class Regex(_Plain):
    pattern: str  # with its (?ims) flags; searched in the value as written


class Compare(_Plain):
    op: Literal["lt", "le", "gt", "ge", "ne"]  # |lt |lte |gt |gte |neq with a number
    number: int | float


class Cidr(_Plain):
    network: str


class FieldRef(_Plain):
    """|fieldref: this field's value equals (starts with, ...) the referenced field's value."""

    field: str
    op: Literal["equals", "startswith", "endswith", "contains"]


Value = Text | Null | Exists | Regex | Compare | Cidr | FieldRef


class Item(_Plain):
    """One field's check: every group must match, and a group matches when any of its values does."""

    field: str | None  # None: keywords, searched in every field's value
    groups: tuple[tuple[Value, ...], ...]  # one group, or one per value under |all
    negated: bool  # |neq on a string


class Detection(_Plain):
    conj: bool  # a map: all parts; a list: any part
    parts: tuple[Item | Detection, ...]


class Ref(_Plain):
    name: str  # a named detection of the rule


class And(_Plain):
    args: tuple[Condition, ...]


class Or(_Plain):
    args: tuple[Condition, ...]


class Not(_Plain):
    arg: Condition


Condition = Ref | And | Or | Not


# The loader pairs each with its file: paths stay out of the cache (a name need not be UTF-8).
class ParsedRule(_Plain):
    rule_id: str
    title: str
    level: str
    tags: tuple[str, ...]
    condition: Condition  # "1 of sel_*" already resolved to Or/And of Refs
    detections: dict[str, Detection]  # the ones the condition refers to


class SkippedFile(_Plain):
    reason: str


# --------------------------------------------------------------------------- compiling

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "ne": operator.ne,
}
_FIELDREF: dict[str, Callable[[str, str], bool]] = {
    "equals": operator.eq,
    "startswith": str.startswith,
    "endswith": str.endswith,
    "contains": operator.contains,
}


def compile_predicate(rule: ParsedRule) -> Pred:
    """The rule's condition as one closure over a prepared event. Raises on what RE2 rejects."""
    named: dict[str, Pred] = {}

    def cond(node: Condition) -> Pred:
        match node:
            case Ref(name):
                if name not in named:  # compile each named detection once, however often it is used
                    named[name] = _compile_detection(rule.detections[name])
                return named[name]
            case Not(arg):
                inner = cond(arg)
                return lambda ev: not inner(ev)
            case And(args) | Or(args):
                return _link([cond(a) for a in args], isinstance(node, And))
        raise TypeError(f"not a condition: {node!r}")

    return cond(rule.condition)


def _compile_detection(det: Detection) -> Pred:
    preds = [_compile_detection(p) if isinstance(p, Detection) else _compile_item(p) for p in det.parts]
    return _link(preds, det.conj)


def _compile_item(item: Item) -> Pred:
    groups = [_group(values) for values in item.groups]
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
    if item.negated:
        inner = pred
        return lambda ev: not inner(ev)
    return pred


def _group(values: Sequence[Value]) -> tuple[StrTest | None, ValueTest]:
    """OR-linked values as (check of the lower-cased value alone, if that suffices; full check).

    Strings are bucketed by operation: 30 endswith values become one ``str.endswith(tuple)`` call.
    """
    low: dict[str, list[str]] = {}  # Text.op -> values
    cased: dict[str, list[str]] = {}
    extra: list[ValueTest] = []
    on_missing = False  # only null and exists:false accept an absent field
    for v in values:
        match v:
            case Text(op, text, is_cased):
                (cased if is_cased else low).setdefault(op, []).append(text)
            case Null():
                on_missing = True
                extra.append(lambda e, ev: e is not None and e[0] == "")
            case Exists(present):
                on_missing = on_missing or not present
                extra.append(lambda e, ev, x=present: (e is not None) == x)
            case Regex(pattern):
                extra.append(_regex_test(pattern))
            case Compare(op, number):
                extra.append(_typed_test(float, lambda x, op=_COMPARE[op], num=number: op(x, num)))
            case Cidr(network):
                extra.append(_typed_test(ipaddress.ip_address, ipaddress.ip_network(network).__contains__))
            case FieldRef(ref, op):
                extra.append(_fieldref_test(ref, _FIELDREF[op]))
            case _:
                raise TypeError(f"not a value: {v!r}")
    if cased:
        cased_test = _bucket_test(cased)
        extra.append(lambda e, ev: e is not None and cased_test(e[0]))
    low_test = _bucket_test(low) if low else None

    def test(e: Entry | None, ev: Event) -> bool:
        if e is None:
            return on_missing
        return (low_test is not None and low_test(e[1])) or any(t(e, ev) for t in extra)

    return (low_test if low_test is not None and not extra and not on_missing else None), test


def _bucket_test(bucket: dict[str, list[str]]) -> StrTest:
    """One closure for a bucket (op -> strings), containing only the checks that are needed."""
    checks: list[StrTest] = []
    if equals := bucket.get("equals"):
        checks.append(frozenset(equals).__contains__)
    if prefixes := tuple(bucket.get("startswith", ())):
        checks.append(lambda s: s.startswith(prefixes))
    if suffixes := tuple(bucket.get("endswith", ())):
        checks.append(lambda s: s.endswith(suffixes))
    needles = tuple(dict.fromkeys(bucket.get("contains", ())))
    if len(needles) == 1:
        needle = needles[0]
        checks.append(lambda s: needle in s)
    elif len(needles) > 16:  # long lists (emoji, cmdlets): one linear RE2 scan beats N finds
        checks.append(_re2_test("|".join(map(re.escape, needles)), full=False))
    elif needles:
        checks.append(lambda s: any(n in s for n in needles))
    if globs := bucket.get("glob"):
        checks.append(_re2_test("|".join(globs), full=True))
    if len(checks) == 1:
        return checks[0]
    return lambda s: any(c(s) for c in checks)


def _re2_test(pattern: str, full: bool) -> StrTest:
    rx = re2.compile(f"(?s)(?:{pattern})")
    run = rx.fullmatch if full else rx.search
    return lambda s: run(s) is not None


def _regex_test(pattern: str) -> ValueTest:
    # Sigma regexes are unanchored and case-sensitive unless |i, so: search the original value.
    search = re2.compile(pattern).search
    return lambda e, ev: e is not None and search(e[0]) is not None


def _typed_test(convert: Callable[[str], Any], check: Callable[[Any], bool]) -> ValueTest:
    """Numeric and IP comparisons: a value that does not parse simply does not match."""

    def test(e: Entry | None, ev: Event) -> bool:
        try:
            return e is not None and check(convert(e[0].strip()))
        except ValueError:
            return False

    return test


def _fieldref_test(ref: str, op: Callable[[str, str], bool]) -> ValueTest:
    key = ref.lower()
    return lambda e, ev: e is not None and (o := ev.get(key)) is not None and op(e[1], o[1])


def _link(preds: list[Pred], conj: bool) -> Pred:
    """AND (conj) / OR of predicates; two operands ("selection and not filter") skip a generator."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return (lambda ev: a(ev) and b(ev)) if conj else (lambda ev: a(ev) or b(ev))
    return (lambda ev: all(p(ev) for p in preds)) if conj else (lambda ev: any(p(ev) for p in preds))


def prepare_event(event: Mapping[str, str]) -> Event:
    prepared: Event = {}
    for k, v in event.items():
        if v is None:  # a None value is an absent field (Sigma null)
            continue
        s = v if isinstance(v, str) else str(v)  # Sysmon JSON carries ints (ProcessId, ...)
        prepared[str(k).lower()] = (s, s.lower())
    return prepared
