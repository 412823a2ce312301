"""An MN identity and its policy (draft §6.1, §6.2.1; PROFILE P10)."""

from __future__ import annotations

from dataclasses import dataclass

from hkp_radius import crypto
from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HK_DEFAULT_LENGTH,
    HK_RETRY_INTERVAL,
    HKEY_REQ_TOUT,
    HMK_MIN_LENGTH,
    N_HO_KEYTRIES,
    PRF,
    CodePoints,
    MacAlgorithm,
)
from hkp_radius.errors import ConfigError
from hkp_radius.wire.options import MobileNodeIdentifier

# §6.3, P10 (v1.1): the AR keeps its answer to a (NAI, Message ID) for
# N_HO_KEYTRIES x HKEY_REQ_TOUT (3 s) after sending it, and discards any other HKReq under
# that pair meanwhile. So a Message ID is not reused with the same AR sooner than that
# after our last transmission of it or the end of its exchange (the answer's arrival),
# whichever is later, plus one HKEY_REQ_TOUT for the answer's way and clock rates.
MESSAGE_ID_REUSE_GUARD = (N_HO_KEYTRIES + 1) * HKEY_REQ_TOUT


@dataclass(frozen=True)
class MNConfig:
    """An MN identity and its policy. `hmk` never appears in a repr."""

    nai: bytes
    hmk: bytes
    prf: int = PRF.HMAC_SHA1
    mac_algorithm: int = MacAlgorithm.HMAC_SHA1
    use_timestamps: bool = True  # §6.2.1: the MN SHOULD use the Timestamp option
    request_timeout: float = HKEY_REQ_TOUT
    max_retransmissions: int = N_HO_KEYTRIES
    retry_interval: float = HK_RETRY_INTERVAL
    hk_length: int = HK_DEFAULT_LENGTH
    code_points: CodePoints = DEFAULT_CODE_POINTS

    def __post_init__(self) -> None:
        MobileNodeIdentifier(self.nai)  # checks the NAI length (P2)
        if len(self.hmk) < HMK_MIN_LENGTH:  # draft §6.1; the message never shows the key
            raise ConfigError(
                f"HMK of {self.nai.decode('utf-8', 'replace')} is {len(self.hmk)} octets; "
                f"draft §6.1 requires at least {HMK_MIN_LENGTH}: give the full HMK the "
                "HKS holds for this NAI"
            )
        crypto.derive_hik(self.hmk, self.prf, 0, self.mac_algorithm)  # checks the algorithms

    def __repr__(self) -> str:
        return f"MNConfig(nai={self.nai!r}, prf={self.prf}, mac_algorithm={self.mac_algorithm})"
