"""The plugin registry and the default profile: which plugins exist, which run by
default, in what order, with which score weights (k8s ``plugins/registry.go`` and
``apis/config/v1/default_plugins.go``).

The order is the filter order: cheap checks that reject many nodes first, the counting
plugins last. Weights are Kubernetes' for its plugins; HardwareHealth weighs as much as
NodeAffinity, so a throttling Pi loses to a cool one unless the pod prefers it.

``build`` turns a profile (``config.Profile``) into a ``Framework``: the default set,
minus what the profile disables (``"*"`` disables every default), plus what it enables,
per extension point or for all of them (``multiPoint``), each plugin made once with its
``pluginConfig`` args.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from controlplane.scheduler import preemption
from controlplane.scheduler.config import EXTENSION_POINTS, ConfigError, Profile
from controlplane.scheduler.framework import (
    FilterPlugin,
    Framework,
    Handle,
    PostFilterPlugin,
    PreEnqueuePlugin,
    PreFilterPlugin,
    PreScorePlugin,
    ScorePlugin,
)
from controlplane.scheduler.plugins import (
    balanced_allocation,
    hardware_health,
    image_locality,
    inter_pod_affinity,
    node_affinity,
    node_architecture,
    node_name,
    node_ports,
    node_resources_fit,
    node_unschedulable,
    pod_topology_spread,
    scheduling_gates,
    taint_toleration,
)

Factory = Callable[[Mapping[str, Any], Handle], Any]

REGISTRY: Final[dict[str, Factory]] = {
    scheduling_gates.NAME: scheduling_gates.new,
    node_unschedulable.NAME: node_unschedulable.new,
    node_name.NAME: node_name.new,
    taint_toleration.NAME: taint_toleration.new,
    hardware_health.NAME: hardware_health.new,
    node_architecture.NAME: node_architecture.new,
    node_affinity.NAME: node_affinity.new,
    node_ports.NAME: node_ports.new,
    node_resources_fit.NAME: node_resources_fit.new,
    pod_topology_spread.NAME: pod_topology_spread.new,
    inter_pod_affinity.NAME: inter_pod_affinity.new,
    preemption.NAME: preemption.new,
    balanced_allocation.NAME: balanced_allocation.new,
    image_locality.NAME: image_locality.new,
}

# (name, score weight): the default profile, in filter order.
DEFAULT_PLUGINS: Final[tuple[tuple[str, int], ...]] = (
    (scheduling_gates.NAME, 0),
    (node_unschedulable.NAME, 0),
    (node_name.NAME, 0),
    (taint_toleration.NAME, 3),
    (hardware_health.NAME, 2),
    (node_architecture.NAME, 0),
    (node_affinity.NAME, 2),
    (node_ports.NAME, 0),
    (node_resources_fit.NAME, 1),
    (pod_topology_spread.NAME, 2),
    (inter_pod_affinity.NAME, 2),
    (preemption.NAME, 0),
    (balanced_allocation.NAME, 1),
    (image_locality.NAME, 1),
)

_POINTS: Final = {
    "preEnqueue": PreEnqueuePlugin,
    "preFilter": PreFilterPlugin,
    "filter": FilterPlugin,
    "postFilter": PostFilterPlugin,
    "preScore": PreScorePlugin,
    "score": ScorePlugin,
}


def _check(name: str, where: str) -> None:
    if name != "*" and name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise ConfigError(f"{where}: unknown plugin {name!r}; known plugins: {known}")


def build(profile: Profile, handle: Handle) -> Framework:
    """The framework of ``profile``; raises ConfigError for unknown plugins or bad args."""
    default_weights = dict(DEFAULT_PLUGINS)
    multi = profile.plugins.get("multiPoint")
    names: dict[str, int] = {}  # name -> multiPoint weight, in order
    disabled = set(multi.disabled) if multi else set()
    for name in disabled:
        _check(name, f"profile {profile.scheduler_name}: plugins.multiPoint.disabled")
    if "*" not in disabled:
        names = {n: w for n, w in DEFAULT_PLUGINS if n not in disabled}
    for name, weight in multi.enabled if multi else ():
        _check(name, f"profile {profile.scheduler_name}: plugins.multiPoint.enabled")
        names[name] = (
            weight if weight is not None else names.get(name, default_weights.get(name, 1))
        )
    for point in EXTENSION_POINTS:
        for name, _ in profile.plugins[point].enabled if point in profile.plugins else ():
            _check(name, f"profile {profile.scheduler_name}: plugins.{point}.enabled")
    made: dict[str, Any] = {}

    def instance(name: str) -> Any:
        if name not in made:
            try:
                made[name] = REGISTRY[name](profile.plugin_args.get(name, {}), handle)
            except (ValueError, TypeError, KeyError) as e:
                raise ConfigError(f"pluginConfig {name}: {e}") from e
        return made[name]

    per_point: dict[str, list[tuple[Any, int]]] = {}
    for point, protocol in _POINTS.items():
        chosen = profile.plugins.get(point)
        point_disabled = set(chosen.disabled) if chosen else set()
        entries: list[tuple[Any, int]] = []
        if "*" not in point_disabled:
            for name, weight in names.items():
                if name in point_disabled:
                    continue
                plugin = instance(name)
                if isinstance(plugin, protocol):
                    entries.append((plugin, weight))
        for name, weight in chosen.enabled if chosen else ():
            plugin = instance(name)
            if not isinstance(plugin, protocol):
                raise ConfigError(f"plugin {name} does not implement the {point} extension point")
            entries = [(p, w) for p, w in entries if p.name != name]
            entries.append((plugin, weight if weight is not None else names.get(name, 1)))
        per_point[point] = entries
    for name in profile.plugin_args:
        if name not in made:
            _check(name, f"profile {profile.scheduler_name}: pluginConfig")
    fw = Framework(
        profile.scheduler_name,
        pre_enqueue=[p for p, _ in per_point["preEnqueue"]],
        pre_filter=[p for p, _ in per_point["preFilter"]],
        filter=[p for p, _ in per_point["filter"]],
        post_filter=[p for p, _ in per_point["postFilter"]],
        pre_score=[p for p, _ in per_point["preScore"]],
        score=[(p, max(w, 1) if w else 0) for p, w in per_point["score"]],
        percentage_of_nodes_to_score=profile.percentage_of_nodes_to_score,
        handle=handle,
    )
    handle.extras["framework"] = fw
    return fw
