"""MN load figures (prints them; never asserts timings).

    python3 benchmarks/mn_load.py                  # roles in memory: MN <-> AR <-> HKS
    python3 benchmarks/mn_load.py --lab -n 2000 -c 50   # real lab (root, FreeRADIUS)

In memory it measures the protocol cost of a full exchange (HIK and HK derivation,
three MACs, the codec) through hkp_radius.mn, .ar and .hks. With --lab it starts a
private FreeRADIUS and hkp-ar (hkp_lab.lab), drives `-n` requests with `-c` in flight
over UDP, prints throughput and latency, and stops everything.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hkp_radius.ar.config import ARConfig
from hkp_radius.ar.events import HKSAccept, SendAccessRequest, SendHKResp, ValidateCoA
from hkp_radius.ar.role import AccessRouter
from hkp_radius.hks.role import Accept, HKSPolicy, HKSRequest, MemoryReplayStore, handle_request
from hkp_radius.mn import Datagram, KeyEstablished, MNConfig, MobileNode

AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
COA_BASE = ipaddress.IPv6Address("2001:db8:10ad::")  # each MN its own Key CoA (§7.4)


def in_memory(count: int) -> None:
    hmk = secrets.token_bytes(64)
    ar = AccessRouter(ARConfig(), secrets.token_bytes)
    policy, replay = HKSPolicy(), MemoryReplayStore()
    nodes = [
        MobileNode(MNConfig(nai=f"mn{i}@bench".encode(), hmk=hmk), secrets.token_bytes)
        for i in range(64)
    ]
    latencies = []
    begin = time.perf_counter()
    for i in range(count):
        node = nodes[i % len(nodes)]
        now = time.time()
        started = time.perf_counter()
        coa = (COA_BASE + 1 + i % len(nodes)).packed
        outputs = node.request_key(AR_ID, coa, now, now)
        for datagram in [o for o in outputs if isinstance(o, Datagram)]:
            queue = list(ar.receive_hkreq(datagram.data, "mn", AR_ID, now, now))
            while queue:
                action = queue.pop(0)
                if isinstance(action, ValidateCoA):
                    queue += ar.coa_validated(action.ref, True, now)
                elif isinstance(action, SendAccessRequest):
                    decision = handle_request(
                        HKSRequest(action.nai, action.mobility_header, action.ar_address, hmk),
                        policy, replay, now, secrets.token_bytes,
                    )  # fmt: skip
                    assert isinstance(decision, Accept)
                    answer = HKSAccept(
                        decision.handover_key,
                        decision.hks_nonce,
                        decision.lifetime,
                        decision.prf,
                        decision.timestamp,
                    )
                    queue += ar.receive_radius_answer(action.ref, answer, now, now)
                elif isinstance(action, SendHKResp):
                    outputs += node.receive_datagram(action.wire, AR_ID, now, now)
        assert any(isinstance(e, KeyEstablished) for e in outputs)
        latencies.append(time.perf_counter() - started)
        ar.on_timer(now + 2.0)  # let cached answers go
    wall = time.perf_counter() - begin
    print(f"in memory (MN, AR and HKS roles, one thread): {count} exchanges in {wall:.3f} s")
    print(f"  {count / wall:.0f} exchanges/s, mean {statistics.fmean(latencies) * 1e6:.0f} us, "
          f"p99 {sorted(latencies)[int(0.99 * len(latencies))] * 1e6:.0f} us")  # fmt: skip


def with_lab(count: int, concurrency: int) -> None:
    from hkp_lab.lab import Lab
    from mn_client import UdpTransport, run_load

    directory = Path(tempfile.mkdtemp(prefix="hkp-bench-", dir="/tmp"))
    lab = Lab(directory)
    try:
        lab.start()
        ar_id = ipaddress.IPv6Address(lab.ar_id).packed
        configs = [MNConfig(nai=i.nai.encode(), hmk=i.hmk) for i in lab.load_identities]
        figures = run_load(
            configs,
            lambda: UdpTransport({ar_id: (lab.ar_host, lab.ar_port)}),
            ar_id,
            count,
            concurrency,
            [(COA_BASE + 1 + i).packed for i in range(len(configs))],
        )
        print(f"lab over UDP (hkp-ar, FreeRADIUS + rlm_python3): {count} requests, "
              f"{concurrency} in flight, {len(configs)} identities")  # fmt: skip
        for line in figures.lines():
            print("  " + line)
    finally:
        lab.stop()
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("-c", type=int, default=50)
    parser.add_argument("--lab", action="store_true", help="against a real lab (root)")
    args = parser.parse_args()
    in_memory(args.n)
    if args.lab:
        with_lab(args.n, args.c)


if __name__ == "__main__":
    main()
