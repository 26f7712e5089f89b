"""Informers: list, then watch from the list's revision, keep a local cache, relist on 410.

One implementation serves the agent (its pods), the scheduler, the controllers and the
TUI. Handlers are called with (old, new) on the event loop after the cache is updated:
``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)``. A relist after a 410 or a
reconnect compares the new list with the cache and calls the handlers for the
differences, so a consumer that only reacts to handler calls still converges.

Objects in the cache are shared: never mutate them (copy first).

Indexes (``add_index``) keep, for a function of an object (its owner uids, its node), the
keys of the objects that give each value, so that a controller asks "the pods owned by
this uid" without scanning the cache. They are updated before the handlers run.

Failures: a broken watch resumes from the last revision seen; an expired one (410)
relists; an apiserver that cannot be reached is retried with back-off, and the cache
keeps serving what it last knew (the agent keeps its pods running meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from api import errors
from api.client import ApiClient
from api.resources import Resource

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]
IndexFunc = Callable[[Obj], Iterable[str]]


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> None:
        self._client = client
        self.resource = resource
        self._namespace = namespace
        self._params = {
            k: v
            for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector))
            if v
        }
        self._page_size = page_size
        self.cache: dict[str, Obj] = {}
        self.revision = ""
        self.synced = asyncio.Event()
        self._on_add: list[AddHandler] = []
        self._on_update: list[UpdateHandler] = []
        self._on_delete: list[DeleteHandler] = []
        self._index_funcs: dict[str, IndexFunc] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Index the cache by ``func(obj)`` (any number of values per object)."""
        self._index_funcs[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self.cache.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    def by_index(self, name: str, value: str) -> list[Obj]:
        """The cached objects whose ``name`` index gives ``value``."""
        keys = self._indexes[name].get(value, ())
        return [self.cache[k] for k in keys if k in self.cache]

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._index_funcs.items():
            index = self._indexes[name]
            before = set(func(old)) if old is not None else set()
            after = set(func(new)) if new is not None else set()
            for value in before - after:
                keys = index.get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del index[value]
            for value in after - before:
                index.setdefault(value, set()).add(key)

    def add_handlers(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        if on_add:
            self._on_add.append(on_add)
        if on_update:
            self._on_update.append(on_update)
        if on_delete:
            self._on_delete.append(on_delete)

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def list(self) -> list[Obj]:
        return list(self.cache.values())

    async def run(self) -> None:
        """List and watch until cancelled."""
        delay = 0.2
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                await self._watch()
                delay = 0.2  # a stream that ends normally is simply reopened
            except errors.Expired:
                logger.info("informer resource=%s expired; listing again", self.resource.plural)
                need_list = True
            except errors.ApiError as e:
                logger.warning(
                    "informer resource=%s error=%s; retrying in %.1fs",
                    self.resource.plural, e.message, delay,
                )  # fmt: skip
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 10.0)
                need_list = need_list or not self.revision

    async def _relist(self) -> None:
        items: dict[str, Obj] = {}
        token: str | None = None
        revision = ""
        while True:
            params = {**self._params, "limit": str(self._page_size)}
            if token:
                params["continue"] = token
            page = await self._client.list(self.resource, self._namespace, params=params)
            for item in page.get("items") or []:
                item.setdefault("kind", self.resource.kind)
                item.setdefault("apiVersion", self.resource.api_version)
                items[key_of(item)] = item
            meta = page.get("metadata") or {}
            revision = str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or None
            if not token:
                break
        old = self.cache
        self.cache = items
        self.revision = revision
        for name in self._index_funcs:
            self.add_index(name, self._index_funcs[name])
        for key, obj in items.items():
            previous = old.get(key)
            if previous is None:
                self._emit_add(obj)
            elif previous.get("metadata", {}).get("resourceVersion") != obj.get("metadata", {}).get(
                "resourceVersion"
            ):
                self._emit_update(previous, obj)
        for key, obj in old.items():
            if key not in items:
                self._emit_delete(obj)
        self.synced.set()

    async def _watch(self) -> None:
        params = {
            **self._params,
            "resourceVersion": self.revision,
            "allowWatchBookmarks": "true",
            # As client-go: a random lifetime, so that many clients do not reconnect at once.
            "timeoutSeconds": str(random.randint(300, 600)),
        }
        async for event in self._client.watch(self.resource, self._namespace, params=params):
            kind = event.get("type")
            obj = event.get("object") or {}
            revision = (obj.get("metadata") or {}).get("resourceVersion")
            if kind == "BOOKMARK":
                if revision:
                    self.revision = str(revision)
                continue
            key = key_of(obj)
            if kind == "ADDED" or kind == "MODIFIED":
                previous = self.cache.get(key)
                self.cache[key] = obj
                self._reindex(key, previous, obj)
                if previous is None:
                    self._emit_add(obj)
                else:
                    self._emit_update(previous, obj)
            elif kind == "DELETED":
                gone = self.cache.pop(key, None)
                self._reindex(key, gone, None)
                self._emit_delete(gone if gone is not None else obj)
            if revision:
                self.revision = str(revision)

    def _emit_add(self, obj: Obj) -> None:
        for handler in self._on_add:
            _call(handler, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for handler in self._on_update:
            _call(handler, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for handler in self._on_delete:
            _call(handler, obj)


def _call(handler: Callable[..., None], *args: Obj) -> None:
    try:
        handler(*args)
    except Exception:
        logger.exception("informer handler %s failed", getattr(handler, "__name__", handler))
