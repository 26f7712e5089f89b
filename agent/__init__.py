"""The node agent (a kubelet): makes one machine a node of the cluster.

Owns: the machine's hardware facts (hardware.py), the container runtime seam and its
implementations (runtime/: Podman, and an in-memory fake for hollow nodes), the sync loop
that runs the pods bound to this node, their status, the node's registration, status and
Lease, and the agent's own HTTPS endpoint (logs, exec, usage summary, metrics: the
hardware facts in Prometheus text, metrics.py); on machines without a Podman service, one
of its own, supervised (podman_service.py).

Invariants: never imports the control plane or the TUI; a workload keeps running when the
control plane is away or the agent restarts; blocking calls (psutil, Podman) run off the
event loop.

Concurrency: one asyncio event loop; blocking work through asyncio.to_thread. Every
long-lived task starts through ``tasks.guard``: one that fails is logged and started again,
so no single fault (a full disk, a bug in one loop) ends the agent and its pods' care.
"""
