"""The PAR's side of P11: verify an FMIPv6 Fast Binding Update's BADF with the HK the AR
holds by SPI, and answer an authenticated Fast Binding Ack (RFC 5568 §6.3.1, §6.4.5).

Sans-I/O like the rest of the role: `receive_fbu` takes the datagram, its source and
destination and returns typed outputs. A refused FBU is silently discarded (P11): the
only output is a `FbuRefused` naming why, for the log.

Freshness (RFC 6275 §9.5.1 applied to the FBU): per SPI, the Sequence # of an accepted
FBU must be greater, modulo 2**16, than the last accepted one, so a replayed FBU is
refused. The first FBU under a key may carry any number. The adapter persists each
accepted Sequence # (FbuAccepted) and hands them back after a restart
(`restore_sequences`), so a restarted PAR refuses a replay too.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Union

from hkp_radius.crypto.fmip import sign_fmip, verify_badf
from hkp_radius.errors import DecodeError
from hkp_radius.wire.fmip import (
    BADF_SEND_SPI,
    FBACK_ACCEPTED,
    BindingAuthorizationFMIP,
    FastBindingAck,
    FastBindingUpdate,
    decode_fmip,
    sequence_newer,
)

from .keys import KeyTable

# Sequence marks of SPIs whose key is gone are pruned once this many accumulate.
SEQUENCE_PRUNE_SLACK = 1024


@dataclass(frozen=True)
class SendFBack:
    """Send `wire` (an FBack) from `par_address` to `destination`: the NCoA of the FBU's
    Alternate Care-of Address option when it has one (the MN is on the NAR's link,
    RFC 5568 §5.2), else the FBU's source. `peer` is the FBU's sender as the adapter
    gave it (over UDP the answer goes back to it)."""

    peer: Hashable
    par_address: bytes
    destination: bytes
    wire: bytes


@dataclass(frozen=True)
class FbuAccepted:
    spi: int
    nai: bytes
    sequence: int
    care_of_address: bytes  # the CoA bound to the HK (Mobility Data's care-of address)
    new_care_of_address: bytes | None  # the Alternate CoA option: where the MN is now


@dataclass(frozen=True)
class FbuRefused:
    reason: str
    spi: int | None = None


FbuOutput = Union[SendFBack, FbuAccepted, FbuRefused]


class FastBindingVerifier:
    """Checks FBUs against the AR's `KeyTable` (shared with the AccessRouter role)."""

    def __init__(self, keys: KeyTable) -> None:
        self._keys = keys
        self._last_sequence: dict[int, int] = {}

    def restore_sequences(self, sequences: dict[int, int]) -> None:
        """The last accepted Sequence # per SPI, as persisted before a restart."""
        for spi, sequence in sequences.items():
            if self._keys.get(spi) is not None:
                self._last_sequence[spi] = sequence

    def last_sequence(self, spi: int) -> int | None:
        return self._last_sequence.get(spi)

    def receive_fbu(
        self, wire: bytes, peer: Hashable, source: bytes, par_address: bytes, now: float
    ) -> list[FbuOutput]:
        try:
            message = decode_fmip(wire)
        except DecodeError as exc:
            return [FbuRefused(f"malformed: {exc}")]
        if not isinstance(message, FastBindingUpdate):
            return [FbuRefused("an FBack sent to the AR")]
        spi = message.badf.spi
        if spi == BADF_SEND_SPI:
            return [FbuRefused("SPI 0 names a SEND handover key (RFC 5269), not an HK", spi)]
        key = self._keys.get(spi)
        if key is None or not self._keys.alive(spi, now):
            return [FbuRefused("no unexpired HK under this SPI", spi)]
        # P11 (erratum E3): Mobility Data's care-of address is the CoA bound to the HK; a
        # key from an indirect refresh (§6.5, NULL CoA) is bound to none, and then it is
        # the FBU's source (no other node's CoA is claimed, so §7.4 has nothing to check).
        coa = key.care_of_address or source
        if not verify_badf(wire, message.badf, key.hk, coa, par_address):
            return [FbuRefused("the BADF Authenticator does not verify", spi)]
        if source != coa:
            return [FbuRefused("the source is not the care-of address bound to the HK", spi)]
        last = self._last_sequence.get(spi)
        if last is not None and not sequence_newer(message.sequence, last):
            return [FbuRefused(f"replay: Sequence # {message.sequence} not after {last}", spi)]
        self._remember(spi, message.sequence)
        fback = FastBindingAck(
            status=FBACK_ACCEPTED,
            sequence=message.sequence,
            lifetime=message.lifetime,
            badf=BindingAuthorizationFMIP(spi),
        )
        answer = sign_fmip(fback, key.hk, coa, par_address)
        destination = message.alternate_coa or source
        return [
            FbuAccepted(spi, key.nai, message.sequence, coa, message.alternate_coa),
            SendFBack(peer, par_address, destination, answer),
        ]

    def _remember(self, spi: int, sequence: int) -> None:
        self._last_sequence[spi] = sequence
        if len(self._last_sequence) > len(self._keys) + SEQUENCE_PRUNE_SLACK:
            for stale in [s for s in self._last_sequence if self._keys.get(s) is None]:
                del self._last_sequence[stale]
