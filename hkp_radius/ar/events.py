"""What goes into and comes out of the AR role (hkp_radius.ar): answers of the HKS as
the RADIUS adapter decoded them, and the actions the adapters carry out.

Peers are opaque to the core: whatever hashable value the transport that received
an HKReq needs to answer it (a UDP address, a raw-socket address and interface).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Union

from hkp_radius.ar.keys import StoredKey

# ---- inputs from the RADIUS adapter (P8) -------------------------------------------


@dataclass(frozen=True)
class HKSAccept:
    """An Access-Accept whose authenticators verified, its attributes decoded:
    HKP-Handover-Key (already salt-decrypted), HKP-HKS-Nonce, HKP-Key-Lifetime,
    HKP-PRF, HKP-Timestamp. None where the attribute was absent."""

    handover_key: bytes | None = field(repr=False)
    hks_nonce: bytes | None
    lifetime: int | None = None
    prf: int | None = None
    timestamp: int | None = None


@dataclass(frozen=True)
class HKSReject:
    """An Access-Reject whose authenticators verified. `response_header` is the
    HKP-Response-Header (the HKS's complete HKResp, P7), None when absent."""

    response_header: bytes | None = None
    status: int | None = None


HKSAnswer = Union[HKSAccept, HKSReject]


# ---- actions for the adapters ------------------------------------------------------


@dataclass(frozen=True)
class SendHKResp:
    """Send `wire` (an HKResp, checksum zero) to `peer`, from `ar_address`."""

    peer: Hashable
    ar_address: bytes
    wire: bytes


@dataclass(frozen=True)
class SendAccessRequest:
    """Ask the HKS (P8). The adapter picks the realm's servers from the NAI, retransmits
    and fails over, then calls `receive_radius_answer(ref, ...)` once or
    `radius_timeout(ref, ...)` once."""

    ref: int
    nai: bytes
    mobility_header: bytes  # the HKReq exactly as received
    ar_address: bytes  # HKP-AR-Address: the AR as seen by the MN (AR-ID)
    care_of_address: bytes  # HKP-Care-of-Address (may be NULL, §6.5)


@dataclass(frozen=True)
class CancelAccessRequest:
    """Stop retransmitting `ref`; no answer is wanted any more."""

    ref: int


@dataclass(frozen=True)
class ValidateCoA:
    """§6.3 / §7.4: is `coa` really this MN's? Answer with `coa_validated(ref, ...)`."""

    ref: int
    coa: bytes
    nai: bytes
    peer: Hashable


@dataclass(frozen=True)
class StoreKey:
    """Persist `key` (insert or replace by SPI)."""

    key: StoredKey


@dataclass(frozen=True)
class DeleteKey:
    spi: int
    reason: str


class Outcome(enum.Enum):
    ISSUED = "issued"  # new HK stored, HKResp Success
    VERIFIED = "verified"  # returning MN, HKResp Success with V
    AR_ERROR = "ar-error"  # CoA_AUTH_FAILED, TIMESTAMP_REQD, HK_VERIFY_FAILED
    HKS_ERROR = "hks-error"  # the HKS's HKResp forwarded unchanged
    HKS_DISCARDED = "hks-discarded"  # Access-Reject without HKP-Response-Header
    HKS_SILENT = "hks-silent"  # every server, every retry: no answer
    HKS_UNUSABLE = "hks-unusable"  # an answer that could not be used
    MN_DEPARTED = "mn-departed"  # neighbour entry gone while the HKS had it
    ABANDONED = "abandoned"  # the record's own deadline passed
    DISCARDED = "discarded"  # silently discarded by the AR's own rules


@dataclass(frozen=True)
class ExchangeDone:
    """One per exchange, for the log line: never carries a key."""

    nai: bytes
    message_id: int
    care_of_address: bytes
    outcome: Outcome
    status: int | None
    spi: int | None
    started: float
    finished: float
    reason: str = ""

    @property
    def duration(self) -> float:
        return self.finished - self.started


@dataclass(frozen=True)
class Discarded:
    """A datagram dropped before it became an exchange (malformed, no MN-ID, a
    retransmission, a rate limit): for counters and debug logs."""

    reason: str
    nai: bytes | None = None


Action = Union[
    SendHKResp,
    SendAccessRequest,
    CancelAccessRequest,
    ValidateCoA,
    StoreKey,
    DeleteKey,
    ExchangeDone,
    Discarded,
]
