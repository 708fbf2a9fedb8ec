"""Storage: the one interface (`Store`) through which factory-tui reads and writes its database,
and its backends. Only this package contains SQL or imports a database driver."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory_tui.storage.base import (
    DEFAULT_SITE,
    READ_BATCH,
    AlertCondition,
    Durability,
    InsertStatus,
    ReadOnlyError,
    RowError,
    Store,
    StoreError,
    StoreUnreachable,
    UnitsBucket,
)
from factory_tui.storage.claim import OwnerClaim, OwnerProbe, OwnerTaken, claim_owner, probe_owner
from factory_tui.storage.sqlite import SCHEMA_VERSION, SqliteStore
from factory_tui.storage.urls import is_postgres_url, mask_url

if TYPE_CHECKING:
    from factory_tui.storage.postgres import PostgresStore

__all__ = [
    "DEFAULT_SITE",
    "READ_BATCH",
    "SCHEMA_VERSION",
    "AlertCondition",
    "Durability",
    "InsertStatus",
    "OwnerClaim",
    "OwnerProbe",
    "OwnerTaken",
    "PostgresStore",
    "ReadOnlyError",
    "RowError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreUnreachable",
    "UnitsBucket",
    "claim_owner",
    "is_postgres_url",
    "mask_url",
    "open_store",
    "probe_owner",
]


def open_store(
    location: Path | str,
    *,
    read_only: bool = False,
    durability: Durability = "crash",
    bulk_writer: bool = False,
    site: str = DEFAULT_SITE,
) -> Store:
    """Open the database at `location` with the backend it names: a `postgresql://` URL is
    PostgreSQL, anything else a SQLite file path.

    Writable opens create and migrate the schema; `read_only` attaches to an existing one.
    `durability` and `bulk_writer` tune SQLite (a PostgreSQL server keeps its own settings).
    The store reads and writes the data of `site` (`Store.scoped` reaches the others).
    """
    if is_postgres_url(location):
        from factory_tui.storage.postgres import PostgresStore

        return PostgresStore.open(str(location), read_only=read_only, site=site)
    return SqliteStore.open(
        location, read_only=read_only, durability=durability, bulk_writer=bulk_writer, site=site
    )


def __getattr__(name: str) -> Any:
    # The PostgreSQL backend (and its driver) loads on first use, not with every command.
    if name == "PostgresStore":
        from factory_tui.storage.postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
