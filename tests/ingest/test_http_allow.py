"""`[ingest] allow` on the HTTP ingest port too: a request from another address gets 403 naming
it, nothing of it is stored, and the refusal is in the audit trail."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from factory_tui.storage import SqliteStore
from tests.ingest.conftest import event_at
from tests.ingest.test_http_ingest import WAIT_S, Endpoint


def post_from(source: str, port: int, body: bytes) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S, source_address=(source, 0))
    try:
        conn.request("POST", "/api/events", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_the_http_port_keeps_to_the_allow_list(tmp_path: Path) -> None:
    endpoint = Endpoint(tmp_path, ingest__allow=["127.0.0.1"]).start()
    try:
        status, body = post_from("127.0.0.2", endpoint.http.port, event_at(1))
        assert (status, body) == (
            403,
            {"error": "connection: address not allowed: 127.0.0.2 is not in [ingest] allow"},
        )
        status, _ = post_from("127.0.0.1", endpoint.http.port, event_at(2))
        assert status == 200
    finally:
        endpoint.stop()
    assert endpoint.stored() == 1
    with SqliteStore.open(endpoint.settings.store.path) as store:
        refused = [entry for entry in store.audit_entries() if entry.kind == "peer_refused"]
    assert [entry.peer.rpartition(":")[0] for entry in refused] == ["http 127.0.0.2"]
