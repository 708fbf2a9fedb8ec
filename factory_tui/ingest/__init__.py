"""Ingest: the TCP JSON-lines listener cameras send to, its client, and the camera simulator.

`server.Listener` validates, deduplicates and stores events and answers every line;
`client.IngestClient` is the camera side. Nothing here imports textual or rich.
"""

from __future__ import annotations
