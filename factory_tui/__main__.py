"""`python -m factory_tui` runs the same CLI as the `factory-tui` script."""

from __future__ import annotations

from factory_tui.cli import main

if __name__ == "__main__":
    main()
