"""The Deployment controller (Kubernetes' pkg/controller/deployment): a Deployment owns
ReplicaSets named ``<deployment>-<pod-template-hash>``, one per pod template it has had,
and moves replicas from the old ones to the new one by its strategy (RollingUpdate
within maxSurge/maxUnavailable, or Recreate), keeping revisions for rollback and the
status that ``kubectl rollout status`` waits on.

Modules:

* ``controller.py``: informers, handlers, adoption and release of ReplicaSets;
* ``rollout.py``: what one reconcile does (pause, scaling, the two strategies, status);
* ``sync.py``: the writes (new ReplicaSet, scaling with events, history cleanup, status);
* ``objects.py``: the fields read from Deployments and ReplicaSets, read defensively;
* ``rolling.py``, ``revisions.py``, ``status.py``: pure arithmetic, revision and
  condition logic, tested as tables.

Invariants: only ReplicaSets are written (``spec.replicas``, ``minReadySeconds``,
annotations, ownerReferences), never pods, which are the ReplicaSet controller's; every
write carries the resourceVersion read, so a stale cache costs a retry, not an error.

Concurrency: one event loop; a Deployment is reconciled by one worker at a time
(workqueue.py), and two Deployments never share a ReplicaSet (controller references).
"""

from controlplane.controllers.deployment.controller import DeploymentController

__all__ = ["DeploymentController"]
