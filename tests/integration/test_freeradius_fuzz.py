"""Issue 3, point 7: garbage in every HKP attribute neither crashes FreeRADIUS nor
yields an Access-Accept; a valid request afterwards still succeeds.

Packets are built by hand (pyrad refuses to encode wrong lengths), each with a valid
Message-Authenticator so that it reaches the module, and sent with bounded
concurrency over one socket.
"""

from __future__ import annotations

import os
import random
import shutil
import struct

import pyrad.packet

from hkp_radius.wire import radius_attrs as ra
from hkp_support.freeradius import FreeRadiusInstance

from .conftest import requires_freeradius, work_dir
from .hks_client import AR_ADDRESS, VENDOR, build_hkreq, fire, now_ntp, send, vsa

pytestmark = requires_freeradius

TYPE = {
    "mh": 1,
    "ar": 2,
    "coa": 3,
    "hk": 4,
    "nonce": 5,
    "lifetime": 6,
    "prf": 7,
    "ts": 8,
    "status": 9,
    "resp": 10,
}
USER_NAME, NAS_IDENTIFIER = 1, 32
MUTATIONS = 4000
NAI = b"fuzz@example.net"
HMK = bytes(range(7, 71))


def mutate(rng: random.Random, mh: bytes) -> list[tuple[int, bytes]]:
    def flip(data: bytes) -> bytes:
        if not data:
            return bytes((rng.randrange(256),))
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf)

    def garbage(limit: int = 247) -> bytes:
        return os.urandom(rng.randint(0, limit))

    mh_value = rng.choice(
        [
            lambda: mh,
            lambda: flip(mh),
            lambda: mh[: rng.randrange(len(mh))],
            lambda: garbage(),
            lambda: mh + garbage(16),
            lambda: mh[:2] + bytes((rng.randrange(256),)) + mh[3:],
            lambda: bytes((59, rng.randrange(256), 250, 0, 0, 0)) + garbage(120),
        ]
    )()
    chunks = [mh_value]
    if mh_value and rng.random() < 0.3:  # split at random points
        cut = rng.randrange(len(mh_value) + 1)
        chunks = [mh_value[:cut], mh_value[cut:]]
    attrs: list[tuple[int, bytes]] = []
    if rng.random() < 0.9:
        attrs.append(
            (USER_NAME, rng.choice([NAI, NAI.upper(), garbage(40) or b"x", b"\xff\xfe@x"]))
        )
    if rng.random() < 0.9:
        attrs += [vsa(TYPE["mh"], c) for c in chunks if c or rng.random() < 0.5]
    if rng.random() < 0.2:
        attrs += [vsa(TYPE["mh"], garbage())]  # a stray extra chunk
    ar = rng.choice([AR_ADDRESS, flip(AR_ADDRESS), garbage(20), b"", AR_ADDRESS[:4]])
    if rng.random() < 0.9:
        attrs.append(vsa(TYPE["ar"], ar))
    if rng.random() < 0.2:
        attrs.append(vsa(TYPE["ar"], AR_ADDRESS))  # duplicated
    if rng.random() < 0.5:
        attrs.append(vsa(TYPE["coa"], garbage(20)))
    for name in ("hk", "nonce", "lifetime", "prf", "ts", "status", "resp"):
        if rng.random() < 0.1:  # reply attributes a request should not carry
            attrs.append(vsa(TYPE[name], garbage(40)))
    if rng.random() < 0.05:  # a broken vendor header
        attrs.append((26, struct.pack("!IBB", VENDOR, 1, 200) + garbage(10)))
    if rng.random() < 0.2:
        attrs.append((NAS_IDENTIFIER, garbage(30) or b"n"))
    rng.shuffle(attrs) if rng.random() < 0.1 else None
    return attrs


def test_mutated_requests_neither_crash_nor_accept():
    path = work_dir("fuzz")
    instance = FreeRadiusInstance(
        path,
        users={NAI.decode(): HMK},
        require_timestamp=True,
        module_settings={"log_summary_interval": "0"},  # every reason in the log
    )
    rng = random.Random(20240607)
    try:
        with instance:
            base = build_hkreq(NAI, HMK, timestamp=now_ntp())
            # the template itself, once: afterwards every mutation is at best a replay
            assert send(instance.client(), base).code == pyrad.packet.AccessAccept
            codes = fire(instance, [mutate(rng, base.wire) for _ in range(MUTATIONS)])
            assert pyrad.packet.AccessAccept not in codes, "garbage yielded an Access-Accept"
            assert codes.get(pyrad.packet.AccessReject, 0) > MUTATIONS // 2
            assert instance.running, instance.log_tail()
            log = instance.log_text()
            for reason in (
                "is malformed",
                "does not verify",
                "INVALID_TIMESTAMP",
                "User-Name differs",
            ):
                assert reason in log, f"no mutation reached the check: {reason}"
            assert "internal error" not in log
            valid = build_hkreq(NAI, HMK, timestamp=now_ntp(), message_id=99)
            reply = send(instance.client(), valid)
            assert reply.code == pyrad.packet.AccessAccept
            assert ra.HANDOVER_KEY in reply.keys()
    finally:
        instance.stop()
        shutil.rmtree(path, ignore_errors=True)
