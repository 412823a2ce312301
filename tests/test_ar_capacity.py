"""Issue 14 (c): at the Goal's 5,000 keys/s the AR holds every answer for
RESPONSE_CACHE_TIME (P10 v1.1: 3 s), so 15,000 records at once. The old default of
4,096 (max_records) turned every HKReq beyond ~1,365 exchanges/s into a silent discard
("too many requests in progress") and an MN retransmission a second later."""

from __future__ import annotations

from hkp_radius.ar import MAX_RECORDS, RESPONSE_CACHE_TIME
from hkp_radius.ar.config import ARConfig
from hkp_radius.ar.events import Discarded, SendAccessRequest, ValidateCoA
from hkp_radius.ar.role import AccessRouter
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype
from hkp_radius.wire.messages import HKReq
from hkp_radius.wire.ntp import to_ntp
from hkp_radius.wire.options import HandoverNonce, MacOption, MobileNodeIdentifier, Timestamp

from .ar_helpers import AR_ID, mn_nonce
from .random_source import CountingRandom

GOAL_RATE = 5000  # keys/s, issue 14
T0 = 1_700_000_000.0


def hkreq(nai: bytes, coa: bytes, now: float) -> bytes:
    """A full HKReq; its MN-HKS MAC is left zero (the AR cannot check it: §6.3)."""
    return HKReq(
        7, False, PRF.HMAC_SHA1, coa,
        (MobileNodeIdentifier(nai), HandoverNonce(NonceSubtype.MN_NONCE, mn_nonce(7)),
         Timestamp(to_ntp(now)), MacOption(MacSubtype.MN_HKS, MacAlgorithm.HMAC_SHA1)),
    ).encode()  # fmt: skip


def test_the_default_capacity_holds_the_goal_rates_answers_for_the_whole_cache_time() -> None:
    held = int(GOAL_RATE * RESPONSE_CACHE_TIME)
    assert MAX_RECORDS >= 2 * held  # room for bursts and the pending ones besides
    ar = AccessRouter(ARConfig(), CountingRandom(b"capacity"))
    refused = asked = 0
    for i in range(held):  # distinct MNs within one cache time
        now = T0 + i / GOAL_RATE
        wire = hkreq(b"mn%d@example.net" % i, (1 << 125 | i).to_bytes(16, "big"), now)
        actions = ar.receive_hkreq(wire, ("mn", i), AR_ID, now, now)
        for action in actions:
            if isinstance(action, ValidateCoA):
                actions += ar.coa_validated(action.ref, True, now)
        refused += sum(isinstance(a, Discarded) for a in actions)
        asked += sum(isinstance(a, SendAccessRequest) for a in actions)
    assert (asked, refused) == (held, 0)
