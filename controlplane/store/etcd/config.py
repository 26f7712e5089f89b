"""How to reach an etcd cluster (parsed from the store URL; no network code here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    endpoints: tuple[str, ...]  # e.g. ("http://10.0.0.5:2379", ...)
    timeout: float = 5.0  # overall deadline of one call, seconds
    dial_timeout: float = 2.0  # connecting to one endpoint, seconds
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        return self.endpoints[0].startswith("https://")
