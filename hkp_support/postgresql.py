"""A private PostgreSQL cluster for the tests, the lab and the benchmarks.

Debian's server binaries (initdb, pg_ctl) in a data directory of its own, listening on
127.0.0.1 at a free port and on a Unix socket in its own directory; run as user
postgres when we are root (initdb refuses root). `pg_ctl -w` returns once the server
accepts connections, so nothing here sleeps.

    with PostgresCluster("/tmp/pg") as pg:
        pg.psql("SELECT 1")
        pg.conninfo()           # "host=127.0.0.1 port=... dbname=hkp user=hkp"
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from hkp_support.process import Startable, check_traversable, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = "/usr/bin/psql"
PG_USER = "postgres"
DATABASE = "hkp"
ROLE = "hkp"
START_TIMEOUT = 60  # seconds pg_ctl -w waits for the server to accept connections
COMMAND_TIMEOUT = 60


def free_tcp_port(address: str = "127.0.0.1") -> int:
    return free_port(address, socket.SOCK_STREAM)


class PostgresCluster(Startable):
    """One PostgreSQL server with a database `hkp` owned by role `hkp` (trust auth on
    loopback and the socket: a test and lab cluster, never a production setup)."""

    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        address: str = "127.0.0.1",
        durable: bool = True,
    ) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.address = address
        self.port = port if port is not None else free_tcp_port(address)
        self.durable = durable  # False: fsync off (a throwaway test cluster)
        self.run_as = PG_USER if os.geteuid() == 0 else None

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.work_dir / "socket"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "postgresql.log"

    def conninfo(self, database: str = DATABASE, user: str = ROLE) -> str:
        """A libpq connection string over TCP loopback (what the HKS uses)."""
        return f"host={self.address} port={self.port} dbname={database} user={user}"

    def _run(self, args: list[str | Path]) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def _checked(self, args: list[str | Path], what: str) -> str:
        result = self._run(args)
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stderr}")
        return result.stdout

    def init(self) -> None:
        """initdb (once: an existing data directory is kept), the role and database."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        check_traversable(self.work_dir, self.run_as)
        self.socket_dir.mkdir(exist_ok=True)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            for path in (self.work_dir, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(self.work_dir, 0o755)  # noqa: S103 - the socket dir must be reachable
        os.chmod(self.socket_dir, 0o777)  # noqa: S103 - like /var/run/postgresql
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._checked(
            [PG_BIN / "initdb", "-D", self.data_dir, "--auth=trust", "-U", PG_USER, "-E", "UTF8"],
            "initdb",
        )
        settings = [
            f"listen_addresses = '{self.address}'",
            f"port = {self.port}",
            f"unix_socket_directories = '{self.socket_dir}'",
            "max_connections = 50",
        ]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# hkp_support/postgresql.py\n" + "\n".join(settings) + "\n")
        self.start()
        self.psql(f"CREATE ROLE {ROLE} LOGIN", database="postgres", user=PG_USER)
        self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}", database="postgres", user=PG_USER)

    def start(self) -> None:
        """Start the server and return once it accepts connections (pg_ctl -w)."""
        if not (self.data_dir / "PG_VERSION").exists():
            self.init()  # init starts it
            return
        if self.running:
            return
        self._checked(
            [
                PG_BIN / "pg_ctl", "start", "-w", "-t", str(START_TIMEOUT),
                "-D", self.data_dir, "-l", self.log_path,
            ],
            "pg_ctl start",
        )  # fmt: skip
        self._checked(
            [PG_BIN / "pg_isready", "-h", self.address, "-p", str(self.port)], "pg_isready"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and return once it has exited (pg_ctl -w)."""
        if self.running:
            self._checked(
                [PG_BIN / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data_dir], "pg_ctl stop"
            )

    @property
    def running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run([PG_BIN / "pg_ctl", "status", "-D", self.data_dir]).returncode == 0

    def psql(self, sql: str, *, database: str = DATABASE, user: str = ROLE) -> str:
        """Run SQL through psql over the socket; the unaligned, tuples-only output."""
        return self._checked(
            [
                PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", self.socket_dir, "-p", str(self.port), "-U", user, "-d", database,
                "-c", sql,
            ],
            "psql",
        )  # fmt: skip

    def cpu_seconds(self) -> float:
        """utime + stime of the server and its live backends (benchmarks; /proc)."""
        try:
            postmaster = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # fields[0] is the state: ppid is fields[1], utime and stime fields[11:13]
            if int(entry) == postmaster or int(fields[1]) == postmaster:
                total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.work_dir, ignore_errors=True)
