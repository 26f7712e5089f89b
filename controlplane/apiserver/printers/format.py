"""Reading wire objects leniently, and the formatting helpers the real printers share.

Objects are JSON dicts that admission has already validated, but a printer runs for every
object of a list: a missing or mistyped field reads as Go's zero value (``""``, ``0``,
empty map or list) rather than failing the whole ``kubectl get``, which is also what the
real printers see for an absent field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from controlplane.apiserver.printers.base import Obj
from controlplane.apiserver.printers.duration import human_duration

_EMPTY: Mapping[str, Any] = {}


def field_map(obj: Obj, key: str) -> Obj:
    value = obj.get(key)
    return value if isinstance(value, Mapping) else _EMPTY


def optional_map(obj: Obj, key: str) -> Obj | None:
    """The map at ``key``, or None when absent: a Go pointer field (``state.waiting``)."""
    value = obj.get(key)
    return value if isinstance(value, Mapping) else None


def field_list(obj: Obj, key: str) -> list[Obj]:
    value = obj.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def field_str(obj: Obj, key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def field_int(obj: Obj, key: str, default: int = 0) -> int:
    value = obj.get(key)
    # bool is an int in Python; a JSON true is not a count.
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (``metav1.Time`` or ``MicroTime``), or None when unset or bad."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def since(value: object, now: datetime) -> str:
    """``translateTimestampSince``: the human age of a timestamp, ``<unknown>`` if unset."""
    when = value if isinstance(value, datetime) else parse_time(value)
    if when is None:
        return "<unknown>"
    return human_duration(now - when)


def age(obj: Obj, now: datetime) -> str:
    return since(field_map(obj, "metadata").get("creationTimestamp"), now)


def name(obj: Obj) -> str:
    return field_str(field_map(obj, "metadata"), "name")


def format_labels(labels: Obj) -> str:
    """``labels.FormatLabels``: ``k=v`` sorted by key, comma-joined, ``<none>`` if empty."""
    text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return text or "<none>"


def selector_string(selector: Obj | None) -> str | None:
    """``metav1.LabelSelectorAsSelector(s).String()``; None when the selector is invalid.

    Requirements are sorted by key and set values sorted, as labels.Selector prints
    them. Unlike Kubernetes this does not re-validate key and value syntax (admission
    did); it refuses only unknown operators and value lists that contradict them.
    """
    if selector is None:
        return ""
    requirements: list[tuple[str, str]] = [
        (str(key), f"{key}={value}") for key, value in field_map(selector, "matchLabels").items()
    ]
    for expression in field_list(selector, "matchExpressions"):
        key = field_str(expression, "key")
        raw = expression.get("values")
        values = sorted(str(v) for v in raw) if isinstance(raw, list) else []
        match field_str(expression, "operator"):
            case "In" | "NotIn" as operator if values:
                word = "in" if operator == "In" else "notin"
                requirements.append((key, f"{key} {word} ({','.join(values)})"))
            case "Exists" if not values:
                requirements.append((key, key))
            case "DoesNotExist" if not values:
                requirements.append((key, f"!{key}"))
            case _:
                return None
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(text for _, text in requirements)


def format_label_selector(selector: Obj | None) -> str:
    """``metav1.FormatLabelSelector``: ``<none>`` when empty, ``<error>`` when invalid."""
    text = selector_string(selector)
    if text is None:
        return "<error>"
    return text or "<none>"


def container_cells(pod_spec: Obj) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, each comma-joined."""
    containers = field_list(pod_spec, "containers")
    names = ",".join(field_str(c, "name") for c in containers)
    images = ",".join(field_str(c, "image") for c in containers)
    return names, images


def template_spec(obj: Obj) -> Obj:
    """``spec.template.spec`` of a workload."""
    return field_map(field_map(field_map(obj, "spec"), "template"), "spec")
