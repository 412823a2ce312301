"""Protocol core figures (prints them; never asserts timings).

    python3 benchmarks/core.py [-n 20000]

Per-operation cost of the sans-I/O core on this machine: codec, key derivation, MACs and
one whole HKS decision (hkp_radius.hks.handle_request), each timed over `-n` runs.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.hks.role import HKSPolicy, HKSRequest, MemoryReplayStore, handle_request
from hkp_radius.wire import ntp
from hkp_radius.wire.messages import HKReq, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp

HMK = bytes(range(64))
NAI = b"alice@example.net"
AR_ID = ipaddress.IPv6Address("2001:db8::1").packed
NOW = 1_800_000_000.0


def request(message_id: int = 7, timestamp: int | None = None) -> HKReq:
    options = [
        MobileNodeIdentifier(NAI),
        HandoverNonce(NonceSubtype.MN_NONCE, bytes(range(16))),
    ]
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    options.append(MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1))
    return HKReq(message_id, False, PRF.HMAC_SHA1, bytes(16), tuple(options))


def measure(name: str, runs: int, operation: Callable[[int], object]) -> None:
    started = time.perf_counter()
    for i in range(runs):
        operation(i)
    elapsed = time.perf_counter() - started
    print(f"  {name:<38} {runs / elapsed:>10.0f} /s  {elapsed / runs * 1e6:>8.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20000)
    runs = parser.parse_args().n
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, 7, MacAlgorithm.HMAC_SHA1)
    message = request()
    wire = crypto.sign_message(message, {MacSubtype.MN_HKS: hik})
    decoded = decode_message(wire)
    policy = HKSPolicy(require_timestamp=True)
    print(f"hkp_radius core, Python {sys.version.split()[0]}, {runs} runs each")
    measure("HKReq encode", runs, lambda i: message.encode())
    measure("HKReq decode", runs, lambda i: decode_message(wire))
    measure("derive HIK (HMAC-SHA1)", runs, lambda i: crypto.derive_hik(HMK, 1, i & 255, 1))
    measure(
        "derive HK (HMAC-SHA1, 20 octets)",
        runs,
        lambda i: crypto.derive_hk(HMK, 1, bytes(16), bytes(16), NAI, AR_ID),
    )
    measure("sign HKReq (encode + MN-HKS MAC)", runs, lambda i: crypto.sign_message(
        message, {MacSubtype.MN_HKS: hik}
    ))  # fmt: skip
    measure("verify MN-HKS MAC", runs, lambda i: crypto.verify_mac(
        wire, decoded, MacSubtype.MN_HKS, hik
    ))  # fmt: skip
    replay = MemoryReplayStore()
    signed = [
        crypto.sign_message(
            request(i & 255, ntp.to_ntp(NOW + i * 1e-4)),
            {MacSubtype.MN_HKS: crypto.derive_hik(HMK, 1, i & 255, 1)},
        )
        for i in range(runs)
    ]
    measure("HKS decision (accept, with timestamp)", runs, lambda i: handle_request(
        HKSRequest(NAI, signed[i], AR_ID, HMK), policy, replay, NOW + i * 1e-4, bytes,
    ))  # fmt: skip


if __name__ == "__main__":
    main()
