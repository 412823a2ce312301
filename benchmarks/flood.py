"""A legitimate MN's success rate and latency under floods of increasing rate (issue 15).

    sudo .venv/bin/python benchmarks/flood.py [--seconds 5] [--rates 0,1000,10000,max]

The rig of tests/integration/flood_rig.py: real FreeRADIUS (HKS) and hkp-ar with the
default [admission] and [udp] queues, in a network namespace of its own; hkp-flood
sends junk HKReqs (random NAIs, bad MACs) from 256 addresses of one /64 at each rate
("max": unthrottled, at nice 19) while an MN holding a key and a new MN (each on
another /64) run 8 exchanges a second each. Prints one line per rate; figures are the
MNs' own monotonic times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.integration.flood_rig import (
    FLOOD_SOURCES,
    KNOWN_HMK,
    KNOWN_IP,
    KNOWN_NAI,
    NEW_HMK,
    NEW_IP,
    NEW_NAI,
    make_rig,
)  # fmt: skip

INTERVAL = 0.125


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rates", default="0,1000,10000,max")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hkp-flood-bench-", dir="/dev/shm"))
    work.chmod(0o755)
    for rig in make_rig(work):
        ar = rig.start_ar()
        known = rig.mn(KNOWN_NAI, KNOWN_HMK, KNOWN_IP)
        assert known.request(), "no key before the flood"
        for rate in args.rates.split(","):
            new = rig.mn(NEW_NAI, NEW_HMK, NEW_IP)
            known.latencies.clear()
            known.failures = 0
            before = ar.status()["admission"]["dropped"].get("source rate", 0)
            flood = None
            if rate != "0":
                flood = rig.flood(args.seconds, rate, FLOOD_SOURCES)
                flood.wait_started()
            began = time.monotonic()
            rounds = 0
            while flood.running if flood else time.monotonic() < began + args.seconds:
                slot = began + rounds * INTERVAL
                if slot > time.monotonic():
                    time.sleep(slot - time.monotonic())  # the MNs' request schedule
                known.request()
                new.request()
                rounds += 1
            sent = flood.figures() if flood else {"sent": 0, "rate": 0.0}
            dropped = ar.status()["admission"]["dropped"].get("source rate", 0) - before
            parts = []
            for name, mn in (("known", known), ("new", new)):
                parts.append(
                    f"{name} {len(mn.latencies)}/{mn.total} ok p50 {mn.percentile(0.5) * 1e3:.1f}"
                    f" p99 {mn.percentile(0.99) * 1e3:.1f} ms"
                )
            print(f"flood {rate:>6}/s: sent {sent['sent']:>8} ({sent['rate']:>9.0f}/s), "
                  f"AR dropped {dropped:>7}; " + "; ".join(parts), flush=True)  # fmt: skip
            new.close()
        known.close()


if __name__ == "__main__":
    main()
