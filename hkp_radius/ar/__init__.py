"""The access router role (draft §6.3, §6.3.1, §6.5): inputs in, actions out."""

from __future__ import annotations

from .config import COA_CHECK_TIMEOUT, HKS_DEADLINE, MAX_RECORDS, ARConfig
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
from .keys import SPI_DRAW_ATTEMPTS, KeyTable, StoredKey
from .role import AccessRouter
from .state import TRANSITIONS, Do, Input, State, transition

__all__ = [
    "COA_CHECK_TIMEOUT",
    "HKS_DEADLINE",
    "MAX_RECORDS",
    "SPI_DRAW_ATTEMPTS",
    "TRANSITIONS",
    "ARConfig",
    "AccessRouter",
    "Action",
    "CancelAccessRequest",
    "DeleteKey",
    "Discarded",
    "Do",
    "ExchangeDone",
    "HKSAccept",
    "HKSAnswer",
    "HKSReject",
    "Input",
    "KeyTable",
    "Outcome",
    "SendAccessRequest",
    "SendHKResp",
    "State",
    "StoreKey",
    "StoredKey",
    "ValidateCoA",
    "transition",
]
