"""Handover keys held by an MN (draft §6.2.2, §6.2.1): one key per (NAI, AR-ID).

Draft §6.2.1: "Once a MN obtains a new key, it MUST discard the old key"; §5.1.2: the SPI
with the AR's address identifies the key at the MN. The store is plain data: the MN role
fills it, an adapter may persist it (mn_client/keyfile.py). No repr shows a key.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from hkp_radius.constants import IPV6_ADDRESS_LENGTH, NULL_COA
from hkp_radius.errors import LocalProtocolError


def format_address(address: bytes) -> str:
    """An AR-ID or CoA for people: an IPv6 address, or "NULL" for the all-zero CoA."""
    if address == NULL_COA:
        return "NULL"
    return str(ipaddress.IPv6Address(address))


@dataclass(frozen=True)
class HeldKey:
    """A handover key shared with one AR (draft §6.2.2: SPI and lifetime stored with it)."""

    nai: bytes
    ar_id: bytes
    spi: int
    lifetime: int
    established_at: float
    expires_at: float
    prf: int
    mac_algorithm: int
    care_of_address: bytes = NULL_COA
    hk: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if len(self.ar_id) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("AR-ID must be a 16-octet IPv6 address (P4)")
        if len(self.care_of_address) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("Key Care-of Address must be 16 octets")

    def remaining(self, now: float) -> float:
        return max(0.0, self.expires_at - now)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    def describe(self, now: float) -> str:
        """One line for people, without the key."""
        return (
            f"{self.nai.decode('utf-8', 'replace')} @ AR {format_address(self.ar_id)}: "
            f"SPI {self.spi}, lifetime {self.lifetime} s, "
            f"{self.remaining(now):.0f} s left, CoA {format_address(self.care_of_address)}"
        )

    def renewed(self, spi: int, lifetime: int, now: float, care_of_address: bytes) -> HeldKey:
        """The same HK after a successful verify (draft §6.2.3: CoA bound, lifetime from AR)."""
        return replace(
            self,
            spi=spi or self.spi,
            lifetime=lifetime,
            expires_at=now + lifetime,
            care_of_address=care_of_address,
        )


class KeyStore:
    """Keys by (NAI, AR-ID); putting a key replaces the one held for that pair."""

    def __init__(self, keys: tuple[HeldKey, ...] | list[HeldKey] = ()) -> None:
        self._keys: dict[tuple[bytes, bytes], HeldKey] = {}
        for key in keys:
            self.put(key)

    def put(self, key: HeldKey) -> HeldKey | None:
        """Store `key`; return the key it replaced (draft §6.2.1: the old one is discarded)."""
        slot = (key.nai, key.ar_id)
        old = self._keys.get(slot)
        self._keys[slot] = key
        return old

    def get(self, nai: bytes, ar_id: bytes, now: float | None = None) -> HeldKey | None:
        """The key held for (NAI, AR-ID); None when absent or, given `now`, expired."""
        key = self._keys.get((nai, ar_id))
        if key is None or (now is not None and key.expired(now)):
            return None
        return key

    def remove(self, nai: bytes, ar_id: bytes) -> HeldKey | None:
        return self._keys.pop((nai, ar_id), None)

    def expire(self, now: float) -> list[HeldKey]:
        """Drop and return every expired key."""
        gone = [key for key in self._keys.values() if key.expired(now)]
        for key in gone:
            del self._keys[(key.nai, key.ar_id)]
        return gone

    def all(self) -> list[HeldKey]:
        return sorted(self._keys.values(), key=lambda k: (k.nai, k.ar_id))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyStore({len(self._keys)} keys)"
