"""The AR role's settings (hkp_radius.ar), each with the draft rule it tunes."""

from __future__ import annotations

from dataclasses import dataclass

from hkp_radius import crypto
from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HK_DEFAULT_LIFETIME,
    HK_MAX_LIFETIME,
    HKEY_REQ_TOUT,
    RETRANS_RATE_INTERVAL,
    CodePoints,
    MacAlgorithm,
)
from hkp_radius.errors import ConfigError

# How long the CoA validator may take before the request is dropped (it answers from
# the kernel's neighbour cache or a table: milliseconds; 2 s leaves room for a busy host).
COA_CHECK_TIMEOUT = 2.0
# Safety net behind the RADIUS adapter's own retry budget (servers x retries x timeout);
# must exceed it, or the role drops requests the adapter still retries.
HKS_DEADLINE = 30.0
# Requests held at once (pending or cached). Every one costs an Access-Request, and an
# MN-HKS MAC cannot be checked at the AR, so an unauthenticated flood is bounded here.
MAX_RECORDS = 4096


@dataclass(frozen=True)
class ARConfig:
    require_timestamp: bool = False  # §6.3: "If the AR expects timestamp-based replay ..."
    accept_null_coa: bool = True  # §6.5: indirect exchanges set the CoA to NULL
    default_lifetime: int = HK_DEFAULT_LIFETIME  # when the HKS sends no HKP-Key-Lifetime
    max_lifetime: int = HK_MAX_LIFETIME  # the AR's own cap on a key's lifetime
    response_cache_time: float = HKEY_REQ_TOUT  # §6.3: buffer for HKEY_REQ_TOUT
    retransmit_interval: float = RETRANS_RATE_INTERVAL  # RETRANS_RATE and TRANS_RATE
    coa_check_timeout: float = COA_CHECK_TIMEOUT
    hks_deadline: float = HKS_DEADLINE
    max_records: int = MAX_RECORDS
    default_mac_algorithm: int = MacAlgorithm.HMAC_SHA1
    code_points: CodePoints = DEFAULT_CODE_POINTS

    def __post_init__(self) -> None:
        if not 1 <= self.default_lifetime <= HK_MAX_LIFETIME:
            raise ConfigError(f"default_lifetime must be 1-{HK_MAX_LIFETIME} seconds")
        if not 1 <= self.max_lifetime <= HK_MAX_LIFETIME:
            raise ConfigError(f"max_lifetime must be 1-{HK_MAX_LIFETIME} seconds")
        times = ("response_cache_time", "retransmit_interval", "coa_check_timeout", "hks_deadline")
        for name in times:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number of seconds")
        if self.max_records < 1:
            raise ConfigError("max_records must be at least 1")
        if not crypto.supported_mac_algorithm(self.default_mac_algorithm):
            raise ConfigError("default_mac_algorithm must be 1 (HMAC-SHA1) or 2 (HMAC-SHA256)")
