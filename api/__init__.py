"""The shared contract of bramble's components (Kubernetes' k8s.io/api + client-go).

Owns: the API error set and its HTTP mapping (errors.py), label and field selectors
(selectors.py), resource quantities (quantity.py), patches (patch/), object
validation helpers (validation.py), and in time the resource registry, the async API
client, informers, the work queue and the clock.

Invariants: imports no other bramble package; pure and synchronous except the client
and informer, which are asyncio. Objects are plain dicts (JSON), never mutated in place
by these helpers unless a function says so.
"""
