"""The AR role (draft §6.3, §6.3.1, §6.5; PROFILE P6, P7, P9, P10), sans-I/O.

Datagrams, CoA verdicts and HKS answers in, a list of outputs out (hkp_radius.ar.events).
Time is injected: `now` is monotonic seconds for every timer, deadline and in-memory
lifetime; `wall` (Unix seconds) is passed only where a time is persisted (a key's
expiry in the key store) or compared with one on the wire (a V request's NTP
timestamp, P6). Randomness (`random_bytes(n)`, for SPIs) is injected too.

Each input is reduced to one `Input` of hkp_radius.ar.state by looking at facts;
`TRANSITIONS` there decides what is done. Answers are built in hkp_radius.ar.records.

Division of work with the adapters: RADIUS retransmission and fail-over inside a
realm's server group belong to the RADIUS adapter, which reports exactly one
`receive_radius_answer` or `radius_timeout` per SendAccessRequest. The role keeps its
own `hks_deadline` per request as a safety net, and every other timer (response cache,
CoA check, key lifetimes) is a value: `next_timer()` / `on_timer(now)`.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable

from hkp_radius import crypto
from hkp_radius.ar.admission import Admission
from hkp_radius.ar.claims import Claims
from hkp_radius.ar.config import ARConfig, NullCoA
from hkp_radius.ar.events import (
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
from hkp_radius.ar.keys import KeyTable, StoredKey
from hkp_radius.ar.records import (
    Record,
    accept_problem,
    error_response,
    is_utf8,
    success_response,
    verified_response,
)
from hkp_radius.ar.state import REASONS, Do, Input, State, transition
from hkp_radius.constants import IPV6_ADDRESS_LENGTH, MacSubtype, Status
from hkp_radius.errors import DecodeError, LocalProtocolError
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.ntp import within_window

__all__ = ["ARConfig", "AccessRouter"]

_Handler = Callable[["AccessRouter", Record, Input, float, "float | None"], list[Action]]


class AccessRouter:
    """The AR's protocol decisions; see the module docstring."""

    def __init__(
        self,
        config: ARConfig,
        random_bytes: Callable[[int], bytes],
        admission: Admission | None = None,
    ) -> None:
        self.config = config
        self._random = random_bytes
        self.admission = admission  # None: no limits beyond max_records (docs/ar.md)
        self.keys = KeyTable(config.max_keys_per_nai)
        self._records: dict[tuple[bytes, int], Record] = {}
        self._by_ref: dict[int, Record] = {}
        # §7.4 claims: CoA -> {ref: NAI} of the records held and not yet answered, so the
        # check of a new request costs a lookup, not a scan of every record (issue 14).
        self._claims = Claims()
        self._deadlines: list[tuple[float, int]] = []  # lazy heap of (deadline, ref)
        self._next_ref = 1
        # TRANS_RATE per NAI, oldest answer first so that on_timer prunes from the front.
        self._last_verify_answer: OrderedDict[bytes, float] = OrderedDict()

    # ---- inspection (adapters, tests) ---------------------------------------------

    def record_count(self) -> int:
        return len(self._records)

    def state_of(self, nai: bytes, message_id: int) -> State | None:
        record = self._records.get((nai, message_id))
        return None if record is None else record.state

    def holds_state_for(self, nai: bytes) -> bool:
        return any(record.nai == nai for record in self._records.values())

    def record_deadlines(self) -> dict[tuple[bytes, int], tuple[State, float]]:
        """(NAI, Message ID) -> (state, monotonic deadline) of every record held."""
        return {key: (r.state, r.deadline) for key, r in self._records.items()}

    # ---- inputs ----------------------------------------------------------------------

    def load_keys(self, keys: Iterable[StoredKey], now: float, wall: float) -> list[Action]:
        """Restore persisted keys (restart); expired ones and those beyond the bound go."""
        return [
            DeleteKey(key.spi, "expired" if key.expires_at <= wall else RETIRED)
            for key in self.keys.load(keys, now, wall)
        ]

    def receive_hkreq(
        self, wire: bytes, peer: Hashable, ar_address: bytes, now: float, wall: float
    ) -> list[Action]:
        """An MH datagram from an MN. `ar_address` is the AR's address as the MN sees it
        (the destination of the packet, or the configured address over UDP, P9)."""
        if len(ar_address) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("ar_address must be a 16-octet IPv6 address")
        try:
            message = decode_message(wire, self.config.code_points)
        except DecodeError as exc:
            return [Discarded(f"malformed: {exc}")]
        if not isinstance(message, HKReq):
            return [Discarded("an HKResp sent to the AR")]
        nai = message.mn_id
        if nai is None:
            return [Discarded("no MN-ID option (§6.3: MUST silently discard)")]
        if not is_utf8(nai):
            return [Discarded("the MN-ID is not a UTF-8 NAI (RFC 7542), cannot be a User-Name")]
        existing = self._records.get((nai, message.message_id))
        if existing is not None:
            return self._fire(existing, self._copy_input(existing, wire, now), now)
        record = Record(self._next_ref, message, nai, wire, peer, ar_address, now)
        self._next_ref += 1
        if self.admission is not None and (drop := self.admission.admit_nai(nai, now)):
            record.reason = f"admission: {drop.value}"
            return self._fire(record, Input.ADMISSION_REFUSED, now)
        if message.verify:
            event = self._returning_verdict(record, now, wall)
        else:
            event = self._new_verdict(record, now)
        return self._fire(record, event, now)

    def coa_validated(self, ref: int, valid: bool, now: float) -> list[Action]:
        record = self._by_ref.get(ref)
        if record is None:
            return []  # its deadline passed meanwhile
        return self._fire(record, self._coa_input(record, valid, now), now)

    def receive_radius_answer(
        self, ref: int, answer: HKSAnswer, now: float, wall: float
    ) -> list[Action]:
        record = self._by_ref.get(ref)
        if record is None:
            return []  # cancelled meanwhile
        record.answer = answer
        return self._fire(record, self._classify(record, answer), now, wall)

    def radius_timeout(
        self, ref: int, now: float, reason: str = "no answer from any HKS of the realm"
    ) -> list[Action]:
        """Every server of the realm, every retry, no answer (§6.3); or no server at all."""
        record = self._by_ref.get(ref)
        if record is None:
            return []
        if record.state is State.EXPECT_HKS_ANSWER:
            record.reason = reason
        return self._fire(record, Input.HKS_TIMEOUT, now)

    def neighbour_gone(self, coa: bytes, now: float) -> list[Action]:
        """§6.3: "When the neighbor cache entry for the CoA expires, the AR MUST
        disassociate the key and the corresponding CoA"."""
        actions: list[Action] = [StoreKey(key) for key in self.keys.unbind_coa(coa)]
        for record in list(self._records.values()):
            if record.request.care_of_address == coa:
                actions += self._fire(record, Input.NEIGHBOUR_GONE, now)
        return actions

    def next_timer(self) -> float | None:
        candidates = [t for t in (self._next_deadline(), self.keys.next_expiry()) if t is not None]
        return min(candidates) if candidates else None

    def on_timer(self, now: float) -> list[Action]:
        actions: list[Action] = [
            DeleteKey(key.spi, "lifetime ended") for key in self.keys.pop_expired(now)
        ]
        while (when := self._next_deadline()) is not None and when <= now:
            _, ref = heapq.heappop(self._deadlines)
            record = self._by_ref.get(ref)
            if record is not None and record.deadline <= now:
                actions += self._fire(record, Input.DEADLINE, now)
        answers = self._last_verify_answer
        while answers and next(iter(answers.values())) + self.config.trans_interval <= now:
            answers.popitem(last=False)
        return actions

    # ---- facts to inputs -------------------------------------------------------------

    def _copy_input(self, record: Record, wire: bytes, now: float) -> Input:
        """§6.3: the same HKReq again; P10: re-sent at most RETRANS_RATE."""
        if wire != record.wire:
            return Input.CLASH
        if record.state is not State.ANSWERED:
            return Input.COPY
        if now - record.last_sent < self.config.retrans_interval:
            return Input.COPY_TOO_SOON
        return Input.COPY_RESEND

    def _new_verdict(self, record: Record, now: float) -> Input:
        """§6.3 (a new key) and §6.5 (indirect, NULL CoA or the CoA tied to the NAI)."""
        request, nai = record.request, record.nai
        if request.mac(MacSubtype.MN_HKS) is None:
            return Input.NO_MN_HKS_MAC
        if len(self._records) >= self.config.max_records:
            return Input.OVER_CAPACITY
        if self.config.require_timestamp and request.timestamp is None:
            return Input.TIMESTAMP_MISSING
        if request.coa_is_null:
            if not self._null_coa_allowed(nai, now):
                return Input.NULL_COA_REFUSED
            return self._hks_slot(record, Input.NEEDS_HKS, now)
        holder = self.keys.holder_of(request.care_of_address)
        if holder is not None and holder.nai != nai:
            return Input.COA_TAKEN
        if holder is None and self._claims.claimed_by_another(record):
            return Input.COA_TAKEN
        return self._hks_slot(
            record, Input.NEEDS_COA_CHECK if holder is None else Input.NEEDS_HKS, now
        )

    def _hks_slot(self, record: Record, event: Input, now: float) -> Input:
        """Admission control: `event` (on the way to the HKS) if a slot is free for it."""
        if self.admission is not None and (drop := self.admission.may_ask_hks(record.nai, now)):
            record.reason = f"admission: {drop.value}"
            return Input.ADMISSION_REFUSED
        return event

    def _returning_verdict(self, record: Record, now: float, wall: float) -> Input:
        """§6.3.1 (a returning MN) with P6 (timestamps on V requests)."""
        request, nai = record.request, record.nai
        if request.mac(MacSubtype.MN_AR) is None:
            return Input.NO_MN_AR_MAC
        keys = self.keys.for_nai(nai, now)
        if not keys and request.mac(MacSubtype.MN_HKS) is not None:
            return self._new_verdict(record, now)  # §6.3.1: "MAY process ... as though ..."
        if len(self._records) >= self.config.max_records:
            return Input.OVER_CAPACITY
        if request.timestamp is None:
            return Input.TIMESTAMP_MISSING  # P6
        if not keys:
            return Input.NO_KEY
        key = next(
            (k for k in keys if crypto.verify_mac(record.wire, request, MacSubtype.MN_AR, k.hk)),
            None,
        )
        if key is None:
            return Input.MAC_FAILS
        record.key_spi = key.spi
        if self._verify_rate_exceeded(nai, now):
            return Input.TRANS_RATE_EXCEEDED
        if not within_window(request.timestamp, wall, self.config.timestamp_window):
            return Input.TIMESTAMP_STALE
        if not _newer(request, key):
            return Input.TIMESTAMP_STALE
        if request.coa_is_null:
            return (
                Input.VERIFIED_BOUND if self._null_coa_allowed(nai, now) else Input.NULL_COA_REFUSED
            )
        holder = self.keys.holder_of(request.care_of_address)
        if holder is not None and holder.spi == key.spi:
            return Input.VERIFIED_BOUND
        if holder is not None and holder.nai != nai:
            return Input.COA_TAKEN
        if self._claims.claimed_by_another(record):
            return Input.COA_TAKEN
        return Input.NEEDS_BINDING_CHECK

    def _coa_input(self, record: Record, valid: bool, now: float) -> Input:
        if not valid:
            return Input.COA_INVALID
        if record.state is State.EXPECT_COA_CHECK:
            return self._hks_slot(record, Input.COA_VALID, now)
        if record.state is State.EXPECT_BINDING_CHECK:
            assert record.key_spi is not None
            key = self.keys.get(record.key_spi)
            if key is None or not self.keys.alive(key.spi, now):
                return Input.KEY_EXPIRED
            if not _newer(record.request, key):
                return Input.TIMESTAMP_STALE  # P6: a newer V of this key won meanwhile
        return Input.COA_VALID

    def _classify(self, record: Record, answer: HKSAnswer) -> Input:
        """Turn a verified RADIUS answer into the table's input (P7, P8)."""
        if isinstance(answer, HKSAccept):
            problem = accept_problem(answer)
            if problem:
                record.reason = problem
                return Input.HKS_ANSWER_UNUSABLE
            return Input.HKS_ACCEPT
        if answer.response_header is None:
            record.reason = "Access-Reject without HKP-Response-Header (§6.4: silently discard)"
            return Input.HKS_REJECT_SILENT
        try:
            response = decode_message(answer.response_header, self.config.code_points)
        except DecodeError as exc:
            record.reason = f"HKP-Response-Header is malformed: {exc}"
            return Input.HKS_ANSWER_UNUSABLE
        if not isinstance(response, HKResp) or response.message_id != record.request.message_id:
            record.reason = "HKP-Response-Header is not an HKResp to this request"
            return Input.HKS_ANSWER_UNUSABLE
        if response.status == Status.SUCCESS:
            record.reason = "HKP-Response-Header claims Success in an Access-Reject"
            return Input.HKS_ANSWER_UNUSABLE
        record.status = response.status
        return Input.HKS_REJECT_WITH_RESPONSE

    def _null_coa_allowed(self, nai: bytes, now: float) -> bool:
        """§6.5: the NULL CoA belongs to an indirect refresh of a key the MN holds here."""
        policy = self.config.null_coa
        if policy is NullCoA.REFRESH:
            return bool(self.keys.for_nai(nai, now))
        return policy is NullCoA.ALWAYS

    def _verify_rate_exceeded(self, nai: bytes, now: float) -> bool:
        last = self._last_verify_answer.get(nai)
        return last is not None and now - last < self.config.trans_interval

    # ---- the transition table at work ----------------------------------------------------

    def _fire(
        self, record: Record, event: Input, now: float, wall: float | None = None
    ) -> list[Action]:
        do, next_state = transition(record.state, event)
        previous = record.state
        record.state = next_state
        actions = self._HANDLERS[do](self, record, event, now, wall)
        if self.admission is not None:  # Access-Requests in flight, for the cap
            if next_state in _AT_HKS and previous not in _AT_HKS:
                self.admission.asking(record.ref, record.nai)
            elif previous in _AT_HKS and next_state not in _AT_HKS:
                self.admission.answered(record.ref)
        self._claims.track(record)
        if next_state is State.CLOSED:
            self._records.pop(record.key, None)
            self._by_ref.pop(record.ref, None)
            return actions
        if record.ref not in self._by_ref:
            self._records[record.key] = record
            self._by_ref[record.ref] = record
        if next_state is not previous:
            self._arm(record, now)
        return actions

    def _arm(self, record: Record, now: float) -> None:
        cfg = self.config
        if record.state in (State.EXPECT_COA_CHECK, State.EXPECT_BINDING_CHECK):
            record.deadline = now + cfg.coa_check_timeout
        elif record.state is State.EXPECT_HKS_ANSWER:
            record.deadline = now + cfg.hks_deadline
        elif record.state is State.ANSWERED:
            record.deadline = now + cfg.response_cache_time  # P10: after the answer
        else:
            return  # EXPECT_HKS_ANSWER_FOR_DEPARTED keeps the deadline it had
        heapq.heappush(self._deadlines, (record.deadline, record.ref))

    def _do_discard(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return [Discarded(REASONS[event], record.nai)]

    def _do_refuse_admission(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return [Discarded(record.reason or REASONS[event], record.nai)]

    def _do_discard_exchange(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        record.reason = REASONS[event]
        return [self._done(record, Outcome.DISCARDED, now)]

    def _error(self, record: Record, event: Input, now: float, status: Status) -> list[Action]:
        record.response = error_response(record.request, status, self.config.code_points)
        record.status = status
        record.reason = record.reason or REASONS[event]
        return self._send(record, now, Outcome.AR_ERROR)

    def _do_timestamp_reqd(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return self._error(record, event, now, Status.TIMESTAMP_REQD)

    def _do_coa_auth_failed(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return self._error(record, event, now, Status.COA_AUTH_FAILED)

    def _do_hk_verify_failed(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return self._error(record, event, now, Status.HK_VERIFY_FAILED)

    def _do_answer_verified(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return self._bind(record, now, coa=None)

    def _do_bind_and_answer(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return self._bind(record, now, coa=record.request.care_of_address)

    def _bind(self, record: Record, now: float, coa: bytes | None) -> list[Action]:
        """§6.3.1: record the CoA (when one is to be bound); P6: the accepted timestamp."""
        assert record.key_spi is not None
        changed = self.keys.bind(record.key_spi, coa, record.request.timestamp)
        key = changed[-1]
        deadline = self.keys.deadline(key.spi)
        assert deadline is not None
        record.response = verified_response(
            record.request, key, deadline - now, self.config.default_mac_algorithm,
            self.config.code_points,
        )  # fmt: skip
        record.status = Status.SUCCESS
        record.issued_spi = key.spi
        stores: list[Action] = [StoreKey(k) for k in changed]
        return stores + self._send(record, now, Outcome.VERIFIED)

    def _do_ask_coa_validator(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        coa = record.request.care_of_address
        return [ValidateCoA(record.ref, coa, record.nai, record.peer)]

    def _do_ask_hks(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        request = record.request
        return [
            SendAccessRequest(
                record.ref, record.nai, record.wire, record.ar_address, request.care_of_address
            )
        ]

    def _do_resend_cached(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        record.resends += 1
        return self._send(record, now, None)

    def _do_store_key_and_answer(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        accept = record.answer
        assert isinstance(accept, HKSAccept) and accept.handover_key and accept.hks_nonce
        assert wall is not None, "an HKS answer comes with the wall clock (key expiry)"
        request, cfg = record.request, self.config
        lifetime = min(accept.lifetime or cfg.default_lifetime, cfg.max_lifetime)
        key = StoredKey(
            spi=self.keys.allocate_spi(self._random),
            nai=record.nai,
            hk=accept.handover_key,
            care_of_address=None if request.coa_is_null else request.care_of_address,
            expires_at=wall + lifetime,
            prf=request.prf if accept.prf is None else accept.prf,
            ar_address=record.ar_address,
            last_timestamp=request.timestamp,  # P6: the HKReq that created the key
        )
        changed = self.keys.add(key, now + lifetime)
        retired = {old.spi for old in self.keys.surplus(key.nai)}  # issue 15: the bound
        record.response = success_response(
            request, accept, key, lifetime, cfg.default_mac_algorithm, cfg.code_points
        )
        record.status = Status.SUCCESS
        record.issued_spi = key.spi
        stores: list[Action] = [StoreKey(k) for k in [*changed, key] if k.spi not in retired]
        stores += [DeleteKey(spi, RETIRED) for spi in sorted(retired)]
        return stores + self._send(record, now, Outcome.ISSUED)

    def _do_forward_hks_response(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        reject = record.answer
        assert isinstance(reject, HKSReject) and reject.response_header is not None
        record.response = reject.response_header  # P7: forwarded unchanged (status: _classify)
        return self._send(record, now, Outcome.HKS_ERROR)

    def _dropper(outcome: Outcome) -> _Handler:  # type: ignore[misc]
        def drop(
            self: AccessRouter, record: Record, event: Input, now: float, wall: float | None
        ) -> list[Action]:
            return [self._done(record, outcome, now)]

        return drop

    def _do_drop_abandoned(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        record.reason = record.reason or "CoA check deadline passed"
        return [self._done(record, Outcome.ABANDONED, now)]

    def _do_cancel_hks_and_drop(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        record.reason = record.reason or "HKS deadline passed"
        return [CancelAccessRequest(record.ref), self._done(record, Outcome.ABANDONED, now)]

    def _do_note_departed(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        record.reason = "neighbour entry of the CoA went while the HKS had the request"
        return []

    def _do_nothing(
        self, record: Record, event: Input, now: float, wall: float | None
    ) -> list[Action]:
        return []

    _HANDLERS: dict[Do, _Handler] = {
        Do.DISCARD: _do_discard,
        Do.REFUSE_ADMISSION: _do_refuse_admission,
        Do.DISCARD_EXCHANGE: _do_discard_exchange,
        Do.ANSWER_TIMESTAMP_REQD: _do_timestamp_reqd,
        Do.ANSWER_COA_AUTH_FAILED: _do_coa_auth_failed,
        Do.ANSWER_HK_VERIFY_FAILED: _do_hk_verify_failed,
        Do.ANSWER_VERIFIED: _do_answer_verified,
        Do.ASK_COA_VALIDATOR: _do_ask_coa_validator,
        Do.ASK_HKS: _do_ask_hks,
        Do.RESEND_CACHED: _do_resend_cached,
        Do.STORE_KEY_AND_ANSWER: _do_store_key_and_answer,
        Do.BIND_AND_ANSWER: _do_bind_and_answer,
        Do.FORWARD_HKS_RESPONSE: _do_forward_hks_response,
        Do.DROP_HKS_DISCARDED: _dropper(Outcome.HKS_DISCARDED),
        Do.DROP_HKS_SILENT: _dropper(Outcome.HKS_SILENT),
        Do.DROP_HKS_UNUSABLE: _dropper(Outcome.HKS_UNUSABLE),
        Do.DROP_DEPARTED: _dropper(Outcome.MN_DEPARTED),
        Do.DROP_ABANDONED: _do_drop_abandoned,
        Do.CANCEL_HKS_AND_DROP: _do_cancel_hks_and_drop,
        Do.NOTE_DEPARTED: _do_note_departed,
        Do.NOTHING: _do_nothing,
        Do.EXPIRE: _do_nothing,
    }
    del _dropper

    # ---- helpers --------------------------------------------------------------------------

    def _next_deadline(self) -> float | None:
        while self._deadlines:
            when, ref = self._deadlines[0]
            record = self._by_ref.get(ref)
            if record is not None and record.deadline == when:
                return when
            heapq.heappop(self._deadlines)
        return None

    def _send(self, record: Record, now: float, outcome: Outcome | None) -> list[Action]:
        """Send the record's HKResp; `outcome` for a first answer, None for a re-send."""
        assert record.response is not None
        record.last_sent = now
        if record.key_spi is not None:  # TRANS_RATE counts answers to verified V requests
            self._last_verify_answer[record.nai] = now
            self._last_verify_answer.move_to_end(record.nai)
        actions: list[Action] = [SendHKResp(record.peer, record.ar_address, record.response)]
        if outcome is not None:
            actions.append(self._done(record, outcome, now))
        return actions

    def _done(self, record: Record, outcome: Outcome, now: float) -> ExchangeDone:
        if self.admission is not None and outcome in (Outcome.ISSUED, Outcome.VERIFIED):
            self.admission.completed(record.nai, now)
        return ExchangeDone(
            nai=record.nai,
            message_id=record.request.message_id,
            care_of_address=record.request.care_of_address,
            outcome=outcome,
            status=record.status,
            spi=record.issued_spi,
            started=record.started,
            finished=now,
            reason=record.reason,
        )


RETIRED = "retired: a newer key of the NAI beyond max_keys_per_nai"
_AT_HKS = (State.EXPECT_HKS_ANSWER, State.EXPECT_HKS_ANSWER_FOR_DEPARTED)


def _newer(request: HKReq, key: StoredKey) -> bool:
    """P6: strictly greater than the last timestamp accepted for the key."""
    return request.timestamp is not None and (
        key.last_timestamp is None or request.timestamp > key.last_timestamp
    )
