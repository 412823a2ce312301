"""Keys/s of the whole path with one and with two HKS processes, in one run (issue 10).

    python3 benchmarks/hks_pool.py [-n 3000] [-c 32] [--rounds 2] [--users 500] [--json]
                                                        (root: FreeRADIUS runs as freerad)

rlm_python3 runs one module call at a time, so one FreeRADIUS runs the HKS on one core;
several HKS processes on one shared PostgreSQL replay state (docs/hks.md "Running
several HKS servers") are how an operator uses more. Three setups, each a private
PostgreSQL cluster (on disk under --dir, fsync on) where it applies, its FreeRADIUS
HKS process(es) and one `hkp-ar` (UDP on [::1]):

    sqlite x1       one HKS, replay state in SQLite (the default, for reference)
    postgresql x1   one HKS, replay state in PostgreSQL
    postgresql x2   two HKS on one PostgreSQL, the AR's realm a load-balance pool

The MN side is benchmarks/whole_path.py's: pre-built signed HKReqs over `-c` UDP
sockets (benchmarks/udpload.py). Rounds alternate between the setups; per round: keys/s
(SUCCESS HKResps per second), p50/p99, failures, retransmissions, CPU per exchange of
hkp-ar, FreeRADIUS (all HKS) and PostgreSQL (its backends), and requests per HKS. Then
the ratio of the best x2 round to the best postgresql x1 round. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common
import udpload
import whole_path

from hkp_support.freeradius import FreeRadiusInstance
from hkp_support.hks_group import HKSGroup

SETUPS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2))


def ar_config(work: Path, servers: list[FreeRadiusInstance]) -> str:
    text = whole_path.ar_config(work, servers[0])
    head = text[: text.index("[home_server hks]")]
    lines = [head.rstrip("\n")]
    for index, server in enumerate(servers):
        lines += [
            f"[home_server hks{index}]",
            f"ipaddr = {server.address}",
            f"port = {server.port}",
            f"secret = {whole_path.SECRET.decode()}",
            "response_window = 2",
            "retries = 1",
        ]
    names = " ".join(f"hks{i}" for i in range(len(servers)))
    lines += ["[realm example.net]", f"home_servers = {names}", "type = load-balance", ""]
    return "\n".join(lines)


class Setup:
    def __init__(self, root: Path, store: str, count: int, users: dict[str, bytes]) -> None:
        self.name = f"{store} x{count}"
        self.work = root / f"{store}-{count}"
        self.work.mkdir()
        self.work.chmod(0o755)
        options: dict[str, Any] = {
            "secret": whole_path.SECRET, "users": users, "require_timestamp": True,
            "timestamp_window": 3600,
        }  # fmt: skip
        self.group: HKSGroup | None = None
        if store == "postgresql":
            self.group = HKSGroup(self.work, count, durable=True, **options)
            self.servers = self.group.servers
        else:
            self.servers = [FreeRadiusInstance(self.work / "hks1", **options)]
        (self.work / "ar").mkdir()
        self.ar: whole_path.Ar | None = None

    def start(self) -> None:
        if self.group is not None:
            self.group.start()
        else:
            self.servers[0].start()
        self.ar = whole_path.Ar(self.work / "ar", ar_config(self.work / "ar", self.servers))
        self.ar.start()

    def stop(self) -> None:
        if self.ar is not None:
            self.ar.stop()
        if self.group is not None:
            self.group.stop()
        else:
            self.servers[0].stop()

    def cpu(self) -> dict[str, float]:
        assert self.ar is not None and self.ar.process is not None
        hks = 0.0
        for server in self.servers:
            assert server.process is not None
            hks += udpload.cpu_seconds(server.process.pid)
        pg = self.group.postgres.cpu_seconds() if self.group is not None else 0.0
        return {"hkp-ar": udpload.cpu_seconds(self.ar.process.pid), "freeradius": hks,
                "postgresql": pg}  # fmt: skip

    def accepts(self) -> list[int]:
        return [server.log_text().count("Accept") for server in self.servers]


def round_of(setup: Setup, count: int, users: int, concurrency: int, offset: int) -> dict[str, Any]:
    assert setup.ar is not None
    requests = whole_path.build_requests(count, users, offset)
    by_bytes = {wire: whole_path.message_id(wire) for wire in requests}
    before, accepts0 = setup.cpu(), setup.accepts()
    result = udpload.run(
        requests, ("::1", setup.ar.port), concurrency, keep_answers=True,
        matches=lambda request, answer: whole_path.message_id(answer) == by_bytes[request],
    )  # fmt: skip
    after, accepts1 = setup.cpu(), setup.accepts()
    return {
        "setup": setup.name,
        "exchanges": count,
        **bench_common.hkresp_figures(result),
        "cpu_us_per_exchange": bench_common.cpu_us_per_exchange(before, after, result.answered),
        "accepts_per_hks": [b - a for a, b in zip(accepts0, accepts1, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="exchanges per round")
    parser.add_argument("-c", type=int, default=32, help="exchanges in flight")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per setup")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--dir", default="/var/tmp", help="parent of the work dirs (not tmpfs)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    root = bench_common.work_root("hkp-pool-bench-", args.dir)
    users = dict(whole_path.identity(i) for i in range(args.users))
    setups = [Setup(root, store, count, users) for store, count in SETUPS]
    figures: list[dict[str, Any]] = []
    print(f"{args.n} exchanges per round, {args.c} in flight, {args.users} identities, "
          f"{os.cpu_count()} CPUs", flush=True)  # fmt: skip
    try:
        for setup in setups:
            setup.start()
        offset = 0
        for round_number in range(1, args.rounds + 1):
            for setup in setups:
                f = round_of(setup, args.n, args.users, args.c, offset)
                offset += args.n
                figures.append(f)
                cpu = f["cpu_us_per_exchange"]
                print(
                    f"round {round_number} {f['setup']:<13}: {f['keys_per_s']:7,.0f} keys/s, "
                    f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, failed {f['failed']}, "
                    f"retransmissions {f['retransmissions']}, statuses {f['statuses']}; CPU "
                    f"per exchange: hkp-ar {cpu['hkp-ar']:.0f} us, FreeRADIUS "
                    f"{cpu['freeradius']:.0f} us, PostgreSQL {cpu['postgresql']:.0f} us; "
                    f"accepts per HKS {f['accepts_per_hks']}",
                    flush=True,
                )
    finally:
        for setup in setups:
            setup.stop()
        shutil.rmtree(root, ignore_errors=True)

    def best(name: str) -> float:
        return max(f["keys_per_s"] for f in figures if f["setup"] == name)

    one, two = best("postgresql x1"), best("postgresql x2")
    print(f"ratio postgresql x2 / x1 keys/s: {two / one if one else 0.0:.2f} "
          f"(best rounds: {two:,.0f} / {one:,.0f}); postgresql x1 / sqlite x1: "
          f"{one / best('sqlite x1') if best('sqlite x1') else 0.0:.2f}")  # fmt: skip
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
