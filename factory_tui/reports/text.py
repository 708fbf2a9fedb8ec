"""Figures as text, the same way in the `report` table and the HTML report."""

from __future__ import annotations

from typing import Final

MISSING: Final = "—"
"""A metric that does not apply (null in JSON)."""


def duration(seconds: float) -> str:
    """Seconds as `h:mm:ss`."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal, or the missing mark."""
    return MISSING if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 1) -> str:
    """A figure to `digits` places, or the missing mark."""
    return MISSING if value is None else f"{value:.{digits}f}"
