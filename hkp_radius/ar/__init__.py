"""The access router role (draft §6.3, §6.3.1, §6.5): inputs in, actions out."""

from __future__ import annotations

from .config import (
    COA_CHECK_TIMEOUT,
    HKS_DEADLINE,
    MAX_RECORDS,
    RESPONSE_CACHE_TIME,
    RETRANS_RATE,
    TRANS_RATE,
    ARConfig,
    NullCoA,
)
from .events import (
    Action,
    CancelAccessRequest,
    DeleteKey,
    Discarded,
    ExchangeDone,
    HKSAccept,
    HKSAnswer,
    HKSReject,
    Outcome,
    SendAccessRequest,
    SendHKResp,
    StoreKey,
    ValidateCoA,
)
from .fmip import FastBindingVerifier, FbuAccepted, FbuOutput, FbuRefused, SendFBack
from .keys import SPI_DRAW_ATTEMPTS, KeyTable, StoredKey
from .role import AccessRouter
from .state import REASONS, TRANSITIONS, Do, Input, State, transition

__all__ = [
    "COA_CHECK_TIMEOUT",
    "HKS_DEADLINE",
    "MAX_RECORDS",
    "REASONS",
    "RESPONSE_CACHE_TIME",
    "RETRANS_RATE",
    "SPI_DRAW_ATTEMPTS",
    "TRANSITIONS",
    "TRANS_RATE",
    "ARConfig",
    "AccessRouter",
    "Action",
    "CancelAccessRequest",
    "DeleteKey",
    "Discarded",
    "Do",
    "ExchangeDone",
    "FastBindingVerifier",
    "FbuAccepted",
    "FbuOutput",
    "FbuRefused",
    "HKSAccept",
    "HKSAnswer",
    "HKSReject",
    "Input",
    "KeyTable",
    "NullCoA",
    "Outcome",
    "SendAccessRequest",
    "SendFBack",
    "SendHKResp",
    "State",
    "StoreKey",
    "StoredKey",
    "ValidateCoA",
    "transition",
]
