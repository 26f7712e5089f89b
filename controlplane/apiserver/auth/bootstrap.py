"""One cluster CA for every server on a store: the CA is kept in the store itself, as
k3s keeps its bootstrap data in its datastore, so that a second ``bramble server`` on
the same etcd needs nothing copied by hand to stand by and take over.

On start, before ``pki.ensure_cluster_pki``:

* the store holds a CA and this data dir has none: write it into ``DATA_DIR/pki`` (the
  leaf certificates are then issued for this machine as on a first start);
* both hold one: they must be the same, or the server refuses to start (it was set up
  against another cluster: its kubeconfigs and node credentials would be rejected);
* the store holds none: after ``ensure_cluster_pki``, this server's CA is published
  (create-if-absent, so two first starts at once cannot both win).

The CA's key is in the store in the clear. Whoever can read the store can also write
any object in it (an admin token, a pod on every node), so a store reachable by others
gives the cluster away with or without this key: protect etcd with TLS and
authentication (docs/operations.md). The SQLite store is a file in the data directory
next to ``pki/`` and adds nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from controlplane import store as st
from controlplane.apiserver.auth.atomic import ensure_private_dir, write_private
from controlplane.apiserver.auth.certs import PkiError

logger = logging.getLogger(__name__)

CA_KEY: Final = "/bramble/bootstrap/cluster-ca"
_CERT, _KEY = "ca.crt", "ca.key"


@dataclass(frozen=True, slots=True)
class ClusterCa:
    cert_pem: bytes
    key_pem: bytes

    def encode(self) -> bytes:
        return orjson.dumps({"cert": self.cert_pem.decode(), "key": self.key_pem.decode()})

    @classmethod
    def decode(cls, raw: bytes) -> ClusterCa:
        try:
            value = orjson.loads(raw)
            return cls(str(value["cert"]).encode(), str(value["key"]).encode())
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            raise PkiError(
                f"the cluster CA kept in the store ({CA_KEY}) is unreadable: restore the "
                "store from a backup"
            ) from e


async def stored_ca(store: st.Store) -> ClusterCa | None:
    try:
        kv = await store.get(CA_KEY)
    except st.NotFound:
        return None
    return ClusterCa.decode(kv.value)


def local_ca(pki_dir: Path) -> ClusterCa | None:
    cert, key = pki_dir / _CERT, pki_dir / _KEY
    if not cert.exists() or not key.exists():
        return None
    return ClusterCa(cert.read_bytes(), key.read_bytes())


def adopt(pki_dir: Path, stored: ClusterCa | None) -> None:
    """Make ``pki_dir`` hold the store's CA, or check that it already does (blocking:
    call it off the event loop)."""
    if stored is None:
        return
    local = local_ca(pki_dir)
    if local is None:
        pki_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pki_dir.mkdir(mode=0o700, exist_ok=True)
        ensure_private_dir(pki_dir)
        write_private(pki_dir / _KEY, stored.key_pem, mode=0o600)
        write_private(pki_dir / _CERT, stored.cert_pem, mode=0o644)
        logger.info("pki: adopted the cluster CA kept in the store dir=%s", pki_dir)
        return
    if local.cert_pem.strip() != stored.cert_pem.strip():
        raise PkiError(
            f"{pki_dir / _CERT} is another cluster's CA than the one in the store: this "
            "data directory belongs to another cluster. Point --store at that cluster's "
            f"store, or move {pki_dir} away to join this one (kubeconfigs and node "
            "credentials issued from it stop working)"
        )


async def publish(store: st.Store, pki_dir: Path) -> None:
    """Keep this server's CA in the store if none is there yet."""
    local = await asyncio.to_thread(local_ca, pki_dir)
    if local is None:
        return
    try:
        await store.create(CA_KEY, local.encode())
    except st.AlreadyExists:
        # Another server's first start won the race: ours must be the same to go on.
        await asyncio.to_thread(adopt, pki_dir, await stored_ca(store))
        return
    logger.info("pki: the cluster CA is now kept in the store key=%s", CA_KEY)
