"""Exec in Podman containers: ``exec_sync`` (probes) and interactive sessions.

Both create an exec session with podman-py's low-level client (``POST
/libpod/containers/{id}/exec``) and read its exit code from ``GET /libpod/exec/{id}/json``.

* ``exec_sync`` starts the session in a bridge worker thread and demultiplexes its output
  by the 8-byte frame headers (what podman-py's ``exec_run`` does only with ``demux=True``:
  quirk 3). Its limit bounds every read and the whole call; on expiry it raises
  ``TimeoutError``. Podman 4.3's API cannot kill an exec session, so a timed-out command
  keeps running in the container until it ends by itself.

* ``exec_interactive`` needs the connection Podman hijacks after ``POST
  /libpod/exec/{id}/start``: stdin goes up the same socket the output comes down.
  podman-py has no attach (``Container.attach`` raises NotImplementedError; requests
  cannot hand over an upgraded socket without reaching into urllib3's private buffers),
  so the session speaks that one HTTP/1.1 upgrade itself, on an asyncio unix connection
  to the same Podman socket, under the URL prefix podman-py uses. No thread, no
  subprocess: the CLI fallback DESIGN.md allows was not needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import podman.api
import urllib3.exceptions

from agent.runtime.interface import (
    ContainerRuntimeError,
    ExecResult,
    NotFoundError,
)
from agent.runtime.podman_api import PodmanApi, PodmanHttpError, check, iter_frames

logger = logging.getLogger(__name__)

_QUEUE_CHUNKS = 64  # output chunks buffered between the connection and the consumer
_EXIT_CODE_POLLS = 40  # x 25 ms: how long Podman may take to record an ended exec's code
_EXIT_CODE_POLL_SECONDS = 0.025


class ExecTimedOut(Exception):
    """exec_sync's limit passed (raised in the worker, re-raised as TimeoutError)."""


def exec_create(client: Any, container_id: str, command: Sequence[str], **attach: bool) -> str:
    body = {
        "AttachStdin": attach.get("stdin", False),
        "AttachStdout": True,
        "AttachStderr": True,
        "Tty": attach.get("tty", False),
        "Cmd": list(command),
    }
    response = client.api.post(
        f"/containers/{container_id}/exec",
        data=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    if response.status_code == 404:
        raise NotFoundError(f"container {container_id} not found")
    return str(check(response).json()["Id"])


def exec_exit_code(client: Any, exec_id: str) -> int:
    """The exit code of an ended exec session (waits briefly for Podman to record it)."""
    for _ in range(_EXIT_CODE_POLLS):
        response = client.api.get(f"/exec/{exec_id}/json")
        if response.status_code == 404:
            raise ContainerRuntimeError(
                f"exec session {exec_id} is gone and its exit code with it (Podman keeps "
                "ended sessions for containers.conf's exit_command_delay seconds)"
            )
        data = check(response).json()
        if not data.get("Running"):
            return int(data.get("ExitCode") or 0)
        time.sleep(_EXIT_CODE_POLL_SECONDS)  # a worker thread, never the event loop
    raise ContainerRuntimeError(f"exec session {exec_id} still runs after its output ended")


def exec_sync_in_thread(
    client: Any, timeout: float, container_id: str, command: Sequence[str], limit: float
) -> ExecResult:
    exec_id = exec_create(client, container_id, command)
    deadline = time.monotonic() + limit
    response = check(
        client.api.post(
            f"/exec/{exec_id}/start",
            data=json.dumps({"Detach": False, "Tty": False}),
            headers={"content-type": "application/json"},
            stream=True,
            timeout=(timeout, limit),
        )
    )
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    try:
        for stream, payload in iter_frames(response.raw):
            (stderr if stream == 2 else stdout).append(payload)
            if time.monotonic() > deadline:
                raise ExecTimedOut
    except urllib3.exceptions.ReadTimeoutError as e:
        raise ExecTimedOut from e
    finally:
        response.close()
    return ExecResult(
        exit_code=exec_exit_code(client, exec_id), stdout=b"".join(stdout), stderr=b"".join(stderr)
    )


async def exec_sync(
    api: PodmanApi, container_id: str, command: Sequence[str], limit_seconds: float
) -> ExecResult:
    try:
        return await api.call(
            f"exec in {container_id}",
            lambda c: exec_sync_in_thread(c, api.timeout, container_id, command, limit_seconds),
            seconds=limit_seconds,
        )
    except ExecTimedOut as e:
        raise TimeoutError(
            f"{' '.join(command)!r} in container {container_id} did not finish "
            f"within {limit_seconds:g}s"
        ) from e
    except PodmanHttpError as e:
        raise ContainerRuntimeError(f"exec in container {container_id}: {e.message}") from e


# --- interactive --------------------------------------------------------------------------


class PodmanExecSession:
    """An attached exec session (see the module docstring); implements ExecSession.

    A task reads the connection into a bounded queue (a consumer that stops reading
    holds back the process, not memory) and, the moment the output ends, reads the exit
    code: Podman forgets an ended exec session ``exit_command_delay`` seconds later
    (containers.conf; 300 by default).
    """

    def __init__(
        self,
        api: PodmanApi,
        exec_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        tty: bool,
        stdin: bool,
    ) -> None:
        self._api = api
        self.exec_id = exec_id
        self._reader = reader
        self._writer = writer
        self._tty = tty
        self._stdin = stdin
        self._chunks: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(_QUEUE_CHUNKS)
        self._reading = False
        self._exit_code: int | None = None
        self._exit_error: ContainerRuntimeError | None = None
        self._exited = asyncio.Event()
        self._pump = asyncio.create_task(self._read(), name=f"exec-{exec_id[:12]}")

    async def _read(self) -> None:
        try:
            try:
                async for item in self._frames():
                    await self._chunks.put(item)
            except ConnectionError:
                pass
            try:
                self._exit_code = await self._api.call(
                    "exec exit code", lambda c: exec_exit_code(c, self.exec_id)
                )
            except ContainerRuntimeError as e:
                self._exit_error = e
            except PodmanHttpError as e:
                self._exit_error = ContainerRuntimeError(
                    f"exit code of exec session {self.exec_id}: {e.message}"
                )
        finally:
            self._exited.set()
        await self._chunks.put(None)  # the end, after every chunk

    async def _frames(self) -> AsyncIterator[tuple[int, bytes]]:
        if self._tty:  # a terminal: one raw stream, stdout and stderr together
            while chunk := await self._reader.read(65536):
                yield 1, chunk
            return
        while True:
            try:
                header = await self._reader.readexactly(8)
                payload = await self._reader.readexactly(int.from_bytes(header[4:8], "big"))
            except asyncio.IncompleteReadError:
                return
            if payload:
                yield header[0], payload

    async def write_stdin(self, data: bytes) -> None:
        if not self._stdin:
            raise ContainerRuntimeError("this exec session was started without stdin")
        self._writer.write(data)
        await self._writer.drain()

    async def close_stdin(self) -> None:
        # A half-close: Podman then closes the process's stdin (``cat`` ends).
        if self._stdin and not self._writer.is_closing() and self._writer.can_write_eof():
            self._writer.write_eof()
            await self._writer.drain()

    async def resize(self, width: int, height: int) -> None:
        def call(c: Any) -> None:
            check(c.api.post(f"/exec/{self.exec_id}/resize", params={"h": height, "w": width}))

        try:
            await self._api.call("resize exec", call)
        except PodmanHttpError as e:
            # Resizing a session that has just ended is not worth failing over.
            logger.debug("exec resize refused exec=%s error=%s", self.exec_id, e.message)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        self._reading = True
        while (item := await self._chunks.get()) is not None:
            yield item

    async def wait(self) -> int:
        if not self._reading:
            async for _ in self.output():  # nobody reads the output: drain it
                pass
        await self._exited.wait()
        if self._exit_error is not None:
            raise self._exit_error
        assert self._exit_code is not None
        return self._exit_code

    async def close(self) -> None:
        self._pump.cancel()
        self._writer.close()
        with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
            await self._pump
        with contextlib.suppress(asyncio.QueueFull):
            self._chunks.put_nowait(None)  # a reader still waiting ends too
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()


async def exec_interactive(
    api: PodmanApi, container_id: str, command: Sequence[str], *, stdin: bool, tty: bool
) -> PodmanExecSession:
    try:
        exec_id = await api.call(
            f"exec in {container_id}",
            lambda c: exec_create(c, container_id, command, stdin=stdin, tty=tty),
        )
    except PodmanHttpError as e:
        raise ContainerRuntimeError(f"exec in container {container_id}: {e.message}") from e
    try:
        async with asyncio.timeout(api.timeout):
            reader, writer = await asyncio.open_unix_connection(api.socket_path)
    except (OSError, TimeoutError) as e:
        raise api.unavailable(f"attach exec in {container_id}", e) from e
    try:
        async with asyncio.timeout(api.timeout):
            await _upgrade(reader, writer, exec_id, tty=tty)
    except BaseException as e:
        writer.close()
        if isinstance(e, TimeoutError | ConnectionError | asyncio.IncompleteReadError):
            raise api.unavailable(f"attach exec in {container_id}", e) from e
        raise
    return PodmanExecSession(api, exec_id, reader, writer, tty=tty, stdin=stdin)


async def _upgrade(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, exec_id: str, *, tty: bool
) -> None:
    """``POST /exec/{id}/start`` with ``Upgrade: tcp``; Podman answers 101 (or 200)
    and the connection then carries the session's streams."""
    body = json.dumps({"Detach": False, "Tty": tty}).encode()
    head = (
        f"POST /v{podman.api.VERSION}/libpod/exec/{exec_id}/start HTTP/1.1\r\n"
        "Host: podman\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n"
        "\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    parts = status_line.decode("latin-1").split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip() or 0)
    if status in (101, 200):
        return
    text = (await reader.readexactly(length)).decode(errors="replace") if length else ""
    try:
        message = str(json.loads(text).get("message", text))
    except ValueError:
        message = text or status_line.decode("latin-1").strip()
    if status == 404:
        raise NotFoundError(f"exec session {exec_id}: {message}")
    raise ContainerRuntimeError(f"exec start refused (HTTP {status}): {message}")
