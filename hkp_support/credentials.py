"""The shipped credential stores (raddb/mods-available/hkp_sql and hkp_ldap) filled in
for a private FreeRADIUS: for the tests and the lab.

    text = sql_module_for_postgresql(cluster)    # mods-available/hkp_sql, pointed at it
    cluster.psql(radcheck_sql({"mn@example.net": hmk}))
    FreeRadiusInstance(..., credential_module="hkp_sql", extra_modules={"hkp_sql": text})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from hkp_radius.errors import ConfigError
from hkp_support.freeradius import _quote, _set_item
from hkp_support.paths import RADDB_SOURCE
from hkp_support.postgresql import PostgresCluster

SQL_MODULE = RADDB_SOURCE / "mods-available" / "hkp_sql"
SQL_CONFIG = RADDB_SOURCE / "mods-config" / "sql" / "hkp"
LDAP_MODULE = RADDB_SOURCE / "mods-available" / "hkp_ldap"
LDAP_EXAMPLE = RADDB_SOURCE / "mods-config" / "ldap" / "hkp" / "example.ldif"
HMK_ATTRIBUTE = "HKP-HMK"


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def radcheck_sql(users: Mapping[str, bytes], prohibited: frozenset[str] = frozenset()) -> str:
    """INSERTs into the stock radcheck table, as mods-config/sql/hkp/*/example.sql."""
    rows = []
    for nai, hmk in users.items():
        rows.append(f"({_sql_literal(nai)}, 'HKP-HMK', ':=', '0x{hmk.hex()}')")
        if nai in prohibited:
            rows.append(f"({_sql_literal(nai)}, 'HKP-Authorization', ':=', 'Prohibit')")
    if not rows:
        return ""
    values = ", ".join(rows)  # literals quoted by _sql_literal; test and lab data only
    return f"INSERT INTO radcheck (username, attribute, op, value) VALUES {values};"  # noqa: S608


def schema_sql(dialect: str) -> str:
    path = SQL_CONFIG / dialect / "schema.sql"
    if not path.is_file():
        raise ConfigError(f"hkp_sql: no schema for dialect {dialect!r}")
    return path.read_text()


def _set_in_section(text: str, section: str, key: str, value: str) -> str:
    """Set `key` inside the first `section {` block (the dialect subsections)."""
    start = re.search(rf"^\s*{re.escape(section)}\s*\{{", text, re.MULTILINE)
    if start is None:
        raise ConfigError(f"hkp_sql: no {section} {{ }} section")
    head, tail = text[: start.end()], text[start.end() :]
    return head + _set_item(tail, key, value, f"hkp_sql {section}")


def sql_module_for_postgresql(cluster: PostgresCluster) -> str:
    """mods-available/hkp_sql as shipped, pointed at `cluster` (trust auth: no password)."""
    text = SQL_MODULE.read_text()
    for key, value in (
        ("server", _quote(cluster.address)),
        ("port", str(cluster.port)),
        ("login", _quote("hkp")),
        ("radius_db", _quote("hkp")),
    ):
        text = _set_item(text, key, value, "hkp_sql")
    return text


def sql_module_for_sqlite(database: Path) -> str:
    """mods-available/hkp_sql switched to dialect sqlite on `database`."""
    text = _set_item(SQL_MODULE.read_text(), "dialect", _quote("sqlite"), "hkp_sql")
    return _set_in_section(text, "sqlite", "filename", _quote(str(database)))


def ldap_module(uri: str, bind_dn: str, bind_password: str, base_dn: str) -> str:
    """mods-available/hkp_ldap as shipped, pointed at a directory (hkp_support.slapd)."""
    text = LDAP_MODULE.read_text()
    for key, value in (
        ("server", _quote(uri)),
        ("identity", _quote(bind_dn)),
        ("password", _quote(bind_password)),
        ("base_dn", _quote(base_dn)),
    ):
        text = _set_item(text, key, value, "hkp_ldap")
    return text
