"""The bridge from asyncio to podman-py, used by the Podman runtime (podman.py).

podman-py is blocking (requests over a unix socket). Every call runs in this bridge's own
pool of daemon threads (threads.py), so that a slow Podman (a pull, a 30-second stop) can
never starve the agent's other blocking work in the loop's default executor, nor keep a
stopped agent from exiting; and every call is bounded twice: by the
socket timeout requests applies to each connect and read, and by an ``asyncio.timeout``
a little longer, in case the thread is stuck somewhere a socket timeout does not reach.
(Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that arrives as
the call completes, and a stopping agent would then hang.)

Failures leave here in two shapes only:

* ``RuntimeUnavailable``: Podman could not be reached (socket missing, connection
  refused or reset, no answer in time). The client is dropped, so the next call opens new
  connections: a restarted ``podman system service`` is picked up by the very next call.
* ``PodmanHttpError``: Podman answered with an HTTP error; the runtime maps it to the
  interface's error for the operation (see ``podman.py``).

Concurrency: ``call`` is a coroutine; the functions it runs execute in worker threads and
must not touch the event loop. The client is created lazily in a worker thread, because
podman-py's ``PodmanClient()`` reads configuration files.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import podman
import podman.api
import podman.errors
import urllib3.exceptions
from podman.api.uds import UDSAdapter, UDSConnection, UDSConnectionPool, UDSPoolManager, UDSSocket
from requests.adapters import DEFAULT_POOLBLOCK

from agent.runtime.interface import RuntimeUnavailable
from agent.runtime.threads import DaemonThreadPool

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How much longer than the socket timeout the event loop waits for a worker thread.
_LOOP_MARGIN_SECONDS = 5.0


class PodmanHttpError(Exception):
    """Podman answered with an HTTP error status."""

    def __init__(self, status: int, message: str, cause: str = "") -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.cause = cause


def socket_path(url: str) -> str:
    """The filesystem path of a ``unix://`` (or ``http+unix://``) Podman URL."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("unix", "http+unix"):
        raise ValueError(f"the Podman URL must be unix:///path/to/podman.sock, not {url!r}")
    path = urllib.parse.unquote(parsed.netloc + parsed.path)
    if not path.startswith("/"):
        raise ValueError(f"the Podman socket path must be absolute: {url!r}")
    return path


def is_transport_error(error: BaseException) -> bool:
    """True when ``error`` means Podman was not reached (as opposed to: it said no)."""
    if isinstance(error, podman.errors.APIError):
        # podman-py wraps every requests/OSError failure in an APIError without a response.
        return error.response is None
    return isinstance(error, OSError | urllib3.exceptions.HTTPError | http.client.HTTPException)


def check(response: Any, *ok: int) -> Any:
    """``response`` (a podman-py APIResponse) if its status is one of ``ok`` (default:
    any 2xx), else ``PodmanHttpError`` with Podman's own message."""
    status = int(response.status_code)
    if (status in ok) if ok else (200 <= status < 300):
        return response
    raise http_error(status, response)


def is_gone(response: Any) -> bool:
    """The container or pod does not exist (any more): Podman answers 404, or 500 with
    "no such container" / "no such pod" when it vanished while the request ran."""
    if response.status_code == 404:
        return True
    return response.status_code == 500 and (
        "no such container" in response.text or "no such pod" in response.text
    )


def http_error(status: int, response: Any) -> PodmanHttpError:
    try:
        body = response.json()
    except ValueError:
        return PodmanHttpError(status, response.text.strip() or f"HTTP {status}")
    if not isinstance(body, dict):
        return PodmanHttpError(status, str(body))
    message = str(body.get("message") or "")
    errors = body.get("Errs") or []  # pod operations report one error per container
    if errors and isinstance(errors, list):
        message = "; ".join(str(e) for e in errors)
    return PodmanHttpError(status, message or f"HTTP {status}", str(body.get("cause") or ""))


def iter_frames(raw: Any) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) pairs of a multiplexed Podman stream (logs, exec output), read
    from a streamed urllib3 response: each frame is an 8-byte header (stream 1 stdout or
    2 stderr, three zero bytes, a big-endian length) and its payload."""
    while True:
        header = _read_exact(raw, 8)
        if len(header) < 8:
            return
        size = int.from_bytes(header[4:8], "big")
        payload = _read_exact(raw, size)
        if len(payload) < size:
            return
        if payload:
            yield header[0], payload


def _read_exact(raw: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = raw.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _UDSConnection(UDSConnection):
    """podman-py's unix-socket connection, except that a failed connect closes its
    socket: podman-py's leaks it (a ResourceWarning per call while Podman is down)."""

    def connect(self) -> None:
        sock = UDSSocket(self.uds)
        try:
            sock.settimeout(self.timeout)
            sock.connect()  # type: ignore[no-untyped-call]
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _UDSConnectionPool(UDSConnectionPool):
    ConnectionCls = _UDSConnection


class _UDSPoolManager(UDSPoolManager):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self.pool_classes_by_scheme = {"http": _UDSConnectionPool}


class _UDSAdapter(UDSAdapter):
    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = DEFAULT_POOLBLOCK, **kwargs: Any
    ) -> None:
        self.poolmanager = _UDSPoolManager(
            num_pools=connections, maxsize=maxsize, block=block, **kwargs, **self._pool_kwargs
        )


def _use_closing_adapter(api_client: Any, timeout: float | None) -> None:
    adapter = _UDSAdapter(api_client.base_url.geturl(), **({"timeout": timeout} if timeout else {}))
    api_client.mount("http://", adapter)
    api_client.mount("https://", adapter)


class PodmanApi:
    """One Podman service: a lazily created podman-py client and a thread pool."""

    def __init__(self, url: str, *, timeout: float, max_workers: int) -> None:
        self.url = url
        self.socket_path = socket_path(url)
        self.timeout = timeout
        # Daemon threads: a call still running when the agent exits is abandoned, not
        # waited for (threads.py).
        self._executor = DaemonThreadPool(max_workers, name="podman")
        self._lock = threading.Lock()
        self._client: Any = None
        self._closed = False

    # --- in worker threads ------------------------------------------------------------

    def client(self) -> Any:
        """The shared ``podman.PodmanClient`` (worker threads only)."""
        with self._lock:
            if self._client is None:
                client = podman.PodmanClient(base_url=self.url, timeout=self.timeout)
                _use_closing_adapter(client.api, self.timeout)
                self._client = client
            return self._client

    def stream_client(self) -> Any:
        """A ``podman.api.APIClient`` of its own, for one long-lived stream (logs): its
        connection is never returned to the shared pool, so shutting its socket down
        from another thread cannot break an unrelated request. Pass the timeout per
        request (``timeout=(connect, read)``); close the client after use."""
        client = podman.api.APIClient(base_url=self.url)
        _use_closing_adapter(client, None)
        return client

    def drop_client(self) -> None:
        """Forget the client, so that the next call connects afresh."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken session must not hide the real error
                logger.debug("closing the podman client failed", exc_info=True)

    def unavailable(self, what: str, error: BaseException) -> RuntimeUnavailable:
        return RuntimeUnavailable(
            f"{what}: cannot reach Podman at {self.url} ({error}); "
            "is 'podman system service' running?"
        )

    def _run(self, what: str, fn: Callable[[Any], T]) -> T:
        try:
            return fn(self.client())
        except podman.errors.APIError as e:
            if e.response is None:
                self.drop_client()
                raise self.unavailable(what, e.__cause__ or e) from e
            raise http_error(int(e.status_code), e.response) from e
        except Exception as e:
            if is_transport_error(e):
                self.drop_client()
                raise self.unavailable(what, e) from e
            raise

    # --- on the event loop ------------------------------------------------------------

    async def call(self, what: str, fn: Callable[[Any], T], *, seconds: float | None = None) -> T:
        """Run ``fn(client)`` in a worker thread. ``seconds`` (default: the client's
        timeout) is how long the operation itself may take, e.g. a stop's grace period."""
        if self._closed:
            raise RuntimeUnavailable(f"{what}: the Podman runtime is closed")
        limit = (self.timeout if seconds is None else seconds) + _LOOP_MARGIN_SECONDS
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._run, what, fn)
        deadline = asyncio.timeout(limit)
        try:
            async with deadline:
                return await future
        except TimeoutError as e:
            if not deadline.expired():
                raise  # ``fn`` itself raised it
            # The thread may still be stuck; its client must not be reused.
            with contextlib.suppress(RuntimeError):  # the executor is shut down
                self._executor.submit(self.drop_client)
            raise RuntimeUnavailable(
                f"{what}: Podman at {self.url} did not answer within {limit:.0f}s"
            ) from e

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._executor.submit(self.drop_client)
        self._executor.shutdown(wait=False, cancel_futures=False)
