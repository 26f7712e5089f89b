"""How fast newly unhealthy nodes get their NoExecute taint: at most
``node_eviction_rate`` nodes per second in each zone (Kubernetes' per-zone
``zoneNoExecuteTainter``, a token bucket of burst 1). When two Pis of a five-node lab
die together, the pods of the second start their eviction clock one token later (10 s
at 0.1/s), so the other nodes take the replacements in two waves rather than one.

A bucket starts full: a single dead node is tainted at once, as without the limit. A
node granted a token keeps it until its taint is written or it recovers (``done``), so
a write lost to a Conflict does not cost the node another token.

Times come from the caller (``Context.now``); a clock that steps back refills nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

BURST = 1  # Kubernetes' EvictionRateLimiterBurst


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second, > 0
    tokens: float = BURST
    last: datetime | None = None

    def _refill(self, now: datetime) -> None:
        if self.last is not None:
            elapsed = max(0.0, (now - self.last).total_seconds())
            self.tokens = min(float(BURST), self.tokens + elapsed * self.rate)
        self.last = now

    def take(self, now: datetime) -> datetime | None:
        """Take a token: None when granted, else when the next one will be there."""
        self._refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return now + timedelta(seconds=(1 - self.tokens) / self.rate)


class EvictionLimiter:
    """One bucket per zone, and the nodes holding a token not yet spent on a taint."""

    def __init__(self, rate: float) -> None:
        self._rate = rate
        self._zones: dict[str, TokenBucket] = {}
        self._granted: set[str] = set()

    def take(self, zone: str, node: str, now: datetime) -> datetime | None:
        """May ``node`` of ``zone`` get its NoExecute taint now? None: yes; else when to
        ask again."""
        if node in self._granted:
            return None
        bucket = self._zones.setdefault(zone, TokenBucket(self._rate))
        retry_at = bucket.take(now)
        if retry_at is None:
            self._granted.add(node)
        return retry_at

    def done(self, node: str) -> None:
        """The node's token is spent (its taint written) or no longer wanted (it
        recovered, or went)."""
        self._granted.discard(node)
