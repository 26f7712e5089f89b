"""The DaemonSet controller: one pod of the template on every eligible node.

Owns: the pods whose controller ownerReference is a DaemonSet, and DaemonSet status.
Modules: ``eligibility`` (which nodes, with the automatic daemon tolerations), ``pods``
(the pod for a node, placed through the scheduler by a ``metadata.name`` node affinity;
the revision hash), ``plan`` (pure decisions: create, prune, roll, status) and
``controller`` (the reconcile that applies them).

Invariants: at most one daemon pod per node (a node's pod counts as soon as it is
created, bound or not); pods of a node that left or became ineligible are deleted;
RollingUpdate replaces old pods while at most maxUnavailable are unavailable; OnDelete
replaces a pod only once someone deleted it. Concurrency: the base's (one worker per key).
"""

from controlplane.controllers.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
