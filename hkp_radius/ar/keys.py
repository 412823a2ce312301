"""The AR's handover keys in memory: by SPI, by NAI (P6) and by bound CoA (§6.3, §7.4).

Pure bookkeeping, no I/O: the AR role changes it and emits StoreKey / DeleteKey
outputs so that an adapter can persist each change.

Two clocks (the role API convention): a StoredKey carries its expiry as wall-clock
Unix seconds (`expires_at`) because that is what a key store persists across a
restart; the table keeps each key's in-memory deadline on the monotonic clock, which
is what `next_expiry()` / `pop_expired(now)` compare with.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace

from hkp_radius.constants import SPI_MAX, SPI_MIN
from hkp_radius.errors import LocalProtocolError

# An SPI draw that keeps colliding means the table is (nearly) full; give up rather
# than loop forever. 64 draws from 2**32 - 256 values fail only when the table holds
# billions of keys.
SPI_DRAW_ATTEMPTS = 64


@dataclass(frozen=True)
class StoredKey:
    """One HK at the AR (§6.3: "store the handover key ... along with the CoA and MN ID
    and index it additionally with an SPI"). `expires_at` is wall-clock (Unix) seconds
    so that a key store survives a restart (until the lifetime ends). `last_timestamp`
    is P6's freshness mark: the NTP timestamp of the HKReq that created the key, then
    of each accepted V request (None while no timestamped request was seen)."""

    spi: int
    nai: bytes
    hk: bytes = field(repr=False)  # never in a repr, hence never in a log line
    care_of_address: bytes | None
    expires_at: float
    prf: int
    ar_address: bytes
    last_timestamp: int | None = None


class KeyTable:
    def __init__(self, max_per_nai: int | None = None) -> None:
        # Issue 15: at most this many keys per NAI (None: no bound); `surplus` retires
        # the oldest (§6.2.1: the MN discards its old key when it gets a new one).
        self.max_per_nai = max_per_nai
        self._by_spi: dict[int, StoredKey] = {}
        self._deadline: dict[int, float] = {}  # monotonic end of each key's lifetime
        self._by_nai: dict[bytes, dict[int, None]] = {}  # SPIs in the order added
        self._by_coa: dict[bytes, int] = {}
        self._expiries: list[tuple[float, int]] = []  # lazy heap: entries may be stale

    def __len__(self) -> int:
        return len(self._by_spi)

    def __iter__(self) -> Iterator[StoredKey]:
        return iter(list(self._by_spi.values()))

    def get(self, spi: int) -> StoredKey | None:
        return self._by_spi.get(spi)

    def deadline(self, spi: int) -> float | None:
        """The monotonic time key `spi` expires at."""
        return self._deadline.get(spi)

    def alive(self, spi: int, now: float) -> bool:
        deadline = self._deadline.get(spi)
        return deadline is not None and deadline > now

    def for_nai(self, nai: bytes, now: float) -> list[StoredKey]:
        """P6: the unexpired keys of `nai`, newest first."""
        spis = [spi for spi in self._by_nai.get(nai, ()) if self._deadline[spi] > now]
        spis.sort(key=lambda spi: self._deadline[spi], reverse=True)
        return [self._by_spi[spi] for spi in spis]

    def holder_of(self, coa: bytes) -> StoredKey | None:
        """The key the CoA is bound to, if any."""
        spi = self._by_coa.get(coa)
        return None if spi is None else self._by_spi.get(spi)

    def allocate_spi(self, random_bytes: Callable[[int], bytes]) -> int:
        """P6: an SPI of 256 or more, unique among the AR's unexpired keys."""
        for _ in range(SPI_DRAW_ATTEMPTS):
            spi = SPI_MIN + int.from_bytes(random_bytes(4), "big") % (SPI_MAX - SPI_MIN + 1)
            if spi not in self._by_spi:
                return spi
        raise LocalProtocolError("no free SPI after repeated draws: the key table is full")

    def add(self, key: StoredKey, deadline: float) -> list[StoredKey]:
        """Insert `key`, alive until monotonic `deadline`; returns other keys changed by
        it (a CoA moves to the new key)."""
        if key.spi in self._by_spi:
            raise LocalProtocolError(f"SPI {key.spi} is already in use")
        changed = self._release_coa(key.care_of_address, key.spi)
        self._by_spi[key.spi] = key
        self._deadline[key.spi] = deadline
        self._by_nai.setdefault(key.nai, {})[key.spi] = None
        if key.care_of_address is not None:
            self._by_coa[key.care_of_address] = key.spi
        heapq.heappush(self._expiries, (deadline, key.spi))
        return changed

    def bind(self, spi: int, coa: bytes | None, timestamp: int | None) -> list[StoredKey]:
        """§6.3.1: record `coa` as the address of key `spi` (None: keep the binding) and
        P6: `timestamp` as its last accepted timestamp; returns every changed key."""
        key = self._by_spi[spi]
        changed: list[StoredKey] = []
        if coa is not None:
            changed = self._release_coa(coa, spi)
            if key.care_of_address is not None and key.care_of_address != coa:
                self._by_coa.pop(key.care_of_address, None)
            self._by_coa[coa] = spi
            key = replace(key, care_of_address=coa)
        if timestamp is not None:
            key = replace(key, last_timestamp=timestamp)
        self._by_spi[spi] = key
        return [*changed, key]

    def unbind_coa(self, coa: bytes) -> list[StoredKey]:
        """§6.3: "disassociate the key and the corresponding CoA"."""
        return self._release_coa(coa, None)

    def remove(self, spi: int) -> StoredKey | None:
        key = self._by_spi.pop(spi, None)
        if key is None:
            return None
        del self._deadline[spi]
        spis = self._by_nai.get(key.nai)
        if spis is not None:
            spis.pop(spi, None)
            if not spis:
                del self._by_nai[key.nai]
        if key.care_of_address is not None and self._by_coa.get(key.care_of_address) == spi:
            del self._by_coa[key.care_of_address]
        return key

    def surplus(self, nai: bytes) -> list[StoredKey]:
        """Remove and return `nai`'s oldest keys beyond `max_per_nai` (issue 15)."""
        spis = self._by_nai.get(nai)
        if self.max_per_nai is None or spis is None or len(spis) <= self.max_per_nai:
            return []
        oldest = list(spis)[: len(spis) - self.max_per_nai]
        return [key for spi in oldest if (key := self.remove(spi)) is not None]

    def next_expiry(self) -> float | None:
        while self._expiries:
            when, spi = self._expiries[0]
            if self._deadline.get(spi) == when:
                return when
            heapq.heappop(self._expiries)  # stale entry
        return None

    def pop_expired(self, now: float) -> list[StoredKey]:
        """Remove and return the keys whose lifetime has ended (§6.3)."""
        expired: list[StoredKey] = []
        while (when := self.next_expiry()) is not None and when <= now:
            _, spi = heapq.heappop(self._expiries)
            key = self.remove(spi)
            if key is not None:
                expired.append(key)
        return expired

    def load(self, keys: Iterable[StoredKey], now: float, wall: float) -> list[StoredKey]:
        """Restore persisted keys: each lives on for what is left of its wall-clock
        lifetime, counted from monotonic `now`. Returns those to delete: expired, or
        beyond `max_per_nai` (the ones that expire first)."""
        expired = []
        for key in sorted(keys, key=lambda k: k.expires_at):
            if key.expires_at <= wall:
                expired.append(key)
            elif key.spi not in self._by_spi:  # a store keyed by SPI has no duplicates
                self.add(key, now + (key.expires_at - wall))
                expired += self.surplus(key.nai)
        return expired

    def _release_coa(self, coa: bytes | None, new_holder: int | None) -> list[StoredKey]:
        if coa is None:
            return []
        holder = self._by_coa.get(coa)
        if holder is None or holder == new_holder:
            return []
        del self._by_coa[coa]
        old = self._by_spi.get(holder)
        if old is None:
            return []
        unbound = replace(old, care_of_address=None)
        self._by_spi[holder] = unbound
        return [unbound]
