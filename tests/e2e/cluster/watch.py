"""``Watch``: a watch on one collection kept on a thread, so that a test can check an
invariant at *every* event (the number of Ready pods during a rollout, no pod ever deleted
during a network blip, never more pods than desired during a failover) instead of
sampling now and then, and wait on a condition with a deadline, never a sleep.

It lists, then watches from that resourceVersion over its own HTTPS connection (the
admin client certificate), reopening the watch from the last version seen when the
server ends it; an error on the thread is raised by the next ``wait`` or by ``stop``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

from tests.support.cluster import HttpsClient

Obj = dict[str, Any]

WATCH_SECONDS = 60  # the server ends each watch after this; it is reopened from the last rv


class Watch:
    """The objects of one collection (``/api/v1/namespaces/NS/pods``, a label selector),
    listed and then watched on a thread, with every event kept in order.

    ``on_event(type, obj, current)`` runs on the watch thread after each event, with the
    objects as they are after it (by uid): tests record invariants there."""

    def __init__(
        self,
        admin: HttpsClient,
        path: str,
        *,
        selector: str = "",
        on_event: Callable[[str, Obj, dict[str, Obj]], None] | None = None,
    ) -> None:
        self.admin = admin
        self.path = path
        self.selector = selector
        self.on_event = on_event
        self.current: dict[str, Obj] = {}  # by uid
        self.events: list[tuple[str, Obj]] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._stopped = False
        self._conn: http.client.HTTPSConnection | None = None
        query = {"labelSelector": selector} if selector else {}
        listed = admin.ok("GET", self._url(query))
        for item in listed["items"]:
            self.current[item["metadata"]["uid"]] = item
        self._rv = str(listed["metadata"]["resourceVersion"])
        self._thread = threading.Thread(target=self._run, name=f"watch {path}", daemon=True)
        self._thread.start()

    def _url(self, query: dict[str, str]) -> str:
        return f"{self.path}?{urllib.parse.urlencode(query)}" if query else self.path

    def _run(self) -> None:
        try:
            while not self._stopped:
                self._watch_once()
        except BaseException as e:  # reported by wait() and stop(), never lost
            if not self._stopped:
                with self._cond:
                    self.error = e
                    self._cond.notify_all()

    def _watch_once(self) -> None:
        query = {
            "watch": "1",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        if self.selector:
            query["labelSelector"] = self.selector
        parsed = urllib.parse.urlsplit(self.admin.url)
        context = self.admin.context
        conn = http.client.HTTPSConnection(
            parsed.hostname or "127.0.0.1", parsed.port, context=context, timeout=WATCH_SECONDS + 30
        )
        self._conn = conn
        try:
            conn.request("GET", self._url(query), headers={"Accept": "application/json"})
            response = conn.getresponse()
            if response.status != 200:
                raise AssertionError(f"watch {self.path}: {response.status} {response.read()!r}")
            while line := response.readline():
                if line.strip():
                    self._apply(json.loads(line))
        except (OSError, http.client.HTTPException, ssl.SSLError):
            if not self._stopped:
                raise
        finally:
            conn.close()

    def _apply(self, change: Obj) -> None:
        kind, obj = change["type"], change["object"]
        if kind == "ERROR":
            raise AssertionError(f"watch {self.path}: {obj}")
        self._rv = str(obj["metadata"]["resourceVersion"])
        if kind == "BOOKMARK":
            return
        with self._cond:
            uid = obj["metadata"]["uid"]
            if kind == "DELETED":
                self.current.pop(uid, None)
            else:
                self.current[uid] = obj
            self.events.append((kind, obj))
            if self.on_event is not None:
                self.on_event(kind, obj, self.current)
            self._cond.notify_all()

    def objects(self) -> list[Obj]:
        with self._cond:
            return list(self.current.values())

    def wait(self, predicate: Callable[[list[Obj]], Any], *, timeout: float, what: str) -> Any:
        """Block until ``predicate(current objects)`` is truthy (checked at each event);
        its value. AssertionError at the deadline, with what was last seen."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.error is not None:
                    raise AssertionError(f"watch {self.path} failed: {self.error!r}")
                result = predicate(list(self.current.values()))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [
                        (o["metadata"]["name"], o.get("status", {}).get("phase"))
                        for o in self.current.values()
                    ]
                    raise AssertionError(f"not {what} within {timeout:g}s; objects: {names}")
                self._cond.wait(min(remaining, 1.0))

    def stop(self) -> None:
        self._stopped = True
        conn = self._conn
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(2)  # wakes the thread's readline
        self._thread.join(10)
        if self.error is not None:
            raise AssertionError(f"watch {self.path} failed: {self.error!r}")


@contextlib.contextmanager
def watching(
    admin: HttpsClient,
    path: str,
    *,
    selector: str = "",
    on_event: Callable[[str, Obj, dict[str, Obj]], None] | None = None,
) -> Iterator[Watch]:
    watch = Watch(admin, path, selector=selector, on_event=on_event)
    try:
        yield watch
    finally:
        watch.stop()
