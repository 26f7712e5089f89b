"""The controllers: level-triggered reconcilers that keep the desired state true
(ReplicaSets, Deployments, DaemonSets, Jobs, node lifecycle, garbage collection, pod GC).

Owns: nothing in the store; every controller is a client of the apiserver (shared
informers in, API writes out), like the scheduler. The manager (manager.py) runs them
all in one process while holding a leader Lease.

Concurrency: one event loop. A key is reconciled by one worker at a time
(workqueue.py); handlers only enqueue; caches are never mutated (base.py).
"""
