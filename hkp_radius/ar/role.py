"""The AR role (draft §6.3, §6.3.1, §6.5; PROFILE P6, P7, P9, P10), sans-I/O.

Bytes and answers in, actions out (hkp_radius.ar_events); time (`now`, wall-clock
Unix seconds, so stored key lifetimes survive restarts) and randomness
(`random_bytes(n)`, for SPIs) are injected. Per-request states and their legal
transitions live in hkp_radius.ar_state; keys in hkp_radius.ar_keys.

Division of work with the adapters: RADIUS retransmission and fail-over inside a
realm's server group belong to the RADIUS adapter, which reports exactly one
`receive_radius_answer` or `radius_timeout` per SendAccessRequest. The role keeps its
own `hks_deadline` per request as a safety net, and every other timer (response cache,
CoA check, key lifetimes) is a value: `next_timer()` / `on_timer(now)`.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from hkp_radius import crypto
from hkp_radius.ar.config import ARConfig
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
from hkp_radius.ar.state import Do, Input, State, transition
from hkp_radius.constants import (
    HK_MAX_LENGTH,
    HK_MAX_LIFETIME,
    IPV6_ADDRESS_LENGTH,
    NONCE_MAX_LENGTH,
    NONCE_MIN_LENGTH,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.errors import DecodeError, LocalProtocolError
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import HandoverNonce, MacOption, Option, Timestamp

__all__ = ["ARConfig", "AccessRouter"]


@dataclass
class _Record:
    """One (NAI, Message ID) the AR is handling."""

    ref: int
    request: HKReq
    nai: bytes
    wire: bytes
    peer: Hashable
    ar_address: bytes
    started: float
    state: State = State.RECEIVED
    deadline: float = math.inf
    response: bytes | None = None  # prepared or sent HKResp
    status: int | None = None
    last_sent: float = -math.inf
    key_spi: int | None = None  # returning MN: the key whose MN-AR MAC verified
    issued_spi: int | None = None
    verify_path: bool = False
    departed: bool = False  # §6.3: the MN left while the HKS had the request
    reason: str = ""
    answer: HKSAnswer | None = field(default=None, repr=False)

    @property
    def key(self) -> tuple[bytes, int]:
        return (self.nai, self.request.message_id)


class AccessRouter:
    """The AR's protocol decisions; see the module docstring."""

    def __init__(self, config: ARConfig, random_bytes: Callable[[int], bytes]) -> None:
        self.config = config
        self._random = random_bytes
        self.keys = KeyTable()
        self._records: dict[tuple[bytes, int], _Record] = {}
        self._by_ref: dict[int, _Record] = {}
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

    # ---- inputs ----------------------------------------------------------------------

    def load_keys(self, keys: Iterable[StoredKey], now: float) -> list[Action]:
        """Restore persisted keys (restart); expired ones are deleted."""
        return [DeleteKey(key.spi, "expired") for key in self.keys.load(keys, now)]

    def receive_hkreq(
        self, wire: bytes, peer: Hashable, ar_address: bytes, now: float
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
        if not _is_utf8(nai):
            return [Discarded("the MN-ID is not a UTF-8 NAI (RFC 7542), cannot be a User-Name")]
        if message.verify:
            return self._returning(message, nai, wire, peer, ar_address, now)
        return self._new(message, nai, wire, peer, ar_address, now)

    def coa_validated(self, ref: int, valid: bool, now: float) -> list[Action]:
        record = self._by_ref.get(ref)
        if record is None:
            return []
        return self._fire(record, Input.COA_VALID if valid else Input.COA_INVALID, now)

    def receive_radius_answer(self, ref: int, answer: HKSAnswer, now: float) -> list[Action]:
        record = self._by_ref.get(ref)
        if record is None:
            return []  # cancelled meanwhile
        record.answer = answer
        return self._fire(record, self._classify(record, answer), now)

    def radius_timeout(
        self, ref: int, now: float, reason: str = "no answer from any HKS of the realm"
    ) -> list[Action]:
        """Every server of the realm, every retry, no answer (§6.3); or no server at all."""
        record = self._by_ref.get(ref)
        if record is None:
            return []
        if not record.departed:
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
        while answers and next(iter(answers.values())) + self._rate() <= now:
            answers.popitem(last=False)
        return actions

    # ---- §6.3: a new key ----------------------------------------------------------------

    def _new(
        self, request: HKReq, nai: bytes, wire: bytes, peer: Hashable, ar: bytes, now: float
    ) -> list[Action]:
        if request.mac(MacSubtype.MN_HKS) is None:
            return [Discarded("no MN-HKS MAC (§6.3: MUST silently discard)", nai)]
        existing = self._records.get((nai, request.message_id))
        if existing is not None:
            return self._fire(existing, Input.DUPLICATE_HKREQ, now)
        record = self._open(request, nai, wire, peer, ar, now)
        if record is None:
            return [Discarded("too many requests in progress", nai)]
        coa = request.care_of_address
        if self.config.require_timestamp and request.timestamp is None:
            self._prepare_error(record, Status.TIMESTAMP_REQD, "AR requires timestamps (§6.3)")
            return self._fire(record, Input.ANSWER_NOW, now)
        if request.coa_is_null:
            if not self.config.accept_null_coa:
                self._prepare_error(record, Status.COA_AUTH_FAILED, "NULL CoA refused by policy")
                return self._fire(record, Input.ANSWER_NOW, now)
            return self._fire(record, Input.NEEDS_HKS, now)  # §6.5: indirect exchange
        holder = self.keys.holder_of(coa)
        if holder is not None and holder.nai != nai:
            self._prepare_error(record, Status.COA_AUTH_FAILED, "CoA bound to another MN (§7.4)")
            return self._fire(record, Input.ANSWER_NOW, now)
        if holder is not None:
            return self._fire(record, Input.NEEDS_HKS, now)  # §6.5: the CoA tied to the NAI
        if self._claimed_in_flight(coa, record):
            self._prepare_error(record, Status.COA_AUTH_FAILED, "CoA claimed by another MN (§7.4)")
            return self._fire(record, Input.ANSWER_NOW, now)
        return self._fire(record, Input.NEEDS_COA_CHECK, now)

    def _claimed_in_flight(self, coa: bytes, record: _Record) -> bool:
        """§7.4: "The AR must ensure that the CoA claimed by the MN does not belong to any
        other node": another MN's request for the same CoA is still in progress."""
        return any(
            other.nai != record.nai
            and other.request.care_of_address == coa
            and other.state not in (State.ANSWERED, State.CLOSED)
            for other in self._records.values()
        )

    # ---- §6.3.1: a returning MN ---------------------------------------------------------

    def _returning(
        self, request: HKReq, nai: bytes, wire: bytes, peer: Hashable, ar: bytes, now: float
    ) -> list[Action]:
        if request.mac(MacSubtype.MN_AR) is None:
            return [Discarded("V set without an MN-AR MAC (§6.3.1: MUST silently drop)", nai)]
        existing = self._records.get((nai, request.message_id))
        if existing is not None:
            return self._fire(existing, Input.DUPLICATE_HKREQ, now)
        keys = self.keys.for_nai(nai, now)
        if not keys and request.mac(MacSubtype.MN_HKS) is not None:
            return self._new(request, nai, wire, peer, ar, now)  # §6.3.1: "MAY process ..."
        if self._verify_rate_exceeded(nai, now):
            return [Discarded("TRANS_RATE: answered this MN less than a second ago", nai)]
        if not keys:
            record = self._open(request, nai, wire, peer, ar, now)
            if record is None:
                return [Discarded("too many requests in progress", nai)]
            record.verify_path = True
            self._prepare_error(record, Status.HK_VERIFY_FAILED, "no key for this NAI (§6.3.1)")
            return self._fire(record, Input.ANSWER_NOW, now)
        key = next(
            (k for k in keys if crypto.verify_mac(wire, request, MacSubtype.MN_AR, k.hk)), None
        )
        if key is None:
            return [
                self._done_without_record(
                    request, nai, now, "MN-AR MAC does not verify (§6.3.1: silently discard)"
                )
            ]
        record = self._open(request, nai, wire, peer, ar, now)
        if record is None:
            return [Discarded("too many requests in progress", nai)]
        record.verify_path = True
        record.key_spi = key.spi
        coa = request.care_of_address
        holder = None if request.coa_is_null else self.keys.holder_of(coa)
        if holder is not None and holder.nai != nai:
            self._prepare_error(record, Status.COA_AUTH_FAILED, "CoA bound to another MN (§6.3.1)")
            return self._fire(record, Input.ANSWER_NOW, now)
        if request.coa_is_null or (holder is not None and holder.spi == key.spi):
            self._prepare_verified(record, key, now)
            return self._fire(record, Input.ANSWER_NOW, now)
        if self._claimed_in_flight(coa, record):
            self._prepare_error(
                record, Status.COA_AUTH_FAILED, "CoA claimed by another MN (§6.3.1)"
            )
            return self._fire(record, Input.ANSWER_NOW, now)
        return self._fire(record, Input.NEEDS_BINDING_CHECK, now)

    # ---- the transition table at work ----------------------------------------------------

    def _fire(self, record: _Record, event: Input, now: float) -> list[Action]:
        do, next_state = transition(record.state, event)
        previous = record.state
        record.state = next_state
        actions = self._HANDLERS[do](self, record, event, now)
        if next_state is State.CLOSED:
            self._close(record)
        elif next_state is not previous:
            self._arm(record, now)
        return actions

    def _arm(self, record: _Record, now: float) -> None:
        cfg = self.config
        if record.state in (State.EXPECT_COA_CHECK, State.EXPECT_BINDING_CHECK):
            record.deadline = now + cfg.coa_check_timeout
        elif record.state is State.EXPECT_HKS_ANSWER:
            record.deadline = now + cfg.hks_deadline
        elif record.state is State.ANSWERED:
            record.deadline = now + cfg.response_cache_time
        else:
            return  # EXPECT_HKS_ANSWER_FOR_DEPARTED keeps the deadline it had
        heapq.heappush(self._deadlines, (record.deadline, record.ref))

    def _do_ask_coa_validator(self, record: _Record, event: Input, now: float) -> list[Action]:
        coa = record.request.care_of_address
        return [ValidateCoA(record.ref, coa, record.nai, record.peer)]

    def _do_ask_hks(self, record: _Record, event: Input, now: float) -> list[Action]:
        return [
            SendAccessRequest(
                record.ref,
                record.nai,
                record.wire,
                record.ar_address,
                record.request.care_of_address,
            )
        ]

    def _do_answer(self, record: _Record, event: Input, now: float) -> list[Action]:
        return self._send(record, now, first=True)

    def _do_discard(self, record: _Record, event: Input, now: float) -> list[Action]:
        return [Discarded("retransmission while the request is pending (§6.3)", record.nai)]

    def _do_resend_cached(self, record: _Record, event: Input, now: float) -> list[Action]:
        if now - record.last_sent < self._rate():
            return [Discarded("RETRANS_RATE: cached HKResp re-sent too recently", record.nai)]
        return self._send(record, now, first=False)

    def _do_refuse_coa(self, record: _Record, event: Input, now: float) -> list[Action]:
        self._prepare_error(record, Status.COA_AUTH_FAILED, "CoA validation failed (§6.3)")
        return self._send(record, now, first=True)

    def _do_store_key_and_answer(self, record: _Record, event: Input, now: float) -> list[Action]:
        accept = record.answer
        assert isinstance(accept, HKSAccept) and accept.handover_key and accept.hks_nonce
        request = record.request
        lifetime = min(accept.lifetime or self.config.default_lifetime, self.config.max_lifetime)
        spi = self.keys.allocate_spi(self._random)
        prf = request.prf if accept.prf is None else accept.prf
        key = StoredKey(
            spi=spi,
            nai=record.nai,
            hk=accept.handover_key,
            care_of_address=None if request.coa_is_null else request.care_of_address,
            expires_at=now + lifetime,
            prf=prf,
            ar_address=record.ar_address,
        )
        changed = self.keys.add(key)
        options: list[Option] = [HandoverNonce(NonceSubtype.HKS_NONCE, accept.hks_nonce)]
        timestamp = accept.timestamp if accept.timestamp is not None else request.timestamp
        if timestamp is not None:
            options.append(Timestamp(timestamp))
        algorithm = self._mac_algorithm(request, MacSubtype.MN_HKS)
        options.append(MacOption(MacSubtype.MN_AR, algorithm))
        response = HKResp(
            request.message_id, False, prf, Status.SUCCESS, lifetime, spi, tuple(options)
        )
        record.response = crypto.sign_message(
            response, {MacSubtype.MN_AR: key.hk}, self.config.code_points
        )
        record.status = Status.SUCCESS
        record.issued_spi = spi
        return (
            [StoreKey(k) for k in changed] + [StoreKey(key)] + self._send(record, now, first=True)
        )

    def _do_bind_and_answer(self, record: _Record, event: Input, now: float) -> list[Action]:
        key = self.keys.get(record.key_spi) if record.key_spi is not None else None
        coa = record.request.care_of_address
        holder = self.keys.holder_of(coa)
        actions: list[Action] = []
        if key is None or key.expires_at <= now:
            self._prepare_error(record, Status.HK_VERIFY_FAILED, "key expired during the CoA check")
        elif holder is not None and holder.nai != record.nai:
            self._prepare_error(record, Status.COA_AUTH_FAILED, "CoA bound to another MN")
        else:
            actions = [StoreKey(k) for k in self.keys.bind(key.spi, coa)]
            self._prepare_verified(record, key, now)
        return actions + self._send(record, now, first=True)

    def _do_forward_hks_response(self, record: _Record, event: Input, now: float) -> list[Action]:
        reject = record.answer
        assert isinstance(reject, HKSReject) and reject.response_header is not None
        record.response = reject.response_header  # P7: forwarded unchanged (status: _classify)
        return self._send(record, now, first=True)

    def _do_drop_silently(self, record: _Record, event: Input, now: float) -> list[Action]:
        outcome = {
            Input.HKS_REJECT_SILENT: Outcome.HKS_DISCARDED,
            Input.HKS_TIMEOUT: Outcome.HKS_SILENT,
            Input.HKS_ANSWER_UNUSABLE: Outcome.HKS_UNUSABLE,
            Input.DEADLINE: Outcome.ABANDONED,
        }.get(event, Outcome.HKS_DISCARDED)
        if record.departed:
            outcome = Outcome.MN_DEPARTED
        return [self._done(record, outcome, now)]

    def _do_cancel_hks_and_drop(self, record: _Record, event: Input, now: float) -> list[Action]:
        record.reason = record.reason or "HKS deadline passed"
        return [CancelAccessRequest(record.ref), self._done(record, Outcome.ABANDONED, now)]

    def _do_note_departed(self, record: _Record, event: Input, now: float) -> list[Action]:
        record.departed = True
        record.reason = "neighbour entry of the CoA went while the HKS had the request"
        return []

    def _do_nothing(self, record: _Record, event: Input, now: float) -> list[Action]:
        return []

    _HANDLERS: dict[Do, Callable[[AccessRouter, _Record, Input, float], list[Action]]] = {
        Do.ASK_COA_VALIDATOR: _do_ask_coa_validator,
        Do.ASK_HKS: _do_ask_hks,
        Do.ANSWER: _do_answer,
        Do.DISCARD: _do_discard,
        Do.RESEND_CACHED: _do_resend_cached,
        Do.REFUSE_COA: _do_refuse_coa,
        Do.STORE_KEY_AND_ANSWER: _do_store_key_and_answer,
        Do.BIND_AND_ANSWER: _do_bind_and_answer,
        Do.FORWARD_HKS_RESPONSE: _do_forward_hks_response,
        Do.DROP_SILENTLY: _do_drop_silently,
        Do.CANCEL_HKS_AND_DROP: _do_cancel_hks_and_drop,
        Do.NOTE_DEPARTED: _do_note_departed,
        Do.NOTHING: _do_nothing,
        Do.EXPIRE: _do_nothing,
    }

    # ---- helpers --------------------------------------------------------------------------

    def _classify(self, record: _Record, answer: HKSAnswer) -> Input:
        """Turn a verified RADIUS answer into the table's input (P7, P8)."""
        if isinstance(answer, HKSAccept):
            problem = _accept_problem(answer)
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

    def _open(
        self, request: HKReq, nai: bytes, wire: bytes, peer: Hashable, ar: bytes, now: float
    ) -> _Record | None:
        if len(self._records) >= self.config.max_records:
            return None
        record = _Record(self._next_ref, request, nai, wire, peer, ar, now)
        self._next_ref += 1
        self._records[record.key] = record
        self._by_ref[record.ref] = record
        return record

    def _close(self, record: _Record) -> None:
        self._records.pop(record.key, None)
        self._by_ref.pop(record.ref, None)

    def _next_deadline(self) -> float | None:
        while self._deadlines:
            when, ref = self._deadlines[0]
            record = self._by_ref.get(ref)
            if record is not None and record.deadline == when:
                return when
            heapq.heappop(self._deadlines)
        return None

    def _rate(self) -> float:
        return self.config.retransmit_interval

    def _verify_rate_exceeded(self, nai: bytes, now: float) -> bool:
        last = self._last_verify_answer.get(nai)
        return last is not None and now - last < self._rate()

    def _mac_algorithm(self, request: HKReq, subtype: MacSubtype) -> int:
        option = request.mac(subtype)
        if option is not None and crypto.supported_mac_algorithm(option.algorithm):
            return option.algorithm
        return self.config.default_mac_algorithm

    def _prepare_error(self, record: _Record, status: Status, reason: str) -> None:
        """P7: AR errors carry no MAC option (no key is shared yet)."""
        request = record.request
        response = HKResp(request.message_id, False, request.prf, status)
        record.response = response.encode(self.config.code_points)
        record.status = status
        record.reason = reason

    def _prepare_verified(self, record: _Record, key: StoredKey, now: float) -> None:
        """§6.3.1: "send a response with the verified bit set including a MAC"."""
        request = record.request
        lifetime = max(0, min(HK_MAX_LIFETIME, math.floor(key.remaining_lifetime(now))))
        options: list[Option] = []
        if request.timestamp is not None:
            options.append(Timestamp(request.timestamp))
        options.append(MacOption(MacSubtype.MN_AR, self._mac_algorithm(request, MacSubtype.MN_AR)))
        response = HKResp(
            request.message_id, True, key.prf, Status.SUCCESS, lifetime, key.spi, tuple(options)
        )
        record.response = crypto.sign_message(
            response, {MacSubtype.MN_AR: key.hk}, self.config.code_points
        )
        record.status = Status.SUCCESS
        record.issued_spi = key.spi

    def _send(self, record: _Record, now: float, *, first: bool) -> list[Action]:
        assert record.response is not None
        record.last_sent = now
        if record.verify_path:
            self._last_verify_answer[record.nai] = now
            self._last_verify_answer.move_to_end(record.nai)
        actions: list[Action] = [SendHKResp(record.peer, record.ar_address, record.response)]
        if first:
            outcome = self._answer_outcome(record)
            actions.append(self._done(record, outcome, now))
        return actions

    def _answer_outcome(self, record: _Record) -> Outcome:
        if record.status == Status.SUCCESS:
            return Outcome.VERIFIED if record.key_spi is not None else Outcome.ISSUED
        if isinstance(record.answer, HKSReject):
            return Outcome.HKS_ERROR
        return Outcome.AR_ERROR

    def _done(self, record: _Record, outcome: Outcome, now: float) -> ExchangeDone:
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

    def _done_without_record(
        self, request: HKReq, nai: bytes, now: float, reason: str
    ) -> ExchangeDone:
        return ExchangeDone(
            nai,
            request.message_id,
            request.care_of_address,
            Outcome.DISCARDED,
            None,
            None,
            now,
            now,
            reason,
        )


def _accept_problem(accept: HKSAccept) -> str:
    """Why an Access-Accept cannot yield a key (P8), or "" when it can."""
    if not accept.handover_key or len(accept.handover_key) > HK_MAX_LENGTH:
        return "Access-Accept without a usable HKP-Handover-Key"
    nonce = accept.hks_nonce
    if nonce is None or not NONCE_MIN_LENGTH <= len(nonce) <= NONCE_MAX_LENGTH:
        return "Access-Accept without a usable HKP-HKS-Nonce"
    if accept.lifetime is not None and accept.lifetime < 1:
        return "Access-Accept with HKP-Key-Lifetime 0"
    if accept.prf is not None and not 0 <= accept.prf <= 7:
        return "Access-Accept with an HKP-PRF outside the 3-bit field"
    if accept.timestamp is not None and not 0 <= accept.timestamp < 1 << 64:
        return "Access-Accept with an HKP-Timestamp that is not 64 bits"
    return ""


def _is_utf8(nai: bytes) -> bool:
    try:
        nai.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
