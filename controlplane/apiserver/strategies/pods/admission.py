"""What Kubernetes' pod admission plugins add on create: the default NoExecute tolerations
(DefaultTolerationSeconds) and the priority (Priority).

The tolerations' seconds are the apiserver's ``--default-not-ready-toleration-seconds``
and ``--default-unreachable-toleration-seconds``: as in Kubernetes, where they are the
plugin's own process-wide flags, they are set once per process (``ApiServer`` calls
``configure_default_tolerations`` when it is built), since the pod strategy is a
registry of pure functions without options of its own.

bramble has no PriorityClass kind, so only the two built-in classes exist; any other
``priorityClassName`` is refused as the Priority plugin refuses an unknown class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from api import errors
from controlplane.apiserver.strategies.common import Obj, get_str

# Kubernetes' DefaultTolerationSeconds plugin uses 300 s. On a home lab a node that stops
# answering is usually unplugged or rebooting, and its pods are better restarted elsewhere
# quickly.
DEFAULT_TOLERATION_SECONDS: Final = 30
NOT_READY: Final = "node.kubernetes.io/not-ready"
UNREACHABLE: Final = "node.kubernetes.io/unreachable"


@dataclass(frozen=True, slots=True)
class DefaultTolerations:
    not_ready_seconds: int = DEFAULT_TOLERATION_SECONDS
    unreachable_seconds: int = DEFAULT_TOLERATION_SECONDS


_configured = DefaultTolerations()


def configure_default_tolerations(defaults: DefaultTolerations) -> None:
    """The seconds every pod created from now on in this process gets."""
    global _configured
    _configured = defaults


SYSTEM_PRIORITIES: Final = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
}
DEFAULT_PREEMPTION_POLICY: Final = "PreemptLowerPriority"


def add_default_tolerations(spec: Obj, defaults: DefaultTolerations | None = None) -> None:
    """Tolerate not-ready and unreachable nodes for a while (``defaults``, else the
    process's configured ones), unless the pod already tolerates them (a toleration
    with that key, or no key, and NoExecute or no effect)."""
    chosen = defaults or _configured
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    seconds = {NOT_READY: chosen.not_ready_seconds, UNREACHABLE: chosen.unreachable_seconds}
    for key, after in seconds.items():
        tolerated = any(
            isinstance(t, dict)
            and t.get("key") in (key, "", None)
            and t.get("effect") in ("NoExecute", "", None)
            for t in tolerations
        )
        if not tolerated:
            tolerations.append(
                {
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": after,
                }
            )
    spec["tolerations"] = tolerations


def set_priority(pod: Obj) -> None:
    """Resolve ``priorityClassName`` to ``priority`` and default ``preemptionPolicy``;
    raises Forbidden as the Priority admission plugin does."""
    spec = pod.get("spec")
    assert isinstance(spec, dict)
    name = str((pod.get("metadata") or {}).get("name") or "")
    class_name = get_str(spec, "priorityClassName")
    if class_name and class_name not in SYSTEM_PRIORITIES:
        raise errors.Forbidden(
            f'pods "{name}" is forbidden: no PriorityClass with name {class_name} was found',
            name=name,
            kind="pods",
        )
    priority = SYSTEM_PRIORITIES.get(class_name, 0)
    given = spec.get("priority")
    if given is not None and given != priority:
        raise errors.Forbidden(
            f'pods "{name}" is forbidden: the integer value of priority ({given}) must not be '
            "provided in pod spec; priority admission controller computed "
            f"{priority} from the given PriorityClass name",
            name=name,
            kind="pods",
        )
    spec["priority"] = priority
    if spec.get("preemptionPolicy") is None:
        spec["preemptionPolicy"] = DEFAULT_PREEMPTION_POLICY


def keep_priority(new_spec: Obj, old_spec: Obj) -> None:
    """On update the plugin restores what it set on create; the update rules then judge
    any other change."""
    for key in ("priority", "preemptionPolicy"):
        if key in old_spec:
            new_spec[key] = old_spec[key]
        else:
            new_spec.pop(key, None)
