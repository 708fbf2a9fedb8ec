"""Reusable widgets of the console: each renders the frozen values it is handed and does no I/O."""
