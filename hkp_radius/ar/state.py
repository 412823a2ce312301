"""Every state rule of the AR's per-request lifecycle lives in this file (STYLE practice 3).

One record exists per (NAI, Message ID) the AR is handling (draft §6.3: "a pending
request from the MN with the same message id"). States are named by what the record
expects next. The role turns each input (a datagram, a CoA verdict, an HKS answer, a
neighbour event, a timer) into one `Input` by looking at facts (is there a key, does
its MAC verify, is the timestamp fresh); what is then done about it, silent drops
included, is decided here and only here. `TRANSITIONS` maps (state, input) to (what to
do, next state); a pair that is missing is a local protocol error (h2's rule): the role
or its adapter produced an input that cannot happen in that state.

A record starts in RECEIVED for every HKReq that names its MN (the decoder has vouched
for the syntax) and is not a copy of one already held; RECEIVED leaves at once.
"""

from __future__ import annotations

import enum

from hkp_radius.errors import LocalProtocolError


class State(enum.Enum):
    # A decoded HKReq of a new (NAI, Message ID): the receipt verdict decides its path.
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
    # Answered; the HKResp is cached to be re-sent to copies of the HKReq (§6.3, P10).
    ANSWERED = "answered"
    # Gone: the record is removed.
    CLOSED = "closed"


class Input(enum.Enum):
    # ---- receipt verdicts (RECEIVED only) ----
    NO_MN_HKS_MAC = "no-mn-hks-mac"  # §6.3: a new HKReq without an MN-HKS MAC
    NO_MN_AR_MAC = "no-mn-ar-mac"  # §6.3.1: V set, no MN-AR MAC
    OVER_CAPACITY = "over-capacity"  # max_records held already
    TIMESTAMP_MISSING = "timestamp-missing"  # §6.3 AR policy, or P6 for every V request
    NULL_COA_REFUSED = "null-coa-refused"  # §6.5: NULL CoA where policy does not allow it
    COA_TAKEN = "coa-taken"  # §7.4: bound to, or being claimed by, another MN
    NEEDS_HKS = "needs-hks"  # NULL CoA (§6.5) or a CoA tied to this NAI: ask the HKS
    NEEDS_COA_CHECK = "needs-coa-check"  # §6.3: an unbound CoA
    TRANS_RATE_EXCEEDED = "trans-rate-exceeded"  # §6.3.1 TRANS_RATE
    NO_KEY = "no-key"  # §6.3.1: no key, no MN-HKS MAC
    MAC_FAILS = "mac-fails"  # §6.3.1: no key of the NAI verifies the MN-AR MAC
    TIMESTAMP_STALE = "timestamp-stale"  # P6: outside the window or not newer (also later)
    VERIFIED_BOUND = "verified-bound"  # §6.3.1: verified, CoA NULL or already this key's
    NEEDS_BINDING_CHECK = "needs-binding-check"  # §6.3.1: verified, a new CoA to check
    ADMISSION_REFUSED = "admission-refused"  # NAI rate or HKS slots (hkp_radius.ar.admission)
    # ---- later inputs ----
    COPY = "copy"  # the same datagram again while the request is pending
    COPY_RESEND = "copy-resend"  # the same datagram again, answered, RETRANS_RATE allows
    COPY_TOO_SOON = "copy-too-soon"  # ... RETRANS_RATE does not allow
    CLASH = "clash"  # another datagram with the same NAI and Message ID
    COA_VALID = "coa-valid"
    COA_INVALID = "coa-invalid"
    KEY_EXPIRED = "key-expired"  # the verified key's lifetime ended during the CoA check
    HKS_ACCEPT = "hks-accept"
    HKS_REJECT_WITH_RESPONSE = "hks-reject-with-response"
    HKS_REJECT_SILENT = "hks-reject-silent"
    HKS_ANSWER_UNUSABLE = "hks-answer-unusable"  # malformed Accept, mismatched HKResp
    HKS_TIMEOUT = "hks-timeout"  # every server of the realm, every retry
    NEIGHBOUR_GONE = "neighbour-gone"
    DEADLINE = "deadline"  # the record's timer fired


class Do(enum.Enum):
    """What the role does for a transition (the role maps each to one method)."""

    DISCARD = "discard"  # silently, a Discarded output for counters and debug logs
    REFUSE_ADMISSION = "refuse-admission"  # silently, a Discarded output naming the limit
    DISCARD_EXCHANGE = "discard-exchange"  # silently, but an exchange log line (§6.3.1)
    ANSWER_TIMESTAMP_REQD = "answer-timestamp-reqd"  # unsigned (P7)
    ANSWER_COA_AUTH_FAILED = "answer-coa-auth-failed"  # unsigned (P7)
    ANSWER_HK_VERIFY_FAILED = "answer-hk-verify-failed"  # unsigned (P7)
    ANSWER_VERIFIED = "answer-verified"  # §6.3.1: V Success, MN-AR MAC
    ASK_COA_VALIDATOR = "ask-coa-validator"
    ASK_HKS = "ask-hks"
    RESEND_CACHED = "resend-cached"  # §6.3, P10
    STORE_KEY_AND_ANSWER = "store-key-and-answer"
    BIND_AND_ANSWER = "bind-and-answer"
    FORWARD_HKS_RESPONSE = "forward-hks-response"
    DROP_HKS_DISCARDED = "drop-hks-discarded"  # §6.4: the HKS discarded; nothing to send
    DROP_HKS_SILENT = "drop-hks-silent"  # §6.3: remove all state, send nothing
    DROP_HKS_UNUSABLE = "drop-hks-unusable"
    DROP_DEPARTED = "drop-departed"  # §6.3: the MN is no longer connected
    DROP_ABANDONED = "drop-abandoned"  # the CoA check outlived its deadline
    CANCEL_HKS_AND_DROP = "cancel-hks-and-drop"  # the HKS outlived the role's deadline
    NOTE_DEPARTED = "note-departed"
    NOTHING = "nothing"
    EXPIRE = "expire"  # the cached answer's time is over


S, In = State, Input
_PENDING = (S.EXPECT_COA_CHECK, S.EXPECT_BINDING_CHECK, S.EXPECT_HKS_ANSWER,
            S.EXPECT_HKS_ANSWER_FOR_DEPARTED)  # fmt: skip
TRANSITIONS: dict[tuple[State, Input], tuple[Do, State]] = {
    # ---- receipt (§6.3 new key, §6.3.1 returning MN, P6 freshness) ----
    (S.RECEIVED, In.NO_MN_HKS_MAC): (Do.DISCARD, S.CLOSED),
    (S.RECEIVED, In.NO_MN_AR_MAC): (Do.DISCARD, S.CLOSED),
    (S.RECEIVED, In.ADMISSION_REFUSED): (Do.REFUSE_ADMISSION, S.CLOSED),
    (S.RECEIVED, In.OVER_CAPACITY): (Do.DISCARD, S.CLOSED),
    (S.RECEIVED, In.TRANS_RATE_EXCEEDED): (Do.DISCARD, S.CLOSED),
    (S.RECEIVED, In.MAC_FAILS): (Do.DISCARD_EXCHANGE, S.CLOSED),
    (S.RECEIVED, In.TIMESTAMP_STALE): (Do.DISCARD_EXCHANGE, S.CLOSED),
    (S.RECEIVED, In.TIMESTAMP_MISSING): (Do.ANSWER_TIMESTAMP_REQD, S.ANSWERED),
    (S.RECEIVED, In.NULL_COA_REFUSED): (Do.ANSWER_COA_AUTH_FAILED, S.ANSWERED),
    (S.RECEIVED, In.COA_TAKEN): (Do.ANSWER_COA_AUTH_FAILED, S.ANSWERED),
    (S.RECEIVED, In.NO_KEY): (Do.ANSWER_HK_VERIFY_FAILED, S.ANSWERED),
    (S.RECEIVED, In.VERIFIED_BOUND): (Do.ANSWER_VERIFIED, S.ANSWERED),
    (S.RECEIVED, In.NEEDS_HKS): (Do.ASK_HKS, S.EXPECT_HKS_ANSWER),
    (S.RECEIVED, In.NEEDS_COA_CHECK): (Do.ASK_COA_VALIDATOR, S.EXPECT_COA_CHECK),
    (S.RECEIVED, In.NEEDS_BINDING_CHECK): (Do.ASK_COA_VALIDATOR, S.EXPECT_BINDING_CHECK),
    # ---- §6.3: validate the CoA, then ask the HKS; CoA_AUTH_FAILED otherwise ----
    (S.EXPECT_COA_CHECK, In.COA_VALID): (Do.ASK_HKS, S.EXPECT_HKS_ANSWER),
    # ... unless the HKS's slots filled up during the check (admission control)
    (S.EXPECT_COA_CHECK, In.ADMISSION_REFUSED): (Do.REFUSE_ADMISSION, S.CLOSED),
    (S.EXPECT_COA_CHECK, In.COA_INVALID): (Do.ANSWER_COA_AUTH_FAILED, S.ANSWERED),
    (S.EXPECT_COA_CHECK, In.NEIGHBOUR_GONE): (Do.NOTHING, S.EXPECT_COA_CHECK),
    (S.EXPECT_COA_CHECK, In.DEADLINE): (Do.DROP_ABANDONED, S.CLOSED),
    # ---- §6.3.1: verified; "verify that the IP address is valid", then bind ----
    (S.EXPECT_BINDING_CHECK, In.COA_VALID): (Do.BIND_AND_ANSWER, S.ANSWERED),
    (S.EXPECT_BINDING_CHECK, In.COA_INVALID): (Do.ANSWER_COA_AUTH_FAILED, S.ANSWERED),
    (S.EXPECT_BINDING_CHECK, In.KEY_EXPIRED): (Do.ANSWER_HK_VERIFY_FAILED, S.ANSWERED),
    # P6: a newer V request of this key was accepted during the check.
    (S.EXPECT_BINDING_CHECK, In.TIMESTAMP_STALE): (Do.DISCARD_EXCHANGE, S.CLOSED),
    (S.EXPECT_BINDING_CHECK, In.NEIGHBOUR_GONE): (Do.NOTHING, S.EXPECT_BINDING_CHECK),
    (S.EXPECT_BINDING_CHECK, In.DEADLINE): (Do.DROP_ABANDONED, S.CLOSED),
    # ---- §6.3: the HKS has it ----
    (S.EXPECT_HKS_ANSWER, In.HKS_ACCEPT): (Do.STORE_KEY_AND_ANSWER, S.ANSWERED),
    (S.EXPECT_HKS_ANSWER, In.HKS_REJECT_WITH_RESPONSE): (Do.FORWARD_HKS_RESPONSE, S.ANSWERED),
    (S.EXPECT_HKS_ANSWER, In.HKS_REJECT_SILENT): (Do.DROP_HKS_DISCARDED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.HKS_ANSWER_UNUSABLE): (Do.DROP_HKS_UNUSABLE, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.HKS_TIMEOUT): (Do.DROP_HKS_SILENT, S.CLOSED),
    (S.EXPECT_HKS_ANSWER, In.NEIGHBOUR_GONE): (Do.NOTE_DEPARTED, S.EXPECT_HKS_ANSWER_FOR_DEPARTED),
    (S.EXPECT_HKS_ANSWER, In.DEADLINE): (Do.CANCEL_HKS_AND_DROP, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_ACCEPT): (Do.DROP_DEPARTED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_REJECT_WITH_RESPONSE): (Do.DROP_DEPARTED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_REJECT_SILENT): (Do.DROP_DEPARTED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_ANSWER_UNUSABLE): (Do.DROP_DEPARTED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.HKS_TIMEOUT): (Do.DROP_DEPARTED, S.CLOSED),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.NEIGHBOUR_GONE): (
        Do.NOTHING,
        S.EXPECT_HKS_ANSWER_FOR_DEPARTED,
    ),
    (S.EXPECT_HKS_ANSWER_FOR_DEPARTED, In.DEADLINE): (Do.CANCEL_HKS_AND_DROP, S.CLOSED),
    # ---- §6.3, P10: cached, re-sent at most RETRANS_RATE, one per copy ----
    (S.ANSWERED, In.COPY_RESEND): (Do.RESEND_CACHED, S.ANSWERED),
    (S.ANSWERED, In.COPY_TOO_SOON): (Do.DISCARD, S.ANSWERED),
    (S.ANSWERED, In.CLASH): (Do.DISCARD, S.ANSWERED),
    (S.ANSWERED, In.NEIGHBOUR_GONE): (Do.NOTHING, S.ANSWERED),
    (S.ANSWERED, In.DEADLINE): (Do.EXPIRE, S.CLOSED),
}
# §6.3: "the AR MUST silently discard the retransmitted request" while it is pending;
# a different datagram under the same (NAI, Message ID) is never a retransmission.
for _state in _PENDING:
    TRANSITIONS[(_state, In.COPY)] = (Do.DISCARD, _state)
    TRANSITIONS[(_state, In.CLASH)] = (Do.DISCARD, _state)
del S, In, _state

# Why, for the log line of a discard or an AR error (never an outcome: that is the table's).
REASONS: dict[Input, str] = {
    Input.NO_MN_HKS_MAC: "no MN-HKS MAC (§6.3: MUST silently discard)",
    Input.NO_MN_AR_MAC: "V set without an MN-AR MAC (§6.3.1: MUST silently drop)",
    Input.OVER_CAPACITY: "too many requests in progress",
    Input.ADMISSION_REFUSED: "admission control (docs/ar.md)",
    Input.TRANS_RATE_EXCEEDED: "TRANS_RATE: answered this MN less than a second ago",
    Input.MAC_FAILS: "MN-AR MAC does not verify (§6.3.1: silently discard)",
    Input.TIMESTAMP_STALE: "V request not fresh: timestamp outside the window or not newer "
    "than the key's last (P6: silently discard)",
    Input.TIMESTAMP_MISSING: "timestamp required (§6.3 AR policy; P6 for V requests)",
    Input.NULL_COA_REFUSED: "NULL CoA refused by policy (§6.5)",
    Input.COA_TAKEN: "CoA bound to or claimed by another MN (§7.4)",
    Input.NO_KEY: "no key for this NAI (§6.3.1)",
    Input.COPY: "retransmission while the request is pending (§6.3)",
    Input.COPY_TOO_SOON: "RETRANS_RATE: cached HKResp re-sent too recently",
    Input.CLASH: "another datagram with the Message ID of a request in progress",
    Input.COA_INVALID: "CoA validation failed (§6.3)",
    Input.KEY_EXPIRED: "key expired during the CoA check",
    Input.DEADLINE: "deadline passed",
}


def transition(state: State, event: Input) -> tuple[Do, State]:
    """The table's answer; a missing pair is the caller's bug (h2's rule)."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LocalProtocolError(
            f"AR request lifecycle: input {event.value} is not legal in state {state.value}"
        ) from None
