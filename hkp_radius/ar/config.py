"""The AR role's settings (hkp_radius.ar), each with the draft or profile rule it tunes."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hkp_radius import crypto
from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HK_DEFAULT_LIFETIME,
    HK_MAX_LIFETIME,
    HKEY_REQ_TOUT,
    N_HO_KEYTRIES,
    RETRANS_RATE_INTERVAL,
    TIMESTAMP_WINDOW,
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
# Each answer stays RESPONSE_CACHE_TIME (3 s): 32,768 carry ~10,000 exchanges/s (issue
# 14: 4,096 discarded HKReqs beyond ~1,365/s), at about 1 KiB of memory each.
MAX_RECORDS = 32768
# P10 (v1.1): the answer is kept as long as the MN may still retransmit.
RESPONSE_CACHE_TIME = N_HO_KEYTRIES * HKEY_REQ_TOUT
# P10 (v1.1) RETRANS_RATE: at most 2 re-sent answers per second for one request (and
# at most one per copy received); TRANS_RATE: one answer per second to a returning MN.
RETRANS_RATE = 2.0
TRANS_RATE = 1.0 / RETRANS_RATE_INTERVAL
# Issue 15: unexpired keys per NAI. An MN uses its newest key and discards the old one
# (§6.2.1); two leave room for a key in use while its successor is being issued.
MAX_KEYS_PER_NAI = 2


class NullCoA(enum.Enum):
    """When the AR accepts the NULL Key CoA (draft §6.5, docs/decisions.md)."""

    NEVER = "no"  # every request names its CoA
    REFRESH = "refresh"  # §6.5 only: a refresh by an MN that holds a key here
    ALWAYS = "yes"  # any request (labs; binds no CoA, so §7.4 never applies)


@dataclass(frozen=True)
class ARConfig:
    require_timestamp: bool = False  # §6.3: "If the AR expects timestamp-based replay ..."
    null_coa: NullCoA = NullCoA.REFRESH  # §6.5: indirect refreshes set the CoA to NULL
    default_lifetime: int = HK_DEFAULT_LIFETIME  # when the HKS sends no HKP-Key-Lifetime
    max_lifetime: int = HK_MAX_LIFETIME  # the AR's own cap on a key's lifetime
    response_cache_time: float = RESPONSE_CACHE_TIME  # P10: 3 s after the answer
    retrans_rate: float = RETRANS_RATE  # P10: re-sent answers per second, per request
    trans_rate: float = TRANS_RATE  # P10: answers per second to one returning MN
    timestamp_window: float = TIMESTAMP_WINDOW  # P6/P10: ±7 s for a V request
    coa_check_timeout: float = COA_CHECK_TIMEOUT
    hks_deadline: float = HKS_DEADLINE
    max_records: int = MAX_RECORDS
    max_keys_per_nai: int = MAX_KEYS_PER_NAI  # a new key beyond it retires the oldest
    default_mac_algorithm: int = MacAlgorithm.HMAC_SHA1
    code_points: CodePoints = DEFAULT_CODE_POINTS

    def __post_init__(self) -> None:
        if not 1 <= self.default_lifetime <= HK_MAX_LIFETIME:
            raise ConfigError(f"default_lifetime must be 1-{HK_MAX_LIFETIME} seconds")
        if not 1 <= self.max_lifetime <= HK_MAX_LIFETIME:
            raise ConfigError(f"max_lifetime must be 1-{HK_MAX_LIFETIME} seconds")
        positive = (
            "response_cache_time",
            "retrans_rate",
            "trans_rate",
            "timestamp_window",
            "coa_check_timeout",
            "hks_deadline",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be a positive number")
        if self.max_records < 1:
            raise ConfigError("max_records must be at least 1")
        if self.max_keys_per_nai < 1:
            raise ConfigError("max_keys_per_nai must be at least 1")
        if not isinstance(self.null_coa, NullCoA):
            raise ConfigError("null_coa must be a NullCoA (no, refresh or yes)")
        if not crypto.supported_mac_algorithm(self.default_mac_algorithm):
            raise ConfigError("default_mac_algorithm must be 1 (HMAC-SHA1) or 2 (HMAC-SHA256)")

    @property
    def retrans_interval(self) -> float:
        """Least time between two re-sends of one cached answer."""
        return 1.0 / self.retrans_rate

    @property
    def trans_interval(self) -> float:
        return 1.0 / self.trans_rate
