"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from factory_tui.storage import SqliteStore, Store, mask_url, open_store

# Read before the autouse fixture below clears every FACTORY_TUI_* variable.
PG_URL = os.environ.get("FACTORY_TUI_TEST_PG", "postgresql://127.0.0.1:5432/test")
IN_CI = os.environ.get("CI") == "true"

PARALLEL_WORKERS = min(8, 2 * (os.cpu_count() or 1))
"""pytest-xdist workers when `-n` is not given: twice the cores, since the suite mostly waits
(servers starting, sockets, polling, Textual pauses). `-n 0` or `-p no:xdist` runs serially."""


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The whole suite (`make test`, `pytest` without paths) runs on PARALLEL_WORKERS xdist
    workers; a run of named files or folders runs in this process, where a file's tests take
    well under a second instead of the workers' start-up (8-9 s for tests/test_models.py).
    `-n N` chooses either way; nothing changes when xdist is off (`-p no:xdist`) or pytest is
    to stop in the debugger (--pdb, --trace), which needs one process.

    Parallel runs use the `loadgroup` schedule unless `--dist` says otherwise: one test at a
    time to whichever worker is free, the largest xdist_group first and each group's tests on
    one worker (xdist's `load` hands out runs of ~60 tests, so the long ones bunched up).

    A hook rather than `-n` in addopts, so that `-p no:xdist` still parses (mutmut passes it:
    its runs must stay in one process). Runs before xdist's own hook turns `-n` into workers.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:  # a worker runs what it is sent
        if workerinput.get("dist") == "loadgroup":
            config.option.loadgroup = True  # xdist sets it from the worker's own --dist only
        return
    if (
        not config.pluginmanager.hasplugin("xdist")
        or config.getoption("usepdb", False)
        or config.getoption("trace", False)
        or config.getoption("collectonly", False)
    ):
        return
    if config.option.numprocesses is None:
        if config.args_source is not pytest.Config.ArgsSource.TESTPATHS:
            return
        config.option.numprocesses = PARALLEL_WORKERS
    if config.option.numprocesses and config.option.dist == "no":
        config.option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Tell each xdist worker the schedule (see pytest_cmdline_main)."""
    node.workerinput["dist"] = node.config.option.dist


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "long: a test of many seconds, started first so that it is not a parallel run's tail",
    )
    # xdist's own (registered here too for runs with -p no:xdist).
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `long` tests first, in the order pytest-randomly left them (a stable sort): the
    loadgroup schedule hands them out first (after the groups), so they overlap the rest of
    the run instead of finishing it alone (the README test takes 15-35 s on a busy box).

    And every async test is bounded by ASYNC_TEST_LIMIT_S (see `_bounded`)."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            item.obj = _bounded(item.obj)


ASYNC_TEST_LIMIT_S = 300.0
"""Far above any async test's time (the longest take 10-15 s on a busy box)."""


def _bounded(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """`test` cancelled after ASYNC_TEST_LIMIT_S: an await that never returns (a tick
    waited for in an app that has crashed, say) fails that test with the await it was stuck
    in, instead of holding its xdist worker, and so the whole run, until CI's limit."""

    @functools.wraps(test)
    async def bounded(*args: Any, **kwargs: Any) -> None:
        limit = asyncio.timeout(ASYNC_TEST_LIMIT_S)
        try:
            async with limit:
                await test(*args, **kwargs)
        except TimeoutError as error:
            if not limit.expired():
                raise  # the test's own
            raise TimeoutError(
                f"the test did not end in {ASYNC_TEST_LIMIT_S:g} s (tests/conftest.py)"
            ) from error

    return bounded


@pytest.fixture(autouse=True)
def _isolated_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test reads the developer's factory.toml or FACTORY_TUI_* variables."""
    import os

    for name in list(os.environ):
        if name.startswith("FACTORY_TUI_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def fresh_db(tmp_path: Path) -> Iterator[Store]:
    """A new, migrated store in a temporary file."""
    store = SqliteStore.open(tmp_path / "factory.db")
    yield store
    store.close()


@cache
def _pg_unreachable() -> str | None:
    """Why the test PostgreSQL server cannot be used (None: it can)."""
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return " ".join(str(error).split())
    return None


def need_postgres() -> None:
    """Skip (fail under CI=true) when the test PostgreSQL server is not reachable."""
    problem = _pg_unreachable()
    if problem is None:
        return
    message = (
        f"PostgreSQL not reachable at {mask_url(PG_URL)} ({problem}); start it "
        "(pg_ctlcluster 15 main start) or point FACTORY_TUI_TEST_PG at one"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def with_search_path(url: str, schema: str) -> str:
    """`url` with every connection's search_path set to `schema` (libpq `options`)."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL to a fresh, empty schema of the test PostgreSQL server, dropped afterwards."""
    need_postgres()
    schema = f"ft_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield with_search_path(PG_URL, schema)
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


MQTT_URL = os.environ.get("FACTORY_TUI_TEST_MQTT", "mqtt://127.0.0.1:1883")


@cache
def _mqtt_unreachable() -> str | None:
    """Why the test MQTT broker cannot be reached (None: it can)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(MQTT_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), 5):
            return None
    except OSError as error:
        return error.strerror or str(error)


@pytest.fixture
def mqtt_url() -> str:
    """The test MQTT broker's URL; skips (fails under CI=true) when it is not reachable.
    Each test uses topics and client ids of its own (fresh names), so tests never meet."""
    problem = _mqtt_unreachable()
    if problem is not None:
        message = (
            f"MQTT broker not reachable at {MQTT_URL} ({problem}); start one "
            "(mosquitto -d) or point FACTORY_TUI_TEST_MQTT at one"
        )
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return MQTT_URL


StoreOpener = Callable[..., Store]
"""Opens the test's database: `open(read_only=False)`."""


@pytest.fixture(params=["sqlite", "postgres"])
def db_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One fresh database on each backend in turn: a SQLite file's path, then the URL of a
    fresh PostgreSQL schema (for settings and commands that take a location)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return str(tmp_path / "factory.db")


@pytest.fixture
def store_opener(db_location: str) -> StoreOpener:
    """Opens one fresh database, on each backend in turn (the storage contract's tests)."""

    def opener(*, read_only: bool = False) -> Store:
        return open_store(db_location, read_only=read_only)

    return opener


@pytest.fixture
def any_store(store_opener: StoreOpener) -> Iterator[Store]:
    """A new, migrated, writable store on each backend in turn."""
    store = store_opener()
    yield store
    store.close()
