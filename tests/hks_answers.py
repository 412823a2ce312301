"""The HKS role's decision as the AR role receives it over RADIUS (an Access-Accept's
attributes or an Access-Reject with its HKP-Response-Header), for the in-memory tests
that wire the roles together (tests/mn_peers.py, test_mn_load, test_ar_role)."""

from __future__ import annotations

from hkp_radius.ar.events import HKSAccept, HKSAnswer, HKSReject
from hkp_radius.hks.role import Accept, Decision, Reject


def ar_answer(decision: Decision) -> HKSAnswer:
    """Accept -> HKSAccept; Reject -> HKSReject with its HKResp (P7); a Discard ->
    HKSReject without one (the AR's answer to a silent HKS is its own timeout; these
    tests stand in for it with a bare reject)."""
    if isinstance(decision, Accept):
        return HKSAccept(
            decision.handover_key,
            decision.hks_nonce,
            decision.lifetime,
            decision.prf,
            decision.timestamp,
        )
    if isinstance(decision, Reject):
        return HKSReject(decision.response_header, decision.status)
    return HKSReject()
