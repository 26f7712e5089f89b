"""The ReplicaSet controller: ``spec.replicas`` pods that match the selector, adopted and
released by ownerReferences, deleted in Kubernetes' order (ranking.py), created in
slow-start batches (podcontrol.py), counted in the status (status.py).

Concurrency: the base's workers, one key at a time; the pod handlers only keep the
expectations and enqueue (controller.py).
"""

from controlplane.controllers.replicaset.controller import ReplicaSetController

__all__ = ["ReplicaSetController"]
