"""Profile the HKS module's `authenticate` as FreeRADIUS calls it (prints; never asserts).

    python3 benchmarks/hks_profile.py [-n 20000] [--db DIR] [--top 25]

Builds `-n` distinct, valid Access-Requests as rlm_python3 hands them to the module
(`pass_all_vps_dict`: lists of (name, '0x..' / text) pairs, the control list as the
shipped policies leave it), then calls `freeradius_module.rlm_hkp_hks.authenticate` on
each, with the replay state in SQLite on disk (`--db`, default /var/tmp), first plainly
(wall and CPU per call) and then under cProfile (the top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import ipaddress
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from freeradius_module import rlm_hkp_hks as module
from freeradius_module.replay_sqlite import SQLiteReplayStore
from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.hks.log_summary import DecisionLog
from hkp_radius.hks.role import HKSPolicy
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKReq
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp

AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
COA = ipaddress.IPv6Address("2001:db8:1::2").packed
USERS = 1000


def identity(i: int) -> tuple[bytes, bytes]:
    return f"mn{i % USERS}@bench.example.net".encode(), bytes((i % USERS) % 256 for _ in range(64))


def lists_for(i: int, now: float) -> dict[str, Any]:
    """The rlm_python3 argument for request `i` (a fresh timestamp per NAI)."""
    nai, hmk = identity(i)
    timestamp = ntp.to_ntp(now + (i // USERS) * 1e-3)
    message = HKReq(
        i % 256,
        False,
        PRF.HMAC_SHA1,
        COA,
        (
            MobileNodeIdentifier(nai),
            HandoverNonce(NonceSubtype.MN_NONCE, os.urandom(16)),
            Timestamp(timestamp),
            MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1),
        ),
    )
    hik = crypto.derive_hik(hmk, PRF.HMAC_SHA1, i % 256, MacAlgorithm.HMAC_SHA1)
    wire = crypto.sign_message(message, {MacSubtype.MN_HKS: hik})
    request = (
        (ra.MESSAGE_AUTHENTICATOR, ra.to_hex(os.urandom(16))),
        (ra.USER_NAME, nai.decode()),
        (ra.MOBILITY_HEADER, ra.to_hex(wire)),
        (ra.AR_ADDRESS, ra.ipv6_text(AR_ID)),
        (ra.CARE_OF_ADDRESS, ra.ipv6_text(COA)),
        (ra.NAS_IDENTIFIER, "hkp-ar"),
    )
    control = (
        (ra.HMK, ra.to_hex(hmk)),
        ("Auth-Type", "HKP"),
        (ra.USER_NAME_OCTETS, ra.to_hex(nai)),
        (ra.REQUEST_AUTHENTICATOR, ra.to_hex(os.urandom(16))),
        (ra.RADIUS_SECRET, ra.to_hex(b"s:hkp-bench-secret")),
    )
    return {"request": request, "reply": (), "config": control, "session-state": ()}


def run(batch: list[dict[str, Any]]) -> int:
    accepted = 0
    for lists in batch:
        rcode, _ = module.authenticate(lists)
        accepted += rcode == module.RLM_MODULE_OK
    return accepted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000, help="requests per pass")
    parser.add_argument("--db", default="/var/tmp", help="directory of the replay database")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    work = tempfile.mkdtemp(prefix="hkp-profile-", dir=args.db)
    try:
        module._state.update(
            policy=HKSPolicy(timestamp_window=3600),
            replay=SQLiteReplayStore(os.path.join(work, "replay.sqlite")),
            log=DecisionLog(),
        )
        now = time.time()
        plain = [lists_for(i, now) for i in range(args.n)]
        profiled = [lists_for(i, now + 60) for i in range(args.n)]
        wall, cpu = time.perf_counter(), time.process_time()
        accepted = run(plain)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert accepted == args.n, f"only {accepted} of {args.n} accepted"
        print(
            f"authenticate: {args.n / wall:,.0f} calls/s, "
            f"{wall / args.n * 1e6:.1f} us wall, {cpu / args.n * 1e6:.1f} us CPU per call "
            f"(replay state on disk in {args.db})"
        )
        profiler = cProfile.Profile()
        profiler.enable()
        run(profiled)
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(args.top)
        module.detach()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
