"""Container logs from Podman, as an async generator of lines.

podman-py reads a log stream with blocking socket reads, so one thread per stream reads
it and hands each line to the event loop through a bounded ``asyncio.Queue``: the thread
waits while the queue is full (a slow reader, e.g. ``kubectl logs -f`` over a slow link,
holds back Podman instead of growing memory). The thread is not one of the bridge's
workers: a follow may last for days.

Stopping: when the consumer stops iterating (``aclose``, cancellation, an exception), the
generator marks the pump stopped and shuts its socket down, which wakes the thread's
blocking read at once; a thread waiting for queue room sees the mark within 0.25 s. The
stream has a connection of its own (``PodmanApi.stream_client``), so that shutdown cannot
touch another request's connection. The loop thread takes no lock the pump thread holds.

Podman's libpod log endpoint always multiplexes (8-byte frame headers: stream, 0, 0, 0,
big-endian length), one frame per log line, also for tty containers; timestamps, when
asked for, are RFC 3339 with whole seconds (Podman 4.3).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from agent.runtime.interface import NotFoundError
from agent.runtime.podman_api import PodmanApi, check, is_transport_error, iter_frames

_QUEUE_LINES = 256  # lines buffered between the reading thread and the consumer
_ROOM_POLL_SECONDS = 0.25  # how often a thread waiting for queue room checks for stop

_Item = bytes | BaseException | None  # a line, a failure, or the end


def log_params(
    *, follow: bool, tail_lines: int | None, since: datetime | None, timestamps: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "stdout": True,
        "stderr": True,
        "follow": follow,
        "timestamps": timestamps,
        "tail": -1 if tail_lines is None else max(0, tail_lines),
    }
    if since is not None:
        # RFC 3339 with nanoseconds: Podman filters on each line's exact time (podman-py's
        # own ``logs(since=)`` rounds to whole seconds).
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        params["since"] = aware.astimezone(UTC).isoformat()
    return params


class LogPump:
    """One log stream: a thread reading Podman, an async iterator for the consumer."""

    def __init__(
        self, api: PodmanApi, container_id: str, params: dict[str, Any], *, follow: bool
    ) -> None:
        self._api = api
        self._container_id = container_id
        self._params = params
        self._follow = follow
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(maxsize=_QUEUE_LINES)
        self._loop = asyncio.get_running_loop()
        self._stopped = False  # set by the loop thread, read by the pump thread
        self._sock: socket.socket | None = None
        self.thread = threading.Thread(
            target=self._run, name=f"podman-logs-{container_id[:12]}", daemon=True
        )

    async def lines(self) -> AsyncIterator[bytes]:
        self.thread.start()
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """Make the thread finish (loop thread; never blocks)."""
        self._stopped = True
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    # --- the pump thread ----------------------------------------------------------------

    def _run(self) -> None:
        client = self._api.stream_client()
        response: Any = None
        try:
            response = client.get(
                f"/containers/{self._container_id}/logs",
                params=self._params,
                stream=True,
                # A follow may be quiet for hours: no read timeout, stop() wakes it.
                timeout=(self._api.timeout, None if self._follow else self._api.timeout),
            )
            if response.status_code == 404:
                self._emit(NotFoundError(f"container {self._container_id} not found"))
                return
            check(response)
            self._sock = _socket_of(response)
            if self._stopped:
                return
            for _, line in iter_frames(response.raw):
                if not self._emit(line):
                    return
            self._emit(None)
        except Exception as e:
            if self._stopped:
                return
            if is_transport_error(e):
                self._emit(self._api.unavailable(f"logs of {self._container_id}", e))
            else:
                self._emit(e)
        finally:
            self._sock = None
            with contextlib.suppress(Exception):
                if response is not None:
                    response.close()
                client.close()

    def _emit(self, item: _Item) -> bool:
        """Hand ``item`` to the loop, waiting for room; False once stopped."""
        try:
            future = asyncio.run_coroutine_threadsafe(self._queue.put(item), self._loop)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        while True:
            try:
                future.result(timeout=_ROOM_POLL_SECONDS)
                return not self._stopped
            except concurrent.futures.TimeoutError:
                if self._stopped:
                    future.cancel()
                    return False
            except concurrent.futures.CancelledError:
                return False


def _socket_of(response: Any) -> socket.socket | None:
    """The socket under a streamed podman-py response (urllib3's connection)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None
