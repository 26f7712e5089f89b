"""Podman's event stream: bramble's container lifecycle events as they happen, so that the
agent relists when something changed rather than every few seconds.

``GET /libpod/events?stream=true`` on a connection of its own, read on the event loop by
aiohttp over the unix socket: a stream that may stay quiet for days needs no thread. The
filter (bramble's label, containers only) is sent as JSON, as the listings' filters are
(podman-py's ``events(filters=...)`` matches nothing: quirks 5 and 6), and applied again
here, so a Podman that ignored it would cost some parsing, not wrong wake-ups. Actions
that change nothing a listing shows are dropped: above all ``exec`` and ``exec_died``,
which an exec probe causes every period.

Podman 4.3's file event backend polls its log file: events arrive in batches about
250 ms apart, and the first batch may take a second, but it holds everything that
happened since the stream was opened (no event is lost between opening and reading).

Failures: a stream that cannot be opened, or breaks, raises ``RuntimeUnavailable``; a
Podman that stops closes the stream, which then simply ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import podman.api

from agent.runtime.interface import LABEL_MANAGED, LABEL_POD_UID, RuntimeEvent, RuntimeUnavailable
from agent.runtime.podman_api import PodmanApi

logger = logging.getLogger(__name__)

EVENTS_FILTER = json.dumps({"type": ["container"], "label": [f"{LABEL_MANAGED}=true"]})

# What changes a container's state, or its presence, as a listing shows it.
STATE_ACTIONS = frozenset(
    {
        "create", "init", "start", "restart", "died", "exited", "cleanup", "stop", "kill",
        "pause", "unpause", "remove",
    }
)  # fmt: skip


def parse_event(line: bytes) -> RuntimeEvent | None:
    """One line of the stream as a RuntimeEvent, or None if it is not one of bramble's
    state changes (or not an event at all)."""
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("Type") != "container":
        return None
    action = str(raw.get("Action") or raw.get("status") or "")
    actor = raw.get("Actor")
    attributes: Mapping[str, Any] = (
        actor.get("Attributes") if isinstance(actor, dict) else None
    ) or {}
    if action not in STATE_ACTIONS or attributes.get(LABEL_MANAGED) != "true":
        return None
    container_id = str((actor or {}).get("ID") or raw.get("id") or "")
    return RuntimeEvent(action, container_id, str(attributes.get(LABEL_POD_UID, "")))


class PodmanEventStream:
    """One open ``/libpod/events`` stream (an EventStream)."""

    def __init__(self, session: aiohttp.ClientSession, response: aiohttp.ClientResponse) -> None:
        self._session = session
        self._response = response
        self._url = str(response.url)

    def __aiter__(self) -> AsyncIterator[RuntimeEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[RuntimeEvent]:
        try:
            async for line in self._response.content:
                event = parse_event(line)
                if event is not None:
                    yield event
        except (aiohttp.ClientError, OSError, ValueError) as e:  # ValueError: a huge line
            raise RuntimeUnavailable(f"Podman's event stream broke: {e!r}") from e

    async def close(self) -> None:
        self._response.close()
        await self._session.close()


async def open_events(api: PodmanApi) -> PodmanEventStream:
    """Open the stream (see the module docstring). Connecting and the answer's head take
    at most the API's timeout; the body may then be quiet for as long as nothing happens."""
    session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=api.socket_path))
    try:
        async with asyncio.timeout(api.timeout):
            response = await session.get(
                f"http://podman/v{podman.api.VERSION}/libpod/events",
                params={"stream": "true", "filters": EVENTS_FILTER},
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            )
            if response.status != 200:
                text = (await response.text()).strip()
                response.close()
                raise RuntimeUnavailable(
                    f"Podman at {api.url} refused its event stream (HTTP {response.status}): {text}"
                )
    except BaseException as e:
        await session.close()
        if isinstance(e, aiohttp.ClientError | OSError | TimeoutError):
            raise api.unavailable("open the event stream", e) from e
        raise
    return PodmanEventStream(session, response)
