"""The etcd backend: config.py (how to reach it), client.py (JSON gateway, failover,
TLS, auth), store.py (the Store), watch.py (streams that survive a member's loss)."""
