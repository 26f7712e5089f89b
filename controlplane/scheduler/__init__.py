"""The scheduler: binds pending pods to nodes, as kube-scheduler does.

Owns: the plugin framework (``framework``: Filter/Score protocols, Status, the runtime of
one profile), the placement algorithm with adaptive node sampling (``algorithm``), the
scheduling queue with back-off and event-driven requeueing (``queue``), the cache of
nodes with their bound and assumed pods (``cache``, ``nodeinfo``, ``podinfo``), one
module per plugin (``plugins/``), preemption (``preemption``), the registry and default
profile (``registry``), the configuration file (``config``), events (``events``), the
loop that binds through the API (``scheduler``) and the leader-elected component
(``run``).

Invariants: the scheduler is a client of the API like any other (informers in, the
``pods/binding`` subresource and events out); it never writes ``spec.nodeName`` any
other way, and it schedules only pods of its profiles' scheduler names that have no
node yet. A pod is in at most one place: the queue, being scheduled, or the cache
(assumed until the informer confirms the binding). Cached objects are shared with the
informers and never mutated.

Concurrency: one asyncio event loop. A scheduling cycle (pop to assume) is synchronous,
so plugins read the cache without locks; bindings, status writes and events run as
background tasks. Only the leader of ``kube-system/bramble-scheduler`` schedules.
"""
