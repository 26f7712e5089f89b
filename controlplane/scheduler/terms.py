"""The scheduling terms of a pod spec, parsed once into matchers: taints and
tolerations, node selector terms (node affinity), pod affinity terms and topology
spread constraints.

Parsing never raises for a pod the apiserver accepted; for anything else (an object
written before validation existed, or by a buggy client) it raises ``TermError`` with the
field path, which the plugins turn into a FailedScheduling reason for that one pod.
Semantics are Kubernetes': ``v1helper.TolerationsTolerateTaint``,
``nodeaffinity.NodeSelector`` (terms ORed, requirements ANDed, an empty term matches
nothing), ``framework.AffinityTerm`` (no namespaces and no namespaceSelector means the
pod's own namespace; an empty namespaceSelector means every namespace), and
``matchLabelKeys``/``mismatchLabelKeys`` merged into the selector with the pod's values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from api import errors
from api.selectors import LabelSelector, Operator, Requirement

NO_SCHEDULE: Final = "NoSchedule"
PREFER_NO_SCHEDULE: Final = "PreferNoSchedule"
NO_EXECUTE: Final = "NoExecute"
HOSTNAME: Final = "kubernetes.io/hostname"

_NODE_OPERATORS: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}


class TermError(ValueError):
    """A term the scheduler cannot read; the message names the field and the problem."""


# --- taints and tolerations ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str

    def __str__(self) -> str:
        # as Kubernetes prints one in "node(s) had untolerated taint {key: value}"
        return f"{{{self.key}: {self.value}}}"


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.operator in ("Equal", "") and self.value == taint.value


def parse_taints(raw: Any) -> tuple[Taint, ...]:
    return tuple(
        Taint(str(t.get("key") or ""), str(t.get("value") or ""), str(t.get("effect") or ""))
        for t in raw or ()
        if isinstance(t, dict)
    )


def parse_tolerations(raw: Any) -> tuple[Toleration, ...]:
    return tuple(
        Toleration(
            str(t.get("key") or ""),
            str(t.get("operator") or "Equal"),
            str(t.get("value") or ""),
            str(t.get("effect") or ""),
        )
        for t in raw or ()
        if isinstance(t, dict)
    )


def tolerated(taint: Taint, tolerations: Sequence[Toleration]) -> bool:
    return any(t.tolerates(taint) for t in tolerations)


# --- node selector terms (node affinity) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    labels: LabelSelector  # matchExpressions
    names_in: frozenset[str] | None = None  # matchFields metadata.name In
    names_not_in: frozenset[str] = frozenset()
    empty: bool = False  # an empty term matches no node

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        if self.empty:
            return False
        if self.names_in is not None and name not in self.names_in:
            return False
        if name in self.names_not_in:
            return False
        return self.labels.matches(labels)


@dataclass(frozen=True, slots=True)
class NodeSelector:
    """Terms ORed (``requiredDuringScheduling...nodeSelectorTerms``)."""

    terms: tuple[NodeSelectorTerm, ...]

    def matches(self, name: str, labels: Mapping[str, str]) -> bool:
        return any(term.matches(name, labels) for term in self.terms)


@dataclass(frozen=True, slots=True)
class PreferredTerm:
    weight: int
    term: NodeSelectorTerm


def _requirement(expr: Any, path: str) -> Requirement:
    if not isinstance(expr, dict):
        raise TermError(f"{path}: must be an object")
    key, op = expr.get("key"), expr.get("operator")
    values = expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise TermError(f"{path}.key: Required value")
    if op not in _NODE_OPERATORS:
        raise TermError(f"{path}.operator: Unsupported value: {op!r}")
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TermError(f"{path}.values: must be a list of strings")
    operator = _NODE_OPERATORS[op]
    if operator in (Operator.GREATER_THAN, Operator.LESS_THAN) and (
        len(values) != 1 or not values[0].lstrip("+-").isdigit()
    ):
        raise TermError(f"{path}.values: must be a single integer for {op}")
    try:
        return Requirement(key, operator, tuple(values))
    except ValueError as e:
        raise TermError(f"{path}.values: {e}") from None


def parse_node_selector_term(raw: Any, path: str) -> NodeSelectorTerm:
    if not isinstance(raw, dict):
        raise TermError(f"{path}: must be an object")
    exprs = raw.get("matchExpressions") or []
    fields = raw.get("matchFields") or []
    if not exprs and not fields:
        return NodeSelectorTerm(LabelSelector(), empty=True)
    reqs = tuple(_requirement(e, f"{path}.matchExpressions[{i}]") for i, e in enumerate(exprs))
    names_in: frozenset[str] | None = None
    names_not_in: set[str] = set()
    for i, f in enumerate(fields):
        where = f"{path}.matchFields[{i}]"
        if not isinstance(f, dict) or f.get("key") != "metadata.name":
            raise TermError(f"{where}.key: only metadata.name can be matched")
        values = frozenset(str(v) for v in f.get("values") or [])
        if f.get("operator") == "In":
            names_in = values if names_in is None else names_in & values
        elif f.get("operator") == "NotIn":
            names_not_in |= values
        else:
            raise TermError(f"{where}.operator: Unsupported value: {f.get('operator')!r}")
    return NodeSelectorTerm(LabelSelector(reqs), names_in, frozenset(names_not_in))


def parse_node_selector(raw: Any, path: str) -> NodeSelector:
    terms = (raw or {}).get("nodeSelectorTerms") if isinstance(raw, dict) else None
    if not isinstance(terms, list):
        raise TermError(f"{path}.nodeSelectorTerms: must be a list")
    return NodeSelector(
        tuple(
            parse_node_selector_term(t, f"{path}.nodeSelectorTerms[{i}]")
            for i, t in enumerate(terms)
        )
    )


def parse_preferred_terms(raw: Any, path: str) -> tuple[PreferredTerm, ...]:
    result = []
    for i, item in enumerate(raw or []):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise TermError(f"{where}: must be an object")
        weight = item.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise TermError(f"{where}.weight: must be an integer")
        term = parse_node_selector_term(item.get("preference") or {}, f"{where}.preference")
        if weight:
            result.append(PreferredTerm(weight, term))
    return tuple(result)


# --- pod affinity terms ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None  # None: not given (selects no namespace)
    topology_key: str
    weight: int = 0  # preferred terms only

    def matches(
        self, namespace: str, labels: Mapping[str, str], ns_labels: Mapping[str, str]
    ) -> bool:
        if namespace in self.namespaces or (
            self.namespace_selector is not None and self.namespace_selector.matches(ns_labels)
        ):
            return self.selector.matches(labels)
        return False

    @property
    def all_namespaces(self) -> bool:
        return self.namespace_selector is not None and self.namespace_selector.empty


def _selector(raw: Any, path: str) -> LabelSelector:
    try:
        return LabelSelector.from_object(raw, field=path)
    except errors.Invalid as e:
        raise TermError(e.message) from None


def parse_affinity_term(
    raw: Any, path: str, *, namespace: str, labels: Mapping[str, str], weight: int = 0
) -> AffinityTerm:
    if not isinstance(raw, dict):
        raise TermError(f"{path}: must be an object")
    topology_key = raw.get("topologyKey")
    if not isinstance(topology_key, str) or not topology_key:
        raise TermError(f"{path}.topologyKey: Required value: can not be empty")
    selector = _selector(raw.get("labelSelector"), f"{path}.labelSelector")
    extra: list[Requirement] = []
    if not selector.selects_nothing:
        for key in raw.get("matchLabelKeys") or []:
            if key in labels:
                extra.append(Requirement(key, Operator.IN, (labels[key],)))
        for key in raw.get("mismatchLabelKeys") or []:
            if key in labels:
                extra.append(Requirement(key, Operator.NOT_IN, (labels[key],)))
    if extra:
        selector = LabelSelector((*selector.requirements, *extra))
    raw_ns_selector = raw.get("namespaceSelector")
    ns_selector = (
        None if raw_ns_selector is None else _selector(raw_ns_selector, f"{path}.namespaceSelector")
    )
    namespaces = frozenset(str(n) for n in raw.get("namespaces") or [])
    if not namespaces and ns_selector is None:
        namespaces = frozenset({namespace})
    return AffinityTerm(selector, namespaces, ns_selector, topology_key, weight)


def parse_affinity_terms(
    raw: Any, path: str, *, namespace: str, labels: Mapping[str, str], weighted: bool
) -> tuple[AffinityTerm, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TermError(f"{path}: must be a list")
    result = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if weighted:
            if not isinstance(item, dict):
                raise TermError(f"{where}: must be an object")
            weight = item.get("weight")
            if not isinstance(weight, int) or isinstance(weight, bool):
                raise TermError(f"{where}.weight: must be an integer")
            term = parse_affinity_term(
                item.get("podAffinityTerm"), f"{where}.podAffinityTerm",
                namespace=namespace, labels=labels, weight=weight,
            )  # fmt: skip
        else:
            term = parse_affinity_term(item, where, namespace=namespace, labels=labels)
        result.append(term)
    return tuple(result)


# --- topology spread constraints -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    max_skew: int
    topology_key: str
    hard: bool  # whenUnsatisfiable: DoNotSchedule
    selector: LabelSelector
    min_domains: int = 1
    honor_node_affinity: bool = True  # nodeAffinityPolicy Honor (the default)
    honor_node_taints: bool = False  # nodeTaintsPolicy Ignore (the default)
    owner_uid: str = ""  # the system default constraints match the pods of one controller

    def matches(self, labels: Mapping[str, str], owner_uid: str) -> bool:
        if self.owner_uid:
            return owner_uid == self.owner_uid
        return self.selector.matches(labels)


def parse_spread_constraints(
    raw: Any, path: str, *, labels: Mapping[str, str]
) -> tuple[SpreadConstraint, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TermError(f"{path}: must be a list")
    result = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            raise TermError(f"{where}: must be an object")
        skew = item.get("maxSkew")
        if not isinstance(skew, int) or isinstance(skew, bool) or skew <= 0:
            raise TermError(f"{where}.maxSkew: Invalid value: {skew!r}: must be greater than zero")
        key = item.get("topologyKey")
        if not isinstance(key, str) or not key:
            raise TermError(f"{where}.topologyKey: Required value: can not be empty")
        action = item.get("whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            raise TermError(f"{where}.whenUnsatisfiable: Unsupported value: {action!r}")
        selector = _selector(item.get("labelSelector"), f"{where}.labelSelector")
        keys = [k for k in item.get("matchLabelKeys") or [] if k in labels]
        if keys and not selector.selects_nothing:
            selector = LabelSelector(
                (*selector.requirements, *(Requirement(k, Operator.IN, (labels[k],)) for k in keys))
            )
        min_domains = item.get("minDomains") or 1
        if not isinstance(min_domains, int) or min_domains < 1:
            raise TermError(f"{where}.minDomains: must be greater than zero")
        result.append(
            SpreadConstraint(
                skew, key, action == "DoNotSchedule", selector, min_domains,
                item.get("nodeAffinityPolicy", "Honor") != "Ignore",
                item.get("nodeTaintsPolicy", "Ignore") == "Honor",
            )
        )  # fmt: skip
    return tuple(result)
