"""The controller manager's settings: the flags that carry them from ``bramble server``
to its controller-manager process, and the values refused, as tables."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bramble.server import ServerOptions, controller_args
from controlplane.controllers import settings as cs
from controlplane.controllers.__main__ import argument_parser

DEFAULTS = cs.ControllerSettings()
NL = DEFAULTS.node_lifecycle


def with_node_lifecycle(**values: Any) -> cs.ControllerSettings:
    return replace(DEFAULTS, node_lifecycle=replace(NL, **values))


CUSTOM = cs.ControllerSettings(
    node_lifecycle=cs.NodeLifecycleSettings(
        node_monitor_grace_period=31.5,
        node_monitor_period=2.0,
        node_startup_grace_period=90.0,
        unhealthy_zone_threshold=0.7,
        node_eviction_rate=0.123456789,
    ),
    pod_gc=cs.PodGCSettings(terminated_pod_gc_threshold=0),
)


def test_the_defaults_are_bramble_s() -> None:
    assert (NL.node_monitor_grace_period, NL.node_monitor_period) == (20.0, 5.0)
    assert (NL.node_startup_grace_period, NL.unhealthy_zone_threshold) == (60.0, 0.55)
    assert NL.node_eviction_rate == 0.1
    assert DEFAULTS.pod_gc.terminated_pod_gc_threshold == 1000


@pytest.mark.parametrize(
    ("settings", "names"),
    [(DEFAULTS, None), (CUSTOM, None), (CUSTOM, "nodelifecycle,podgc")],
    ids=["defaults", "custom", "custom-some-controllers"],
)
def test_the_server_s_settings_reach_the_controller_manager(
    tmp_path: Path, settings: cs.ControllerSettings, names: str | None
) -> None:
    """What the server passes its child is what the child runs with."""
    options = ServerOptions(data_dir=tmp_path, controller_settings=settings, controller_names=names)
    args = argument_parser().parse_args(["--kubeconfig", "kc", *controller_args(options)])
    assert cs.from_args(args) == settings
    assert args.controllers == names


@pytest.mark.parametrize(
    ("settings", "flag", "says"),
    [
        (with_node_lifecycle(node_monitor_grace_period=10), "--node-monitor-grace-period",
         "longer than the agents' lease renewal interval"),
        (with_node_lifecycle(node_monitor_grace_period=0), "--node-monitor-grace-period",
         "use at least 20"),
        (with_node_lifecycle(node_monitor_grace_period=float("nan")),
         "--node-monitor-grace-period", "give a number"),
        (with_node_lifecycle(node_monitor_period=0), "--node-monitor-period", "more than 0"),
        (with_node_lifecycle(node_monitor_period=21), "--node-monitor-period",
         "at most the grace period"),
        (with_node_lifecycle(node_startup_grace_period=15), "--node-startup-grace-period",
         "at least --node-monitor-grace-period"),
        (with_node_lifecycle(unhealthy_zone_threshold=1.01), "--unhealthy-zone-threshold",
         "from 0 to 1"),
        (with_node_lifecycle(unhealthy_zone_threshold=-0.1), "--unhealthy-zone-threshold",
         "from 0 to 1"),
        (with_node_lifecycle(node_eviction_rate=0), "--node-eviction-rate", "more than 0"),
        (replace(DEFAULTS, pod_gc=cs.PodGCSettings(terminated_pod_gc_threshold=-1)),
         "--terminated-pod-gc-threshold", "0 or more"),
    ],
)  # fmt: skip
def test_values_that_cannot_work_are_refused_with_a_fix(
    settings: cs.ControllerSettings, flag: str, says: str
) -> None:
    problem = cs.problem(settings)
    assert problem is not None
    assert problem.startswith(f"{flag} ")
    assert says in problem
    assert "\n" not in problem


@pytest.mark.parametrize(
    "settings",
    [
        DEFAULTS,
        CUSTOM,
        with_node_lifecycle(node_monitor_grace_period=10.5, node_startup_grace_period=10.5),
        with_node_lifecycle(unhealthy_zone_threshold=0),
        with_node_lifecycle(unhealthy_zone_threshold=1),
    ],
)
def test_values_that_work_are_accepted(settings: cs.ControllerSettings) -> None:
    assert cs.problem(settings) is None


def test_a_hand_started_controller_manager_refuses_them_too(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "controlplane.controllers", "--kubeconfig", str(tmp_path / "kc"),
         "--node-monitor-grace-period", "5"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--node-monitor-grace-period 5: must be longer" in result.stderr
    assert "Traceback" not in result.stderr
