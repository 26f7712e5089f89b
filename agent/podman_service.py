"""A Podman API service of the agent's own, for machines where none runs (no systemd).

When ``--podman-url`` is the default and nothing answers there, the agent starts
``podman system service`` on ``DATA_DIR/podman.sock`` and then:

* supervises it: a service that exits (crashed, OOM-killed, killed by a person) is
  started again on the same socket, after a pause that doubles while starts fail. The
  runtime client reconnects by itself; meanwhile the node's Ready condition says the
  runtime is down, and the containers keep running (conmon holds them, not the service);
* remembers its pid in ``DATA_DIR/podman.pid``: an agent killed with SIGKILL leaves its
  service running, and the next agent ends that one (only if its command line names
  this socket) before starting its own, so services never pile up;
* stops it when the agent stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from agent.errors import AgentError

logger = logging.getLogger(__name__)

DEFAULT_PODMAN_URL = "unix:///run/podman/podman.sock"
RESTART_DELAY = 1.0  # seconds before the first restart; doubles up to RESTART_DELAY_MAX
RESTART_DELAY_MAX = 30.0


class PodmanService:
    def __init__(
        self, data_dir: Path, *, podman: str | None = None, restart_delay: float = RESTART_DELAY
    ) -> None:
        """``podman``: the executable (default: the one on PATH)."""
        self.socket = data_dir / "podman.sock"
        self.pidfile = data_dir / "podman.pid"
        self.url = f"unix://{self.socket}"
        self.process: asyncio.subprocess.Process | None = None
        self._podman = podman
        self._restart_delay = restart_delay

    async def url_for(self, wanted: str) -> str:
        """The URL to use: ``wanted``, or the agent's own service's when ``wanted`` is the
        default and nothing answers there (the service is started)."""
        if wanted != DEFAULT_PODMAN_URL or await _answers(wanted):
            return wanted
        await self.start()
        return self.url

    async def start(self) -> None:
        podman = self._podman or shutil.which("podman")
        if podman is None:
            raise AgentError(
                "podman is not installed and no Podman service runs; run scripts/setup"
            )
        await asyncio.to_thread(self._end_previous)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.socket.unlink)
        process = self.process = await asyncio.create_subprocess_exec(
            podman, "system", "service", "--time=0", self.url,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            # conmon writes files (an "oom" marker) into its working directory.
            cwd=self.socket.parent,
        )  # fmt: skip
        await asyncio.to_thread(self.pidfile.write_text, f"{process.pid}\n")
        for _ in range(100):
            if await _answers(self.url):
                logger.info("started a Podman service socket=%s pid=%d", self.socket, process.pid)
                return
            if process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise AgentError(f"the Podman service at {self.url} did not come up")

    async def supervise(self) -> None:
        """Start the service again whenever it exits, until cancelled. Only for a service
        this agent started (``process`` is set)."""
        delay = self._restart_delay
        while True:
            process = self.process
            if process is None:
                return
            code = await process.wait()
            logger.warning(
                "the Podman service exited rc=%s pid=%d; starting it again in %.0fs",
                code, process.pid, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            try:
                await self.start()
            except AgentError as e:
                logger.warning("the Podman service did not start again error=%s", e)
                delay = min(delay * 2, RESTART_DELAY_MAX)
            else:
                delay = self._restart_delay

    async def stop(self) -> None:
        """End the service (the containers it started keep running: conmon holds them)."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            logger.warning("the Podman service did not stop in 10s; killing it pid=%d", process.pid)
            process.kill()
            await process.wait()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.pidfile.unlink)
        logger.info("stopped the Podman service pid=%d", process.pid)

    def _end_previous(self) -> None:
        """End the service a previous agent (killed before it could stop it) left on this
        socket. Blocking (a thread)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if self.url.encode() not in cmdline or b"service" not in cmdline:
            return  # the pid was reused by something else
        logger.info("ending the Podman service a previous agent left pid=%d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _gone_within(pid, 10.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``seconds``. Blocking."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rpartition(")")[2].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


async def _answers(url: str) -> bool:
    path = url.removeprefix("unix://")
    try:
        async with asyncio.timeout(1):
            _, writer = await asyncio.open_unix_connection(path)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True
