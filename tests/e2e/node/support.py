"""A real node for end-to-end tests: ``bramble agent`` as a process, on a private Podman
service, joined to a real ``bramble server`` with a node token and the CA hash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.cluster import Background, BrambleServer, Kubectl, _Lines

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0  # what a SIGTERMed agent may take before it is killed
# What an agent that leaks tasks, sessions or sockets writes (ResourceWarnings are shown:
# make_agent sets PYTHONWARNINGS).
LEAKS = (
    "Task was destroyed but it is pending",
    "Unclosed",
    "ResourceWarning",
    "was never awaited",
)


def wait_until(
    condition: Callable[[], Any], *, timeout: float, what: str, every: float = 0.2
) -> Any:
    """Poll ``condition`` until it returns something truthy (a condition, not a blind sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def ca_hash(server: BrambleServer) -> str:
    for line in server.log.text().splitlines():
        if "ca-cert-hash=" in line:
            return line.rsplit("ca-cert-hash=", 1)[1].split()[0]
    raise AssertionError("the server did not log its ca-cert-hash")


@dataclass
class AgentProcess:
    name: str
    data_dir: Path
    command: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[str] | None = None
    log: _Lines | None = None
    started: list[float] = field(default_factory=list)

    def start(self, *, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        self.log = _Lines(self.proc.stderr, name=f"agent-{self.name}")
        self.started.append(time.monotonic())
        if wait:
            self.log.wait_for(
                lambda seen: any("node registered" in s or "node updated" in s for s in seen),
                timeout=READY_TIMEOUT,
                what=f"agent {self.name} registering its node",
            )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._close()

    def stop(self) -> int | None:
        """SIGTERM, as a service manager stops it; SIGKILL (the whole process group) if it
        has not ended within STOP_TIMEOUT. The exit status (negative: killed by that
        signal), or None if it was not running."""
        code = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                code = self.proc.wait()
        self._close()
        return code

    def _close(self) -> None:
        if self.log is not None:
            self.log.join(5.0)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def text(self) -> str:
        return self.log.text() if self.log is not None else ""

    def leaks(self) -> list[str]:
        """The lines of its log that tell of leaked tasks, sessions or sockets."""
        return [line for line in self.text().splitlines() if any(w in line for w in LEAKS)]


def make_agent(
    server: BrambleServer,
    workdir: Path,
    *,
    name: str,
    podman_socket: Path | None,
    extra: list[str] | None = None,
    join_token: str | None = None,
) -> AgentProcess:
    """An agent joined to ``server``; on the Podman service at ``podman_socket``, or
    (None) on the agent's default, which is a service of its own when none runs. With
    ``join_token`` (``bramble token create --role node``'s output) it is given that and no
    CA hash, as a person would; otherwise a bare node token and ``--ca-cert-hash``."""
    token = join_token or server.create_token(user=f"system:node:{name}", role="node")
    data_dir = workdir / f"agent-{name}"
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = data_dir / "token"
    token_file.write_text(token)
    command = [
        sys.executable,
        "-m",
        "bramble",
        "agent",
        "--server",
        server.url,
        "--token-file",
        str(token_file),
        *([] if join_token else ["--ca-cert-hash", ca_hash(server)]),
        "--name",
        name,
        "--data-dir",
        str(data_dir),
        *(["--podman-url", f"unix://{podman_socket}"] if podman_socket is not None else []),
        "--endpoint-port",
        "0",
        "--address",
        "127.0.0.1",
        "--lease-interval",
        "1",
        "--status-interval",
        "1",
        "--housekeeping-interval",
        "1",
        *(extra or []),
    ]
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "BRAMBLE_MDNS": "off",
        "PYTHONWARNINGS": "default::ResourceWarning",  # shown in its log: see LEAKS
    }
    return AgentProcess(name, data_dir, command, env)


def kubectl(
    server: BrambleServer,
    *args: str,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(server.kubeconfig),
        "KUBECACHEDIR": str(server.data_dir / "kubectl-cache"),
    }
    result = subprocess.run(
        ["kubectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
    return result


def kubectl_background(server: BrambleServer, *args: str) -> Background:
    """A kubectl left running (``logs -f``): its output is read line by line until what the
    test expects appears, with a deadline; leaving the ``with`` block stops it."""
    return Kubectl("kubectl", server.kubeconfig, server.data_dir / "kubectl-cache").background(
        *args
    )


def get_json(server: BrambleServer, *args: str) -> Any:
    result = kubectl(server, "get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)


def apply(server: BrambleServer, manifest: dict[str, Any]) -> None:
    kubectl(server, "apply", "-f", "-", stdin=json.dumps(manifest))


def podman_json(*args: str) -> Any:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else None


def containers_of(namespace: str) -> list[dict[str, Any]]:
    """The pod's containers as Podman itself reports them (the truth under the agent)."""
    found = podman_json(
        "ps", "-a", "--format", "json", "--filter", f"label=io.bramble.pod.namespace={namespace}"
    )
    return list(found or [])
