"""The demo roster and shifts as a config file, for tests that need a known floor.

Without a config file factory-tui has no roster and no shifts (a first run invents no
workers), so tests that send W1..W6 or expect shift A write this file first.
"""

from __future__ import annotations

from pathlib import Path

from factory_tui.config import DEMO_SHIFTS, DEMO_WORKERS, DEMO_WORKSTATIONS


def demo_config_text() -> str:
    """The demo roster and three 8-hour shifts as TOML."""
    text = "".join(
        f'[[shifts]]\nname = "{name}"\nstart = "{start}"\nend = "{end}"\n'
        for name, start, end in DEMO_SHIFTS
    )
    for kind, items in (("workers", DEMO_WORKERS), ("workstations", DEMO_WORKSTATIONS)):
        text += "".join(f'[[{kind}]]\nid = "{i}"\nname = "{n}"\n' for i, n in items)
    return text


def write_demo_config(folder: Path, name: str = "demo.toml") -> Path:
    """Write the demo config into `folder` and return its path."""
    path = folder / name
    path.write_text(demo_config_text())
    return path
