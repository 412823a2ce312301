"""The HKS replay state (PROFILE P5) in PostgreSQL: one table shared by every HKS.

Any number of FreeRADIUS processes, on any number of hosts, share the last accepted
timestamp per NAI: each accept is ONE statement, an upsert that stores the timestamp
only when it is newer than the stored one (`INSERT ... ON CONFLICT ... DO UPDATE ...
WHERE`). PostgreSQL takes the row lock and re-checks the WHERE on the newest row
version, so of two servers racing on one NAI and one timestamp exactly one stores it;
the other sees no row changed and answers INVALID_TIMESTAMP. Autocommit: the statement
is its own transaction, committed before the HKS answers.

The connection is lost (database restarted, network gone): the call connects again
once; when that fails too it raises ReplayStateUnavailable, which the module turns
into a discard (never an accept without a recorded timestamp), and the next call
tries again. rlm_python3 serialises calls
into the module, so one connection serves it; a lock keeps that true for any caller.
Runs in Debian's /usr/bin/python3 with its python3-psycopg (3.1).
"""

from __future__ import annotations

import threading
from typing import Any

from hkp_radius.errors import ConfigError, HKPError

# Timestamps are unsigned 64-bit (NTP, P5), PostgreSQL's bigint is signed: stored as
# 8-octet big-endian bytea, which PostgreSQL compares octet by octet: the same order.
SCHEMA = """
CREATE TABLE IF NOT EXISTS hkp_replay (
    nai bytea PRIMARY KEY,
    last_timestamp bytea NOT NULL CHECK (length(last_timestamp) = 8)
)
"""
_UPSERT = """
INSERT INTO hkp_replay AS stored (nai, last_timestamp) VALUES (%s, %s)
ON CONFLICT (nai) DO UPDATE SET last_timestamp = EXCLUDED.last_timestamp
WHERE EXCLUDED.last_timestamp > stored.last_timestamp
"""
_SELECT = "SELECT last_timestamp FROM hkp_replay WHERE nai = %s"
# rlm_python3 runs one module call at a time: a database that does not answer stalls
# the whole server, so connecting and each statement are bounded.
CONNECT_TIMEOUT_SECONDS = 3
STATEMENT_TIMEOUT_MS = 3000


class ReplayStateUnavailable(HKPError):
    """The replay state cannot be read or written now; the request is discarded."""


def describe_conninfo(conninfo: str) -> str:
    """The connection string without its password, for log lines."""
    import psycopg.conninfo

    try:
        items = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error as exc:
        raise ConfigError(f"replay_postgresql: not a libpq connection string ({exc})") from None
    return " ".join(f"{k}={v}" for k, v in items.items() if k != "password")


class PostgreSQLReplayStore:
    """`hkp_radius.hks.ReplayStore` over a PostgreSQL table shared by many HKS."""

    def __init__(self, conninfo: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "replay_store = postgresql needs psycopg 3 in the Python FreeRADIUS embeds "
                "(Debian: apt-get install python3-psycopg)"
            ) from None
        self._psycopg: Any = psycopg
        self.conninfo = conninfo
        self.description = describe_conninfo(conninfo)
        self._lock = threading.Lock()
        self._connection: Any = None
        self.reconnects = 0
        # Start-up fails on a database that cannot be reached: a wrong connection
        # string shows at once, not as discards (docs/hks.md).
        try:
            with self._lock:
                connection = self._connect()
                connection.execute(SCHEMA)
        except psycopg.Error as exc:
            self.close()
            raise ConfigError(
                f"replay_postgresql ({self.description}): cannot use the database: "
                f"{_first_line(exc)}"
            ) from None

    def _connect(self) -> Any:
        if self._connection is None or self._connection.closed:
            self._connection = self._psycopg.connect(
                self.conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                application_name="hkp_hks",
            )
            self.reconnects += 1
        return self._connection

    def _execute(self, statement: str, parameters: tuple[bytes, ...]) -> Any:
        with self._lock:
            reused = self._connection is not None and not self._connection.closed
            try:
                return self._connect().execute(statement, parameters)
            except self._psycopg.OperationalError as exc:
                self._drop()
                if not reused:
                    raise self._unavailable(exc) from None
            except self._psycopg.Error as exc:
                self._drop()  # a timeout or the like: start afresh next time
                raise self._unavailable(exc) from None
            # A connection that served before broke (the database restarted): one new
            # connection, one more try. Safe for the upsert: if the first one did commit,
            # the retry stores nothing and the request is refused, never accepted twice.
            try:
                return self._connect().execute(statement, parameters)
            except self._psycopg.Error as exc:
                self._drop()
                raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> ReplayStateUnavailable:
        return ReplayStateUnavailable(
            f"replay state in PostgreSQL ({self.description}) unavailable: {_first_line(exc)}"
        )

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except self._psycopg.Error:
                pass

    def last_accepted(self, nai: bytes) -> int | None:
        row = self._execute(_SELECT, (nai,)).fetchone()
        return None if row is None else int.from_bytes(bytes(row[0]), "big")

    def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
        cursor = self._execute(_UPSERT, (nai, timestamp.to_bytes(8, "big")))
        return bool(cursor.rowcount == 1)

    def close(self) -> None:
        with self._lock:
            self._drop()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
