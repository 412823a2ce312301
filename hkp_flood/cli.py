"""`hkp-flood`: junk HKReqs at an AR over UDP (P9), for tests and benchmarks (docs/flood.md).

    hkp-flood [::1]:54135 --duration 20 --rate max --realm example.net
    hkp-flood [2001:db8:15::1]:54135 --netns NS --source-prefix 2001:db8:15:1::/64 \\
        --sources 256 --duration 20 --rate 3000

Refuses targets that are not loopback unless it runs inside a network namespace
(--netns NAME, or started inside one). Prints one JSON line of figures at the end.
Exit status: 0 sent, 2 refused (usage, target, bounds).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time

from mn_client import parse_endpoint

from .flood import FloodRefused, check_bounds, check_target, open_sockets, send_flood
from .junk import junk_pool
from .namespace import NamespaceError, in_own_namespace, inside

EXIT_REFUSED = 2
DEFAULT_POOL = 4096
MAX_SOURCES = 65536


def sources_of(args: argparse.Namespace) -> list[str]:
    sources = list(args.source or [])
    if args.source_prefix:
        network = ipaddress.ip_network(args.source_prefix, strict=False)
        count = min(args.sources, MAX_SOURCES, network.num_addresses - 1)
        sources += [str(network.network_address + 1 + i) for i in range(count)]
    return sources


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hkp-flood", description=__doc__.split("\n")[0])
    p.add_argument("target", metavar="HOST:PORT", help="the AR's UDP endpoint")
    p.add_argument("--duration", type=float, required=True, help="seconds (at most 600)")
    p.add_argument("--rate", default="1000", help="datagrams/s, or max (as fast as it can)")
    p.add_argument("--realm", default="example.net", help="realm of the random NAIs")
    p.add_argument("--source", action="append", help="a source address (repeatable)")
    p.add_argument("--source-prefix", help="send from addresses of this prefix (::1, ::2...)")
    p.add_argument("--sources", type=int, default=1, help="how many of --source-prefix")
    p.add_argument("--netns", help="run inside this network namespace (ip netns)")
    p.add_argument("--pool", type=int, default=DEFAULT_POOL, help="distinct datagrams")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--coa", default="2001:db8:dead::1", help="the junk's Key CoA")
    p.add_argument(
        "--nice", type=int, default=0,
        help="lower this process's CPU priority by N (0-19): on loopback the flood's own "
        "sending would otherwise take the CPU a remote attacker's never takes",
    )  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        host, port = parse_endpoint(args.target)
        rate = None if args.rate == "max" else float(args.rate)
        check_bounds(rate, args.duration)
        sources = sources_of(args)
        pool = junk_pool(
            max(1, args.pool), args.seed, args.realm, time.time(),
            ipaddress.IPv6Address(args.coa).packed,
        )  # fmt: skip
        if args.netns:
            with inside(args.netns):
                check_target(host, namespaced=True)
                sockets = open_sockets(sources, (host, port))
        else:
            check_target(host, in_own_namespace())
            sockets = open_sockets(sources, (host, port))
    except (FloodRefused, NamespaceError, ValueError) as exc:
        print(f"hkp-flood: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    if args.nice:
        os.nice(max(0, min(19, args.nice)))
    print(json.dumps({"event": "started", "sources": max(1, len(sources))}), flush=True)
    try:
        figures = send_flood(sockets, pool, rate, args.duration)
    finally:
        for sock in sockets:
            sock.close()
    print(json.dumps({**figures.as_dict(), "sources": max(1, len(sources))}))
    return 0
