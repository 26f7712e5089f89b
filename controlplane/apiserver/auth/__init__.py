"""Authentication and authorization building blocks of the apiserver, as pure modules.

Owns: the cluster PKI (``pki``: CA, serving and client certificates, TLS contexts),
bearer tokens hashed at rest and stored as Secrets (``tokens``), who a request comes from
(``identity``), what it may do (``authz``: admin, viewer and node rules, Kubernetes'
Node authorizer + NodeRestriction), kubeconfig files (``kubeconfig``) and crash-safe
private file writes (``atomic``).

Invariants: no key or token secret is ever logged or written world-readable; files that
hold keys or tokens are 0600 in 0700 directories and are replaced atomically; a
presented credential that does not parse is refused without an exception.

Concurrency: everything here is synchronous. ``authz``, ``identity`` and ``tokens`` are
pure and cheap enough to call on the event loop; ``pki``, ``kubeconfig.write_kubeconfig``
and the ``*_ssl_context`` builders do blocking file I/O and key generation, so the server
calls them before its loop starts or through ``asyncio.to_thread``.
"""
