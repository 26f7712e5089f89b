"""The scheduler's configuration, from a file in the shape of Kubernetes'
``KubeSchedulerConfiguration`` (``kubescheduler.config.k8s.io/v1``), YAML or JSON::

    apiVersion: kubescheduler.config.k8s.io/v1
    kind: KubeSchedulerConfiguration
    percentageOfNodesToScore: 0          # 0: adaptive (50% - nodes/125, at least 5%)
    podInitialBackoffSeconds: 1
    podMaxBackoffSeconds: 10
    leaderElection:
      leaderElect: true
      leaseDuration: 15s
      renewDeadline: 10s
      retryPeriod: 2s
      resourceNamespace: kube-system
      resourceName: bramble-scheduler
    profiles:
    - schedulerName: default-scheduler
      percentageOfNodesToScore: 50       # overrides the global value for this profile
      plugins:
        multiPoint:                      # or preEnqueue, preFilter, filter, postFilter,
          enabled: [{name: NodeResourcesFit, weight: 2}]   # preScore, score
          disabled: [{name: ImageLocality}]                # "*": every default plugin
      pluginConfig:
      - name: NodeResourcesFit
        args: {scoringStrategy: {type: MostAllocated}}

Every field is optional; unknown fields are refused (a typo should not silently do
nothing), and every error is a ``ConfigError`` whose message names the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from controlplane.scheduler.podinfo import DEFAULT_SCHEDULER

API_VERSION: Final = "kubescheduler.config.k8s.io/v1"
KIND: Final = "KubeSchedulerConfiguration"
EXTENSION_POINTS: Final = (
    "multiPoint", "preEnqueue", "preFilter", "filter", "postFilter", "preScore", "score",
)  # fmt: skip
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class ConfigError(ValueError):
    """The configuration cannot be used; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class PluginSet:
    enabled: tuple[tuple[str, int | None], ...] = ()  # (name, weight)
    disabled: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    scheduler_name: str = DEFAULT_SCHEDULER
    percentage_of_nodes_to_score: int | None = None
    plugins: Mapping[str, PluginSet] = field(default_factory=dict)
    plugin_args: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeaderElection:
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    namespace: str = "kube-system"
    name: str = "bramble-scheduler"


@dataclass(frozen=True)
class SchedulerConfig:
    profiles: tuple[Profile, ...] = (Profile(),)
    percentage_of_nodes_to_score: int | None = None
    pod_initial_backoff: float = 1.0
    pod_max_backoff: float = 10.0
    leader_election: LeaderElection = LeaderElection()

    def profile(self, scheduler_name: str) -> Profile | None:
        for profile in self.profiles:
            if profile.scheduler_name == scheduler_name:
                return profile
        return None


def load(path: Path) -> SchedulerConfig:
    """Read a configuration file (blocking)."""
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read the scheduler configuration {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"the scheduler configuration {path} is not valid YAML: {e}") from e
    try:
        return parse(document or {})
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from e


def _fields(doc: Any, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where or 'the configuration'} must be a mapping")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(
            f"{where + '.' if where else ''}{unknown[0]}: unknown field; "
            f"known: {', '.join(sorted(allowed))}"
        )
    return doc


def _percentage(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
        raise ConfigError(f"{where}: must be an integer from 0 to 100, not {value!r}")
    return value or None


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(str(value))
    if match is None or float(match[1]) <= 0:
        raise ConfigError(f"{where}: a positive duration such as 15s or 500ms, not {value!r}")
    return float(match[1]) * _UNITS[match[2]]


def parse(doc: Mapping[str, Any]) -> SchedulerConfig:
    doc = _fields(doc, "", {
        "apiVersion", "kind", "percentageOfNodesToScore", "podInitialBackoffSeconds",
        "podMaxBackoffSeconds", "leaderElection", "profiles", "parallelism",
    })  # fmt: skip
    if doc.get("apiVersion", API_VERSION) != API_VERSION:
        raise ConfigError(f"apiVersion: must be {API_VERSION}, not {doc.get('apiVersion')!r}")
    if doc.get("kind", KIND) != KIND:
        raise ConfigError(f"kind: must be {KIND}, not {doc.get('kind')!r}")
    initial = _seconds(doc.get("podInitialBackoffSeconds", 1), "podInitialBackoffSeconds")
    maximum = _seconds(doc.get("podMaxBackoffSeconds", 10), "podMaxBackoffSeconds")
    if maximum < initial:
        raise ConfigError("podMaxBackoffSeconds: must not be less than podInitialBackoffSeconds")
    raw_profiles = doc.get("profiles") or [{}]
    if not isinstance(raw_profiles, list):
        raise ConfigError("profiles: must be a list")
    profiles = tuple(_profile(p, f"profiles[{i}]") for i, p in enumerate(raw_profiles))
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError("profiles: every profile needs its own schedulerName")
    return SchedulerConfig(
        profiles=profiles,
        percentage_of_nodes_to_score=_percentage(
            doc.get("percentageOfNodesToScore"), "percentageOfNodesToScore"
        ),
        pod_initial_backoff=initial,
        pod_max_backoff=maximum,
        leader_election=_leader_election(doc.get("leaderElection") or {}),
    )


def _leader_election(doc: Any) -> LeaderElection:
    where = "leaderElection"
    doc = _fields(doc, where, {
        "leaderElect", "leaseDuration", "renewDeadline", "retryPeriod", "resourceNamespace",
        "resourceName", "resourceLock",
    })  # fmt: skip
    if doc.get("resourceLock", "leases") != "leases":
        raise ConfigError(f"{where}.resourceLock: only leases are supported")
    defaults = LeaderElection()
    result = LeaderElection(
        leader_elect=bool(doc.get("leaderElect", True)),
        lease_duration=_seconds(
            doc.get("leaseDuration", defaults.lease_duration), f"{where}.leaseDuration"
        ),
        renew_deadline=_seconds(
            doc.get("renewDeadline", defaults.renew_deadline), f"{where}.renewDeadline"
        ),
        retry_period=_seconds(
            doc.get("retryPeriod", defaults.retry_period), f"{where}.retryPeriod"
        ),
        namespace=str(doc.get("resourceNamespace") or defaults.namespace),
        name=str(doc.get("resourceName") or defaults.name),
    )
    if not result.retry_period < result.renew_deadline < result.lease_duration:
        raise ConfigError(f"{where}: needs retryPeriod < renewDeadline < leaseDuration")
    return result


def _profile(doc: Any, where: str) -> Profile:
    doc = _fields(
        doc, where, {"schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig"}
    )
    name = doc.get("schedulerName") or DEFAULT_SCHEDULER
    if not isinstance(name, str):
        raise ConfigError(f"{where}.schedulerName: must be a string")
    plugins_doc = _fields(doc.get("plugins") or {}, f"{where}.plugins", set(EXTENSION_POINTS))
    plugins = {
        point: _plugin_set(value, f"{where}.plugins.{point}")
        for point, value in plugins_doc.items()
    }
    args: dict[str, Mapping[str, Any]] = {}
    raw_config = doc.get("pluginConfig") or []
    if not isinstance(raw_config, list):
        raise ConfigError(f"{where}.pluginConfig: must be a list")
    for i, item in enumerate(raw_config):
        item = _fields(item, f"{where}.pluginConfig[{i}]", {"name", "args"})
        plugin = item.get("name")
        if not isinstance(plugin, str) or not plugin:
            raise ConfigError(f"{where}.pluginConfig[{i}].name: Required value")
        if not isinstance(item.get("args") or {}, dict):
            raise ConfigError(f"{where}.pluginConfig[{i}].args: must be a mapping")
        if plugin in args:
            raise ConfigError(f"{where}.pluginConfig[{i}]: {plugin} is configured twice")
        args[plugin] = item.get("args") or {}
    return Profile(
        scheduler_name=name,
        percentage_of_nodes_to_score=_percentage(
            doc.get("percentageOfNodesToScore"), f"{where}.percentageOfNodesToScore"
        ),
        plugins=plugins,
        plugin_args=args,
    )


def _plugin_set(doc: Any, where: str) -> PluginSet:
    doc = _fields(doc or {}, where, {"enabled", "disabled"})
    enabled: list[tuple[str, int | None]] = []
    for i, item in enumerate(doc.get("enabled") or []):
        item = _fields(item, f"{where}.enabled[{i}]", {"name", "weight"})
        weight = item.get("weight")
        if weight is not None and (not isinstance(weight, int) or not 1 <= weight <= 100):
            raise ConfigError(f"{where}.enabled[{i}].weight: must be an integer from 1 to 100")
        enabled.append((str(item.get("name") or ""), weight))
    disabled = []
    for i, item in enumerate(doc.get("disabled") or []):
        item = _fields(item, f"{where}.disabled[{i}]", {"name"})
        disabled.append(str(item.get("name") or ""))
    return PluginSet(tuple(enabled), tuple(disabled))


def effective_percentage(config: SchedulerConfig, profile: Profile) -> int | None:
    return profile.percentage_of_nodes_to_score or config.percentage_of_nodes_to_score
