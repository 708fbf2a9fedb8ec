"""The console fixtures (fixture morning database, set clock, fixed health) for snapshots."""

from __future__ import annotations

from tests.tui.conftest import clock, console, floor_db

__all__ = ["clock", "console", "floor_db"]
