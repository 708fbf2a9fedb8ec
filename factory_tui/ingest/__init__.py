"""Ingest: the TCP JSON-lines listener cameras send to, its client, and the camera simulator.

`listener.Listener` validates, deduplicates and stores events and answers every line (one
`connection.Connection` per peer, a `writer.BatchWriter` thread for the SQLite writes);
`client.IngestClient` is the camera side. Nothing here imports textual or rich.
"""

from __future__ import annotations
