"""Where a pod may run: tolerations, node and pod (anti-)affinity and topology spread
constraints, as k8s ``ValidateTolerations``, ``validateAffinity`` and
``validateTopologySpreadConstraints``.

Quirks kept: a toleration's bad value is reported at ``operator``, and a pod affinity
term's bad namespace at ``namespace`` (singular).
"""

from __future__ import annotations

from typing import Final

from api import validation as v
from api.errors import Cause
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_list,
    get_list,
    get_map,
    get_str,
    is_int,
    items,
    optional_one_of,
)

TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS: Final = ("Equal", "Exists")
_NODE_OPERATORS: Final = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
_WEIGHT: Final = "must be in the range 1-100"
_ANY_KEY: Final = (
    'operator must be Exists when `key` is empty, which means "match all values and all keys"'
)


def validate_tolerations(spec: Obj, path: str) -> list[Cause]:
    causes = expect_list(spec, "tolerations", path)
    for item_path, toleration in items(spec, "tolerations", path):
        key, operator = toleration.get("key") or "", toleration.get("operator") or ""
        effect, value = toleration.get("effect") or "", toleration.get("value") or ""
        if key:
            causes += v.label_key(key, f"{item_path}.key")
        if not key and operator != "Exists":
            causes.append(v.invalid_value(f"{item_path}.operator", operator, detail=_ANY_KEY))
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            detail = "effect must be 'NoExecute' when `tolerationSeconds` is set"
            causes.append(v.invalid_value(f"{item_path}.effect", effect, detail=detail))
        if operator in ("Equal", ""):
            problems = (
                v.is_valid_label_value(value) if isinstance(value, str) else ["must be a string"]
            )
            if problems:
                causes.append(
                    v.invalid_value(f"{item_path}.operator", value, detail=";".join(problems))
                )
        elif operator == "Exists":
            if value:
                detail = "value must be empty when `operator` is 'Exists'"
                causes.append(v.invalid_value(f"{item_path}.operator", value, detail=detail))
        else:
            causes.append(
                v.not_supported(f"{item_path}.operator", operator, supported=TOLERATION_OPERATORS)
            )
        if effect:
            causes += optional_one_of(toleration, "effect", f"{item_path}.effect", TAINT_EFFECTS)
    return causes


def validate_affinity(spec: Obj, path: str) -> list[Cause]:
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        return []
    causes: list[Cause] = []
    node = affinity.get("nodeAffinity")
    if isinstance(node, dict):
        causes += _node_affinity(node, f"{path}.nodeAffinity")
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = affinity.get(kind)
        if isinstance(terms, dict):
            causes += _pod_affinity(terms, f"{path}.{kind}")
    return causes


def _node_affinity(node: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    required_path = f"{path}.requiredDuringSchedulingIgnoredDuringExecution"
    required = node.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required, dict):
        terms_path = f"{required_path}.nodeSelectorTerms"
        if not get_list(required, "nodeSelectorTerms"):
            causes.append(v.required(terms_path, "must have at least one node selector term"))
        for term_path, term in items(required, "nodeSelectorTerms", terms_path):
            causes += node_selector_term(term, term_path, check_values=True)
    preferred_path = f"{path}.preferredDuringSchedulingIgnoredDuringExecution"
    for item_path, preferred in items(
        node, "preferredDuringSchedulingIgnoredDuringExecution", preferred_path
    ):
        causes += _weight(preferred, item_path)
        # Kubernetes always accepts invalid label values here: a preference may match nothing.
        term = get_map(preferred, "preference")
        causes += node_selector_term(term, f"{item_path}.preference", check_values=False)
    return causes


def _weight(item: Obj, path: str) -> list[Cause]:
    weight = item.get("weight", 0)
    if not is_int(weight) or not 0 < weight <= 100:
        return [v.invalid_value(f"{path}.weight", weight, detail=_WEIGHT)]
    return []


def node_selector_term(term: Obj, path: str, *, check_values: bool) -> list[Cause]:
    causes: list[Cause] = []
    for req_path, req in items(term, "matchExpressions", f"{path}.matchExpressions"):
        operator, values = req.get("operator", ""), get_list(req, "values")
        if operator in ("In", "NotIn") and not values:
            detail = "must be specified when `operator` is 'In' or 'NotIn'"
            causes.append(v.required(f"{req_path}.values", detail))
        elif operator in ("Exists", "DoesNotExist") and values:
            detail = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            causes.append(v.forbidden(f"{req_path}.values", detail))
        elif operator in ("Gt", "Lt") and len(values) != 1:
            detail = "must be specified single value when `operator` is 'Lt' or 'Gt'"
            causes.append(v.required(f"{req_path}.values", detail))
        elif operator not in _NODE_OPERATORS:
            detail = "not a valid selector operator"
            causes.append(v.invalid_value(f"{req_path}.operator", operator, detail=detail))
        causes += v.label_key(req.get("key", ""), f"{req_path}.key")
        if check_values:
            for i, value in enumerate(values):
                causes += v.label_value(value, f"{req_path}.values[{i}]")
    for req_path, req in items(term, "matchFields", f"{path}.matchFields"):
        values = get_list(req, "values")
        if req.get("operator") in ("In", "NotIn"):
            if len(values) != 1:
                detail = (
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field "
                    "selector"
                )
                causes.append(v.required(f"{req_path}.values", detail))
        else:
            detail = "not a valid selector operator"
            causes.append(
                v.invalid_value(f"{req_path}.operator", req.get("operator", ""), detail=detail)
            )
        if req.get("key") != "metadata.name":
            detail = "not a valid field selector key"
            causes.append(v.invalid_value(f"{req_path}.key", req.get("key", ""), detail=detail))
        else:
            for i, value in enumerate(values):
                causes += v.dns1123_subdomain(value, f"{req_path}.values[{i}]")
    return causes


def _pod_affinity(affinity: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    required = "requiredDuringSchedulingIgnoredDuringExecution"
    for term_path, term in items(affinity, required, f"{path}.{required}"):
        causes += pod_affinity_term(term, term_path)
    preferred = "preferredDuringSchedulingIgnoredDuringExecution"
    for item_path, weighted in items(affinity, preferred, f"{path}.{preferred}"):
        causes += _weight(weighted, item_path)
        term = get_map(weighted, "podAffinityTerm")
        causes += pod_affinity_term(term, f"{item_path}.podAffinityTerm")
    return causes


def pod_affinity_term(term: Obj, path: str) -> list[Cause]:
    causes = v.label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    causes += v.label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    for namespace in get_list(term, "namespaces"):
        causes += [
            v.invalid_value(f"{path}.namespace", namespace, detail=m)
            for m in v.name_is_dns_label(str(namespace), False)
        ]
    selector = term.get("labelSelector")
    match, mismatch = get_list(term, "matchLabelKeys"), get_list(term, "mismatchLabelKeys")
    for kind, keys in (("matchLabelKeys", match), ("mismatchLabelKeys", mismatch)):
        if keys and not isinstance(selector, dict):
            causes.append(
                v.forbidden(f"{path}.{kind}", "must not be specified when labelSelector is not set")
            )
            continue
        for i, key in enumerate(keys):
            causes += v.label_key(key, f"{path}.{kind}[{i}]")
    for i, key in enumerate(match):
        if key in mismatch:
            detail = "exists in both matchLabelKeys and mismatchLabelKeys"
            causes.append(v.invalid_value(f"{path}.matchLabelKeys[{i}]", key, detail=detail))
    topology = term.get("topologyKey", "")
    if not topology:
        causes.append(v.required(f"{path}.topologyKey", "can not be empty"))
    return causes + v.label_key(topology, f"{path}.topologyKey")


def validate_topology_spread(spec: Obj, path: str) -> list[Cause]:
    causes = expect_list(spec, "topologySpreadConstraints", path)
    constraints = [c for c in get_list(spec, "topologySpreadConstraints") if isinstance(c, dict)]
    for i, constraint in enumerate(constraints):
        item_path = f"{path}[{i}]"
        skew = constraint.get("maxSkew", 0)
        if not is_int(skew) or skew <= 0:
            causes.append(
                v.invalid_value(f"{item_path}.maxSkew", skew, detail="must be greater than zero")
            )
        key = get_str(constraint, "topologyKey")
        if not key:
            causes.append(v.required(f"{item_path}.topologyKey", "can not be empty"))
        action = constraint.get("whenUnsatisfiable", "")
        actions = ("DoNotSchedule", "ScheduleAnyway")
        if action not in actions:
            causes.append(
                v.not_supported(f"{item_path}.whenUnsatisfiable", action, supported=actions)
            )
        for later in constraints[i + 1 :]:
            if later.get("topologyKey") == key and later.get("whenUnsatisfiable") == action:
                causes.append(
                    v.duplicate(
                        f"{item_path}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {action}}}"
                    )
                )
                break
        domains = constraint.get("minDomains")
        if domains is not None:
            if not is_int(domains) or domains <= 0:
                causes.append(
                    v.invalid_value(
                        f"{item_path}.minDomains", domains, detail="must be greater than zero"
                    )
                )
            if action != "DoNotSchedule":
                detail = f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                causes.append(v.invalid_value(f"{item_path}.minDomains", domains, detail=detail))
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            causes += optional_one_of(
                constraint, policy, f"{item_path}.{policy}", ("Honor", "Ignore")
            )
        causes += v.label_selector(constraint.get("labelSelector"), f"{item_path}.labelSelector")
    return causes
