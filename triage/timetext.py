"""Short human durations for the queue (CLI and review page alike)."""

from __future__ import annotations


def span(seconds: float) -> str:
    """A short signed duration: 45m, 5h, 3d (negative means in the past)."""
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 3600:
        return f"{sign}{int(seconds // 60)}m"
    if seconds < 86400 * 2:
        return f"{sign}{int(seconds // 3600)}h"
    return f"{sign}{int(seconds // 86400)}d"
