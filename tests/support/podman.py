"""A private Podman API service for tests, and cleanup of what tests create in Podman.

``PodmanService(workdir).start()`` runs ``podman system service --time=0
unix://<workdir>/podman.sock`` and returns once the socket answers ``/_ping``; ``kill()``
(SIGKILL, as a crash) and ``start()`` again play a restarting service, ``pause()`` and
``resume()`` (SIGSTOP, SIGCONT) a hung one; ``stop()`` ends it by PID (SIGTERM, then
SIGKILL; a paused service is resumed first). The service uses the machine's default storage, where
scripts/setup imported ``localhost/busybox:latest``.

Its configuration is the machine's /etc/containers/containers.conf with one change:
``exit_command_delay`` (how long the conmon of an exec started over the API lingers, so
that clients can read the exit code) is 2 seconds instead of 300. A pod cannot be removed
quickly while such a conmon lives in its cgroup; with the default, every test that execs
would pay about 3.5 s at cleanup.

Cleanup goes through the podman CLI in local mode, so it works while the service is down:
``remove_labelled(label)`` removes every pod (with its containers) and container carrying
``label``. Tests put a label unique to the test on every sandbox they create.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

BUSYBOX = "localhost/busybox:latest"
SYSTEM_CONTAINERS_CONF = Path("/etc/containers/containers.conf")
EXIT_COMMAND_DELAY = 2
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def ping(socket_path: Path, *, timeout: float = 1.0) -> bool:
    """True when a Podman service answers ``GET /_ping`` on ``socket_path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(socket_path))
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: podman\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"OK")


def containers_conf(*, exit_command_delay: int) -> str:
    """The machine's containers.conf with ``[engine] exit_command_delay`` replaced."""
    text = SYSTEM_CONTAINERS_CONF.read_text() if SYSTEM_CONTAINERS_CONF.is_file() else ""
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("exit_command_delay")]
    setting = f"exit_command_delay = {exit_command_delay}"
    if "[engine]" in (ln.strip() for ln in lines):
        at = [ln.strip() for ln in lines].index("[engine]") + 1
        lines.insert(at, setting)
    else:
        lines += ["", "[engine]", setting]
    return "\n".join(lines) + "\n"


class PodmanService:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "podman.sock"
        self.url = f"unix://{self.socket}"
        self.log_path = workdir / "podman-service.log"
        self.containers_conf = workdir / "containers.conf"
        self.containers_conf.write_text(containers_conf(exit_command_delay=EXIT_COMMAND_DELAY))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["podman", "system", "service", "--time=0", self.url],
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd=self.containers_conf.parent,  # conmon writes files (an "oom" marker) here
            env={**os.environ, "CONTAINERS_CONF": str(self.containers_conf)},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not ping(self.socket):
            if self.proc.poll() is not None:
                raise RuntimeError(f"podman system service exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"podman service not answering after {timeout}s")
            time.sleep(0.05)  # polling a condition with a deadline

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the service (its containers live on, under conmon)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the socket still accepts connections, nothing answers."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def podman(*args: str, check: bool = True) -> str:
    """Run the podman CLI (local mode, the default storage) and return its stdout."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def remove_labelled(label: str) -> None:
    """Remove every pod and container labelled ``label`` (``key=value``)."""
    pods = podman("pod", "ps", "-q", "--filter", f"label={label}").split()
    if pods:
        podman("pod", "rm", "-f", "-t", "0", *pods, check=False)
    containers = podman("ps", "-aq", "--filter", f"label={label}").split()
    if containers:
        podman("rm", "-f", "-t", "0", *containers, check=False)


def labelled(label: str) -> tuple[list[str], list[str]]:
    """Ids of the pods and containers still labelled ``label``."""
    pods = podman("pod", "ps", "-q", "--filter", f"label={label}").split()
    containers = podman("ps", "-aq", "--filter", f"label={label}").split()
    return pods, containers


def remove_image(reference: str) -> None:
    with contextlib.suppress(RuntimeError):
        podman("rmi", "-f", reference)
