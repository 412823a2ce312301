"""Every state rule of the AR's per-request lifecycle lives in this file (STYLE practice 3).

One record exists per (NAI, Message ID) the AR is handling (draft §6.3: "a pending
request from the MN with the same message id"). States are named by what the record
expects next. `TRANSITIONS` maps (state, input) to (what to do, next state); a pair that
is missing is a local protocol error: the adapter fed the role an input it cannot have
(an answer for a request that was never sent, a second answer, ...).
"""

from __future__ import annotations

import enum

from hkp_radius.errors import LocalProtocolError


class State(enum.Enum):
    # Just decoded and accepted for processing; the role decides which path it takes.
    RECEIVED = "received"
    # New key (§6.3): waiting for the CoA validator before asking the HKS.
    EXPECT_COA_CHECK = "expect-coa-check"
    # Returning MN (§6.3.1): MN-AR MAC verified, waiting for the CoA validator to bind.
    EXPECT_BINDING_CHECK = "expect-binding-check"
    # Access-Request out; the RADIUS adapter retransmits and fails over (§6.3).
    EXPECT_HKS_ANSWER = "expect-hks-answer"
    # The MN's neighbour entry went while the HKS had the request (§6.3: "a response
    # ... corresponding to a MN that is no longer connected ... silently discard it").
    EXPECT_HKS_ANSWER_FOR_DEPARTED = "expect-hks-answer-for-departed"
    # Answered; the HKResp is cached for HKEY_REQ_TOUT to be re-sent (§6.3).
    ANSWERED = "answered"
    # Gone: the record is removed.
    CLOSED = "closed"


class Input(enum.Enum):
    # Decided by the role on receipt (RECEIVED only):
    NEEDS_HKS = "needs-hks"  # CoA NULL or already bound to this NAI: ask the HKS now
    NEEDS_COA_CHECK = "needs-coa-check"
    NEEDS_BINDING_CHECK = "needs-binding-check"
    ANSWER_NOW = "answer-now"  # an AR error, or a verified returning MN already bound
    # Later inputs:
    DUPLICATE_HKREQ = "duplicate-hkreq"  # same NAI and Message ID again
    COA_VALID = "coa-valid"
    COA_INVALID = "coa-invalid"
    HKS_ACCEPT = "hks-accept"
    HKS_REJECT_WITH_RESPONSE = "hks-reject-with-response"
    HKS_REJECT_SILENT = "hks-reject-silent"
    HKS_ANSWER_UNUSABLE = "hks-answer-unusable"  # malformed Accept, mismatched HKResp
    HKS_TIMEOUT = "hks-timeout"  # every server of the realm, every retry
    NEIGHBOUR_GONE = "neighbour-gone"
    DEADLINE = "deadline"  # the record's timer fired


class Do(enum.Enum):
    """What the role does for a transition (the role maps each to one method)."""

    ASK_COA_VALIDATOR = "ask-coa-validator"
    ASK_HKS = "ask-hks"
    ANSWER = "answer"  # send the HKResp prepared on receipt, cache it
    DISCARD = "discard"  # §6.3: silently discard the retransmission
    RESEND_CACHED = "resend-cached"  # §6.3: re-send, at most RETRANS_RATE
    REFUSE_COA = "refuse-coa"  # CoA_AUTH_FAILED
    STORE_KEY_AND_ANSWER = "store-key-and-answer"
    BIND_AND_ANSWER = "bind-and-answer"
    FORWARD_HKS_RESPONSE = "forward-hks-response"
    DROP_SILENTLY = "drop-silently"  # remove all state, send nothing
    CANCEL_HKS_AND_DROP = "cancel-hks-and-drop"
    NOTE_DEPARTED = "note-departed"
    NOTHING = "nothing"
    EXPIRE = "expire"


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], tuple[Do, State]] = {
    (S.RECEIVED, In.NEEDS_HKS): (Do.ASK_HKS, S.EXPECT_HKS_ANSWER),
    (S.RECEIVED, In.NEEDS_COA_CHECK): (Do.ASK_COA_VALIDATOR, S.EXPECT_COA_CHECK),
    (S.RECEIVED, In.NEEDS_BINDING_CHECK): (Do.ASK_COA_VALIDATOR, S.EXPECT_BINDING_CHECK),
    (S.RECEIVED, In.ANSWER_NOW): (Do.ANSWER, S.ANSWERED),
    # §6.3: validate the CoA, then ask the HKS; CoA_AUTH_FAILED otherwise.
    (S.EXPECT_COA_CHECK, In.COA_VALID): (Do.ASK_HKS, S.EXPECT_HKS_ANSWER),
    (S.EXPECT_COA_CHECK, In.COA_INVALID): (Do.REFUSE_COA, S.ANSWERED),
    (S.EXPECT_COA_CHECK, In.DUPLICATE_HKREQ): (Do.DISCARD, S.EXPECT_COA_CHECK),
    (S.EXPECT_COA_CHECK, In.NEIGHBOUR_GONE): (Do.NOTHING, S.EXPECT_COA_CHECK),
    (S.EXPECT_COA_CHECK, In.DEADLINE): (Do.DROP_SILENTLY, S.CLOSED),
    # §6.3.1: verified; "verify that the IP address is valid", then bind and answer.
    (S.EXPECT_BINDING_CHECK, In.COA_VALID): (Do.BIND_AND_ANSWER, S.ANSWERED),
    (S.EXPECT_BINDING_CHECK, In.COA_INVALID): (Do.REFUSE_COA, S.ANSWERED),
    (S.EXPECT_BINDING_CHECK, In.DUPLICATE_HKREQ): (Do.DISCARD, S.EXPECT_BINDING_CHECK),
    (S.EXPECT_BINDING_CHECK, In.NEIGHBOUR_GONE): (Do.NOTHING, S.EXPECT_BINDING_CHECK),
    (S.EXPECT_BINDING_CHECK, In.DEADLINE): (Do.DROP_SILENTLY, S.CLOSED),
    # §6.3: the HKS has it.
    (S.EXPECT_HKS_ANSWER, In.HKS_ACCEPT): (Do.STORE_KEY_AND_ANSWER, S.ANSWERED),
    (S.EXPECT_HKS_ANSWER, In.HKS_REJECT_WITH_RESPONSE): (Do.FORWARD_HKS_RESPONSE, S.ANSWERED),
    (S.EXPECT_HKS_ANSWER, In.HKS_REJECT_SILENT): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.HKS_ANSWER_UNUSABLE): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.HKS_TIMEOUT): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.DUPLICATE_HKREQ): (Do.DISCARD, S.EXPECT_HKS_ANSWER),
    (S.EXPECT_HKS_ANSWER, In.NEIGHBOUR_GONE): (Do.NOTE_DEPARTED, S.EXPECT_HKS_ANSWER_FOR_DEPARTED),
    (S.EXPECT_HKS_ANSWER, In.DEADLINE): (Do.CANCEL_HKS_AND_DROP, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_ACCEPT): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_REJECT_WITH_RESPONSE): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_REJECT_SILENT): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_ANSWER_UNUSABLE): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_TIMEOUT): (Do.DROP_SILENTLY, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.DUPLICATE_HKREQ): (
        Do.DISCARD,
        S.EXPECT_HKS_ANSWER_FOR_DEPARTED,
    ),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.NEIGHBOUR_GONE): (
        Do.NOTHING,
        S.EXPECT_HKS_ANSWER_FOR_DEPARTED,
    ),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.DEADLINE): (Do.CANCEL_HKS_AND_DROP, S.CLOSED),
    # §6.3: cached for HKEY_REQ_TOUT, re-sent at most RETRANS_RATE.
    (S.ANSWERED, In.DUPLICATE_HKREQ): (Do.RESEND_CACHED, S.ANSWERED),
    (S.ANSWERED, In.NEIGHBOUR_GONE): (Do.NOTHING, S.ANSWERED),
    (S.ANSWERED, In.DEADLINE): (Do.EXPIRE, S.CLOSED),
}
del S, In


def transition(state: State, event: Input) -> tuple[Do, State]:
    """The table's answer; a missing pair is the caller's bug (h2's rule)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"AR request lifecycle: input {event.value} is not legal in state {state.value}"
        ) from None
