"""§7.4: "The AR must ensure that the CoA claimed by the MN does not belong to any other
node": the CoAs that requests still in progress claim, indexed by CoA (O(1) per check)."""

from __future__ import annotations

from hkp_radius.ar.records import Record
from hkp_radius.ar.state import State


class Claims:
    def __init__(self) -> None:
        self._by_coa: dict[bytes, dict[int, bytes]] = {}

    def by_coa(self) -> dict[bytes, dict[int, bytes]]:
        """CoA -> {request ref: NAI} of the requests in progress (a copy, for checks)."""
        return {coa: dict(claims) for coa, claims in self._by_coa.items()}

    def claimed_by_another(self, record: Record) -> bool:
        """Another MN's request for the same CoA is still in progress."""
        claims = self._by_coa.get(record.request.care_of_address, {})
        return any(nai != record.nai for nai in claims.values())

    def track(self, record: Record) -> None:
        """Keep the index in step with the record's state (called on every transition)."""
        coa = record.request.care_of_address
        if record.state is State.ANSWERED or record.state is State.CLOSED:
            claims = self._by_coa.get(coa)
            if claims is not None and claims.pop(record.ref, None) is not None and not claims:
                del self._by_coa[coa]
        else:
            self._by_coa.setdefault(coa, {})[record.ref] = record.nai
