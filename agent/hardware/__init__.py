"""The machine's hardware facts, and what the Node object says about them.

Owns: reading the machine (``MachineProbe``, behind the ``HardwareProbe`` protocol) into a
frozen ``HardwareReport``; the pure functions that turn a report into Node conditions
(``node_conditions``), labels (``node_labels``), capacity and nodeInfo; and the bounded
``UsageHistory`` behind the TUI's sparklines and the agent's metrics.

Modules: report.py (the values), probe.py (``MachineProbe``), machine.py (identity,
architecture, load), thermal.py (temperatures and limits), pi.py (board model,
throttling, memory cgroup, clock), storage.py (root disk and flash writes), files.py
(reading without raising), conditions.py, node.py, history.py.

Invariants: reading the machine never raises; a fact that cannot be read is None (the
probe runs on Pis, old PCs, VMs and containers alike). Everything derived from a report
is a pure function of it.

Concurrency: ``MachineProbe.report()`` blocks (file reads, a vcgencmd subprocess on a Pi)
and is called through ``asyncio.to_thread``; it may run in several threads at once.
``UsageHistory`` is not thread-safe and lives on the event loop.
"""

from agent.hardware.conditions import Condition, ConditionStatus, node_conditions
from agent.hardware.history import UsageHistory, UsagePoint, UsageSample
from agent.hardware.node import capacity, label_value, node_info, node_labels
from agent.hardware.probe import MachineProbe
from agent.hardware.report import HardwareProbe, HardwareReport, StorageKind, Throttled

__all__ = [
    "Condition",
    "ConditionStatus",
    "HardwareProbe",
    "HardwareReport",
    "MachineProbe",
    "StorageKind",
    "Throttled",
    "UsageHistory",
    "UsagePoint",
    "UsageSample",
    "capacity",
    "label_value",
    "node_conditions",
    "node_info",
    "node_labels",
]
