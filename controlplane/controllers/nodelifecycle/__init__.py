"""Node lifecycle: a node that stops renewing its Lease becomes Ready=Unknown and
tainted ``node.kubernetes.io/unreachable``; one that reports NotReady is tainted
``node.kubernetes.io/not-ready``; the pods that do not tolerate a NoExecute taint (or
whose tolerationSeconds ran out) are evicted, unless too many nodes of the zone are down
at once (a switch reboot); cordoned nodes get ``node.kubernetes.io/unschedulable``.

Modules: ``health`` (pure: a node's health at a moment, zone states), ``taints`` (pure:
the taints a node should carry, when a pod is evicted), ``status`` (pure: the conditions
written), ``eviction`` (what happens to one node's pods), ``controller`` (the reconciler,
keyed by node name), ``ratelimit`` (the per-zone token buckets that pace new NoExecute
taints). Timings are ``NodeLifecycleSettings`` (``Context.settings``); the clock is
``Context.now``.

Concurrency: one event loop; a node is reconciled by one worker at a time (the work
queue), and the state shared between nodes (observations, zone states) is read and
written without an await in between.
"""

from controlplane.controllers.nodelifecycle.controller import NodeLifecycleController
from controlplane.controllers.settings import NodeLifecycleSettings

__all__ = ["NodeLifecycleController", "NodeLifecycleSettings"]
