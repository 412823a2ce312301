"""The HKS beside FreeRADIUS itself: files only, a trivial rlm_python3 module, the HKS.

    python3 benchmarks/hks_compare.py [-n 20000] [-c 32] [--rounds 3] [--users 1000]
                                      [--db DIR]      (root: FreeRADIUS runs as freerad)

Three private FreeRADIUS 3.2 servers, the same binary and the same raddb (our
hkp_hks site, the users file of `--users` identities, the request filter), differing
only in what `Auth-Type HKP` runs:

- `files`: unlang `update reply { HKP-Handover-Key := ... }` (an encrypt=2 attribute
  FreeRADIUS encrypts itself), then ok;
- `echo`: a trivial rlm_python3 module that echoes User-Name in Reply-Message;
- `hks`: the HKS module (freeradius_module.rlm_hkp_hks), replay state in SQLite on disk
  (`--db`, default /var/tmp, never tmpfs) with its group commit (WAL, synchronous=FULL),
  as shipped (`replay_commit = post-auth`: the reply waits in post-auth);
- `inline`: the same with `replay_commit = inline` (each accept commits in the module
  call), to show what committing outside rlm_python3's mutex buys.

Driven in alternating rounds (files, echo, hks, files, ...) by a closed-loop generator
(benchmarks/udpload.py: `-c` sockets with one pre-built, valid Access-Request each in
flight). Per round: Access-Requests/s and server CPU per Access-Request (utime+stime of
the FreeRADIUS process from /proc) and the server's RSS after it. Prints each round,
the medians, the Goal's ratios (hks/echo CPU at most 3, hks/echo rate at least 0.3),
each server's RSS growth after its first round (the first round starts the worker
threads; what grows after it, per variant, says which part holds memory), and the
HKS's upserts per commit (its log line at shutdown). Prints; never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common
import pyrad.packet
import udpload

from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

AR_ID = bytes.fromhex("20010db8000000000000000000000001")
COA = bytes.fromhex("20010db8000000010000000000000002")
SECRET = b"hkp-bench-secret"
ECHO_MODULE = '''"""A trivial rlm_python3 module: echo User-Name in Reply-Message."""
def authenticate(p):
    for name, value in p:
        if name == "User-Name":
            return 2, (("Reply-Message", value),), ()
    return 2, (), ()
'''
AUTH_BLOCK = "\t\t\thkp_hks_salt_inputs\n\t\t\thkp_hks\n"
VARIANTS = ("files", "echo", "hks", "inline")
HKS_VARIANTS = {"hks": "post-auth", "inline": "inline"}  # kind: replay_commit
GROUPS = re.compile(r"replay state: (\d+) upserts in (\d+) commits")


class Variant(FreeRadiusInstance):
    """A FreeRadiusInstance whose `Auth-Type HKP` runs `kind` instead of the HKS."""

    def __init__(self, kind: str, work: Path, **kw: Any) -> None:
        if kind in HKS_VARIANTS:
            kw["module_settings"] = {"replay_commit": HKS_VARIANTS[kind]}
        super().__init__(work, secret=SECRET, **kw)
        self.kind = kind

    def _write_raddb(self) -> None:
        super()._write_raddb()
        if self.kind in HKS_VARIANTS:
            return
        # One rlm_python3 instance per server: 3.2.1 aborts with two (drop_gil).
        # mods-enabled/hkp_hks also defines the `always` modules the site uses: keep them.
        modules_path = self.raddb_dir / "mods-enabled" / "hkp_hks"
        modules = modules_path.read_text()
        start = modules.index("python3 hkp_hks {")
        end = modules.index("\n}\n", start) + 3
        modules_path.write_text(modules[:start] + modules[end:])
        site_path = self.raddb_dir / "sites-enabled" / "hkp_hks"
        site = site_path.read_text()
        assert AUTH_BLOCK in site, "sites-available/hkp_hks changed: update hks_compare.py"
        if self.kind == "files":
            hk = "0x" + bytes(range(20)).hex()
            block = (
                f"\t\t\tupdate reply {{\n\t\t\t\t&HKP-Handover-Key := {hk}\n\t\t\t}}\n"
                "\t\t\thkp_hks_ok\n"
            )
        else:
            (self.lib_dir / "hkp_bench_echo.py").write_text(ECHO_MODULE)
            (self.raddb_dir / "mods-enabled" / "hkp_echo").write_text(
                "python3 hkp_echo {\n"
                f'\tpython_path = "{self.lib_dir}"\n'
                "\tmodule = hkp_bench_echo\n"
                "\tmod_authenticate = ${.module}\n"
                "\tfunc_authenticate = authenticate\n"
                "}\n"
            )
            block = "\t\t\thkp_echo\n"
        site_path.write_text(site.replace(AUTH_BLOCK, block))


def identity(i: int) -> tuple[str, bytes]:
    return f"bench{i}@example.net", hashlib.sha256(b"bench%d" % i).digest() * 2


def build_requests(instance: FreeRadiusInstance, count: int, users: int) -> list[bytes]:
    """`count` valid Access-Requests (P8) over `users` NAIs, timestamps increasing per
    NAI from now (within the HKS's window when sent right away)."""
    client = instance.client()
    now = ntp.to_ntp(time.time())
    wires = []
    for i in range(count):
        nai, hmk = identity(i % users)
        nonce = hashlib.sha256(b"%d" % i).digest()[:16]
        timestamp = now + i * 4096  # ~1 us apart: strictly increasing per NAI
        wire = bench_common.signed_hkreq(nai, hmk, (i // users) % 256, COA, nonce, timestamp)
        packet = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, id=i % 256)
        packet.add_message_authenticator()
        for name, value in ra.access_request_attributes(
            wire, nai.encode(), AR_ID, COA, nas_identifier="hkp-bench"
        ):
            packet.AddAttribute(name, value)
        wires.append(packet.RequestPacket())
    return wires


def same_id(request: bytes, answer: bytes) -> bool:
    return len(answer) >= 20 and answer[1] == request[1]


def round_of(
    instance: FreeRadiusInstance, count: int, users: int, concurrency: int
) -> dict[str, Any]:
    requests = build_requests(instance, count, users)
    assert instance.process is not None
    pid = instance.process.pid
    cpu0 = udpload.cpu_seconds(pid)
    result = udpload.run(
        requests, (instance.address, instance.port), concurrency, keep_answers=True,
        matches=same_id, lane=lambda i: i % users,  # one lane per NAI: timestamps in order
    )  # fmt: skip
    cpu = udpload.cpu_seconds(pid) - cpu0
    rss = udpload.rss_kib(pid)
    accepts = sum(1 for answer in result.answers if answer[0] == pyrad.packet.AccessAccept)
    return {
        "rate": result.rate,
        "cpu_us": cpu / max(1, result.answered) * 1e6,
        "p99_ms": result.percentile(99) * 1e3,
        "accepts": accepts,
        "answered": result.answered,
        "failed": result.failed,
        "retransmissions": result.retransmissions,
        "rss_kib": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="Access-Requests per round")
    parser.add_argument("-c", type=int, default=32, help="in flight")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--db", default="/var/tmp", help="parent of the work dirs (not tmpfs)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    users = dict(identity(i) for i in range(args.users))
    root = bench_common.work_root("hkp-compare-", args.db)
    servers = {kind: Variant(kind, root / kind, users=users, require_timestamp=True,
                             timestamp_window=3600) for kind in VARIANTS}  # fmt: skip
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in VARIANTS}
    try:
        for server in servers.values():
            server.start()
        for number in range(args.rounds):
            for kind in VARIANTS:
                figures = round_of(servers[kind], args.n, args.users, args.c)
                rounds[kind].append(figures)
                print(
                    f"round {number + 1} {kind:6}: {figures['rate']:9,.0f} Access-Requests/s, "
                    f"{figures['cpu_us']:6.1f} us server CPU per request, "
                    f"p99 {figures['p99_ms']:.2f} ms, accepts {figures['accepts']}/{args.n}, "
                    f"failed {figures['failed']}, retransmissions {figures['retransmissions']}, "
                    f"RSS {figures['rss_kib']:,} KiB",
                    flush=True,
                )
    finally:
        groups = {}
        for kind, server in servers.items():
            server.stop()
            if kind in HKS_VARIANTS and (found := GROUPS.findall(server.log_text())):
                groups[kind] = int(found[-1][0]) / max(1, int(found[-1][1]))
        shutil.rmtree(root, ignore_errors=True)
    median = {
        kind: {key: statistics.median(r[key] for r in rounds[kind]) for key in ("rate", "cpu_us")}
        for kind in VARIANTS
    }
    print("median over rounds:")
    for kind in VARIANTS:
        print(f"  {kind:6}: {median[kind]['rate']:9,.0f} Access-Requests/s, "
              f"{median[kind]['cpu_us']:6.1f} us server CPU per request")  # fmt: skip
    growth = {kind: rounds[kind][-1]["rss_kib"] - rounds[kind][0]["rss_kib"] for kind in VARIANTS}
    print("RSS growth after round 1: " + ", ".join(
        f"{kind} {growth[kind]:+,} KiB" for kind in VARIANTS))  # fmt: skip
    for kind, size in groups.items():
        print(f"  {kind:6}: {size:.1f} upserts per commit (fsync)")
    cpu_ratio = median["hks"]["cpu_us"] / median["echo"]["cpu_us"]
    rate_ratio = median["hks"]["rate"] / median["echo"]["rate"]
    print(f"ratio hks/echo server CPU per Access-Request: {cpu_ratio:.2f} (Goal: at most 3)")
    print(f"ratio hks/echo Access-Requests/s: {rate_ratio:.2f} (Goal: at least 0.3)")
    print(f"ratio echo/files server CPU per Access-Request: "
          f"{median['echo']['cpu_us'] / median['files']['cpu_us']:.2f}")  # fmt: skip
    gain = median["hks"]["rate"] / median["inline"]["rate"]
    print(f"ratio hks/inline Access-Requests/s: {gain:.2f} (what the group commit buys)")
    if args.json:
        print(json.dumps({"rounds": rounds, "median": median, "cpu_ratio": cpu_ratio,
                          "rate_ratio": rate_ratio, "upserts_per_commit": groups,
                          "rss_growth_kib": growth}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
