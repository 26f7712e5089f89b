"""The write audit log: who changed what, when, with what result.

One JSON line per mutating request (create, update, patch, delete) in
``DATA_DIR/audit.log``, written by a thread so the event loop never waits on the disk.
The file is rotated to ``audit.log.1`` past ``max_bytes``. Request bodies are not
logged: they may hold secrets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
from pathlib import Path
from typing import Any

import orjson

logger = logging.getLogger(__name__)


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = 100 << 20) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._queue: queue.SimpleQueue[list[dict[str, Any]] | None] = queue.SimpleQueue()
        self._batch: list[dict[str, Any]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    def record(self, entry: dict[str, Any]) -> None:
        """Queue an entry; entries go to the writer thread in batches (one hand-over per
        tenth of a second, not one per request)."""
        self._batch.append(entry)
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(0.1, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        batch, self._batch = self._batch, []
        if batch:
            self._queue.put(batch)

    def flush(self) -> None:
        """Hand what is batched to the writer now (on the event loop)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._flush()

    def close(self) -> None:
        """Write what was handed over, then stop (blocks: call through asyncio.to_thread,
        after ``flush``)."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        handle = None
        try:
            while True:
                batch = self._queue.get()
                if batch is None:
                    return
                try:
                    if handle is None:
                        handle = self._open()
                    handle.write(b"".join(orjson.dumps(entry) + b"\n" for entry in batch))
                    if self._queue.empty():
                        handle.flush()
                    if handle.tell() > self._max_bytes:
                        handle.close()
                        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                        handle = None
                except OSError as e:
                    logger.error("audit log write failed path=%s error=%s", self.path, e)
        finally:
            if handle is not None:
                handle.close()

    def _open(self) -> Any:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return os.fdopen(fd, "ab")
