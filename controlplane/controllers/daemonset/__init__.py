"""The DaemonSet controller: one pod of the template on every eligible node.

Owns: the pods and the ControllerRevisions whose controller ownerReference is a
DaemonSet, and DaemonSet status. Modules: ``eligibility`` (which nodes, with the
automatic daemon tolerations), ``pods`` (the pod for a node, placed through the
scheduler by a ``metadata.name`` node affinity; the template hash), ``plan`` (pure
decisions: create, prune, roll, status), ``history`` (pure decisions on the revision
history: the current template's revision, renumbering, pruning), ``revisions`` (the
writes of that history, adoption of orphaned revisions) and ``controller`` (the
reconcile that applies them).

Invariants: at most one daemon pod per node (a node's pod counts as soon as it is
created, bound or not), but for one old and one new pod during a surge update; pods of
a node that left or became ineligible are deleted; RollingUpdate with maxSurge 0
replaces old pods while at most maxUnavailable are unavailable (delete first), and with
maxSurge creates the new pod beside the old one on at most maxSurge nodes at a time and
deletes the old one once the new one is available (create first); OnDelete replaces a
pod only once someone deleted it. The current template has exactly one revision, the
newest by number; pods carry its ``controller-revision-hash``. Concurrency: the base's
(one worker per key).
"""

from controlplane.controllers.daemonset.controller import DaemonSetController

__all__ = ["DaemonSetController"]
