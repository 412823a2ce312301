"""The state rules of an MN exchange (draft §6.2, §6.2.2.1, §6.2.3), all in this file.

`State` is named by what an exchange expects next, `Input` is what happened (a classified
HKResp or a timer), and `TRANSITIONS` maps (state, input) to (action, next state); a pair
missing from the table is our bug. hkp_radius/mn.py classifies and acts.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """What an exchange expects next."""

    EXPECT_HKRESP = "expect-hkresp"  # an HKReq is out; an HKResp or HKEY_REQ_TOUT comes next
    EXPECT_RETRY_TIME = "expect-retry-time"  # CoA_AUTH_FAILED: waiting > HK_RETRY_INTERVAL
    KEY_ESTABLISHED = "key-established"  # done: a key is held (terminal)
    GAVE_UP = "gave-up"  # done: no key (terminal)


class Input(enum.Enum):
    KEY_RESPONSE = "key-response"  # success whose MN-AR MAC verifies
    CORRECTABLE_ERROR = "correctable-error"  # resend corrected now
    RETRY_LATER_ERROR = "retry-later-error"  # CoA_AUTH_FAILED with retries left
    FINAL_ERROR = "final-error"  # honoured error, nothing left to try
    HINT = "hint"  # an error that changes nothing (P7: no valid MAC)
    RESPONSE_TIMEOUT = "response-timeout"  # HKEY_REQ_TOUT passed, retransmissions left
    TRIES_EXHAUSTED = "tries-exhausted"  # HKEY_REQ_TOUT passed after the last try
    VERIFY_UNANSWERED = "verify-unanswered"  # TRIES_EXHAUSTED, but for a V request
    RETRY_TIME = "retry-time"  # the CoA_AUTH_FAILED wait is over


class Action(enum.Enum):
    STORE_KEY = "store-key"
    SEND_CORRECTED = "send-corrected"
    WAIT_TO_RETRY = "wait-to-retry"
    GIVE_UP = "give-up"
    NOTE_HINT = "note-hint"
    RETRANSMIT = "retransmit"
    SEND_FRESH = "send-fresh"
    FALL_BACK_TO_REQUEST = "fall-back-to-request"  # §6.2.3: full MN-HKS request
    IGNORE = "ignore"  # a late answer to a finished or paused exchange


_RESPONSES = (
    Input.KEY_RESPONSE,
    Input.CORRECTABLE_ERROR,
    Input.RETRY_LATER_ERROR,
    Input.FINAL_ERROR,
    Input.HINT,
)
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    (State.EXPECT_HKRESP, Input.KEY_RESPONSE): (Action.STORE_KEY, State.KEY_ESTABLISHED),
    (State.EXPECT_HKRESP, Input.CORRECTABLE_ERROR): (Action.SEND_CORRECTED, State.EXPECT_HKRESP),
    (State.EXPECT_HKRESP, Input.RETRY_LATER_ERROR): (
        Action.WAIT_TO_RETRY,
        State.EXPECT_RETRY_TIME,
    ),
    (State.EXPECT_HKRESP, Input.FINAL_ERROR): (Action.GIVE_UP, State.GAVE_UP),
    (State.EXPECT_HKRESP, Input.HINT): (Action.NOTE_HINT, State.EXPECT_HKRESP),
    (State.EXPECT_HKRESP, Input.RESPONSE_TIMEOUT): (Action.RETRANSMIT, State.EXPECT_HKRESP),
    (State.EXPECT_HKRESP, Input.TRIES_EXHAUSTED): (Action.GIVE_UP, State.GAVE_UP),
    (State.EXPECT_HKRESP, Input.VERIFY_UNANSWERED): (
        Action.FALL_BACK_TO_REQUEST,
        State.EXPECT_HKRESP,
    ),
    (State.EXPECT_RETRY_TIME, Input.RETRY_TIME): (Action.SEND_FRESH, State.EXPECT_HKRESP),
    **{(State.EXPECT_RETRY_TIME, i): (Action.IGNORE, State.EXPECT_RETRY_TIME) for i in _RESPONSES},
    **{(State.KEY_ESTABLISHED, i): (Action.IGNORE, State.KEY_ESTABLISHED) for i in _RESPONSES},
    **{(State.GAVE_UP, i): (Action.IGNORE, State.GAVE_UP) for i in _RESPONSES},
}
