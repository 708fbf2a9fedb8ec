"""Database locations as users give them: a file path, or a `postgresql://` URL.

Kept apart from the PostgreSQL backend so that telling the two apart, and masking a password
in a message, does not load the database driver.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit, urlunsplit

URL_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres_url(location: object) -> bool:
    """True for a `postgresql://` (or `postgres://`) URL."""
    return isinstance(location, str) and location.startswith(URL_SCHEMES)


def mask_url(url: str) -> str:
    """The URL with its password replaced by `***`, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
