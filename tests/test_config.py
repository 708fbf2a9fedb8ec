"""Settings: file, environment and flag precedence, errors, the demo roster, shift windows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from factory_tui.config import (
    DEMO_WORKERS,
    EXAMPLE_CONFIG,
    ConfigError,
    Settings,
    load_settings,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "factory.toml"
    path.write_text(text)
    return path


def test_no_file_gives_defaults_and_the_demo_roster() -> None:
    settings = load_settings(environ={})
    assert settings.source is None
    assert settings.ingest.port == 7878
    assert settings.ingest.host == "127.0.0.1"
    assert settings.store.path == Path("factory.db")
    assert settings.metrics.max_gap_s == 900
    assert [w.id for w in settings.roster_workers()] == [i for i, _ in DEMO_WORKERS]
    assert len(settings.roster_workstations()) == 6
    assert all(w.name and w.name != w.id for w in settings.roster_workers())


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, EXAMPLE_CONFIG), environ={})
    assert settings.shifts[0].name == "A"
    assert settings.workers[0].name == "Ana Silva"
    # Every key of every section is documented in the example.
    for section in ("site", "ingest", "store", "forward", "metrics", "alerts"):
        for key in type(getattr(settings, section)).model_fields:
            assert f"{key} =" in EXAMPLE_CONFIG, f"{section}.{key} missing from the example"


def test_factory_toml_in_current_folder_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "[ingest]\nport = 9000\n")
    settings = load_settings(environ={})
    assert settings.ingest.port == 9000
    assert settings.workers == []  # a config file's roster is its own, no demo roster


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[ingest]\nport = 9000\nhost = "127.0.0.2"\n[store]\npath = "file.db"\n')
    env = {
        "FACTORY_TUI_CONFIG": str(path),
        "FACTORY_TUI_PORT": "9001",
        "FACTORY_TUI_STORE_PATH": "env.db",
    }
    settings = load_settings(environ=env)
    assert settings.ingest.port == 9001
    assert settings.ingest.host == "127.0.0.2"
    assert settings.store.path == Path("env.db")
    settings = load_settings(environ=env, overrides={"ingest.port": 9002, "store.path": None})
    assert settings.ingest.port == 9002
    assert settings.store.path == Path("env.db")


def test_explicit_config_beats_environment_path(tmp_path: Path) -> None:
    chosen = write(tmp_path, "[metrics]\nmax_gap_s = 60\n")
    settings = load_settings(chosen, environ={"FACTORY_TUI_CONFIG": "/nonexistent.toml"})
    assert settings.metrics.max_gap_s == 60


def test_long_env_names_reach_every_section_key() -> None:
    settings = load_settings(
        environ={
            "FACTORY_TUI_METRICS_MAX_GAP_S": "86400",
            "FACTORY_TUI_INGEST_AUTO_REGISTER": "true",
        }
    )
    assert settings.metrics.max_gap_s == 86400
    assert settings.ingest.auto_register is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ingest]\nport = 70000\n", "ingest.port: Input should be less than or equal to 65535"),
        ("[ingest]\nprot = 1\n", "ingest.prot: unknown key"),
        (
            '[store]\ndurability = "sometimes"\n',
            "store.durability: Input should be 'crash' or 'power'",
        ),
        ('timezone = "Mars/Olympus"\n', "timezone: unknown time zone 'Mars/Olympus'"),
        (
            '[[shifts]]\nname = "A"\nstart = "6am"\nend = "14:00"\n',
            'shifts.0.start: must be a time like "06:00"',
        ),
        ('[[shifts]]\nname = "A"\nstart = "06:00"\n', "shifts.0.end: is required"),
        ('[[workers]]\nid = "W1"\n[[workers]]\nid = "W1"\n', "workers: id 'W1' appears twice"),
        ("[metrics]\nmax_gap_s = -1\n", "metrics.max_gap_s: Input should be greater than 0"),
        ("ingest = 5\n", "ingest: Input should be a valid dictionary"),
        ("[ingest\n", "not valid TOML"),
    ],
)
def test_bad_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist .*factory-tui init"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_bad_environment_value_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="ingest.port"):
        load_settings(environ={"FACTORY_TUI_PORT": "many"})


def test_loopback_detection() -> None:
    assert Settings().ingest.is_loopback
    for host, loopback in [
        ("localhost", True),
        ("127.0.0.5", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
    ]:
        settings = Settings.model_validate({"ingest": {"host": host}})
        assert settings.ingest.is_loopback is loopback, host


def shifts_settings() -> Settings:
    return Settings.model_validate(
        {
            "timezone": "Europe/Lisbon",
            "shifts": [
                {"name": "Day", "start": "06:00", "end": "18:00"},
                {"name": "Night", "start": "18:00", "end": "06:00"},
            ],
        }
    )


def test_current_window_is_the_running_shift_in_local_time() -> None:
    settings = shifts_settings()
    start, end, label = settings.current_window(datetime(2026, 7, 1, 12, tzinfo=UTC))  # 13:00 local
    assert label == "Day"
    assert start == datetime(2026, 7, 1, 5, tzinfo=UTC)
    assert end == datetime(2026, 7, 1, 17, tzinfo=UTC)


def test_night_shift_spans_midnight() -> None:
    settings = shifts_settings()
    start, end, label = settings.current_window(datetime(2026, 7, 2, 2, tzinfo=UTC))  # 03:00 local
    assert label == "Night"
    assert start == datetime(2026, 7, 1, 17, tzinfo=UTC)
    assert end == datetime(2026, 7, 2, 5, tzinfo=UTC)


def test_off_shift_window_is_the_local_day() -> None:
    settings = Settings.model_validate({"timezone": "Europe/Lisbon"})
    start, end, label = settings.current_window(
        datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    )  # 00:30 local, 2 July
    assert label == "2026-07-02"
    assert start == datetime(2026, 7, 1, 23, tzinfo=UTC)
    assert end == datetime(2026, 7, 2, 23, tzinfo=UTC)
