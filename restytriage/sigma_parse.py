"""pySigma's view of a rule file, translated into the plain rule form of ``restytriage.sigma_compile``.

Only imported when the disk cache misses (a rule file, pySigma or this module changed): pySigma,
pyparsing and yaml cost more CPU to import than a shortcut's whole triage. pySigma does the Sigma
part (YAML, modifiers such as windash/base64offset/wide, condition parsing, selector resolution);
this module checks what the evaluator cannot honour (the rule is then skipped with the reason,
never half-matched) and files every string under the one operation it needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import msgspec
import sigma.conditions as sc
import sigma.types as st
import yaml
from sigma.modifiers import SigmaWideModifier, modifier_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaDetections, SigmaRule
from sigma.rule.detection import EmptySigmaDetections
from sigma.rule.logsource import EmptyLogSource

from restytriage.sigma_compile import (
    And,
    Cidr,
    Compare,
    Condition,
    Detection,
    Exists,
    FieldRef,
    Item,
    Not,
    Null,
    Or,
    ParsedRule,
    Ref,
    Regex,
    SkippedFile,
    Text,
    Value,
)

__all__ = ["parse_file"]

_ANY, _ONE = st.SpecialChars.WILDCARD_MULTI, st.SpecialChars.WILDCARD_SINGLE
_COMPARE = {
    st.CompareOperators.LT: "lt",
    st.CompareOperators.LTE: "le",
    st.CompareOperators.GT: "gt",
    st.CompareOperators.GTE: "ge",
    st.CompareOperators.NEQ: "ne",
}
# fieldref's (starts_with, ends_with), as its startswith / endswith / contains modifiers set them
_FIELDREF: dict[tuple[bool, bool], Literal["equals", "startswith", "endswith", "contains"]] = {
    (False, False): "equals",
    (True, False): "startswith",
    (False, True): "endswith",
    (True, True): "contains",
}
# The Sigma spec names "wide" also "utf16le"; pySigma 2.0.1 lacks that alias, so such rules would
# be rejected as using an unknown modifier.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)


class _Unsupported(Exception):
    """A rule construct this evaluator cannot honour: the rule is skipped, never half-matched."""


def parse_file(content: bytes | OSError) -> ParsedRule | SkippedFile:
    """The rule in a file's ``content`` (or the error reading it), or why it is skipped. Never raises."""
    try:
        if isinstance(content, OSError):
            raise content
        parsed = _parse(content.decode("utf-8"))
        # Only a form that decodes again can be cached: a stray type is this rule's problem alone.
        msgspec.msgpack.decode(msgspec.msgpack.encode(parsed), type=ParsedRule)
        return parsed
    except _Unsupported as exc:
        return SkippedFile(str(exc))
    except yaml.YAMLError as exc:
        return SkippedFile(f"invalid YAML: {exc}")
    except Exception as exc:  # pySigma, decoding, IO or type errors: skip the rule, never abort the load
        return SkippedFile(f"{type(exc).__name__}: {exc}")


def _parse(text: str) -> ParsedRule:
    rule = SigmaRule.from_yaml(text, collect_errors=True)
    # Metadata errors (odd date or tag) don't affect matching; a broken logsource/detection does.
    if isinstance(rule.logsource, EmptyLogSource) or isinstance(rule.detection, EmptySigmaDetections):
        raise _Unsupported(f"invalid rule: {rule.errors[0] if rule.errors else 'no detection'}")
    ls = rule.logsource
    if ls.category != "process_creation" or ls.product not in (None, "windows"):
        raise _Unsupported(f"logsource category={ls.category} product={ls.product}: not process_creation")
    detections: dict[str, Detection] = {}
    # The unprocessed parse tree keeps identifiers, so shared detections are stored only once.
    # Several conditions (a legacy list form) mean: any of them.
    conditions = [
        _condition(c.parse(postprocess=False), rule.detection, detections)
        for c in rule.detection.parsed_condition
    ]
    return ParsedRule(
        rule_id=str(rule.id or ""),
        title="" if rule.title is None else str(rule.title),  # YAML may give a number, or nothing
        level=rule.level.name.lower() if rule.level is not None else "",
        tags=tuple(str(t) for t in rule.tags),
        condition=conditions[0] if len(conditions) == 1 else Or(tuple(conditions)),
        detections=detections,
    )


def _condition(node: object, all_detections: SigmaDetections, used: dict[str, Detection]) -> Condition:
    """The condition as a tree of Ref/And/Or/Not; ``used`` collects the detections it refers to."""
    node = sc.unwrap_parse_result_operand(node)

    def ref(name: str) -> Ref:
        if name not in used:
            if name not in all_detections.detections:
                raise _Unsupported(f"condition references undefined detection '{name}'")
            used[name] = _detection(all_detections.detections[name])
        return Ref(name)

    if isinstance(node, sc.ConditionIdentifier):
        return ref(node.identifier)
    if isinstance(node, sc.ConditionSelector):  # "1 of selection_*", "all of them"
        names = [i.identifier for i in node.resolve_referenced_detections(all_detections)]
        if not names:
            raise _Unsupported(f"'{node.args[0]} of {node.pattern}' matches no detection")
        refs = tuple(ref(n) for n in names)
        return refs[0] if len(refs) == 1 else (And if node.cond_class is sc.ConditionAND else Or)(refs)
    if isinstance(node, sc.ConditionNOT):
        return Not(_condition(node.args[0], all_detections, used))
    if isinstance(node, (sc.ConditionAND, sc.ConditionOR)):
        args = tuple(_condition(a, all_detections, used) for a in node.args)
        return And(args) if isinstance(node, sc.ConditionAND) else Or(args)
    raise _Unsupported(f"unsupported condition element {type(node).__name__}")


def _detection(det: SigmaDetection) -> Detection:
    parts = tuple(_detection(i) if isinstance(i, SigmaDetection) else _item(i) for i in det.detection_items)
    return Detection(conj=det.item_linking is sc.ConditionAND, parts=parts)


def _item(item: SigmaDetectionItem) -> Item:
    values = item.value or [st.SigmaNull()]  # pySigma reads an empty value list as null
    if item.value_linking is sc.ConditionAND:  # |all: every value; an expansion stays OR inside
        groups = tuple(tuple(_values([v], item.field)) for v in values)
    else:
        groups = (tuple(_values(values, item.field)),)
    return Item(field=item.field, groups=groups, negated=item.negated)  # negated: |neq


def _values(values: Iterable[st.SigmaType], fieldname: str | None) -> Iterable[Value]:
    for v in values:
        if isinstance(v, st.SigmaExpansion):  # windash/base64offset: plain alternatives in an OR
            yield from _values(v.values, fieldname)
        elif isinstance(v, st.SigmaString):
            if fieldname is None:  # a keyword may sit anywhere inside a value
                v = v if v.startswith(_ANY) else _ANY + v
                v = v if v.endswith(_ANY) else v + _ANY
            yield _text(v, isinstance(v, st.SigmaCasedString))
        elif isinstance(v, st.SigmaNull):
            yield Null()
        elif isinstance(v, st.SigmaExists):
            yield Exists(v.exists)
        elif isinstance(v, st.SigmaTimestampPart):  # checked before SigmaNumber: it is a subclass
            raise _Unsupported("timestamp modifiers are not supported")
        elif isinstance(v, (st.SigmaBool, st.SigmaNumber)):
            yield Text("equals", str(v).lower(), False)  # "true"/"false", "4624": compared as strings
        elif isinstance(v, st.SigmaRegularExpression):
            flags = "".join(sorted(v.sigma_to_re_flag[f] for f in v.flags))
            # pySigma validated the regex with RE2 (an invalid one makes the rule invalid).
            yield Regex((f"(?{flags})" if flags else "") + str(v.regexp))
        elif isinstance(v, st.SigmaCompareExpression):
            yield Compare(_COMPARE[v.op], v.number.number)
        elif isinstance(v, st.SigmaCIDRExpression):
            yield Cidr(str(v.network))
        elif isinstance(v, st.SigmaFieldReference):
            yield FieldRef(v.field, _FIELDREF[v.starts_with, v.ends_with])
        else:
            raise _Unsupported(f"unsupported value type {type(v).__name__}")


def _text(v: st.SigmaString, cased: bool) -> Text:
    """Classify a wildcard string as equals / startswith / endswith / contains, else an RE2 glob."""
    norm = (lambda s: s) if cased else str.lower
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
        return Text("glob", "".join(rx), cased)
    if n == 1:
        return Text("equals", first, cased)
    if n == 2 and not first:  # also '*' alone: endswith("") is always true
        return Text("endswith", last, cased)
    if n == 2:
        return Text("startswith", first, cased)
    return Text("contains", segments[1], cased)
