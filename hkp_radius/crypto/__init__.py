"""Key derivation, MACs (draft §6.1, P3, P4), RFC 2548 salt encryption and the FMIPv6
BADF Authenticator (P11): pure functions."""

from __future__ import annotations

from . import fmip, salt
from .primitives import (
    MAC_OPTION_HEADER_LENGTH,
    UnsupportedAlgorithmError,
    compute_mac,
    derive_hik,
    derive_hk,
    gprf_plus,
    mac_key_length,
    sign_message,
    supported_mac_algorithm,
    supported_prf,
    verify_mac,
)

__all__ = [
    "MAC_OPTION_HEADER_LENGTH",
    "UnsupportedAlgorithmError",
    "compute_mac",
    "derive_hik",
    "derive_hk",
    "fmip",
    "gprf_plus",
    "mac_key_length",
    "salt",
    "sign_message",
    "supported_mac_algorithm",
    "supported_prf",
    "verify_mac",
]
