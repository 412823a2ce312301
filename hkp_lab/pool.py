"""The lab with several HKS servers (`hkp-lab up --hks N --store postgresql`): the AR's
pool of them, and the PostgreSQL server they share (docs/lab.md, docs/hks.md "Running
several HKS servers")."""

from __future__ import annotations

from hkp_support.postgresql import PostgresCluster

STORES = ("sqlite", "postgresql")
# One HKS: the lab's long-standing single home server. Several: a load-balance pool
# with Status-Server checks, and a retry budget (2 x 0.5 s) inside the MN's first
# retransmission timeout, so a killed HKS costs an MN no more than a retransmission.
POOL_RESPONSE_WINDOW = 0.5
POOL_RETRIES = 1
POOL_CHECK_INTERVAL = 1.0
POOL_ANSWERS_TO_ALIVE = 2


def home_server_lines(host: str, ports: list[int], secret: str) -> list[str]:
    if len(ports) == 1:
        return [
            "[home_server lab-hks]",
            f"ipaddr = {host}",
            f"port = {ports[0]}",
            f"secret = {secret}",
            "response_window = 1.0",
            "retries = 2",
            "[realm DEFAULT]",
            "home_servers = lab-hks",
        ]
    lines: list[str] = []
    names = []
    for index, port in enumerate(ports, start=1):
        name = "lab-hks" if index == 1 else f"lab-hks{index}"
        names.append(name)
        lines += [
            f"[home_server {name}]",
            f"ipaddr = {host}",
            f"port = {port}",
            f"secret = {secret}",
            f"response_window = {POOL_RESPONSE_WINDOW}",
            f"retries = {POOL_RETRIES}",
            "status_check = status-server",
            f"check_interval = {POOL_CHECK_INTERVAL}",
            f"num_answers_to_alive = {POOL_ANSWERS_TO_ALIVE}",
        ]
    return [*lines, "[realm DEFAULT]", f"home_servers = {' '.join(names)}", "type = load-balance"]


def postmaster_pid(cluster: PostgresCluster) -> int | None:
    """The server's pid (first line of postmaster.pid), for `hkp-lab down`."""
    try:
        return int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
