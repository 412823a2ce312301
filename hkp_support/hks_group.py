"""Several HKS servers on one PostgreSQL database: for the tests, the lab and benchmarks.

One private PostgreSQL cluster (hkp_support.postgresql) and N private FreeRADIUS
instances (hkp_support.freeradius), each with its own port and work directory, all
keeping their replay state in the cluster's `hkp_replay` table.

    with HKSGroup("/tmp/group", 2, users={"mn@example.net": hmk}) as group:
        a, b = group.servers
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hkp_support.freeradius import FreeRadiusInstance
from hkp_support.postgresql import PostgresCluster
from hkp_support.process import Startable


class HKSGroup(Startable):
    def __init__(
        self,
        work_dir: str | os.PathLike[str],
        count: int,
        *,
        users: Mapping[str, bytes] | None = None,
        durable: bool = False,
        **instance_options: Any,
    ) -> None:
        if count < 1:
            raise ValueError("an HKS group has at least one server")
        self.work_dir = Path(work_dir).resolve()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.work_dir, 0o755)  # noqa: S103 - postgres and freerad traverse it
        self.postgres = PostgresCluster(self.work_dir / "postgresql", durable=durable)
        self.servers = [
            FreeRadiusInstance(
                self.work_dir / f"hks{index}",
                users=users,
                replay_postgresql=self.postgres.conninfo(),
                **instance_options,
            )
            for index in range(1, count + 1)
        ]

    def start(self) -> None:
        self.postgres.start()
        for server in self.servers:
            server.start()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.postgres.stop()
