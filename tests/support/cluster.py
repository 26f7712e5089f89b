"""A real ``bramble server`` for end-to-end tests, and the real kubectl against it.

``BrambleServer.start(data_dir)`` runs ``python -m bramble server --listen 127.0.0.1:0``
as a subprocess and returns once the server logs ``server ready`` (read from its
stderr, which a thread keeps draining so the server never blocks on a full pipe), with
the URL and the admin kubeconfig taken from that line. ``stop()`` sends SIGTERM, then
SIGKILL after a timeout; the fixtures call it however the test ended.

``Kubectl`` runs /usr/bin/kubectl with that kubeconfig and a cache directory of its own
(the discovery and /version caches must not leak between servers on a reused port).
``Kubectl.background`` starts a long-running kubectl (``get -w``) whose output a test
reads line by line until what it expects appears, with a deadline, never a sleep.

``HttpsClient`` speaks to the server directly (http.client over TLS) with the admin
client certificate, another client certificate, a bearer token or no credentials at all.

Children stay in pytest's process group, so a Ctrl-C reaches them too; the fixtures'
``stop()`` then finds them gone, which is fine.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

if TYPE_CHECKING:
    from controlplane.apiserver.auth.pki import Pki

STOP_TIMEOUT = 15.0  # seconds a SIGTERMed server may take before it is killed
READY_TIMEOUT = 60.0
KUBECTL_TIMEOUT = 60.0

_READY = re.compile(r"server ready .*url=(?P<url>\S+) kubeconfig=(?P<kubeconfig>\S+)")


def unique(prefix: str) -> str:
    """A name no other test uses: ``prefix`` plus random lowercase hex."""
    return f"{prefix}-{secrets.token_hex(4)}"


class _Lines:
    """The lines a child process writes to one pipe, drained by a thread, waitable."""

    def __init__(self, pipe: Any, *, name: str) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._drain, args=(pipe,), name=name, daemon=True)
        self._thread.start()

    def _drain(self, pipe: Any) -> None:
        try:
            for line in pipe:
                with self._cond:
                    self.lines.append(line)
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[str]], bool], *, timeout: float, what: str
    ) -> list[str]:
        """Block until ``predicate(lines so far)`` holds; AssertionError at the deadline or
        when the pipe closed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.lines):
                remaining = deadline - time.monotonic()
                if self._closed or remaining <= 0:
                    why = "the process closed its output" if self._closed else f"{timeout:g}s"
                    raise AssertionError(
                        f"{what}: not seen ({why}); the output was:\n{''.join(self.lines)}"
                    )
                self._cond.wait(remaining)
            return list(self.lines)

    def text(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _stop_process(proc: subprocess.Popen[str], timeout: float) -> int:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class BrambleServer:
    """One ``bramble server`` process."""

    def __init__(self, proc: subprocess.Popen[str], data_dir: Path) -> None:
        self.proc = proc
        self.data_dir = data_dir
        assert proc.stderr is not None
        self.log = _Lines(proc.stderr, name=f"bramble-server-{proc.pid}-stderr")
        self.url = ""
        self.kubeconfig = data_dir / "admin.kubeconfig"

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = READY_TIMEOUT,
        agent: bool = False,
    ) -> BrambleServer:
        """``agent``: run the server's own node agent too (``scripts/up``'s cluster);
        without, these tests are about the control plane and no node runs the pods."""
        command = [
            sys.executable, "-m", "bramble", "server", *([] if agent else ["--no-agent"]),
            "--data-dir", str(data_dir), "--listen", "127.0.0.1:0", *args,
        ]  # fmt: skip
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "BRAMBLE_MDNS": "off", **(env or {})},
        )
        server = cls(proc, data_dir)
        try:
            lines = server.log.wait_for(
                lambda seen: any("server ready" in line for line in seen),
                timeout=timeout,
                what="bramble server's 'server ready' log line",
            )
        except BaseException:
            server.stop()
            raise
        match = next(m for m in map(_READY.search, lines) if m is not None)
        server.url = match["url"]
        server.kubeconfig = Path(match["kubeconfig"])
        return server

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        code = _stop_process(self.proc, timeout)
        self.log.join(5.0)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        return code

    def running(self) -> bool:
        return self.proc.poll() is None

    def admin(self) -> HttpsClient:
        return HttpsClient.from_kubeconfig(self.kubeconfig)

    def issue_certificate(self, user: str, groups: Sequence[str] = ()) -> tuple[bytes, bytes]:
        """A client certificate (PEM, key PEM) for ``user`` in ``groups``, signed by this
        server's cluster CA (DATA_DIR/pki), as an agent's join would get one."""
        from controlplane.apiserver.auth import pki as pkis

        return pkis.issue_client_certificate(
            _load_pki(self.data_dir / "pki"), common_name=user, organizations=list(groups), days=1
        )

    def create_token(
        self,
        *,
        user: str,
        role: Literal["admin", "viewer", "node", "join"] | None = None,
        groups: tuple[str, ...] = (),
        ttl: timedelta | None = None,
    ) -> str:
        """A bearer token, stored as auth/tokens.py describes (a Secret in kube-system)."""
        from controlplane.apiserver.auth import tokens

        record, token = tokens.new_record(user=user, role=role, groups=groups, ttl=ttl)
        self.admin().ok(
            "POST", "/api/v1/namespaces/kube-system/secrets", tokens.record_to_secret(record)
        )
        return token

    def client(
        self, *, token: str | None = None, cert: tuple[bytes, bytes] | None = None
    ) -> HttpsClient:
        """A client of this server with a bearer token, a client certificate
        (cert PEM, key PEM) or, with neither, anonymous."""
        admin = self.admin()
        return HttpsClient(self.url, ca_pem=admin.ca_pem, cert=cert, token=token)


def _load_pki(directory: Path) -> Pki:
    """The cluster PKI as the server wrote it, read without validating or renewing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from controlplane.apiserver.auth import certs
    from controlplane.apiserver.auth import pki as pkis

    def cert(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((directory / name).read_bytes())

    key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    assert isinstance(key, certs.PrivateKey)
    return pkis.Pki(
        directory, cert("ca.crt"), key, cert("apiserver.crt"), cert("apiserver-agent-client.crt")
    )


@contextlib.contextmanager
def running_server(
    *args: str, env: Mapping[str, str] | None = None, data_dir: Path | None = None
) -> Iterator[BrambleServer]:
    """A server for the duration of the block, stopped however the block ends."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bramble-")))
        server = BrambleServer.start(data_dir / "data", *args, env=env)
        try:
            yield server
        finally:
            code = server.stop()
        assert code == 0, f"bramble server exited {code}:\n{server.log.text()[-3000:]}"


# --- HTTPS ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpsClient:
    """Requests to the apiserver over TLS, verifying it with the cluster CA."""

    def __init__(
        self,
        url: str,
        *,
        ca_pem: bytes,
        cert: tuple[bytes, bytes] | None = None,
        token: str | None = None,
    ) -> None:
        self.url = url
        self.ca_pem = ca_pem
        self.cert = cert
        self.token = token
        self.context = ssl.create_default_context(cadata=ca_pem.decode())
        if cert is not None:
            # load_cert_chain reads only files: write them to a private temporary dir.
            with tempfile.TemporaryDirectory(prefix="bramble-cert-") as tmp:
                cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
                cert_path.write_bytes(cert[0])
                key_path.touch(mode=0o600)
                key_path.write_bytes(cert[1])
                self.context.load_cert_chain(cert_path, key_path)

    @classmethod
    def from_kubeconfig(cls, path: Path) -> HttpsClient:
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        user = config["users"][0]["user"]
        return cls(
            cluster["server"],
            ca_pem=base64.b64decode(cluster["certificate-authority-data"]),
            cert=(
                base64.b64decode(user["client-certificate-data"]),
                base64.b64decode(user["client-key-data"]),
            ),
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """One request; any HTTP status is a Reply (never an exception)."""
        data: bytes | None
        all_headers = {"Accept": "application/json"}
        if isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        elif body is None:
            data = None
        else:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        if self.token is not None:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        # http.client, not urllib: urllib invents a Content-Type for a body without one.
        parsed = urllib.parse.urlsplit(self.url)
        conn = http.client.HTTPSConnection(
            parsed.hostname or "127.0.0.1", parsed.port, context=self.context, timeout=timeout
        )
        try:
            conn.request(method, path, body=data, headers=all_headers)
            response = conn.getresponse()
            return Reply(response.status, dict(response.headers), response.read())
        finally:
            conn.close()

    def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """A request that must succeed (2xx); its JSON body."""
        reply = self.request(method, path, body, **kwargs)
        assert 200 <= reply.status < 300, f"{method} {path}: {reply.status} {reply.body!r}"
        return reply.json()


# --- kubectl --------------------------------------------------------------------------


class Background:
    """A kubectl left running (``get -w``): its stdout and stderr lines, waitable."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stdout is not None
        assert proc.stderr is not None
        self.stdout = _Lines(proc.stdout, name=f"kubectl-{proc.pid}-stdout")
        self.stderr = _Lines(proc.stderr, name=f"kubectl-{proc.pid}-stderr")

    def wait_for_line(
        self, pattern: str, *, count: int = 1, timeout: float = 15.0, stderr: bool = False
    ) -> list[str]:
        """Wait until ``count`` lines of stdout (or stderr) match the regular expression
        ``pattern``; returns all its lines so far."""
        regex = re.compile(pattern)

        def seen(lines: list[str]) -> bool:
            return sum(1 for line in lines if regex.search(line)) >= count

        stream, other = (self.stderr, self.stdout) if stderr else (self.stdout, self.stderr)
        try:
            return stream.wait_for(seen, timeout=timeout, what=f"a line matching {pattern!r}")
        except AssertionError as e:
            raise AssertionError(f"{e}\nthe other stream:\n{other.text()}") from None

    def stop(self) -> None:
        _stop_process(self.proc, 5.0)
        self.stdout.join(5.0)
        self.stderr.join(5.0)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Kubectl:
    """The real kubectl, pointed at one server, with a cache directory of its own."""

    def __init__(self, binary: str, kubeconfig: Path, cache_dir: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        cache_dir.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.cache_dir),
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.cache_dir),
            "LANG": "C.UTF-8",
        }

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = KUBECTL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None, timeout: float = KUBECTL_TIMEOUT) -> str:
        """Run kubectl, which must exit 0; its stdout."""
        result = self(*args, input=input, timeout=timeout)
        assert result.returncode == 0, (
            f"kubectl {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result.stdout

    def fails(self, *args: str, input: str | None = None) -> str:
        """Run kubectl, which must exit non-zero; its stderr."""
        result = self(*args, input=input)
        assert result.returncode != 0, (
            f"kubectl {' '.join(args)} should have failed\nstdout:\n{result.stdout}"
        )
        return result.stderr

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json"))

    def as_token(self, token: str) -> Kubectl:
        """The same kubectl with a kubeconfig that authenticates with ``token`` only (the
        admin kubeconfig's client certificate would win over a token)."""
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["users"] = [{"name": "token-user", "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = "token-user"
        path = self.cache_dir / f"token-{secrets.token_hex(4)}.kubeconfig"
        path.touch(mode=0o600)
        path.write_text(yaml.safe_dump(config))
        return Kubectl(self.binary, path, self.cache_dir)

    def background(self, *args: str) -> Background:
        proc = subprocess.Popen(
            [self.binary, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        return Background(proc)


def manifest(*documents: Mapping[str, Any]) -> str:
    """Objects as one multi-document YAML stream (for ``kubectl apply -f -``)."""
    return yaml.safe_dump_all([dict(d) for d in documents], sort_keys=False)
