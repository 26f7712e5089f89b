"""The etcd backend: config.py (how to reach it), wire.py (the JSON gateway's encoding
and errors), tls.py (certificates), client.py (endpoints, failover, deadlines, auth),
store.py (the Store), watch.py (streams that survive a member's loss)."""
