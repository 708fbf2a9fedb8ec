"""factory-tui: a terminal console for AI-camera productivity monitoring on a factory floor."""

from __future__ import annotations

__version__ = "0.1.0"
