"""The core runs without a UI: importing it must not pull in textual or rich."""

from __future__ import annotations

import subprocess
import sys

CORE = (
    "factory_tui.engine",
    "factory_tui.ingest",
    "factory_tui.storage",
    "factory_tui.warm_start",
    "factory_tui.forwarding",
    "factory_tui.retention",
    "factory_tui.metrics_export",
    "factory_tui.reports",
    "factory_tui.view_models",
    "factory_tui.records",
    "factory_tui.models",
    "factory_tui.config",
    # The console's parts that are not the screen: its tick runs without Textual.
    "factory_tui.console.pipeline",
    "factory_tui.console.tick_loop",
    "factory_tui.console.services",
    "factory_tui.console.alert_keeper",
    "factory_tui.console.headless",
    "factory_tui.console.drilldown",
    "factory_tui.console.health",
)
"""Every module that is not the UI (import-linter checks the same in `make lint`)."""


def test_core_modules_do_not_import_textual_or_rich() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        f"for name in {CORE!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    for info in pkgutil.walk_packages(getattr(module, '__path__', []), name + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "leaked = sorted(m for m in ('textual', 'rich') if m in sys.modules)\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"
