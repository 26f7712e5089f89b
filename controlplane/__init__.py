"""The control plane: the cluster's state and the components that act on it.

Owns: the store (store/: the revisioned key-value log, SQLite or etcd), the apiserver
(apiserver/: the Kubernetes API over the store), the scheduler (scheduler/), the
controllers (controllers/) and what those two need to run as processes of their own
(process.py).

Invariants: only the apiserver touches the store; the scheduler and the controllers are
clients of the API like any other, through the shared informers in ``api``.

Concurrency: each component runs on one asyncio event loop. ``bramble server`` runs the
apiserver in its own process and starts the scheduler and the controllers as child
processes (the scheduler may also run on the server's loop).
"""
