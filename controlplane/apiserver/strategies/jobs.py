"""Jobs (batch/v1): defaults, the generated selector and validation, as Kubernetes'
``SetDefaults_Job``, the Job registry's ``generateSelector`` and ``ValidateJob``/
``ValidateJobUpdate``.

Unless ``manualSelector`` is true, a new Job selects its pods by its uid: the template
gets ``batch.kubernetes.io/controller-uid``, ``batch.kubernetes.io/job-name`` and the
legacy ``controller-uid`` and ``job-name`` labels, and the selector matches the first.
A Job without labels gets its template's, as Kubernetes shows it. The template must
say ``restartPolicy: OnFailure`` or ``Never`` (left out, it defaults to Always and is
refused, as in Kubernetes). After creation the selector, template (but scheduling
directives of a suspended Job that never started), completions (but for elastic indexed
Jobs), completion mode and failure policies are immutable.

Fields bramble's Job controller does not implement yet are refused with a 422 naming the
field, rather than accepted and ignored (an Indexed Job would run without its indexes, a
``backoffLimitPerIndex`` Job would never fail): ``completionMode: Indexed``,
``podFailurePolicy``, ``backoffLimitPerIndex``, ``maxFailedIndexes``, ``successPolicy``
and ``podReplacementPolicy: Failed`` (bramble replaces a pod as soon as it is
terminating, which is ``TerminatingOrFailed``). A Job stored with one of them before
keeps it through updates.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Final

from api import validation as v
from api.errors import Cause, Invalid
from api.selectors import LabelSelector
from controlplane.apiserver import kinds
from controlplane.apiserver.strategies.common import (
    Obj,
    expect_map,
    get_map,
    get_str,
    go_label_selector,
    go_string_map,
    immutable,
    invalid_shown,
    is_int,
    mapping,
    non_negative,
    optional_one_of,
)
from controlplane.apiserver.strategies.pods import validate_template
from controlplane.apiserver.strategies.workloads import (
    clear_status,
    default_template,
    selector_matches,
)

CONTROLLER_UID: Final = "batch.kubernetes.io/controller-uid"
JOB_NAME: Final = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID: Final = "controller-uid"
LEGACY_JOB_NAME: Final = "job-name"
COMPLETION_MODES: Final = ("NonIndexed", "Indexed")
_MAX_INDEXED_PARALLELISM: Final = 100000
_SCHEDULING: Final = ("nodeSelector", "tolerations", "schedulingGates")
NOT_YET: Final = "not supported by bramble yet"
# The spec fields bramble's Job controller does not implement, with the values it does
# not (None: any value; the field must be left out). Unknown values are Kubernetes' own
# NotSupported.
_UNSUPPORTED: Final[tuple[tuple[str, tuple[str, ...] | None], ...]] = (
    ("completionMode", ("Indexed",)),
    ("podFailurePolicy", None),
    ("backoffLimitPerIndex", None),
    ("maxFailedIndexes", None),
    ("successPolicy", None),
    ("podReplacementPolicy", ("Failed",)),
)


def default_job(job: Obj) -> None:
    spec = mapping(job, "spec")
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("podReplacementPolicy") is None:
        failed_only = spec.get("podFailurePolicy") is not None
        spec["podReplacementPolicy"] = "Failed" if failed_only else "TerminatingOrFailed"
    default_template(spec)


def _copy_template_labels(job: Obj) -> None:
    meta = mapping(job, "metadata")
    labels = get_map(get_map(get_map(job, "spec"), "template"), "metadata").get("labels")
    if isinstance(labels, dict) and labels and not meta.get("labels"):
        meta["labels"] = dict(labels)


def generate_selector(job: Obj) -> None:
    """Label the template with the Job's name and uid and select by the uid; labels the
    user set are left for validation to judge."""
    meta = get_map(job, "metadata")
    name, uid = get_str(meta, "name"), get_str(meta, "uid")
    spec = mapping(job, "spec")
    labels = mapping(mapping(mapping(spec, "template"), "metadata"), "labels")
    for key in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID, CONTROLLER_UID):
        labels.setdefault(key, uid)
    match_labels = mapping(mapping(spec, "selector"), "matchLabels")
    match_labels.setdefault(CONTROLLER_UID, uid)


def create_job(job: Obj, now: datetime) -> None:
    default_job(job)
    if get_map(job, "spec").get("manualSelector") is not True:
        generate_selector(job)
    _copy_template_labels(job)
    clear_status(job, now)


def update_job(job: Obj, old: Obj, now: datetime) -> None:
    default_job(job)
    _copy_template_labels(job)


def validate_job(job: Obj, old: Obj | None) -> list[Cause]:
    spec = get_map(job, "spec")
    prefixed = old is None or CONTROLLER_UID in _template_labels(get_map(old, "spec"))
    causes = _generated_selector(job, prefixed=prefixed)
    causes += _spec(spec, "spec")
    causes += _not_supported_yet(spec, None if old is None else get_map(old, "spec"))
    if spec.get("selector") is None:
        causes.append(v.required("spec.selector"))
    else:
        causes += v.label_selector(spec.get("selector"), "spec.selector")
    causes += selector_matches(spec, "spec")[1]
    completions = spec.get("completions")
    name = get_str(get_map(job, "metadata"), "name")
    if spec.get("completionMode") == "Indexed" and is_int(completions) and completions > 0:
        hostname = f"{name}-{completions - 1}"
        if v.is_dns1123_label(hostname):
            detail = f"will not able to create pod with invalid DNS label: {hostname}"
            causes.append(v.invalid_value("metadata.name", name, detail=detail))
    if old is not None:
        causes += _update(spec, get_map(old, "spec"), old)
    return causes


def _not_supported_yet(spec: Obj, old_spec: Obj | None) -> list[Cause]:
    """The fields the Job controller would ignore, unless the stored Job already had
    the same value (written before bramble refused it)."""
    causes: list[Cause] = []
    for key, unsupported in _UNSUPPORTED:
        value = spec.get(key)
        if value is None or (unsupported is not None and value not in unsupported):
            continue
        if old_spec is not None and old_spec.get(key) == value:
            continue
        path = f"spec.{key}"
        if unsupported is None:
            causes.append(v.forbidden(path, NOT_YET))
        else:
            causes.append(v.invalid_value(path, value, detail=NOT_YET))
    return causes


def _template_labels(spec: Obj) -> dict[str, object]:
    return get_map(get_map(get_map(spec, "template"), "metadata"), "labels")


def _generated_selector(job: Obj, *, prefixed: bool) -> list[Cause]:
    """k8s ``validateGeneratedSelector``."""
    spec = get_map(job, "spec")
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = get_map(job, "metadata")
    uid, name = get_str(meta, "uid"), get_str(meta, "name")
    causes = [] if uid else [v.required("metadata.uid")]
    labels = _template_labels(spec)
    expected = {LEGACY_CONTROLLER_UID: uid, LEGACY_JOB_NAME: name}
    if prefixed:
        expected |= {CONTROLLER_UID: uid, JOB_NAME: name}
    for key in (LEGACY_CONTROLLER_UID, LEGACY_JOB_NAME, CONTROLLER_UID, JOB_NAME):
        if key not in expected:
            continue
        field = f"spec.template.metadata.labels[{key}]"
        if key not in labels:
            causes.append(v.required(field, f"must be '{expected[key]}'"))
        elif labels[key] != expected[key]:
            causes.append(invalid_shown(field, go_string_map(labels), f"must be '{expected[key]}'"))
    try:
        selector = LabelSelector.from_object(spec.get("selector"))
    except Invalid:
        return causes
    if not selector.matches(expected):
        shown = go_label_selector(spec.get("selector"))
        causes.append(invalid_shown("spec.selector", shown, "`selector` not auto-generated"))
    return causes


def _spec(spec: Obj, path: str) -> list[Cause]:
    """k8s ``validateJobSpec`` (pod failure and success policies are checked for type
    only)."""
    causes: list[Cause] = []
    for key in (
        "parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
        "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes",
    ):  # fmt: skip
        causes += non_negative(spec, key, f"{path}.{key}")
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        causes.append(
            v.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified")
        )
    mode = spec.get("completionMode")
    causes += optional_one_of(spec, "completionMode", f"{path}.completionMode", COMPLETION_MODES)
    if mode == "Indexed":
        if spec.get("completions") is None:
            causes.append(v.required(f"{path}.completions", "when completion mode is Indexed"))
        parallelism = spec.get("parallelism")
        if is_int(parallelism) and parallelism > _MAX_INDEXED_PARALLELISM:
            detail = (
                f"must be less than or equal to {_MAX_INDEXED_PARALLELISM} when completion "
                "mode is Indexed"
            )
            causes.append(v.invalid_value(f"{path}.parallelism", parallelism, detail=detail))
    else:
        for key in ("backoffLimitPerIndex", "maxFailedIndexes", "successPolicy"):
            if spec.get(key) is not None:
                detail = "requires indexed completion mode"
                causes.append(v.invalid_value(f"{path}.{key}", spec[key], detail=detail))
    causes += expect_map(spec, "podFailurePolicy", f"{path}.podFailurePolicy")
    causes += expect_map(spec, "successPolicy", f"{path}.successPolicy")
    replacement = (
        ("Failed",)
        if spec.get("podFailurePolicy") is not None
        else ("Failed", "TerminatingOrFailed")
    )
    causes += optional_one_of(
        spec, "podReplacementPolicy", f"{path}.podReplacementPolicy", replacement
    )
    template = spec.get("template")
    causes += validate_template(template, f"{path}.template")
    policy = get_map(template, "spec").get("restartPolicy")
    field = f"{path}.template.spec.restartPolicy"
    if policy in ("Always", "", None):
        causes.append(v.required(field, 'valid values: "OnFailure", "Never"'))
    elif policy not in ("OnFailure", "Never"):
        causes.append(v.not_supported(field, policy, supported=("OnFailure", "Never")))
    elif spec.get("podFailurePolicy") is not None and policy != "Never":
        detail = 'only "Never" is supported when podFailurePolicy is specified'
        causes.append(v.invalid_value(field, policy, detail=detail))
    return causes


def _update(spec: Obj, old_spec: Obj, old: Obj) -> list[Cause]:
    """k8s ``ValidateJobSpecUpdate``."""
    causes: list[Cause] = []
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    elastic = spec.get("completionMode") == "Indexed"
    if not elastic:
        causes += immutable("spec.completions", completions, old_completions)
    elif (
        completions != old_completions
        and completions is not None
        and completions != spec.get("parallelism")
    ):
        detail = "can only be modified in tandem with spec.parallelism"
        causes.append(v.invalid_value("spec.completions", completions, detail=detail))
    selector = spec.get("selector")
    shown = go_label_selector(selector) if isinstance(selector, dict) else "null"
    causes += immutable("spec.selector", selector, old_spec.get("selector"), shown=shown)
    causes += immutable("spec.template", *_templates(spec, old_spec, old))
    for key in (
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ):
        causes += immutable(f"spec.{key}", spec.get(key), old_spec.get(key))
    return causes


def _templates(spec: Obj, old_spec: Obj, old: Obj) -> tuple[object, object]:
    """The new and old templates to compare: a suspended Job that never started may change
    its node affinity, node selector, tolerations, scheduling gates, labels and
    annotations (``AllowMutableSchedulingDirectives``)."""
    template, old_template = get_map(spec, "template"), get_map(old_spec, "template")
    started = get_map(old, "status").get("startTime") is not None
    if old_spec.get("suspend") is not True or started:
        return template, old_template
    old_template = copy.deepcopy(old_template)
    pod_spec, old_pod_spec = get_map(template, "spec"), mapping(old_template, "spec")
    for key in _SCHEDULING:
        if key in pod_spec:
            old_pod_spec[key] = pod_spec[key]
        else:
            old_pod_spec.pop(key, None)
    affinity = mapping(old_pod_spec, "affinity")
    node_affinity = get_map(pod_spec, "affinity").get("nodeAffinity")
    if node_affinity is None:
        affinity.pop("nodeAffinity", None)
    else:
        affinity["nodeAffinity"] = node_affinity
    old_meta, meta = mapping(old_template, "metadata"), get_map(template, "metadata")
    for key in ("labels", "annotations"):
        if key in meta:
            old_meta[key] = meta[key]
        else:
            old_meta.pop(key, None)
    return template, old_template


# batch/v1 keeps a deleted Job's pods unless asked otherwise (for compatibility, as
# Kubernetes' jobStrategy.DefaultGarbageCollectionPolicy); kubectl always asks Background.
ORPHANS_WARNING = (
    "child pods are preserved by default when jobs are deleted; set "
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
    "suppress this warning"
)


def register() -> None:
    kinds.register(
        "batch", "Job",
        kinds.Strategy(
            create_job, update_job, validate_job, default_propagation=("Orphan", ORPHANS_WARNING)
        ),
    )  # fmt: skip
