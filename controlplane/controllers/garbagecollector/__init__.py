"""The garbage collector: ownerReferences with background, foreground and orphan
propagation over every kind bramble stores (controller.py), decided per object by pure
rules (decide.py) on owner lookups that ask the apiserver before anything is deleted
(owners.py).

Concurrency: the base's workers, one object key at a time; handlers only enqueue.
"""

from controlplane.controllers.garbagecollector.controller import GarbageCollector

__all__ = ["GarbageCollector"]
