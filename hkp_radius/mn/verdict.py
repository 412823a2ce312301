"""What the MN role's classification hands its table (hkp_radius/mn/state.py): the input,
and what carrying out the action needs. Typed, so that a misspelt field is an error."""

from __future__ import annotations

from dataclasses import dataclass, field

from hkp_radius.mn.events import Kind
from hkp_radius.mn.state import Input


@dataclass(frozen=True)
class Correction:
    """What a corrected HKReq changes (an error's answer); None and False change nothing."""

    use_timestamps: bool = False
    clock_delta: int | None = None  # seconds, from a signed INVALID_TIMESTAMP (P5)
    prf: int | None = None
    mac_algorithm: int | None = None
    kind: Kind | None = None


NO_CORRECTION = Correction()


@dataclass(frozen=True)
class Verdict:
    """An HKResp or a timer, classified: the table's input and what acting on it needs."""

    input: Input
    reaction: str
    authenticated: bool = False
    hk: bytes | None = field(default=None, repr=False)
    verified: bool = False
    correction: Correction = NO_CORRECTION
    hint: Verdict | None = None  # HINT: what to do when the timer fires, None: nothing
