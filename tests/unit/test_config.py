import pytest

from upwatch.config import LogLevel, load_settings, redact_url
from upwatch.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "DATABASE_URL",
        "HOST",
        "PORT",
        "MAX_MONITORS_PER_TEAM",
        "LOG_LEVEL",
        "TARGET_DENY",
        "TARGET_ALLOW",
    ):
        monkeypatch.delenv(f"UPWATCH_{name}", raising=False)
    monkeypatch.delenv("UPWATCH_RESULT_RETENTION_DAYS", raising=False)
    monkeypatch.delenv("UPWATCH_METRICS_PORT", raising=False)
    monkeypatch.delenv("UPWATCH_METRICS_HOST", raising=False)


def test_defaults_match_the_spec() -> None:
    s = load_settings()
    assert s.database_url == "sqlite:///./upwatch.db"
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.max_monitors_per_team == 1000
    assert s.result_retention_days == 30
    assert s.log_level is LogLevel.INFO


def test_environment_is_read_and_flags_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPWATCH_PORT", "9000")
    monkeypatch.setenv("UPWATCH_LOG_LEVEL", "DEBUG")
    assert load_settings().port == 9000
    assert load_settings().log_level is LogLevel.DEBUG
    assert load_settings({"port": 9100, "host": None}).port == 9100


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPWATCH_PORT", "eighty"),
        ("UPWATCH_PORT", "70000"),
        ("UPWATCH_DATABASE_URL", "mysql://localhost/x"),
        ("UPWATCH_DATABASE_URL", "upwatch.db"),
        ("UPWATCH_MAX_MONITORS_PER_TEAM", "-1"),
        ("UPWATCH_RESULT_RETENTION_DAYS", "0"),
        ("UPWATCH_LOG_LEVEL", "loud"),
        ("UPWATCH_TARGET_DENY", "169.254.0.0/16,not-a-network"),
        ("UPWATCH_TARGET_ALLOW", "10.0.0.0/40"),
        ("UPWATCH_METRICS_PORT", "0"),
        ("UPWATCH_METRICS_PORT", "ninety"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(name + ":")
    assert "\n" not in message


def test_a_bad_flag_is_named_as_a_flag() -> None:
    with pytest.raises(ConfigError, match=r"^--database-url:"):
        load_settings({"database_url": "ftp://x"})


def test_passwords_are_redacted_from_urls() -> None:
    assert redact_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("sqlite:///./upwatch.db") == "sqlite:///./upwatch.db"


def test_a_worker_serves_metrics_only_when_given_a_port(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (load_settings().metrics_port, load_settings().metrics_host) == (None, "127.0.0.1")
    monkeypatch.setenv("UPWATCH_METRICS_PORT", "9464")
    assert load_settings().metrics_port == 9464
    assert load_settings({"metrics_port": 9465, "metrics_host": "::1"}).metrics_host == "::1"
