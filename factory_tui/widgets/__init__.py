"""Widgets and screens of the console: each renders a Snapshot it is handed and does no I/O."""
