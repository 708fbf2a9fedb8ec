"""What the forward state says when the central database fails: "unreachable" only when the
server cannot be reached (retrying is all there is to do); a server that answers with a refusal
(a newer schema, no such database) is shown with its own words, for a person to act on.

Real parts: a SQLite site database, the test PostgreSQL server (`pg_url`), and a loopback port
with nothing listening on it.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from factory_tui.forwarding import Forwarder, ForwardError
from factory_tui.storage import StoreError, StoreUnreachable, open_store
from factory_tui.storage.postgres import _connect_options
from tests.test_forwarding import fill, fleet_lines, run_forward, site_settings


def closed_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def fail_once(tmp_path: Path, target: str) -> Forwarder:
    """A forwarder of a small site to `target`, after its first (failed) attempt."""
    settings = site_settings(tmp_path / "site.db", "pune")
    fill(settings, fleet_lines(settings, 0.25))
    forwarder = Forwarder.from_settings(settings, target, retry_first_s=0.01, retry_max_s=0.01)
    with pytest.raises(ForwardError):
        forwarder.run(threading.Event(), once=True, give_up_after=1)
    return forwarder


def test_a_server_that_cannot_be_reached_is_shown_as_unreachable(tmp_path: Path) -> None:
    target = f"postgresql://127.0.0.1:{closed_port()}/test"
    with pytest.raises(StoreUnreachable):
        open_store(target)
    state = fail_once(tmp_path, target).state()
    assert state.down_s is not None
    assert state.describe().startswith("central unreachable for")


def test_a_missing_database_is_a_refusal_not_an_outage(tmp_path: Path, pg_url: str) -> None:
    target = with_database(pg_url, "no_such_database_here")
    with pytest.raises(StoreError) as raised:
        open_store(target)
    assert not isinstance(raised.value, StoreUnreachable)
    state = fail_once(tmp_path, target).state()
    assert state.down_s is None
    assert state.describe().startswith("forwarding failing: cannot connect to")
    assert 'database "no_such_database_here" does not exist' in state.describe()


def test_a_central_schema_from_a_newer_version_is_named(tmp_path: Path, pg_url: str) -> None:
    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    state = fail_once(tmp_path, pg_url).state()
    assert state.down_s is None
    assert "newer factory-tui (schema 999" in state.describe()


def test_connections_carry_keepalives_unless_the_url_sets_its_own() -> None:
    # Without them a link that silently drops packets leaves a query waiting forever.
    options = _connect_options("postgresql://127.0.0.1/test")
    assert options["keepalives"] == 1
    assert options["tcp_user_timeout"] > 0
    own = _connect_options("postgresql://127.0.0.1/test?keepalives_idle=5&tcp_user_timeout=0")
    assert "keepalives_idle" not in own
    assert "tcp_user_timeout" not in own
    assert own["keepalives_count"] > 0


async def test_forward_once_gives_up_at_the_first_refusal(tmp_path: Path, pg_url: str) -> None:
    settings = site_settings(tmp_path / "site.db", "pune")
    fill(settings, fleet_lines(settings, 0.25))
    target = with_database(pg_url, "no_such_database_here")
    code, _, err = await run_forward("--once", "--db", str(tmp_path / "site.db"), "--to", target)
    assert code == 1
    assert err.count("; retrying") == 1  # not six attempts: a retry would not cure it
    assert err.splitlines()[-1].startswith("factory-tui: gave up: cannot connect to")
