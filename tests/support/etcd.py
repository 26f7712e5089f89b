"""Real etcd servers on loopback for tests and benchmarks: one member or a cluster,
started on free ports in a temporary directory, killed and restarted at will."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.net import free_port

if TYPE_CHECKING:
    from tests.support.pki import TestCA


@dataclass(frozen=True)
class EtcdTls:
    """Server certificate files, and the CA clients must present certificates from."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path
    client_cert_auth: bool = True  # False: TLS for privacy only, any client may connect

    @classmethod
    def issue(
        cls, ca: TestCA, *, client_common_name: str = "", client_cert_auth: bool = True
    ) -> EtcdTls:
        """A server certificate for 127.0.0.1 and a client certificate from ``ca``.

        The client certificate has no common name by default: once authentication is
        on, etcd 3.4's JSON gateway refuses (HTTP 400) client certificates that have
        one, because it cannot take the user from them; users log in with passwords.
        """
        # etcd's JSON gateway calls etcd's own gRPC server presenting the server
        # certificate, so with --client-cert-auth it must be a client certificate too.
        server = ca.issue(
            "etcd-server", common_name="etcd", server=True, client=True, ips=("127.0.0.1",)
        )
        client = ca.issue("etcd-client", common_name=client_common_name, client=True)
        return cls(ca.cert, server.cert, server.key, client.cert, client.key, client_cert_auth)


class EtcdMember:
    def __init__(
        self,
        name: str,
        workdir: Path,
        *,
        tls: EtcdTls | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = workdir / f"{name}.etcd"
        self.log_path = workdir / f"{name}.log"
        self.tls = tls
        self.extra_args = list(extra_args)  # e.g. ["--auth-token-ttl", "1"]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, initial_cluster: str, *, state: str = "new") -> None:
        args = [
            "etcd",
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", "bramble-test",
            "--heartbeat-interval", "100",
            "--election-timeout", "1000",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip
        if self.tls:
            args += [
                "--cert-file", str(self.tls.cert),
                "--key-file", str(self.tls.key),
            ]  # fmt: skip
            if self.tls.client_cert_auth:
                # etcd requires client certificates as soon as it trusts a CA for them
                args += ["--trusted-ca-file", str(self.tls.ca), "--client-cert-auth"]
        args += self.extra_args
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def healthy(self) -> bool:
        """True once the member answers /health with a leader."""
        try:
            with urllib.request.urlopen(
                f"{self.client_url}/health", timeout=1, context=self._ssl()
            ) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def status(self) -> dict[str, object]:
        req = urllib.request.Request(
            f"{self.client_url}/v3/maintenance/status", data=b"{}", method="POST"
        )
        with urllib.request.urlopen(req, timeout=2, context=self._ssl()) as resp:
            answer: dict[str, object] = json.load(resp)
            return answer

    def post(
        self, path: str, body: dict[str, object], *, token: str | None = None
    ) -> dict[str, object]:
        """POST to the JSON gateway (``token``: an auth token, once auth is enabled)."""
        headers = {"Authorization": token} if token else {}
        req = urllib.request.Request(
            f"{self.client_url}/v3/{path}",
            data=json.dumps(body).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5, context=self._ssl()) as resp:
            answer: dict[str, object] = json.load(resp)
            return answer

    def enable_auth(self, *, root_password: str) -> None:
        """Add the user root (with etcd's built-in role root) and switch authentication
        on; afterwards every request needs a token (see ``login``)."""
        self.post("auth/user/add", {"name": "root", "password": root_password})
        self.post("auth/user/grant", {"user": "root", "role": "root"})
        self.post("auth/enable", {})

    def login(self, user: str, password: str) -> str:
        """An auth token for ``user`` (etcd's simple token)."""
        answer = self.post("auth/authenticate", {"name": user, "password": password})
        return str(answer["token"])

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=str(self.tls.ca))
        ctx.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        return ctx

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class EtcdCluster:
    """``size`` members on loopback; ``start()`` returns once every member is healthy."""

    def __init__(
        self,
        workdir: Path,
        size: int = 1,
        *,
        tls: EtcdTls | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.members = [
            EtcdMember(f"m{i + 1}", workdir, tls=tls, extra_args=extra_args) for i in range(size)
        ]
        self.initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    @property
    def endpoints(self) -> str:
        return ",".join(m.endpoint for m in self.members)

    def url(self, *, scheme: str = "etcd", options: str = "") -> str:
        return f"{scheme}://{self.endpoints}" + (f"?{options}" if options else "")

    def start(self, timeout: float = 30.0) -> None:
        for m in self.members:
            m.start(self.initial_cluster)
        self.wait_healthy(self.members, timeout=timeout)

    def restart(self, member: EtcdMember, timeout: float = 30.0) -> None:
        member.start(self.initial_cluster, state="existing")
        self.wait_healthy([member], timeout=timeout)

    def wait_healthy(self, members: list[EtcdMember], *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(members)
        while pending:
            pending = [m for m in pending if not m.healthy()]
            if not pending:
                return
            for m in pending:
                if not m.running:
                    raise RuntimeError(f"etcd {m.name} exited:\n{m.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"etcd {', '.join(m.name for m in pending)} not healthy after {timeout}s:\n"
                    + pending[0].log_tail()
                )
            time.sleep(0.05)  # polling a condition with a deadline, not waiting blindly

    def leader(self) -> EtcdMember:
        for m in self.members:
            if not m.running:
                continue
            status = m.status()
            header = status["header"]
            assert isinstance(header, dict)
            if status.get("leader") == header.get("member_id"):
                return m
        raise RuntimeError("no etcd member reports itself as leader")

    def stop(self) -> None:
        for m in self.members:
            m.kill()
