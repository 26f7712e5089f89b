"""A real image registry (Debian's docker-registry, distribution 2.8) on a free loopback
port, for pull tests.

``Registry(workdir).start()`` writes its own config (the packaged one needs htpasswd
files) into ``workdir``, serves plain HTTP on 127.0.0.1:<free port> and returns once
``/v2/`` answers. ``push_busybox()`` pushes ``localhost/busybox:latest`` under a unique
name, with one extra layer unique to that push: a pull of it must really fetch a blob
(an image whose layers are all in local storage already is "pulled" without one).
``requests()`` lists the registry's access log, so tests can tell a pull that fetched
from one that did not. ``stop()`` ends it by PID.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.net import free_port
from tests.support.podman import BUSYBOX, podman, remove_image

_ACCESS = re.compile(
    r'"(?P<method>GET|HEAD|PUT|POST|PATCH) (?P<path>/v2/\S*) HTTP/[\d.]+" (?P<status>\d+)'
)


class Registry:
    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.location = f"127.0.0.1:{self.port}"
        self.config = workdir / "registry.yml"
        self.log_path = workdir / "registry.log"
        self.config.write_text(
            "version: 0.1\n"
            "log: {level: info, accesslog: {disabled: false}}\n"
            f"storage: {{filesystem: {{rootdirectory: {workdir / 'data'}}}, "
            "delete: {enabled: true}}\n"
            f"http: {{addr: {self.location}}}\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.pushed: list[str] = []

    def start(self, timeout: float = 15.0) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"docker-registry not answering after {timeout}s")
            time.sleep(0.05)  # polling a condition with a deadline

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.location}/v2/", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def push_busybox(self, name: str = "bramble/busybox") -> str:
        """Push busybox plus a unique layer as ``<location>/<name>-<hex>:1``; the local
        tag is removed again, so the image is not in local storage afterwards."""
        token = secrets.token_hex(4)
        reference = f"{self.location}/{name}-{token}:1"
        builder = f"bramble-registry-build-{token}"
        try:
            podman("run", "--name", builder, BUSYBOX, "sh", "-c", f"echo {token} > /unique")
            podman("commit", "-q", builder, reference)
        finally:
            podman("rm", "-f", builder, check=False)
        try:
            podman("push", "-q", "--tls-verify=false", reference)
        finally:
            remove_image(reference)
        self.pushed.append(reference)
        return reference

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request so far, from the access log."""
        text = self.log_path.read_text(errors="replace")
        return [(m["method"], m["path"], int(m["status"])) for m in _ACCESS.finditer(text)]

    def blob_fetches(self, reference: str) -> int:
        """How many layer or config blobs of ``reference``'s repository were fetched."""
        repository = reference.split("/", 1)[1].rsplit(":", 1)[0]
        prefix = f"/v2/{repository}/blobs/"
        return sum(
            1 for method, path, status in self.requests()
            if method == "GET" and path.startswith(prefix) and status == 200
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        for reference in self.pushed:  # pulled copies in local storage
            remove_image(reference)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
