"""Junk HKReqs for flood tests and benchmarks, built with the MN's codec (hkp_radius.wire):
well-formed, a random NAI of the target's realm, random nonces, a timestamp, and an
MN-HKS MAC made with a random key, so that the AR cannot tell them from an MN's (it
cannot check that MAC) and the HKS discards each one (unknown NAI or bad MAC)."""

from __future__ import annotations

import random

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.wire import HandoverNonce, HKReq, MacOption, MobileNodeIdentifier, Timestamp
from hkp_radius.wire.ntp import to_ntp

NONCE_LENGTH = 16
NAI_RANDOM_OCTETS = 6  # 12 hex digits: 2**48 names, no two datagrams share one in practice


def junk_hkreq(rng: random.Random, realm: str, wall: float, coa: bytes) -> bytes:
    nai = f"flood-{rng.randbytes(NAI_RANDOM_OCTETS).hex()}@{realm}".encode()
    request = HKReq(
        message_id=rng.randrange(256),
        verify=False,
        prf=PRF.HMAC_SHA1,
        care_of_address=coa,
        options=(
            MobileNodeIdentifier(nai),
            HandoverNonce(NonceSubtype.MN_NONCE, rng.randbytes(NONCE_LENGTH)),
            Timestamp(to_ntp(wall)),
            MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1),
        ),
    )
    return crypto.sign_message(request, {MacSubtype.MN_HKS: rng.randbytes(20)})


def junk_pool(count: int, seed: int, realm: str, wall: float, coa: bytes) -> list[bytes]:
    """`count` distinct junk HKReqs (sent in turn: building each costs more than sending)."""
    rng = random.Random(seed)
    return [junk_hkreq(rng, realm, wall, coa) for _ in range(count)]
