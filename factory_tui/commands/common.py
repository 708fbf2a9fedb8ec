"""Helpers every command shares: loading settings and failing with one clear sentence."""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from factory_tui import storage
from factory_tui.config import ConfigError, Settings, load_settings, unknown_env_names
from factory_tui.ingest.access import AccessError, client_tls_context
from factory_tui.records import SiteRecord
from factory_tui.storage import Store, StoreError

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default: $FACTORY_TUI_CONFIG, else ./factory.toml if present).",
        dir_okay=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLite database file, or a postgresql:// URL (default: store.url or store.path "
        "from config, factory.db).",
    ),
]
HostOption = Annotated[
    str | None, typer.Option("--host", help="Listener address (default 127.0.0.1).")
]
PortOption = Annotated[
    int | None, typer.Option("--port", "-p", help="Listener TCP port (default 7878).")
]
SiteOption = Annotated[
    str | None,
    typer.Option(
        "--site",
        help="The site to read (default: [site] id, main). Another site's time zone, shifts, "
        "max_gap_s and roster come from the database, as its box described them; ours from the "
        "config file (from the database too when there is none).",
    ),
]
AutoRegisterOption = Annotated[
    bool,
    typer.Option(
        "--auto-register",
        help="Accept worker / workstation ids that are not in the roster, and add them.",
    ),
]
TokenOption = Annotated[
    str | None, typer.Option("--token", help="Ingest token (default: ingest.token from config).")
]
TlsOption = Annotated[
    bool,
    typer.Option("--tls", help="Speak TLS to the listener (implied by --cafile, --cert or --key)."),
]
CafileOption = Annotated[
    Path | None,
    typer.Option(
        "--cafile",
        help="PEM CA certificate(s) the listener's certificate is checked against "
        "(default: the system's CAs).",
        dir_okay=False,
    ),
]
CertOption = Annotated[
    Path | None,
    typer.Option(
        "--cert",
        help="PEM client certificate, for a listener that asks for one (mTLS).",
        dir_okay=False,
    ),
]
KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="PEM private key of --cert.", dir_okay=False),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear error line to stderr and exit."""
    typer.echo(f"factory-tui: {message}", err=True)
    raise typer.Exit(code)


def client_tls(
    tls: bool, cafile: Path | None, cert: Path | None, key: Path | None
) -> ssl.SSLContext | None:
    """The TLS context `send` and `simulate` connect with (None: plain TCP), or a clear exit."""
    if not (tls or cafile or cert or key):
        return None
    try:
        return client_tls_context(cafile, cert, key)
    except AccessError as error:
        fail(str(error))


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    """Load settings with flag overrides given as dotted keys (`store.path=...`); a
    misspelled FACTORY_TUI_* variable gets a warning on stderr."""
    for warning in unknown_env_names():
        typer.echo(f"factory-tui: warning: {warning}", err=True)
    try:
        return load_settings(config, overrides=overrides)
    except ConfigError as error:
        fail(str(error))


def open_store(settings: Settings, *, read_only: bool = False) -> Store:
    """Open the configured database, turning store errors into a clear exit."""
    try:
        return storage.open_store(
            settings.store.location,
            durability=settings.store.durability,
            read_only=read_only,
            site=settings.site.id,
        )
    except StoreError as error:
        fail(str(error))


def for_site(settings: Settings, site_id: str | None, *, other_choice: str = "") -> Settings:
    """The settings of site `site_id` (None: ours): see `_as_described` for whose time zone,
    shifts, max_gap_s and roster they carry.

    With no `site_id`, a database that holds one other site alone means that one; one that
    holds several others is a mistake to say (an empty report would look like an idle floor).
    `other_choice` names a further way out in that message (`report --all-sites`)."""
    wanted = settings.site.id if site_id is None else site_id
    with open_store(settings, read_only=True) as store:
        try:
            sites = store.sites()
        except StoreError as error:
            fail(str(error))
    known = {site.id: site for site in sites}
    if site_id is None and wanted not in known and len(known) == 1:
        wanted = next(iter(known))
    if wanted in known:
        return _as_described(settings, known[wanted])
    if not known:
        return settings
    where = storage.mask_url(str(settings.store.location))
    listed = ", ".join(sorted(known))
    if site_id is None:
        fail(
            f"{where} holds sites {listed} and not {wanted!r}: say which with --site "
            f"(or [site] id){other_choice}"
        )
    fail(f"site {site_id!r} is not in {where} (its sites: {listed})")


def all_sites(settings: Settings) -> list[Settings]:
    """The settings of every site in the database, in counting order of id (S2 before S10; ours
    alone if none is)."""
    with open_store(settings, read_only=True) as store:
        try:
            sites = store.sites()
        except StoreError as error:
            fail(str(error))
    if not sites:
        return [settings]
    from factory_tui.engine.natural import natural_key  # the engine loads only when needed

    ordered = sorted(sites, key=lambda site: natural_key(site.id))
    return [_as_described(settings, site) for site in ordered]


def _as_described(settings: Settings, site: SiteRecord) -> Settings:
    """Site `site` of our database as a report reads it (`Settings.as_read`: ours from the
    config file when there is one, any other as its box described it)."""
    return settings.as_read(site, storage.mask_url(str(settings.store.location)))


def settings_origin(settings: Settings) -> str:
    """Where the site's time zone, shifts and roster come from, to begin a message with: the
    config file, the database that describes the site, or no config file."""
    if settings.described_in is not None:
        return f"site {settings.site.id!r} as its box described it in {settings.described_in}"
    if settings.source is not None:
        return str(settings.source)
    return "no config file (--config, $FACTORY_TUI_CONFIG or ./factory.toml)"


def dotted(**flags: Any) -> dict[str, Any]:
    """Map `store__path=...` style keyword names to dotted keys (`store.path`)."""
    return {key.replace("__", "."): value for key, value in flags.items()}


@contextmanager
def log_to_stderr() -> Iterator[None]:
    """Our loggers (INFO and up) to stderr with the time, while a headless command runs."""
    logger = logging.getLogger("factory_tui")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
