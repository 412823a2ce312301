"""The state rules of an MN exchange (draft §6.2, §6.2.2.1, §6.2.3; PROFILE P7), all in
this file.

`State` is named by what an exchange expects next, `Input` is what happened (a classified
HKResp or a timer), and `TRANSITIONS` maps (state, input) to (action, next state). Every
decision is a row that can fire: answers that fail their checks (DISCARD), late copies of
an answer to a finished or paused exchange (IGNORE), unsigned errors (NOTE_HINT, acted on
only when the retransmission timer fires, P7 v1.1). A pair missing from the table is our
bug and raises `LocalProtocolError` (`transition`). hkp_radius/mn/role.py classifies and
acts.

A finished exchange lingers for one HKEY_REQ_TOUT (the AR may still re-send its cached
answer to our last copy, P10) so that such copies meet the table; then it is forgotten.
An HKResp whose Message ID no exchange has used is not a row: there is no exchange to ask.
"""

from __future__ import annotations

import enum

from hkp_radius.errors import LocalProtocolError


class State(enum.Enum):
    """What an exchange expects next."""

    EXPECT_HKRESP = "expect-hkresp"  # an HKReq is out; an HKResp or HKEY_REQ_TOUT comes next
    EXPECT_RETRY_TIME = "expect-retry-time"  # CoA_AUTH_FAILED: waiting > HK_RETRY_INTERVAL
    KEY_ESTABLISHED = "key-established"  # done: a key is held; lingers for late copies
    GAVE_UP = "gave-up"  # done: no key; lingers for late copies
    CLOSED = "closed"  # forgotten


class Input(enum.Enum):
    # ---- an HKResp to the exchange's current Message ID, classified ----
    KEY_RESPONSE = "key-response"  # success whose MN-AR MAC verifies
    CORRECTABLE_ERROR = "correctable-error"  # resend corrected now
    RETRY_LATER_ERROR = "retry-later-error"  # CoA_AUTH_FAILED with retries left
    FINAL_ERROR = "final-error"  # honoured error, nothing left to try
    HINT = "hint"  # an error without a valid MN-HKS MAC (P7): noted, acted on at the timer
    INVALID_ANSWER = "invalid-answer"  # fails a check of §6.2.2 / P5 / P7: silently discarded
    # ---- an HKResp to a Message ID the exchange no longer waits on ----
    LATE_ANSWER = "late-answer"
    # ---- timers ----
    RESPONSE_TIMEOUT = "response-timeout"  # HKEY_REQ_TOUT passed, retransmissions left
    TRIES_EXHAUSTED = "tries-exhausted"  # HKEY_REQ_TOUT passed after the last try
    VERIFY_UNANSWERED = "verify-unanswered"  # TRIES_EXHAUSTED, but for a V request
    HINT_DUE = "hint-due"  # HKEY_REQ_TOUT passed with an actionable hint noted
    HINT_DUE_FINAL = "hint-due-final"  # ... a hint that leaves nothing to try
    HINT_DUE_RETRY_LATER = "hint-due-retry-later"  # ... CoA_AUTH_FAILED with retries left
    RETRY_TIME = "retry-time"  # the CoA_AUTH_FAILED wait is over
    LINGER_OVER = "linger-over"  # a finished exchange's HKEY_REQ_TOUT is over


class Action(enum.Enum):
    STORE_KEY = "store-key"
    SEND_CORRECTED = "send-corrected"
    WAIT_TO_RETRY = "wait-to-retry"
    GIVE_UP = "give-up"
    NOTE_HINT = "note-hint"  # P7 v1.1: remember it; the exchange keeps waiting
    DISCARD = "discard"  # §6.2.2: silently; a Discarded event for logs
    RETRANSMIT = "retransmit"
    SEND_FRESH = "send-fresh"
    FALL_BACK_TO_REQUEST = "fall-back-to-request"  # §6.2.3: full MN-HKS request
    IGNORE = "ignore"  # a late copy of an answer; a Discarded event for logs
    FORGET = "forget"


S, In, A = State, Input, Action
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    (S.EXPECT_HKRESP, In.KEY_RESPONSE): (A.STORE_KEY, S.KEY_ESTABLISHED),
    (S.EXPECT_HKRESP, In.CORRECTABLE_ERROR): (A.SEND_CORRECTED, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.RETRY_LATER_ERROR): (A.WAIT_TO_RETRY, S.EXPECT_RETRY_TIME),
    (S.EXPECT_HKRESP, In.FINAL_ERROR): (A.GIVE_UP, S.GAVE_UP),
    (S.EXPECT_HKRESP, In.HINT): (A.NOTE_HINT, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.INVALID_ANSWER): (A.DISCARD, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.LATE_ANSWER): (A.IGNORE, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.RESPONSE_TIMEOUT): (A.RETRANSMIT, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.TRIES_EXHAUSTED): (A.GIVE_UP, S.GAVE_UP),
    (S.EXPECT_HKRESP, In.VERIFY_UNANSWERED): (A.FALL_BACK_TO_REQUEST, S.EXPECT_HKRESP),
    # P7 v1.1: the hint is acted on only now, the authenticated answer having not come.
    (S.EXPECT_HKRESP, In.HINT_DUE): (A.SEND_CORRECTED, S.EXPECT_HKRESP),
    (S.EXPECT_HKRESP, In.HINT_DUE_FINAL): (A.GIVE_UP, S.GAVE_UP),
    (S.EXPECT_HKRESP, In.HINT_DUE_RETRY_LATER): (A.WAIT_TO_RETRY, S.EXPECT_RETRY_TIME),
    (S.EXPECT_RETRY_TIME, In.RETRY_TIME): (A.SEND_FRESH, S.EXPECT_HKRESP),
    (S.EXPECT_RETRY_TIME, In.LATE_ANSWER): (A.IGNORE, S.EXPECT_RETRY_TIME),
    (S.KEY_ESTABLISHED, In.LATE_ANSWER): (A.IGNORE, S.KEY_ESTABLISHED),
    (S.KEY_ESTABLISHED, In.LINGER_OVER): (A.FORGET, S.CLOSED),
    (S.GAVE_UP, In.LATE_ANSWER): (A.IGNORE, S.GAVE_UP),
    (S.GAVE_UP, In.LINGER_OVER): (A.FORGET, S.CLOSED),
}
del S, In, A

FINISHED = frozenset({State.KEY_ESTABLISHED, State.GAVE_UP, State.CLOSED})


def transition(state: State, event: Input) -> tuple[Action, State]:
    """The table's answer; a missing pair is the role's bug (h2's rule)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"MN exchange in {state.value} has no transition for {event.value}"
        ) from None
