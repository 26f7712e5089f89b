"""The Kubernetes-compatible apiserver: the only component that touches the store.

Owns: routing of Kubernetes REST paths, discovery and OpenAPI, CRUD with defaulting and
validation (admission), the watch cache (one store watch feeding every resource, serving
lists and watches from memory), watch streams, Table printing, patches, subresources,
authentication and authorization, limits, metrics and the audit log.

Invariants: every write goes to the store with a compare-and-swap on the object's
revision; a write is answered only after the watch cache has seen it, so a client always
reads its own writes; every error reply is a Status object.

Concurrency: one asyncio event loop, serving HTTP/1.1 with a server of its own
(httpd.py); the store does its blocking work on its own threads.
"""
