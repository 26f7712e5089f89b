"""The controller manager's settings (Kubernetes' KubeControllerManagerConfiguration, the
parts bramble has): one frozen value per controller, gathered in ``ControllerSettings``,
which ``Context.settings`` carries to every controller.

``bramble server`` takes them as flags named as kube-controller-manager names them and
passes them to its controller-manager child process as the same flags (``to_args``,
read back by ``add_arguments`` and ``from_args``); ``problem`` says, in one line naming
the flag, what is wrong with a value and what to write instead.

A leaf module: dataclasses and argparse only, so the server can build and check the
settings without importing a controller.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field, fields, replace
from typing import Final


@dataclass(frozen=True, slots=True)
class NodeLifecycleSettings:
    """Timings and thresholds, named after kube-controller-manager's flags; the defaults
    are bramble's home-lab ones (docs/operations.md, "Node failure and eviction")."""

    # Kubernetes: 40 s. Four missed renewals of a 10 s lease would leave a dead Pi's
    # pods down for too long; two (20 s) still rides out a switch or Wi-Fi blip.
    node_monitor_grace_period: float = 20.0
    # A node that never posted a Ready condition (still registering): Kubernetes' 60 s.
    node_startup_grace_period: float = 60.0
    # How often every node is looked at again even without events (Kubernetes: 5 s).
    node_monitor_period: float = 5.0
    # Kubernetes' unhealthyZoneThreshold: at least this share of a zone's nodes
    # unhealthy (and more than two nodes in it) stops evictions there.
    unhealthy_zone_threshold: float = 0.55
    # A zone of this many nodes or fewer is never "partially disrupted" (only fully).
    # Kubernetes' ComputeZoneState has the same 2, as a constant (it is not its
    # --large-cluster-size-threshold, which only picks the secondary eviction rate).
    small_zone_size: int = 2
    # Nodes per second, per zone, that get a NoExecute taint (start their pods'
    # eviction clocks) in a zone whose evictions go on; a token bucket of burst 1, so
    # the first node of a quiet zone is tainted at once (Kubernetes: 0.1).
    node_eviction_rate: float = 0.1


@dataclass(frozen=True, slots=True)
class PodGCSettings:
    # Kubernetes: 12500. 0 switches the collection of terminated pods off, as there.
    terminated_pod_gc_threshold: int = 1000
    gc_check_period: float = 10.0  # Kubernetes: 20 s
    orphan_quarantine: float = 20.0  # Kubernetes: 40 s


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    node_lifecycle: NodeLifecycleSettings = field(default_factory=NodeLifecycleSettings)
    pod_gc: PodGCSettings = field(default_factory=PodGCSettings)


# How often agents renew their node Lease by default (agent/main.py, AgentOptions;
# the control plane does not import the agent): a grace period must outlast it.
LEASE_INTERVAL: Final = 10.0

# flag -> (section of ControllerSettings, field): the flags ``bramble server`` takes and
# passes on, as kube-controller-manager spells them.
FLAGS: Final[dict[str, tuple[str, str]]] = {
    "--node-monitor-grace-period": ("node_lifecycle", "node_monitor_grace_period"),
    "--node-monitor-period": ("node_lifecycle", "node_monitor_period"),
    "--node-startup-grace-period": ("node_lifecycle", "node_startup_grace_period"),
    "--unhealthy-zone-threshold": ("node_lifecycle", "unhealthy_zone_threshold"),
    "--node-eviction-rate": ("node_lifecycle", "node_eviction_rate"),
    "--terminated-pod-gc-threshold": ("pod_gc", "terminated_pod_gc_threshold"),
}


def _value(settings: ControllerSettings, flag: str) -> float | int:
    section, name = FLAGS[flag]
    value = getattr(getattr(settings, section), name)
    assert isinstance(value, (int, float))
    return value


def to_args(settings: ControllerSettings) -> list[str]:
    """The flags for the controller-manager process, every one of them (so its log and
    ``ps`` show what it runs with)."""
    args: list[str] = []
    for flag in FLAGS:
        args += [flag, str(_value(settings, flag))]
    return args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = ControllerSettings()
    for flag, (_, name) in FLAGS.items():
        kind = int if isinstance(_value(defaults, flag), int) else float
        parser.add_argument(flag, type=kind, default=_value(defaults, flag), dest=name)


def from_args(args: argparse.Namespace) -> ControllerSettings:
    settings = ControllerSettings()
    for section in (f.name for f in fields(ControllerSettings)):
        given = {name: getattr(args, name) for s, name in FLAGS.values() if s == section}
        settings = replace(settings, **{section: replace(getattr(settings, section), **given)})
    return settings


def problem(settings: ControllerSettings, *, lease_interval: float = LEASE_INTERVAL) -> str | None:
    """What is wrong with the settings, in one line naming the flag and saying what to
    write instead; None when nothing is. ``lease_interval``: how often the agents renew
    their leases (10 s by default)."""
    nl, gc = settings.node_lifecycle, settings.pod_gc
    grace = nl.node_monitor_grace_period
    for flag in FLAGS:
        value = _value(settings, flag)
        if not math.isfinite(value):
            return f"{flag} {value}: give a number"
    if grace <= lease_interval:
        return (
            f"--node-monitor-grace-period {grace:g}: must be longer than the agents' lease "
            f"renewal interval ({lease_interval:g} s), or live nodes flap NotReady; "
            f"use at least {2 * lease_interval:g} (two missed renewals, the default)"
        )
    if not 0 < nl.node_monitor_period <= grace:
        return (
            f"--node-monitor-period {nl.node_monitor_period:g}: must be more than 0 and at "
            f"most the grace period ({grace:g} s); the default is 5"
        )
    if nl.node_startup_grace_period < grace:
        return (
            f"--node-startup-grace-period {nl.node_startup_grace_period:g}: must be at least "
            f"--node-monitor-grace-period ({grace:g} s); the default is 60"
        )
    if not 0 <= nl.unhealthy_zone_threshold <= 1:
        return (
            f"--unhealthy-zone-threshold {nl.unhealthy_zone_threshold:g}: a share of a zone's "
            "nodes, from 0 to 1 (0.55 is 55 %, the default)"
        )
    if nl.node_eviction_rate <= 0:
        return (
            f"--node-eviction-rate {nl.node_eviction_rate:g}: nodes per second, more than 0 "
            "(0.1, the default, is one node every 10 s per zone)"
        )
    if gc.terminated_pod_gc_threshold < 0:
        return (
            f"--terminated-pod-gc-threshold {gc.terminated_pod_gc_threshold}: a number of "
            "pods, 0 or more (0 keeps them all; the default is 1000)"
        )
    return None
