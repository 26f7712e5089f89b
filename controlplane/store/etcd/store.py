"""The Store contract on a real etcd v3 cluster, for users who outgrow one machine.

Each store operation is one etcd request; compare-and-swap is an etcd transaction on the
key's ``mod_revision`` (or ``create_revision == 0`` for create), whose failure branch
reads the key so a Conflict carries the current value without another round trip. An
absent key has ``mod_revision`` 0 in etcd, so update also compares ``version > 0``:
otherwise an update expecting revision 0 would create the key.
etcd's revision is the store revision. Unlike SQLite, etcd may be shared: other keys'
writes advance its revision too, so revisions seen under one prefix need not be
consecutive (the contract only promises order, no gap and no duplicate).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from controlplane.store import continuation
from controlplane.store.errors import (
    AlreadyExists,
    Conflict,
    Expired,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from controlplane.store.etcd import tls
from controlplane.store.etcd.client import EtcdClient
from controlplane.store.etcd.config import EtcdConfig
from controlplane.store.etcd.watch import EtcdWatch
from controlplane.store.etcd.wire import EtcdError, Json, b64, map_error, reading, unb64
from controlplane.store.interface import (
    MAX_VALUE_BYTES,
    KeyValue,
    ListResult,
    encode_key,
    prefix_end,
)

logger = logging.getLogger(__name__)

_Ops = list[Json]  # named here because EtcdStore defines a method called `list`

_COMPACTED = "etcdserver: mvcc: required revision has been compacted"
_FUTURE = "etcdserver: mvcc: required revision is a future revision"


class EtcdStore:
    """Store on etcd. Create with ``await EtcdStore.open(config)``."""

    def __init__(self, client: EtcdClient) -> None:
        self._client = client
        self._closed = False

    @classmethod
    async def open(cls, config: EtcdConfig) -> EtcdStore:
        """Connect and check that the cluster answers (raises Unavailable/StoreUnusable)."""
        context = await asyncio.to_thread(tls.ssl_context, config) if config.tls else None
        store = cls(EtcdClient(config, ssl_context=context))
        try:
            revision = await store.current_revision()
        except BaseException:
            await store.close()
            raise
        logger.info("store opened etcd=%s revision=%d", ",".join(config.endpoints), revision)
        return store

    @property
    def description(self) -> str:
        return self._client.description

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the store is closed")

    async def _call(self, path: str, body: Json, *, idempotent: bool) -> Json:
        self._check_open()
        try:
            return await self._client.call(path, body, idempotent=idempotent)
        except EtcdError as e:
            raise map_error(e) from e

    async def _range(self, body: Json) -> Json:
        self._check_open()
        try:
            return await self._client.call("kv/range", body, idempotent=True)
        except EtcdError as e:
            revision = int(body.get("revision", 0))
            if e.message == _COMPACTED:
                raise Expired(revision) from e
            if e.message == _FUTURE:
                raise InvalidArgument(f"revision {revision} is in the future") from e
            raise map_error(e) from e

    # --- reads ------------------------------------------------------------------------

    async def current_revision(self) -> int:
        # A count-only range over an empty key range costs etcd nothing but still
        # reports the cluster's revision (linearizably: it goes through the leader).
        answer = await self._range({"key": b64(b"\x00"), "count_only": True})
        return _revision(answer)

    async def get(self, key: str, *, revision: int | None = None) -> KeyValue:
        body: Json = {"key": b64(encode_key(key))}
        if revision is not None:
            body["revision"] = str(revision)
        answer = await self._range(body)
        with reading("a read"):
            kvs = answer.get("kvs", [])
            found = _kv(kvs[0]) if kvs else None
        if found is None:
            raise NotFound(key)
        return found

    async def list(
        self,
        prefix: str,
        *,
        revision: int | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        if limit is not None and limit < 0:
            raise InvalidArgument(f"limit must not be negative (got {limit})")
        start = encode_key(prefix, prefix=True)
        if continue_token is not None:
            cont = continuation.decode(continue_token)
            if revision is not None and revision != cont.revision:
                raise InvalidArgument("a revision cannot be given together with a continue token")
            if not cont.start_key.startswith(start):
                raise InvalidArgument("the continue token belongs to another list")
            revision, start = cont.revision, cont.start_key
        end = prefix_end(encode_key(prefix, prefix=True))
        body: Json = {"key": b64(start), "range_end": b64(end if end is not None else b"\x00")}
        if revision is not None:
            body["revision"] = str(revision)
        if limit:
            body["limit"] = str(limit)
        answer = await self._range(body)
        at = revision if revision is not None else _revision(answer)
        with reading("a list"):
            items = [_kv(kv) for kv in answer.get("kvs", [])]
        token = None
        if answer.get("more") and items:
            token = continuation.encode(at, items[-1].key.encode() + b"\x00")
        return ListResult(items=items, revision=at, continue_token=token)

    # --- writes -----------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KeyValue:
        name = _check(key, value)
        answer = await self._txn(
            compare=[{"target": "CREATE", "key": name, "result": "EQUAL", "create_revision": "0"}],
            success=[{"request_put": {"key": name, "value": b64(value)}}],
            failure=[],
        )
        if not answer.get("succeeded"):
            raise AlreadyExists(key)
        revision = _revision(answer)
        return KeyValue(key, value, revision, revision)

    async def update(self, key: str, value: bytes, *, expected_revision: int) -> KeyValue:
        name = _check(key, value)
        answer = await self._txn(
            compare=[
                {
                    "target": "MOD",
                    "key": name,
                    "result": "EQUAL",
                    "mod_revision": str(expected_revision),
                },
                # The key exists: an absent key's mod_revision is 0 too.
                {"target": "VERSION", "key": name, "result": "GREATER", "version": "0"},
            ],
            success=[{"request_put": {"key": name, "value": b64(value), "prev_kv": True}}],
            failure=[{"request_range": {"key": name}}],
        )
        if not answer.get("succeeded"):
            self._raise_cas_failure(key, expected_revision, answer)
        with reading("an update"):
            prev = answer["responses"][0]["response_put"]["prev_kv"]
            created = int(prev["create_revision"])
        return KeyValue(key, value, created, _revision(answer))

    async def delete(self, key: str, *, expected_revision: int | None = None) -> KeyValue:
        name = _check(key, b"")
        compare = []
        if expected_revision is not None:
            compare.append(
                {
                    "target": "MOD",
                    "key": name,
                    "result": "EQUAL",
                    "mod_revision": str(expected_revision),
                }
            )
        answer = await self._txn(
            compare=compare,
            success=[{"request_delete_range": {"key": name, "prev_kv": True}}],
            failure=[{"request_range": {"key": name}}],
        )
        if not answer.get("succeeded"):
            assert expected_revision is not None  # an empty compare always succeeds
            self._raise_cas_failure(key, expected_revision, answer)
        with reading("a delete"):
            prev_kvs = answer["responses"][0]["response_delete_range"].get("prev_kvs", [])
            prev = _kv(prev_kvs[0]) if prev_kvs else None
        if prev is None:
            raise NotFound(key)
        return KeyValue(key, prev.value, prev.create_revision, _revision(answer))

    async def _txn(self, *, compare: _Ops, success: _Ops, failure: _Ops) -> Json:
        body = {"compare": compare, "success": success, "failure": failure}
        return await self._call("kv/txn", body, idempotent=False)

    @staticmethod
    def _raise_cas_failure(key: str, expected: int, answer: Json) -> None:
        with reading("a compare-and-swap"):
            kvs = answer["responses"][0]["response_range"].get("kvs", [])
            current = _kv(kvs[0]) if kvs else None
        if current is None:
            raise NotFound(key)
        raise Conflict(key, expected=expected, current=current)

    async def compact(self, revision: int) -> None:
        self._check_open()
        try:
            await self._client.call("kv/compaction", {"revision": str(revision)}, idempotent=True)
        except EtcdError as e:
            if e.message == _COMPACTED:
                return  # already compacted at or beyond it: nothing to do
            if e.message == _FUTURE:
                raise InvalidArgument(
                    f"cannot compact to revision {revision}: it is in the future"
                ) from e
            raise map_error(e) from e

    # --- watch ------------------------------------------------------------------------

    async def watch(self, prefix: str, *, from_revision: int) -> EtcdWatch:
        encode_key(prefix, prefix=True)
        # etcd reports a compacted start revision only asynchronously, on the stream;
        # a read at that revision tells now, so the caller can answer 410 at once. (A
        # read at revision 0 means "now" to etcd: from 0, the first revision is asked.)
        current = await self.current_revision()
        if from_revision < current:
            at = max(from_revision, 1)
            try:
                await self._range({"key": b64(b"\x00"), "count_only": True, "revision": str(at)})
            except Expired as e:
                raise Expired(from_revision, current=current) from e
        watch = EtcdWatch(self._client, prefix, from_revision)
        try:
            await watch.start()
        except BaseException:
            await watch.close()
            raise
        return watch

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._client.close()


def _check(key: str, value: bytes) -> str:
    name = encode_key(key)
    if len(value) > MAX_VALUE_BYTES:
        raise InvalidArgument(
            f"value of {len(value)} bytes for {key!r} is larger than the store's "
            f"limit of {MAX_VALUE_BYTES} bytes"
        )
    return b64(name)


def _revision(answer: Json) -> int:
    try:
        return int(answer["header"]["revision"])
    except (KeyError, TypeError, ValueError) as e:
        raise Unavailable("etcd answered without a revision in its header") from e


def _kv(raw: Any) -> KeyValue:
    """A key-value of an answer (read it inside ``reading``: it may be malformed)."""
    return KeyValue(
        unb64(raw["key"]).decode(),
        unb64(raw.get("value")),
        int(raw.get("create_revision", 0)),
        int(raw.get("mod_revision", 0)),
    )
