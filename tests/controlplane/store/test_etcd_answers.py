"""The etcd backend against answers a real etcd never gives: a proxy's page, a truncated
or foreign message, fields missing or of the wrong shape. Each must become Unavailable
with a sentence, never a KeyError or a JSONDecodeError from deep inside.

A small aiohttp server on loopback plays etcd's JSON gateway here, so the real client,
store and watch read the answers off a real socket.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import orjson
import pytest
from aiohttp import web

from controlplane.store import EventType, Store, Unavailable, open_store

REVISION = 5  # what the fake etcd reports as its current revision
HEADER = {"header": {"revision": str(REVISION)}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kv(key: str, value: str, revision: int) -> dict[str, str]:
    rev = str(revision)
    return {"key": b64(key), "value": b64(value), "create_revision": rev, "mod_revision": rev}


@dataclass
class FakeEtcd:
    """Answers ``kv/range`` and ``kv/txn`` with ``answer`` (bytes, as sent) and each
    ``watch`` with the next entry of ``watch_streams`` (lines, then the stream ends
    unless it is the last one, which stays open). A count-only range, which the store
    uses to learn the revision, always gets a well-formed answer."""

    answer: bytes = b"{}"
    watch_streams: list[list[bytes]] = field(default_factory=list)
    watches_opened: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        body = await request.json()
        if path == "watch":
            return await self._watch(request)
        if path == "kv/range" and body.get("count_only"):
            return web.Response(body=orjson.dumps(HEADER), content_type="application/json")
        return web.Response(body=self.answer, content_type="application/json")

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        lines = self.watch_streams[min(self.watches_opened, len(self.watch_streams) - 1)]
        last = self.watches_opened >= len(self.watch_streams) - 1
        self.watches_opened += 1
        response = web.StreamResponse()
        await response.prepare(request)
        for line in lines:
            await response.write(line)
        if last:
            await self.stopping.wait()  # hold the stream open, as etcd does
        return response


@asynccontextmanager
async def fake_etcd(fake: FakeEtcd) -> AsyncIterator[Store]:
    app = web.Application()
    app.router.add_post("/v3/{path:.*}", fake.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    store = await open_store(f"etcd://127.0.0.1:{port}?timeout=2")
    try:
        yield store
    finally:
        fake.stopping.set()
        await store.close()
        await runner.cleanup()


# --- unary answers --------------------------------------------------------------------

Call = Callable[[Store], object]

CALLS: dict[str, Call] = {
    "get": lambda s: s.get("/p/a"),
    "list": lambda s: s.list("/p/"),
    "create": lambda s: s.create("/p/a", b"1"),
    "update": lambda s: s.update("/p/a", b"1", expected_revision=3),
    "delete": lambda s: s.delete("/p/a"),
    "delete-cas": lambda s: s.delete("/p/a", expected_revision=3),
}


def answer(**fields: object) -> bytes:
    return orjson.dumps({**HEADER, **fields})


@pytest.mark.parametrize(
    ("call", "body"),
    [
        pytest.param("get", b"<html>502 Bad Gateway</html>", id="not-json"),
        pytest.param("get", b"[]", id="not-an-object"),
        pytest.param("get", answer(kvs=[{"value": b64("1")}]), id="kv-without-key"),
        pytest.param("get", answer(kvs=["a string"]), id="kv-not-an-object"),
        pytest.param("get", answer(kvs=[{"key": "%%not base64%%"}]), id="key-not-base64"),
        pytest.param("get", answer(kvs=[{"key": b64("/p/a"), "mod_revision": "x"}]), id="rev"),
        pytest.param("get", answer(kvs=[{"key": "/w==", "value": ""}]), id="key-not-utf8"),
        pytest.param("list", answer(kvs=[{"key": b64("/p/a")}, 7]), id="list-item"),
        pytest.param("list", answer(kvs={"key": b64("/p/a")}), id="list-not-a-list"),
        pytest.param("update", answer(succeeded=True), id="update-no-responses"),
        pytest.param("update", answer(succeeded=True, responses=[{}]), id="update-no-put"),
        pytest.param(
            "update",
            answer(succeeded=True, responses=[{"response_put": {}}]),
            id="update-no-prev-kv",
        ),
        pytest.param("update", answer(succeeded=False), id="cas-failure-no-responses"),
        pytest.param("update", answer(succeeded=False, responses=[]), id="cas-failure-empty"),
        pytest.param("delete", answer(succeeded=True, responses=[]), id="delete-empty"),
        pytest.param("delete", answer(succeeded=True, responses=[None]), id="delete-null"),
        pytest.param(
            "delete-cas",
            answer(succeeded=False, responses=[{"response_range": {"kvs": [{}]}}]),
            id="delete-cas-kv-empty",
        ),
        pytest.param("create", orjson.dumps({"succeeded": True}), id="create-no-header"),
        pytest.param("get", orjson.dumps({"error": {"http_code": "x"}}), id="error-bad-code"),
    ],
)
async def test_a_malformed_answer_is_unavailable(call: str, body: bytes) -> None:
    async with fake_etcd(FakeEtcd(answer=body)) as store:
        with pytest.raises(Unavailable) as info:
            await CALLS[call](store)  # type: ignore[misc]
    assert "etcd answered" in str(info.value)


# --- watch streams -----------------------------------------------------------------------

CREATED = orjson.dumps({"result": {**HEADER, "created": True}}) + b"\n"


def events(*raw: object) -> bytes:
    return orjson.dumps({"result": {**HEADER, "events": list(raw)}}) + b"\n"


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"<html>502 Bad Gateway</html>\n", id="not-json"),
        pytest.param(b"[1, 2]\n", id="not-an-object"),
        pytest.param(b'{"result": "nothing"}\n', id="result-not-an-object"),
        pytest.param(events({"type": "PUT"}), id="event-without-kv"),
        pytest.param(events({"kv": {"value": b64("1")}}), id="kv-without-key"),
        pytest.param(b'{"result": {"compact_revision": "soon"}}\n', id="bad-compact-revision"),
        pytest.param(b'{"error": {"grpc_code": "x", "message": "m"}}\n', id="bad-error"),
    ],
)
async def test_a_malformed_watch_message_is_unavailable(line: bytes) -> None:
    fake = FakeEtcd(watch_streams=[[CREATED, line]])
    async with fake_etcd(fake) as store:
        watch = await store.watch("/p/", from_revision=REVISION)
        try:
            async with asyncio.timeout(10):
                with pytest.raises(Unavailable) as info:
                    await anext(watch)
        finally:
            await watch.close()
    assert "etcd answered" in str(info.value)
    assert "unexpected body" in str(info.value)


async def test_a_bad_event_among_good_ones_delivers_none_of_them() -> None:
    # The message is refused whole: taking its good events and then failing would leave
    # half a message queued behind the error.
    good = {"kv": {**kv("/p/a", "1", REVISION + 1), "version": "1"}}
    fake = FakeEtcd(watch_streams=[[CREATED, events(good, {"kv": {}})]])
    async with fake_etcd(fake) as store:
        watch = await store.watch("/p/", from_revision=REVISION)
        try:
            async with asyncio.timeout(10):
                with pytest.raises(Unavailable):
                    await anext(watch)
            assert watch.ready() == []
        finally:
            await watch.close()


async def test_a_message_cut_short_reopens_the_watch_from_its_cursor() -> None:
    event = events({"kv": {**kv("/p/a", "1", REVISION + 1), "version": "1"}})
    fake = FakeEtcd(
        watch_streams=[
            [CREATED, event[: len(event) // 2]],  # the connection ends mid-message
            [CREATED, event],
        ]
    )
    async with fake_etcd(fake) as store:
        watch = await store.watch("/p/", from_revision=REVISION)
        try:
            async with asyncio.timeout(10):
                first = await anext(watch)
        finally:
            await watch.close()
    assert (first.type, first.kv.key, first.revision) == (EventType.CREATE, "/p/a", REVISION + 1)
    assert fake.watches_opened == 2


async def test_ready_returns_the_rest_of_a_message_without_waiting() -> None:
    raw = [{"kv": {**kv(f"/p/{n}", "1", REVISION + n), "version": "1"}} for n in (1, 2, 3)]
    fake = FakeEtcd(watch_streams=[[CREATED, events(*raw)]])
    async with fake_etcd(fake) as store:
        watch = await store.watch("/p/", from_revision=REVISION)
        try:
            async with asyncio.timeout(10):
                first = await anext(watch)
            rest = watch.ready()
            assert watch.ready() == []  # nothing twice
        finally:
            await watch.close()
    assert [e.kv.key for e in [first, *rest]] == ["/p/1", "/p/2", "/p/3"]
