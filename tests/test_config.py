from pathlib import Path

import pytest

from hnlab.config import Settings, mask_url, normalize_database_url
from hnlab.errors import ConfigError

from .helpers import hnlab_cli


def test_defaults_follow_the_data_dir() -> None:
    s = Settings.from_env(environ={"HNLAB_DATA_DIR": "/srv/hn"})
    assert s.database_url is None and s.uses_embedded
    assert s.rocksdb == Path("/srv/hn/content.rocksdb")
    assert s.runs == Path("/srv/hn/runs")
    assert s.postgres_dir == Path("/srv/hn/postgres")
    assert s.hn_api_url == "https://hacker-news.firebaseio.com/v0"
    assert (s.score_threshold, s.posts_limit) == (50, 100)


def test_explicit_paths_win_over_the_data_dir() -> None:
    s = Settings.from_env(
        environ={
            "HNLAB_DATA_DIR": "/a",
            "HNLAB_ROCKSDB_PATH": "/b/c.rocksdb",
            "HNLAB_RUNS_DIR": "/r",
        }
    )
    assert (s.rocksdb, s.runs) == (Path("/b/c.rocksdb"), Path("/r"))


@pytest.mark.parametrize(
    "given", ["postgresql://u@h/d", "postgres://u@h/d", "postgresql+psycopg://u@h/d"]
)
def test_postgres_urls_use_psycopg3(given: str) -> None:
    s = Settings.from_env(environ={"HNLAB_DATABASE_URL": given})
    assert s.database_url == "postgresql+psycopg://u@h/d"


def test_mask_url_hides_only_the_password() -> None:
    assert mask_url("postgresql://bob:s3cret@db:5433/x") == "postgresql://bob:***@db:5433/x"
    assert mask_url("postgresql://bob@db/x") == "postgresql://bob@db/x"
    s = Settings.from_env(environ={"HNLAB_DATABASE_URL": "postgres://bob:s3cret@db/x"})
    assert "s3cret" not in s.display_url and "s3cret" not in str(s.as_dict())
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HNLAB_SCORE_THRESHOLD": "fifty"},
            "HNLAB_SCORE_THRESHOLD must be a whole number >= 0, got 'fifty'",
        ),
        (
            {"HNLAB_SCORE_THRESHOLD": "-1"},
            "HNLAB_SCORE_THRESHOLD must be a whole number >= 0, got '-1'",
        ),
        (
            {"HNLAB_POSTS_LIMIT": "0"},
            "HNLAB_POSTS_LIMIT must be a whole number from 1 to 500, got '0'",
        ),
        (
            {"HNLAB_POSTS_LIMIT": "501"},
            "HNLAB_POSTS_LIMIT must be a whole number from 1 to 500, got '501'",
        ),
        (
            {"HNLAB_DATABASE_URL": "mysql://root:pw@h/db"},
            "HNLAB_DATABASE_URL must start with postgresql:// or postgres://, "
            "got 'mysql://root:***@h/db'",
        ),
        (
            {"HNLAB_HN_API_URL": "ftp://x"},
            "HNLAB_HN_API_URL must be an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            {"HNLAB_AUTO_MIGRATE": "maybe"},
            "HNLAB_AUTO_MIGRATE must be 1 or 0 (true or false), got 'maybe'",
        ),
        (
            {"HNLAB_CRON": "every hour"},
            "HNLAB_CRON must be a 5-field cron expression such as '0 * * * *', got 'every hour'",
        ),
        (
            {"HNLAB_READ_TIMEOUT": "0"},
            "HNLAB_READ_TIMEOUT must be a number of seconds > 0, got '0'",
        ),
        (
            {"HNLAB_STORY_LIST": "hot"},
            "HNLAB_STORY_LIST must be one of top, new, best, ask, show, job, got 'hot'",
        ),
    ],
)
def test_every_bad_value_names_the_variable_the_value_and_the_fix(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(environ=env)
    assert str(info.value) == message


def test_a_cli_override_is_named_by_its_option() -> None:
    with pytest.raises(ConfigError, match=r"^--limit must be a whole number from 1 to 500"):
        Settings.from_env(
            environ={}, overrides={"posts_limit": "900"}, option_names={"posts_limit": "--limit"}
        )


def test_normalize_rejects_a_url_without_a_server() -> None:
    with pytest.raises(ConfigError, match="names no server"):
        normalize_database_url("postgresql://")


def test_unwritable_data_dir_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s = Settings.from_env(environ={"HNLAB_DATA_DIR": str(blocker / "sub")})
    with pytest.raises(ConfigError, match=r"^HNLAB_DATA_DIR directory .* cannot be created"):
        s.ensure_dirs()


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        (
            {"HNLAB_POSTS_LIMIT": "0"},
            ["db", "status"],
            "Error: HNLAB_POSTS_LIMIT must be a whole number from 1 to 500, got '0'",
        ),
        (
            {"HNLAB_SCORE_THRESHOLD": "-5"},
            ["collect"],
            "Error: HNLAB_SCORE_THRESHOLD must be a whole number >= 0, got '-5'",
        ),
        (
            {},
            ["collect", "--limit", "501"],
            "Error: --limit must be a whole number from 1 to 500, got '501'",
        ),
        (
            {"HNLAB_DATABASE_URL": "sqlite:///x.db"},
            ["db", "upgrade"],
            "Error: HNLAB_DATABASE_URL must start with postgresql:// or postgres://, "
            "got 'sqlite:///x.db'",
        ),
        (
            {},
            ["run", "--once", "--cron", "61 * * * *"],
            "Error: --cron must be a 5-field cron expression such as '0 * * * *', got '61 * * * *'",
        ),
    ],
)
def test_cli_bad_configuration_is_one_line_and_exit_1(
    tmp_path: Path, env: dict[str, str], args: list[str], expected: str
) -> None:
    env = {"HNLAB_DATA_DIR": str(tmp_path), **env}
    result = hnlab_cli(*args, env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().startswith(expected), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_cli_unreachable_server_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    result = hnlab_cli(
        "db",
        "status",
        env={
            "HNLAB_DATA_DIR": str(tmp_path),
            "HNLAB_DATABASE_URL": "postgresql://bob:s3cret@127.0.0.1:1/nothing",
        },
    )
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith(
        "Error: cannot reach PostgreSQL at postgresql+psycopg://bob:***@127.0.0.1:1/nothing"
    )
    assert "s3cret" not in result.stderr + result.stdout
    assert len(line.splitlines()) == 1


def test_cli_unwritable_data_dir_fails_before_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = hnlab_cli("collect", env={"HNLAB_DATA_DIR": str(blocker / "d")})
    assert result.returncode == 1
    assert result.stderr.startswith("Error: HNLAB_DATA_DIR directory")
    assert not (blocker.parent / "d").exists()
