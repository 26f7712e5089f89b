"""Which platforms an image is built for, asked of its registry (the OCI distribution
API), for the NodeArchitecture plugin.

A Node's ``status.images`` carries no architectures in the Kubernetes API, so a node can
only ever confirm that an image runs on its own platform, never that it does not run
elsewhere; the registry is the authority. ``GET /v2/<repo>/manifests/<ref>`` returns
either an index (a manifest list: one entry per platform) or a single manifest, whose
config blob names its one platform. Docker Hub's anonymous token dance (401 with a
``WWW-Authenticate: Bearer`` challenge) is followed; private registries that need
credentials, unreachable ones and anything odd give "unknown", and an unknown image is
never held against a node.

Lookups run in the background; ``lookup`` answers from the cache at once. Results live
for ``ttl`` seconds, failures for ``negative_ttl``; a registry that cannot be reached is
not asked again for ``negative_ttl`` (so a cluster without internet pays one timeout,
not one per pod). ``on_known`` is called with the keys waiting on images that became
known (the scheduler re-queues those pods).

``insecure`` registries (host or host:port) are spoken to over plain HTTP, as Podman's
``registries.conf`` ``insecure = true`` does; every other one over HTTPS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from controlplane.scheduler.images import Platform, parse_reference

logger = logging.getLogger(__name__)

DOCKER_HUB_API: Final = "registry-1.docker.io"
INDEX_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES: Final = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
MAX_BODY: Final = 4 * 1024 * 1024


class _Unknown(Exception):
    """The registry did not say (unreachable, refused, odd answer)."""


@dataclass(frozen=True, slots=True)
class Known:
    platforms: frozenset[Platform] | None  # None: unknown (no constraint)
    at: float


class PlatformResolver:
    def __init__(
        self,
        *,
        timeout: float = 3.0,
        ttl: float = 3600.0,
        negative_ttl: float = 300.0,
        insecure: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.insecure = frozenset(insecure)
        self._clock = clock
        self._known: dict[str, Known] = {}
        self._down: dict[str, float] = {}  # registry host -> until
        self._running: dict[str, asyncio.Task[None]] = {}
        self._waiting: dict[str, set[str]] = {}  # image -> keys of pods waiting on it
        self._session: aiohttp.ClientSession | None = None
        self.on_known: Callable[[set[str]], None] | None = None

    def lookup(self, image: str) -> Known | None:
        """What is known of ``image`` (None: not looked up, or the answer expired)."""
        known = self._known.get(image)
        if known is None:
            return None
        life = self.ttl if known.platforms is not None else self.negative_ttl
        if self._clock() - known.at > life:
            return None
        return known

    def remember(self, image: str, platforms: Iterable[Platform] | None) -> None:
        """Record an answer (tests; a cache warmed from elsewhere)."""
        found = frozenset(platforms) if platforms is not None else None
        self._known[image] = Known(found, self._clock())

    def pending(self, images: Iterable[str]) -> list[str]:
        return [i for i in images if self.lookup(i) is None]

    def request(self, images: Iterable[str], waiter: str) -> None:
        """Look ``images`` up in the background; ``waiter`` is reported via ``on_known``
        once they are all known (or given up on)."""
        for image in images:
            if self.lookup(image) is not None:
                continue
            host = parse_reference(image).registry
            if self._down.get(host, 0.0) > self._clock():
                self._known[image] = Known(None, self._clock())
                continue
            self._waiting.setdefault(image, set()).add(waiter)
            if image not in self._running:
                self._running[image] = asyncio.create_task(
                    self._resolve(image), name=f"image-platforms-{image}"
                )

    async def close(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def _resolve(self, image: str) -> None:
        ref = parse_reference(image)
        platforms: frozenset[Platform] | None = None
        try:
            platforms = await asyncio.wait_for(self._fetch(image), self.timeout)
        except (TimeoutError, aiohttp.ClientConnectionError, OSError) as e:
            self._down[ref.registry] = self._clock() + self.negative_ttl
            logger.info(
                "image=%s registry=%s unreachable (%s); architectures unknown for %.0fs",
                image, ref.registry, e or type(e).__name__, self.negative_ttl,
            )  # fmt: skip
        except (_Unknown, aiohttp.ClientError, ValueError) as e:
            logger.info("image=%s architectures unknown: %s", image, e)
        except Exception:
            logger.exception("image=%s platform lookup failed", image)
        self._known[image] = Known(platforms, self._clock())
        self._running.pop(image, None)
        waiters = self._waiting.pop(image, set())
        ready = {w for w in waiters if not self._waiting_on(w)}
        if ready and self.on_known is not None:
            self.on_known(ready)

    def _waiting_on(self, waiter: str) -> bool:
        return any(waiter in keys for keys in self._waiting.values())

    async def _fetch(self, image: str) -> frozenset[Platform]:
        ref = parse_reference(image)
        host = DOCKER_HUB_API if ref.registry == "docker.io" else ref.registry
        scheme = "http" if ref.registry in self.insecure or host in self.insecure else "https"
        base = f"{scheme}://{host}/v2/{ref.repository}"
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        headers = {"Accept": ", ".join(INDEX_TYPES + MANIFEST_TYPES)}
        manifest = await self._get(f"{base}/manifests/{ref.reference}", headers, ref.repository)
        if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
            found = set()
            for entry in manifest.get("manifests") or []:
                p = entry.get("platform") or {}
                if p.get("architecture") and p.get("architecture") != "unknown":
                    found.add(
                        Platform(p.get("os", "linux"), p["architecture"], p.get("variant", ""))
                    )
            if not found:
                raise _Unknown("the index lists no platforms")
            return frozenset(found)
        digest = (manifest.get("config") or {}).get("digest")
        if not digest:
            raise _Unknown("the manifest names no config")
        config = await self._get(f"{base}/blobs/{digest}", headers, ref.repository)
        if not config.get("architecture"):
            raise _Unknown("the image config names no architecture")
        return frozenset(
            {Platform(config.get("os", "linux"), config["architecture"], config.get("variant", ""))}
        )

    async def _get(self, url: str, headers: dict[str, str], repository: str) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(url, headers=headers) as resp:
            if resp.status == 401:
                token = await self._token(resp.headers.get("WWW-Authenticate", ""), repository)
                headers = {**headers, "Authorization": f"Bearer {token}"}
            else:
                return await self._json(resp)
        async with self._session.get(url, headers=headers) as resp:
            return await self._json(resp)

    async def _json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        if resp.status != 200:
            raise _Unknown(f"the registry answered {resp.status}")
        body = await resp.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise _Unknown("the registry's answer is too large")
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise _Unknown("the registry's answer is not an object")
        return data

    async def _token(self, challenge: str, repository: str) -> str:
        """An anonymous pull token (Docker Hub and most public registries)."""
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() != "bearer":
            raise _Unknown("the registry wants credentials")
        fields = dict(_CHALLENGE.findall(params))
        realm = fields.get("realm")
        if not realm:
            raise _Unknown("the registry's challenge names no realm")
        query = {"scope": fields.get("scope") or f"repository:{repository}:pull"}
        if fields.get("service"):
            query["service"] = fields["service"]
        assert self._session is not None
        async with self._session.get(realm, params=query) as resp:
            data = await self._json(resp)
        token = data.get("token") or data.get("access_token")
        if not isinstance(token, str):
            raise _Unknown("the registry gave no token")
        return token
