"""Memory and scale: RSS of hkp-ar and FreeRADIUS over a long run; start-up and
per-exchange cost with many stored keys and users.

    python3 benchmarks/memory.py [--exchanges 1000000] [--chunk 20000] [-c 50]
                                 [--scale 100000] [--minutes M] [--json]   (root)

Two set-ups, the same path as benchmarks/whole_path.py (real hkp-ar over UDP, real
FreeRADIUS with the HKS module, replay state and key store on disk):

- `small`: 1,000 users, an empty key store;
- `scaled`: `--scale` users in the users file and `--scale` keys already in the AR's key
  store (valid for an hour, other NAIs).

For each: start-up time of FreeRADIUS and of hkp-ar (until each answers / logs
"ready"), RSS after start-up, then `--exchanges` exchanges in chunks of `--chunk` at
`-c` in flight, printing per chunk keys/s, CPU per exchange and RSS of both servers.
The long run (RSS growth) is done on `small`; `scaled` runs one chunk, which is what
the per-exchange comparison needs, and runs first; `--minutes` ends the long run early
(no chunk starts after it), saying how far it got. Prints; never asserts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import udpload
import whole_path as wp

from ar_proxy import keystore
from hkp_radius.constants import PRF, SPI_MIN
from hkp_support.freeradius import FreeRadiusInstance


def prefill_keys(path: Path, count: int) -> None:
    """`count` keys of other NAIs, as the AR's own writer would have stored them."""
    db = sqlite3.connect(path)
    db.execute(keystore.SCHEMA)
    expires = time.time() + 3600
    ar_address = bytes.fromhex("20010db8000000000000000000000001")
    rows = (
        (SPI_MIN + i, b"stored%d@example.net" % i, hashlib.sha256(b"hk%d" % i).digest()[:20],
         None, expires, int(PRF.HMAC_SHA1), ar_address, None)
        for i in range(count)
    )  # fmt: skip
    with db:
        db.executemany(keystore.INSERT, rows)
    db.close()


Setup = tuple[FreeRadiusInstance, wp.Ar, dict[str, Any]]


def setup(root: Path, name: str, users: int, keys: int) -> Setup:
    work = root / name
    (work / "ar").mkdir(parents=True)
    if keys:
        prefill_keys(work / "ar" / "keys.sqlite", keys)
    table = dict(wp.identity(i) for i in range(users))
    hks = FreeRadiusInstance(work / "hks", secret=wp.SECRET, users=table,
                             require_timestamp=True, timestamp_window=3600)  # fmt: skip
    began = time.perf_counter()
    hks.start()
    hks_start = time.perf_counter() - began
    began = time.perf_counter()
    ar = wp.Ar(work / "ar", wp.ar_config(work / "ar", hks)).start()
    ar_start = time.perf_counter() - began
    assert ar.process is not None and hks.process is not None
    figures = {
        "setup": name,
        "users": users,
        "stored_keys": keys,
        "keys_loaded": ar.ready.get("keys"),
        "start_s": {"freeradius": hks_start, "hkp-ar": ar_start},
        "rss_kib_after_start": {
            "freeradius": udpload.rss_kib(hks.process.pid),
            "hkp-ar": udpload.rss_kib(ar.process.pid),
        },
        "chunks": [],
    }
    return hks, ar, figures


def run_chunks(hks: FreeRadiusInstance, ar: wp.Ar, figures: dict[str, Any], total: int,
               chunk: int, users: int, concurrency: int,
               deadline: float | None = None) -> None:  # fmt: skip
    """`total` exchanges in chunks; with a `deadline` (monotonic), no chunk starts after
    it (the run's figures say how many were done)."""
    assert ar.process is not None and hks.process is not None
    done = 0
    while done < total:
        if deadline is not None and time.monotonic() >= deadline:
            print(f"  {figures['setup']:6} stopped after {done:,} of {total:,} exchanges: "
                  "--minutes reached", flush=True)  # fmt: skip
            figures["stopped_early"] = True
            break
        count = min(chunk, total - done)
        f = wp.round_of(ar, hks, count, users, concurrency, done)
        done += count
        row = {
            "after": done,
            "keys_per_s": f["keys_per_s"],
            "failed": f["failed"],
            "cpu_us_per_exchange": f["cpu_us_per_exchange"],
            "rss_kib": {
                "freeradius": udpload.rss_kib(hks.process.pid),
                "hkp-ar": udpload.rss_kib(ar.process.pid),
            },
        }
        figures["chunks"].append(row)
        cpu, rss = row["cpu_us_per_exchange"], row["rss_kib"]
        print(
            f"  {figures['setup']:6} after {done:9,}: {row['keys_per_s']:6,.0f} keys/s, "
            f"failed {row['failed']}, CPU/exchange hkp-ar {cpu['hkp-ar']:.0f} us "
            f"FreeRADIUS {cpu['freeradius']:.0f} us; RSS hkp-ar {rss['hkp-ar']:,} KiB "
            f"FreeRADIUS {rss['freeradius']:,} KiB",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--exchanges", type=int, default=1_000_000, help="long run on small")
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("-c", type=int, default=50, help="in flight")
    parser.add_argument("--scale", type=int, default=100_000, help="users and stored keys")
    parser.add_argument("--small-users", type=int, default=1000)
    parser.add_argument("--dir", default="/var/tmp", help="parent of the work dirs (not tmpfs)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--minutes", type=float, default=None,
                        help="start no chunk of the long run after this many minutes")  # fmt: skip
    args = parser.parse_args(argv)
    deadline = None if args.minutes is None else time.monotonic() + args.minutes * 60
    root = Path(tempfile.mkdtemp(prefix="hkp-memory-", dir=args.dir))
    root.chmod(0o755)
    results = []
    try:
        # scaled first: a long run cut short (--minutes) still has the scale figures
        for name, users, keys, total in (
            ("scaled", args.scale, args.scale, min(args.chunk, args.exchanges)),
            ("small", args.small_users, 0, args.exchanges),
        ):
            hks, ar = None, None
            try:
                hks, ar, figures = setup(root, name, users, keys)
                start, rss = figures["start_s"], figures["rss_kib_after_start"]
                print(
                    f"{name}: {users:,} users, {keys:,} stored keys ({figures['keys_loaded']} "
                    f"loaded): start-up FreeRADIUS {start['freeradius']:.2f} s, hkp-ar "
                    f"{start['hkp-ar']:.2f} s; RSS after start hkp-ar {rss['hkp-ar']:,} KiB, "
                    f"FreeRADIUS {rss['freeradius']:,} KiB",
                    flush=True,
                )
                run_chunks(hks, ar, figures, total, args.chunk, users, args.c,
                           deadline if name == "small" else None)  # fmt: skip
                results.append(figures)
            finally:
                if ar is not None:
                    ar.stop()
                if hks is not None:
                    hks.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    by_name = {figures["setup"]: figures for figures in results}
    small = by_name["small"]["chunks"] if "small" in by_name else []
    if len(small) >= 2:
        first, last = small[0]["rss_kib"], small[-1]["rss_kib"]
        print(f"RSS growth over the long run (after the first chunk to the end): "
              f"hkp-ar {last['hkp-ar'] - first['hkp-ar']:+,} KiB, "
              f"FreeRADIUS {last['freeradius'] - first['freeradius']:+,} KiB")  # fmt: skip
    if small and "scaled" in by_name and by_name["scaled"]["chunks"]:
        a = small[0]["cpu_us_per_exchange"]
        b = by_name["scaled"]["chunks"][0]["cpu_us_per_exchange"]
        print(f"CPU per exchange scaled/small: hkp-ar {b['hkp-ar'] / max(a['hkp-ar'], 1):.2f}, "
              f"FreeRADIUS {b['freeradius'] / max(a['freeradius'], 1):.2f}")  # fmt: skip
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
