"""The async API client every bramble component uses to talk to the apiserver.

It reads a kubeconfig (the files ``bramble server`` and ``bramble token create`` write, or
any standard one), speaks HTTPS with the cluster CA and a client certificate or a bearer
token, and turns every error reply back into the ``api.errors`` class it stands for, so
callers handle ``NotFound`` or ``Conflict`` rather than HTTP codes.

Paths come from the resource registry: ``client.create(PODS, "default", pod)``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from api import errors, http
from api.resources import Resource

Obj = dict[str, Any]

# what a path may hold unescaped (names are DNS labels; a caller's own %-escapes stay)
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class KubeconfigError(Exception):
    """A kubeconfig that cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Credentials:
    server: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    insecure: bool = False


def load_kubeconfig(path: Path, *, context: str | None = None) -> Credentials:
    """The server and credentials of a kubeconfig's (current) context. Blocking."""
    try:
        config = yaml.safe_load(path.read_text())
    except OSError as e:
        raise KubeconfigError(f"cannot read the kubeconfig {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise KubeconfigError(f"the kubeconfig {path} is not valid YAML: {e}") from e
    if not isinstance(config, dict):
        raise KubeconfigError(f"the kubeconfig {path} is not a kubeconfig")
    name = context or config.get("current-context")
    ctx = _named(config, "contexts", name, path).get("context") or {}
    cluster = _named(config, "clusters", ctx.get("cluster"), path).get("cluster") or {}
    user = _named(config, "users", ctx.get("user"), path).get("user") or {}
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise KubeconfigError(f"the kubeconfig {path} names no server")
    return Credentials(
        server=server.rstrip("/"),
        ca_pem=_data(cluster, "certificate-authority", path),
        cert_pem=_data(user, "client-certificate", path),
        key_pem=_data(user, "client-key", path),
        token=user.get("token"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
    )


def _named(config: Mapping[str, Any], section: str, name: object, path: Path) -> Mapping[str, Any]:
    for item in config.get(section) or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item
    raise KubeconfigError(f"the kubeconfig {path} has no {section[:-1]} named {name!r}")


def _data(section: Mapping[str, Any], key: str, path: Path) -> bytes | None:
    inline = section.get(f"{key}-data")
    if isinstance(inline, str):
        return base64.b64decode(inline)
    file = section.get(key)
    if isinstance(file, str):
        target = (path.parent / file).expanduser()
        try:
            return target.read_bytes()
        except OSError as e:
            raise KubeconfigError(f"cannot read {target} (from {path}): {e.strerror}") from e
    return None


def ssl_context(creds: Credentials) -> ssl.SSLContext | bool:
    """TLS for the credentials (blocking: the client key passes through a private temp
    file, because the ssl module loads keys only from files)."""
    if not creds.server.startswith("https://"):
        return False
    ctx = ssl.create_default_context()
    if creds.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif creds.ca_pem:
        ctx.load_verify_locations(cadata=creds.ca_pem.decode())
    if creds.cert_pem and creds.key_pem:
        with tempfile.TemporaryDirectory(prefix="bramble-client-") as tmp:
            cert = Path(tmp) / "client.pem"
            fd = os.open(cert, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(creds.cert_pem + b"\n" + creds.key_pem)
            ctx.load_cert_chain(str(cert))
    return ctx


def path_for(
    resource: Resource,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
    if resource.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{resource.plural}"
    if name:
        base += f"/{name}"
        if subresource:
            base += f"/{subresource}"
    return base


class ApiClient:
    """One connection pool to one apiserver. Create inside a running event loop."""

    def __init__(
        self, creds: Credentials, *, context: ssl.SSLContext | bool, timeout: float = 30
    ) -> None:
        self.server = creds.server
        url = urllib.parse.urlsplit(creds.server)
        if url.scheme == "unix" and url.path:
            # the server's own components: its local socket (controlplane/apiserver/local.py)
            self._prefix = ""
            self._pool = http.Pool("localhost", 0, context=None, unix_path=url.path)
        elif url.scheme in ("https", "http") and url.hostname:
            self._prefix = url.path.rstrip("/")
            tls = context if isinstance(context, ssl.SSLContext) else None
            if url.scheme == "https" and tls is None:
                tls = ssl.create_default_context()
            port = url.port or (443 if url.scheme == "https" else 80)
            self._pool = http.Pool(url.hostname, port, context=tls, connect_timeout=min(timeout, 5))
        else:
            raise KubeconfigError(
                f"the server {creds.server!r} is not an https:// (or unix://) URL"
            )
        headers = "Accept: application/json\r\nUser-Agent: bramble\r\n"
        if creds.token and not creds.cert_pem:
            headers += f"Authorization: Bearer {creds.token}\r\n"
        self._headers = headers
        self._timeout = timeout

    @classmethod
    async def from_kubeconfig(cls, path: Path, *, request_timeout: float = 30) -> ApiClient:
        creds = await asyncio.to_thread(load_kubeconfig, path)
        context = await asyncio.to_thread(ssl_context, creds)
        return cls(creds, context=context, timeout=request_timeout)

    async def close(self) -> None:
        await self._pool.close()

    def _target(self, path: str, params: Mapping[str, str] | None) -> str:
        target = self._prefix + urllib.parse.quote(path, safe=_PATH_SAFE)
        if params:
            target += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        return target

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """A request and its JSON answer (None if empty); an error answer is raised as
        the ``api.errors`` class it stands for."""
        raw = await self.request_bytes(
            method, path, body=body, params=params, content_type=content_type
        )
        return orjson.loads(raw) if raw else None

    async def request_bytes(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> bytes:
        """``request`` for an answer that is not JSON (``/metrics``): its bytes."""
        data = None if body is None else (body if isinstance(body, bytes) else orjson.dumps(body))
        headers = self._headers
        if data is not None:
            headers += f"Content-Type: {content_type}\r\n"
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._pool.request(
                    method, self._target(path, params), headers, data
                )
        except TimeoutError as e:
            raise errors.ServiceUnavailable(
                f"the apiserver at {self.server} did not answer {method} {path} "
                f"within {self._timeout:g} s"
            ) from e
        except ConnectionError as e:
            raise errors.ServiceUnavailable(
                f"cannot reach the apiserver at {self.server}: {e}"
            ) from e
        if response.status >= 400:
            raise _error(response.body, response.status)
        return response.body

    # --- typed helpers ------------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Obj:
        result: Obj = await self.request("GET", path_for(resource, namespace, name))
        return result

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> Obj:
        result: Obj = await self.request("GET", path_for(resource, namespace), params=params)
        return result

    async def create(self, resource: Resource, namespace: str | None, obj: Obj) -> Obj:
        result: Obj = await self.request("POST", path_for(resource, namespace), body=obj)
        return result

    async def update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        obj: Obj,
        *,
        subresource: str | None = None,
    ) -> Obj:
        path = path_for(resource, namespace, name, subresource)
        result: Obj = await self.request("PUT", path, body=obj)
        return result

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        patch_type: str = "application/merge-patch+json",
    ) -> Obj:
        path = path_for(resource, namespace, name, subresource)
        result: Obj = await self.request("PATCH", path, body=patch, content_type=patch_type)
        return result

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        grace_period: int | None = None,
        propagation_policy: str | None = None,
        uid: str | None = None,
    ) -> Obj:
        """DELETE with DeleteOptions: a grace period, a propagation policy (Background,
        Foreground, Orphan) and a uid precondition (delete only that incarnation: 409
        Conflict if the name now belongs to another object)."""
        options: Obj = {}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if uid is not None:
            options["preconditions"] = {"uid": uid}
        body = options or None
        result: Obj = await self.request("DELETE", path_for(resource, namespace, name), body=body)
        return result

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Obj]:
        """Watch events (dicts with ``type`` and ``object``) until the server ends the
        stream. An ERROR event is raised as the error it carries (e.g. Expired)."""
        query = {**(params or {}), "watch": "true"}
        target = self._target(path_for(resource, namespace), query)
        try:
            async with self._pool.stream("GET", target, self._headers) as (status, conn):
                if status >= 400:
                    raise _error(b"\n".join([line async for line in conn.lines()]), status)
                async for line in conn.lines():
                    if not line.strip():
                        continue
                    event: Obj = orjson.loads(line)
                    if event.get("type") == "ERROR":
                        status_obj = event.get("object") or {}
                        code = int(status_obj.get("code", 500))
                        raise errors.from_status(status_obj, http_code=code)
                    yield event
        except ConnectionError as e:
            raise errors.ServiceUnavailable(f"the watch on {self.server} broke: {e}") from e


def _error(raw: bytes, status: int) -> errors.ApiError:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return errors.from_status(body, http_code=status)
    text = raw.decode(errors="replace").strip()[:200]
    return errors.from_status({}, http_code=status).__class__(text or f"HTTP {status}")
