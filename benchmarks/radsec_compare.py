"""The whole path over RadSec against RADIUS/UDP, in one run: MN datagrams to a real
hkp-ar, Access-Requests to one real FreeRADIUS with the HKS module, which listens on
both (sites-available/hkp_hks and hkp_hks_tls).

    python3 benchmarks/radsec_compare.py [-n 3000] [-c 10,50] [--rounds 2] [--users 2000]
                                         [--json]          (root: FreeRADIUS runs as freerad)

Two hkp-ar processes in front of the same HKS: one with `proto = udp`, one with
`proto = tls` (a lab CA from hkp_support.certs; one TLS connection, up to 256 requests in
flight on it). The MN side and the figures are benchmarks/whole_path.py's (round_of):
pre-built signed HKReqs, `-c` sockets with one exchange in flight each. Per concurrency
the two transports alternate for `--rounds` rounds, so that both see the same machine;
then the ratios RadSec/UDP of keys/s, p99 and hkp-ar CPU per exchange. Prints; never
asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_common
import whole_path

from hkp_support.certs import RadSecCerts, make_radsec_certs
from hkp_support.freeradius import FreeRadiusInstance


def ar_config(work: Path, hks: FreeRadiusInstance, certs: RadSecCerts | None) -> str:
    """whole_path's AR, its home server over UDP (certs None) or RadSec."""
    if certs is None:
        server = [f"port = {hks.port}", f"secret = {whole_path.SECRET.decode()}"]
        tls: list[str] = []
    else:
        server = ["proto = tls", f"port = {hks.radsec_port}"]
        tls = [
            "[tls]",
            f"ca_file = {certs.client.ca}",
            f"certificate_file = {certs.client.certificate}",
            f"private_key_file = {certs.client.key}",
            f"server_name = {certs.server_name}",
        ]
    return "\n".join([
        "[ar]", "address = 2001:db8::1", f"key_store = {work / 'keys.sqlite'}",
        "nas_identifier = hkp-bench",
        "[udp]", "enabled = yes", "listen = ::1", "port = 0",
        "[coa_validation]", "mode = permissive",
        "[log]", "level = info",
        "[home_server hks]", f"ipaddr = {hks.address}", *server,
        "response_window = 2", "retries = 1",
        *tls,
        "[realm example.net]", "home_servers = hks", "",
    ])  # fmt: skip


def line(name: str, f: dict[str, Any]) -> str:
    cpu = f["cpu_us_per_exchange"]
    return (
        f"  {name:6} {f['concurrency']:4} in flight: {f['keys_per_s']:7,.0f} keys/s, "
        f"p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms, failed {f['failed']}, "
        f"retransmissions {f['retransmissions']}; CPU per exchange: hkp-ar "
        f"{cpu['hkp-ar']:.0f} us, FreeRADIUS {cpu['freeradius']:.0f} us"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3000, help="exchanges per round")
    parser.add_argument("-c", default="10,50", help="concurrencies, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per transport")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--dir", default="/var/tmp", help="parent of the work dirs (not tmpfs)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    root = bench_common.work_root("hkp-radsec-", args.dir)
    certs = make_radsec_certs(root / "pki")
    users = dict(whole_path.identity(i) for i in range(args.users))
    hks = FreeRadiusInstance(
        root / "hks", secret=whole_path.SECRET, users=users, require_timestamp=True,
        timestamp_window=3600, radsec=certs.server,
    )  # fmt: skip
    ars: dict[str, whole_path.Ar] = {}
    figures: list[dict[str, Any]] = []
    try:
        hks.start()
        for name, chosen in (("udp", None), ("radsec", certs)):
            work = root / f"ar-{name}"
            work.mkdir()
            ars[name] = whole_path.Ar(work, ar_config(work, hks, chosen)).start()
        offset = 0
        for concurrency in (int(c) for c in args.c.split(",")):
            print(f"{concurrency} in flight, {args.n} exchanges per round:", flush=True)
            rows: dict[str, list[dict[str, Any]]] = {"udp": [], "radsec": []}
            for _ in range(args.rounds):
                for name, ar in ars.items():
                    f = whole_path.round_of(ar, hks, args.n, args.users, concurrency, offset)
                    offset += args.n  # fresh Message IDs and timestamps for each round
                    f["transport"] = name
                    rows[name].append(f)
                    figures.append(f)
                    print(line(name, f), flush=True)
            udp, tls = rows["udp"], rows["radsec"]

            def median(rows: list[dict[str, Any]], key: str) -> float:
                return statistics.median(r[key] for r in rows)

            def cpu(rows: list[dict[str, Any]]) -> float:
                return statistics.median(r["cpu_us_per_exchange"]["hkp-ar"] for r in rows)

            print(
                f"  ratio radsec/udp (medians of {args.rounds} rounds): keys/s "
                f"{median(tls, 'keys_per_s') / median(udp, 'keys_per_s'):.2f}, p99 "
                f"{median(tls, 'p99_ms') / median(udp, 'p99_ms'):.2f}, hkp-ar CPU per "
                f"exchange {cpu(tls) / cpu(udp):.2f}",
                flush=True,
            )
    finally:
        for ar in ars.values():
            ar.stop()
        hks.stop()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    raise SystemExit(main())
