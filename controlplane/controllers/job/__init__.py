"""The Job controller: run a pod template to completion.

Owns: the pods whose controller ownerReference is a Job, and Job status (active, ready,
succeeded, failed, startTime, completionTime, the Complete/Failed/Suspended
conditions). Modules: ``tracking`` (counting finished pods exactly once, even after
they are deleted), ``plan`` (pure decisions: complete, fail, scale, back off) and
``controller`` (the reconcile that applies them). Deleting a finished Job after its
``ttlSecondsAfterFinished`` is the ``ttlafterfinished`` controller's job.

Invariants: never more than ``parallelism`` pods running; a count is recorded in the
Job before anything that could lose it (a pod deleted, marked or replaced); a finished
Job is never restarted. Concurrency: the base's (one worker per key).
"""

from controlplane.controllers.job.controller import JobController

__all__ = ["JobController"]
