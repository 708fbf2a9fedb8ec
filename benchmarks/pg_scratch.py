"""PostgreSQL for the benchmarks: a scratch schema per case, and what the events take on disk.

from benchmarks.pg_scratch import add_pg_option, events_bytes, scratch_schema
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg


def add_pg_option(parser: argparse.ArgumentParser) -> None:
    """`--pg URL`: the server to make scratch schemas in ($FACTORY_TUI_TEST_PG by default)."""
    parser.add_argument(
        "--pg",
        default=os.environ.get("FACTORY_TUI_TEST_PG", "postgresql://127.0.0.1:5432/test"),
        help="a PostgreSQL database to make (and drop) scratch schemas in",
    )


@contextmanager
def scratch_schema(base_url: str, label: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema (like the tests' `pg_url`), dropped
    afterwards."""
    schema = f"ft_bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{joiner}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def vacuum(url: str) -> None:
    """What autovacuum does in the background: dead rows' space made reusable."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")


def events_bytes(url: str) -> tuple[int, int]:
    """(bytes, rows) of the events table after a VACUUM: every partition with its TOAST and
    indexes."""
    vacuum(url)
    with psycopg.connect(url, autocommit=True) as conn:
        size = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'events'::regclass"
        ).fetchone()
        count = conn.execute("SELECT count(*) FROM events").fetchone()
    return (int(size[0]) if size else 0), (int(count[0]) if count else 0)
