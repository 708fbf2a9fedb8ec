"""Settings: file, environment and flag precedence, errors, the demo roster, shift windows."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from factory_tui.config import (
    EXAMPLE_CONFIG,
    AlertAction,
    AlertSettings,
    AuditSettings,
    ConfigError,
    MetricsHttpSettings,
    Settings,
    WebSettings,
    load_settings,
    unknown_env_names,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "factory.toml"
    path.write_text(text)
    return path


def test_no_file_gives_defaults_and_no_invented_roster() -> None:
    settings = load_settings(environ={})
    assert settings.source is None
    assert settings.ingest.port == 7878
    assert settings.ingest.host == "127.0.0.1"
    assert settings.store.path == Path("factory.db")
    assert settings.metrics.max_gap_s == 900
    assert settings.workers == []
    assert settings.workstations == []
    assert settings.shifts == []


def test_a_file_setting_one_key_keeps_every_other_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[ingest]\nport = 9000\n"), environ={})
    expected = Settings().model_dump()
    expected["ingest"]["port"] = 9000
    assert settings.model_dump() == expected


def test_the_example_marks_its_roster_and_shifts_as_examples() -> None:
    header = EXAMPLE_CONFIG.split("\n\n", 1)[0]
    assert "shifts, workers and workstations" in header
    assert "examples" in header
    assert "EXAMPLES from here on" in EXAMPLE_CONFIG.split("[[shifts]]", 1)[0]


def test_example_config_is_valid_and_complete(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, EXAMPLE_CONFIG), environ={})
    assert settings.shifts[0].name == "A"
    assert settings.workers[0].name == "Ana Silva"
    # Every key of every section is documented in the example.
    for section in ("site", "ingest", "store", "forward", "metrics", "alerts"):
        for key in type(getattr(settings, section)).model_fields:
            documented = f"{key} =" in EXAMPLE_CONFIG or f"[{section}.{key}]" in EXAMPLE_CONFIG
            assert documented, f"{section}.{key} missing from the example"


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


def test_bad_environment_value_is_reported_against_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[metrics]\nmax_gap_s = 60\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"FACTORY_TUI_PORT": "many"})
    assert str(caught.value).startswith("FACTORY_TUI_PORT=many: ingest.port: ")
    assert "factory.toml" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"^FACTORY_TUI_METRICS_MAX_GAP_S=-1: metrics.max_gap_s"):
        load_settings(environ={"FACTORY_TUI_METRICS_MAX_GAP_S": "-1"})


def test_a_bad_file_value_is_still_reported_against_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[ingest]\nport = 70000\n")
    with pytest.raises(ConfigError, match=r"factory.toml: ingest.port: "):
        load_settings(path, environ={"FACTORY_TUI_METRICS_MAX_GAP_S": "60"})


def test_a_misspelled_environment_name_is_named_with_the_closest_setting() -> None:
    env = {"FACTORY_TUI_PROT": "9000", "FACTORY_TUI_PORT": "9001", "FACTORY_TUI_CONFIG": "x"}
    assert unknown_env_names(env) == [
        "FACTORY_TUI_PROT is not a factory-tui setting and is ignored "
        "(did you mean FACTORY_TUI_PORT?)"
    ]
    assert unknown_env_names({"FACTORY_TUI_SITE_ID": "pune"}) == []
    assert load_settings(environ={"FACTORY_TUI_SITE_ID": "pune"}).site.id == "pune"


def test_a_webhook_token_over_plain_http_off_loopback_is_named() -> None:
    def alerts(token: str, *urls: str) -> AlertSettings:
        actions = [AlertAction(on=["camera_dark"], webhook=url) for url in urls]
        return AlertSettings(webhook_token=token, actions=actions)

    safe = ("https://hooks.example/a", "http://localhost:8080/b", "http://[::1]/c")
    assert alerts("t", *safe).token_in_clear() == []
    assert alerts("", "http://hooks.example/a").token_in_clear() == []
    command = AlertAction(on=["camera_dark"], command=["/bin/true"])
    assert AlertSettings(webhook_token="t", actions=[command]).token_in_clear() == []
    assert alerts("t", *safe, "http://10.0.0.7:8080/hook").token_in_clear() == [
        "alert action webhook http://10.0.0.7:8080/hook sends [alerts] webhook_token in clear "
        "text to 10.0.0.7; use an https:// URL"
    ]


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


def test_commands_warn_of_a_misspelled_variable_and_name_a_bad_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from factory_tui.cli import app
    from factory_tui.storage import SqliteStore

    SqliteStore.open(tmp_path / "factory.db").close()
    runner = CliRunner()
    monkeypatch.setenv("FACTORY_TUI_DB", str(tmp_path / "factory.db"))
    monkeypatch.setenv("FACTORY_TUI_PROT", "9000")
    result = runner.invoke(app, ["export", "events"])
    assert result.exit_code == 0, result.output
    assert "warning: FACTORY_TUI_PROT is not a factory-tui setting" in result.stderr
    assert "did you mean FACTORY_TUI_PORT?" in result.stderr
    monkeypatch.setenv("FACTORY_TUI_PORT", "abc")
    result = runner.invoke(app, ["export", "events"])
    assert result.exit_code == 2
    assert "factory-tui: FACTORY_TUI_PORT=abc: ingest.port: " in result.stderr


def test_the_example_has_every_section_and_key_of_the_web_and_metrics_http() -> None:
    """`[web]` (host, port, token, allow) is in the example init writes, as README refers to
    `[web] token`; so are `[metrics_http]` and `[audit]`, their keys written or commented."""
    for section, model in (
        ("web", WebSettings),
        ("metrics_http", MetricsHttpSettings),
        ("audit", AuditSettings),
    ):
        assert f"\n[{section}]\n" in EXAMPLE_CONFIG
        body = EXAMPLE_CONFIG.split(f"\n[{section}]\n", 1)[1].split("\n[", 1)[0]
        for key in model.model_fields:
            assert f"\n{key} =" in body or f"\n# {key} =" in body, f"{section}.{key}"
    assert tomllib.loads(EXAMPLE_CONFIG)["web"] == {
        "host": "127.0.0.1",
        "port": 8000,
        "token": "",
        "allow": [],
    }
