"""Kubernetes' ``duration.HumanDuration`` (k8s.io/apimachinery/pkg/util/duration).

Every AGE-like cell the real apiserver prints goes through it, so kubectl shows the same
text against bramble. The rule table, with ``s`` the duration truncated toward zero to
whole seconds, as Go's ``int(d.Seconds())`` does:

    =========================  ===================  ========================
    duration                   format               examples
    =========================  ===================  ========================
    s < -1  (d <= -2s)         ``<invalid>``        clock skew beyond 1s
    s < 0   (-2s < d <= -1s)   ``0s``               small skew is "now"
    d < 2m                     ``{s}s``             0s, 59s, 119s
    d < 10m                    ``{m}m`` / ``{m}m{s}s``  2m, 2m1s, 9m59s
    d < 3h                     ``{m}m``             10m, 179m
    d < 8h                     ``{h}h`` / ``{h}h{m}m``  3h, 3h1m, 7h59m
    d < 48h                    ``{h}h``             8h, 47h
    d < 8d                     ``{d}d`` / ``{d}d{h}h``  2d, 2d1h, 7d23h
    d < 2y  (730d)             ``{d}d``             8d, 729d
    d < 8y                     ``{y}y`` / ``{y}y{d}d``  2y, 2y1d, 7y364d
    otherwise                  ``{y}y``             8y
    =========================  ===================  ========================

A year is 365 days; every unit is truncated, never rounded. The second part of a
two-unit form is omitted when it is zero ("2m", not "2m0s").
"""

from __future__ import annotations

from datetime import timedelta

_SECOND = 1_000_000  # microseconds: a timedelta's resolution, fine enough for whole seconds
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE


def human_duration(d: timedelta) -> str:
    """``duration.HumanDuration(d)``: 2-3 significant figures of a duration."""
    micros = d // timedelta(microseconds=1)
    # Go's int(d.Seconds()) truncates toward zero, so -1.5s is -1 ("0s"), not -2.
    seconds = micros // _SECOND if micros >= 0 else -(-micros // _SECOND)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = micros // _MINUTE
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = micros // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"
