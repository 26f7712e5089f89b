"""Image references, insecure registries and pull answers, for the Podman runtime.

Podman's own CLI honours ``insecure = true`` in registries.conf, but podman-py always sends
``tlsVerify=true`` with a pull (quirk 4), which overrides it. So the runtime decides per
image: a reference on an insecure registry is pulled with ``tlsVerify=false``; any other
is pulled without the parameter, leaving the choice to Podman's configuration.

Pure functions, except ``read_insecure_registries`` and ``InsecureRegistries`` (files;
call them in a thread).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

REGISTRIES_CONF = Path("/etc/containers/registries.conf")
REGISTRIES_CONF_D = Path("/etc/containers/registries.conf.d")


def registry_of(image: str) -> str:
    """The registry host of a reference ("" for a short name that Podman resolves
    through its search registries), by the Docker rule: the first component names a
    registry when it has a dot or a colon, or is ``localhost``."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def repository_of(image: str) -> str:
    """The reference without its tag or digest."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    return name


def is_insecure(image: str, insecure: Iterable[str]) -> bool:
    """True when ``image`` lives on one of the ``insecure`` registry locations (a host,
    ``host/namespace`` prefix, or a ``*.domain`` wildcard as registries.conf allows)."""
    host = registry_of(image)
    if not host:
        return False
    repository = repository_of(image)
    for location in insecure:
        location = location.rstrip("/")
        if location.startswith("*."):
            if fnmatch.fnmatch(host, location):
                return True
        elif repository == location or repository.startswith(location + "/"):
            return True
    return False


def parse_registries_conf(text: str) -> dict[str, bool]:
    """``location -> insecure`` from one registries.conf (v2 ``[[registry]]`` tables and
    the v1 ``[registries.insecure]`` list)."""
    data = tomllib.loads(text)
    found: dict[str, bool] = {}
    for entry in data.get("registry", []) or []:
        location = entry.get("location") or entry.get("prefix")
        if isinstance(location, str) and location:
            found[location] = bool(entry.get("insecure", False))
    v1 = (data.get("registries") or {}).get("insecure") or {}
    for location in v1.get("registries", []) or []:
        if isinstance(location, str):
            found[location] = True
    return found


def read_insecure_registries(
    conf: Path = REGISTRIES_CONF, conf_d: Path = REGISTRIES_CONF_D
) -> list[str]:
    """The registry locations marked insecure in registries.conf and its drop-ins
    (later files override earlier ones, as in containers-registries.conf(5))."""
    files = [conf] if conf.is_file() else []
    if conf_d.is_dir():
        files += sorted(p for p in conf_d.glob("*.conf") if p.is_file())
    merged: dict[str, bool] = {}
    for path in files:
        try:
            merged.update(parse_registries_conf(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as e:
            logger.warning("skipping unreadable registries config path=%s error=%s", path, e)
    return sorted(location for location, insecure in merged.items() if insecure)


class InsecureRegistries:
    """registries.conf's insecure registries as they are now: read again whenever one of
    its files changes, appears or goes, as Podman reads them at each pull; a person who
    adds the lab's registry need not restart the agent. Blocking (it stats the files)."""

    def __init__(self, conf: Path = REGISTRIES_CONF, conf_d: Path = REGISTRIES_CONF_D) -> None:
        self._conf = conf
        self._conf_d = conf_d
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._locations: list[str] = []

    def current(self) -> list[str]:
        seen = self._signature()
        if seen != self._seen:
            self._locations = read_insecure_registries(self._conf, self._conf_d)
            self._seen = seen
        return self._locations

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        """(path, mtime, size) of every file read_insecure_registries would read."""
        paths = [self._conf]
        if self._conf_d.is_dir():
            paths += sorted(self._conf_d.glob("*.conf"))
        found = []
        for path in paths:
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((str(path), st.st_mtime_ns, st.st_size))
        return tuple(found)


@dataclass(frozen=True, slots=True)
class PullOutcome:
    image_id: str | None
    error: str | None
    log: Sequence[str]


def parse_pull_stream(lines: Iterable[bytes]) -> PullOutcome:
    """Podman's ``POST /libpod/images/pull`` answer: one JSON object a line, with
    ``stream`` progress, an ``error``, or the pulled ``id``. A failed pull still answers
    200 (quirk 4), so the outcome is read from the lines."""
    image_id: str | None = None
    error: str | None = None
    log: list[str] = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            log.append(raw.decode(errors="replace"))
            continue
        if item.get("stream"):
            log.append(str(item["stream"]).rstrip())
        if item.get("error"):
            error = str(item["error"])
        if item.get("id"):
            image_id = str(item["id"])
    return PullOutcome(image_id=image_id, error=error, log=log)
