"""Issue 10: choosing the replay store in mods-available/hkp_hks (`replay_store`,
`replay_postgresql`), and what the PostgreSQL store says when it cannot start."""

from __future__ import annotations

import pytest

from freeradius_module.config import parse_module_config
from freeradius_module.replay_postgresql import PostgreSQLReplayStore, describe_conninfo
from hkp_radius.errors import ConfigError
from hkp_support.postgresql import free_tcp_port


def test_sqlite_stays_the_default() -> None:
    config = parse_module_config({})
    assert config.replay_store == "sqlite"
    assert config.replay_postgresql == ""


def test_postgresql_takes_a_connection_string() -> None:
    config = parse_module_config(
        {"replay_store": "postgresql", "replay_postgresql": "host=db dbname=hkp"}
    )
    assert (config.replay_store, config.replay_postgresql) == ("postgresql", "host=db dbname=hkp")


@pytest.mark.parametrize(
    ("items", "named"),
    [
        ({"replay_store": "mysql"}, "replay_store"),
        ({"replay_store": "postgresql"}, "replay_postgresql"),
        ({"replay_store": "postgresql", "replay_postgresql": ""}, "replay_postgresql"),
    ],
)
def test_bad_store_settings_name_the_setting(items: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        parse_module_config(items)


def test_the_password_never_reaches_the_description() -> None:
    text = describe_conninfo("host=db port=5432 dbname=hkp user=hks password=hunter2-secret")
    assert "hunter2" not in text
    assert "host=db" in text and "user=hks" in text
    with pytest.raises(ConfigError, match="connection string"):
        describe_conninfo("host='unterminated")


def test_an_unreachable_database_stops_start_up_without_the_password() -> None:
    conninfo = f"host=127.0.0.1 port={free_tcp_port()} dbname=hkp user=hks password=hunter2"
    with pytest.raises(ConfigError) as caught:
        PostgreSQLReplayStore(conninfo)
    assert "cannot use the database" in str(caught.value)
    assert "hunter2" not in str(caught.value)
