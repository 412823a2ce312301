"""Issue 10, Must show 2: HMKs from SQL through the shipped raddb/mods-available/hkp_sql,
in a real PostgreSQL (started here) and in SQLite, yield keys; with
`suppress_secrets = yes` no HMK appears in the `-X` log; `freeradius -XC` accepts the
shipped sql configuration installed into a copy of Debian's stock raddb."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pyrad.packet
import pytest

from freeradius_module.install import main as install_main
from hkp_support import credentials
from hkp_support.freeradius import FREERADIUS, FreeRadiusInstance, use_credential_module
from hkp_support.postgresql import PostgresCluster

from .conftest import ALICE, ALICE_HMK, requires_freeradius
from .credential_checks import (
    EXAMPLE_HMK,
    EXAMPLE_NAI,
    credential_hks,
    expect_key,
    log_of_one_key,
    no_hmk_in,
)
from .hks_client import build_hkreq, now_ntp, send

pytestmark = requires_freeradius
STOCK_RADDB = Path("/etc/freeradius/3.0")


def test_hmks_from_postgresql_yield_keys_and_stay_out_of_the_debug_log(shared_dir: Path) -> None:
    cluster = PostgresCluster(shared_dir / "pg", durable=False)
    with cluster:
        cluster.psql(credentials.schema_sql("postgresql"))
        cluster.psql((credentials.SQL_CONFIG / "postgresql" / "example.sql").read_text())
        cluster.psql(credentials.radcheck_sql({ALICE.decode(): ALICE_HMK}))
        module = credentials.sql_module_for_postgresql(cluster)
        instance = credential_hks(shared_dir / "hks", "hkp_sql", module)
        with instance:
            for message_id, (nai, hmk) in enumerate(
                ((EXAMPLE_NAI, EXAMPLE_HMK), (ALICE, ALICE_HMK)), start=1
            ):
                built = build_hkreq(nai, hmk, message_id=message_id, timestamp=now_ntp())
                expect_key(send(instance.client(), built), built, hmk)
            unknown = build_hkreq(b"nobody@example.net", ALICE_HMK, message_id=3)
            assert send(instance.client(), unknown).code == pyrad.packet.AccessReject
        log = instance.log_text()
        # What the installer warns about: without suppress_secrets, -X prints the HMK.
        unmasked = credential_hks(
            shared_dir / "unmasked", "hkp_sql", module, suppress_secrets=False
        )
        assert ALICE_HMK.hex() in log_of_one_key(unmasked, ALICE, ALICE_HMK, message_id=4)
    assert "hkp_sql" in log and "HKP-HMK" in log  # the module ran and printed its items
    assert "<<< secret >>>" in log  # ... masked (log { suppress_secrets = yes })
    no_hmk_in(log, EXAMPLE_HMK, ALICE_HMK)


def test_hmks_from_sqlite_yield_keys(shared_dir: Path) -> None:
    database = shared_dir / "hks" / "var" / "lib" / "freeradius" / "credentials.sqlite"
    database.parent.mkdir(parents=True)
    connection = sqlite3.connect(database)
    with connection:
        connection.executescript(credentials.schema_sql("sqlite"))
        connection.executescript((credentials.SQL_CONFIG / "sqlite" / "example.sql").read_text())
        connection.executescript(credentials.radcheck_sql({ALICE.decode(): ALICE_HMK}))
    connection.close()
    instance = FreeRadiusInstance(
        shared_dir / "hks",
        credential_module="hkp_sql",
        extra_modules={"hkp_sql": credentials.sql_module_for_sqlite(database)},
    )
    with instance:
        for message_id, (nai, hmk) in enumerate(
            ((EXAMPLE_NAI, EXAMPLE_HMK), (ALICE, ALICE_HMK)), start=1
        ):
            built = build_hkreq(nai, hmk, message_id=message_id)
            expect_key(send(instance.client(), built), built, hmk)


def test_shipped_sql_config_in_the_stock_debian_raddb_passes_freeradius_xc(
    shared_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raddb = shared_dir / "raddb"
    subprocess.run(["cp", "-a", str(STOCK_RADDB), str(raddb)], check=True)
    conf = raddb / "radiusd.conf"
    conf.write_text(
        conf.read_text().replace("raddbdir = /etc/freeradius/3.0", f"raddbdir = {raddb}")
    )
    rc = install_main(
        ["--raddb", str(raddb), "--lib-dir", str(shared_dir / "lib"),
         "--replay-db", str(shared_dir / "var" / "replay.sqlite")]
    )  # fmt: skip
    assert rc == 0, capsys.readouterr()
    installed = capsys.readouterr().out
    assert "sql or ldap" in installed  # the -X warning names the credential stores
    assert (raddb / "mods-available" / "hkp_sql").is_file()
    assert (raddb / "mods-config" / "sql" / "hkp" / "postgresql" / "schema.sql").is_file()
    # The documented steps: enable hkp_sql, and the one-line change in the site.
    (raddb / "mods-enabled" / "hkp_sql").symlink_to("../mods-available/hkp_sql")
    (raddb / "mods-enabled" / "hkp_ldap").symlink_to("../mods-available/hkp_ldap")
    site = raddb / "sites-available" / "hkp_hks"
    site.write_text(use_credential_module(site.read_text(), "hkp_sql"))
    result = subprocess.run(
        [FREERADIUS, "-XC", "-d", str(raddb)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "Configuration appears to be OK" in result.stdout
    assert "rlm_sql_postgresql" in result.stdout and "rlm_ldap" in result.stdout
