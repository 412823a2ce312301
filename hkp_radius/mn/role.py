"""The MN role (draft §6.2, §6.5; PROFILE P5, P7, P10), sans-I/O.

Every state rule of an MN exchange is in hkp_radius/mn/state.py (`State`, `Input`,
`Action`, `TRANSITIONS`); this module classifies what happens into an `Input` and
carries out the `Action` the table names.

The role convention (docs/architecture.md): `now` is monotonic seconds for timers and
elapsed times; `wall` (Unix seconds) is used only where a time goes on the wire (the
Timestamp option) or is persisted (a held key's expiry); randomness (`random(n) -> n
bytes`) is an argument. `request_key` / `verify_key` / `refresh_key`,
`receive_datagram` and `on_timer` each return the list of outputs (hkp_radius/mn/events.py)
they caused, datagrams to send included; the adapter arms one timer at `next_timer()`.

Decisions (docs/decisions.md, "## MN"):
- A retransmission re-sends the same bytes (same Message ID, nonce and timestamp, §6.2.1);
  at most N_HO_KEYTRIES retransmissions follow the first transmission.
- A corrected request (after TIMESTAMP_REQD, INVALID_TIMESTAMP, INVALID_PRF_ALG,
  INVALID_MAC_ALG, HK_VERIFY_FAILED or a CoA_AUTH_FAILED wait) is a new HKReq with a new
  Message ID: the AR re-sends its cached answer to a repeated Message ID (§6.3).
- Errors are honoured at once only when their MN-HKS MAC verifies (P7). An error without
  one is a hint (P7 v1.1): the exchange keeps accepting an authenticated answer to the
  same Message ID until the retransmission timer fires, and only then acts on the hint
  (CoA_AUTH_FAILED: wait and retry; TIMESTAMP_REQD: resend with a timestamp;
  HK_VERIFY_FAILED: full MN-HKS request). An unsigned ADMINISTRATIVELY_PROHIBITED,
  INVALID_TIMESTAMP, INVALID_PRF_ALG or INVALID_MAC_ALG changes nothing.
- A verify that runs out of tries unanswered falls back to a full MN-HKS request
  (§6.2.3); the held key stays until a new one replaces it.
- Timestamps (hkp_radius/mn/clock.py) stay above the last successful one (§5.2.3).
"""

from __future__ import annotations

from hkp_radius import crypto
from hkp_radius.constants import (
    IPV6_ADDRESS_LENGTH,
    NONCE_LENGTH,
    NULL_COA,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.errors import DecodeError, LocalProtocolError
from hkp_radius.mn.clock import RandomSource, TimestampClock, echoes_low_bits, seconds_correction
from hkp_radius.mn.config import MESSAGE_ID_REUSE_GUARD, MNConfig
from hkp_radius.mn.events import (
    Datagram,
    Discarded,
    ErrorReceived,
    GaveUp,
    KeyEstablished,
    Kind,
    Output,
    RequestSent,
    VerifyUnanswered,
)
from hkp_radius.mn.keys import HeldKey, KeyStore, format_address
from hkp_radius.mn.state import FINISHED, Action, Input, State, transition
from hkp_radius.mn.verdict import NO_CORRECTION, Correction, Verdict
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
)

# Corrections (new HKReqs answering an error) per exchange: one per correctable status
# (TIMESTAMP_REQD, INVALID_PRF_ALG, INVALID_MAC_ALG, INVALID_TIMESTAMP, HK_VERIFY_FAILED or
# an unanswered verify) can each be needed once; more means the peers disagree and
# retrying will not help.
MAX_CORRECTIONS = 5
# Draft §6.2.2.1: retry CoA_AUTH_FAILED "after a random time greater than
# HK_RETRY_INTERVAL": interval * (1 + u * jitter), u uniform in (0, 1].
COA_RETRY_JITTER = 0.5
# Errors the AR sends without a MAC (P7); unsigned, they are the only actionable hints.
AR_ERRORS = frozenset({Status.COA_AUTH_FAILED, Status.TIMESTAMP_REQD, Status.HK_VERIFY_FAILED})


class _Exchange:
    """One key exchange with one AR; mutable, owned by MobileNode."""

    def __init__(self, number: int, kind: Kind, ar_id: bytes, coa: bytes, now: float) -> None:
        self.number = number
        self.kind = kind
        self.ar_id = ar_id
        self.care_of_address = coa
        self.started_at = now
        self.state = State.EXPECT_HKRESP
        self.message_id = 0
        self.earlier_message_ids: set[int] = set()  # replaced by corrections
        self.prf = 0
        self.mac_algorithm = 0
        self.mn_nonce = b""
        self.timestamp: int | None = None
        self.clock_offset = 0.0  # the offset `timestamp` was made with
        self.wire = b""
        self.transmissions = 0
        self.coa_retries = 0
        self.corrections = 0
        self.deadline: float | None = None
        self.last_status: int | None = None
        self.hint: Verdict | None = None  # P7 v1.1: noted, acted on at the timer


class MobileNode:
    """The MN side of the protocol for one identity (NAI, HMK)."""

    def __init__(
        self,
        config: MNConfig,
        random: RandomSource,
        keys: KeyStore | None = None,
        clock_offset: float = 0.0,
    ) -> None:
        self.config = config
        self.keys = keys if keys is not None else KeyStore()
        self.clock = TimestampClock(random, clock_offset)  # P5, §5.2.3
        self.prohibited: set[bytes] = set()  # AR-IDs that answered ADMINISTRATIVELY_PROHIBITED
        self.use_timestamps = config.use_timestamps
        self.prf = config.prf
        self.mac_algorithm = config.mac_algorithm
        self._random = random
        self._next_message_id = random(1)[0]
        self._exchanges: dict[int, _Exchange] = {}
        self._last_sent: dict[tuple[bytes, int], float] = {}  # (AR-ID, Message ID) -> when
        self._numbers = 0

    @property
    def clock_offset(self) -> float:
        """Seconds added to `wall` for timestamps (P5), learnt from INVALID_TIMESTAMP."""
        return self.clock.offset

    @clock_offset.setter
    def clock_offset(self, offset: float) -> None:
        self.clock.offset = offset

    # ---- commands: each returns its outputs, the exchange's RequestSent first --------

    def request_key(
        self, ar_id: bytes, care_of_address: bytes, now: float, wall: float
    ) -> list[Output]:
        """Draft §6.2.1: ask `ar_id` for a new HK bound to `care_of_address` (the MN's
        own address for a direct request; NULL_COA only as §6.5 allows)."""
        return self._start(Kind.REQUEST, ar_id, care_of_address, now, wall)

    def verify_key(
        self, ar_id: bytes, care_of_address: bytes, now: float, wall: float
    ) -> list[Output]:
        """Draft §6.2.3: returning to `ar_id`, prove possession of the held key (V flag)."""
        if self.keys.get(self.config.nai, ar_id, wall) is None:
            raise LocalProtocolError(
                f"no unexpired key held for AR {format_address(ar_id)}: request one first"
            )
        return self._start(Kind.VERIFY, ar_id, care_of_address, now, wall)

    def refresh_key(self, ar_id: bytes, now: float, wall: float) -> list[Output]:
        """Draft §6.5: establish a key with an AR not attached to; the CoA is NULL."""
        return self._start(Kind.REFRESH, ar_id, NULL_COA, now, wall)

    def _start(self, kind: Kind, ar_id: bytes, coa: bytes, now: float, wall: float) -> list[Output]:
        if len(ar_id) != IPV6_ADDRESS_LENGTH or len(coa) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("AR-ID and CoA must be 16-octet IPv6 addresses")
        if ar_id in self.prohibited:
            raise LocalProtocolError(
                f"AR {format_address(ar_id)} answered ADMINISTRATIVELY_PROHIBITED: "
                "draft §6.2.2.1 forbids more HKReqs via it"
            )
        exchange = _Exchange(self._numbers + 1, kind, ar_id, coa, now)
        out: list[Output] = []
        self._send_new(exchange, now, wall, out)  # raises before anything is kept
        self._numbers += 1
        self._exchanges[exchange.number] = exchange
        return out

    # ---- adapter interface ---------------------------------------------------------

    def next_timer(self) -> float | None:
        deadlines = [e.deadline for e in self._exchanges.values() if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float, wall: float) -> list[Output]:
        out: list[Output] = []
        for exchange in list(self._exchanges.values()):
            if exchange.deadline is not None and exchange.deadline <= now:
                self._apply(exchange, self._timer_verdict(exchange), now, wall, out)
        return out

    def active(self) -> int:
        """How many exchanges are not finished."""
        return sum(e.state not in FINISHED for e in self._exchanges.values())

    def state_of(self, exchange: int) -> State:
        """The exchange's state; CLOSED once it is forgotten (or never was)."""
        found = self._exchanges.get(exchange)
        return found.state if found else State.CLOSED

    def finished(self, exchange: int) -> bool:
        return self.state_of(exchange) in FINISHED

    def receive_datagram(self, data: bytes, ar_id: bytes, now: float, wall: float) -> list[Output]:
        """An MH arrived from `ar_id`. Anything not a valid answer is silently discarded."""
        try:
            message = decode_message(data, self.config.code_points)
        except DecodeError as exc:
            return [Discarded(None, f"malformed: {exc}")]
        if not isinstance(message, HKResp):
            return [Discarded(None, "not an HKResp")]
        exchange = next(
            (
                e
                for e in self._exchanges.values()
                if e.ar_id == ar_id
                and (e.message_id == message.message_id
                     or message.message_id in e.earlier_message_ids)
            ),
            None,
        )  # fmt: skip
        if exchange is None:  # §6.2.2: a Message ID we are not waiting on
            return [Discarded(None, f"foreign Message ID {message.message_id}")]
        verdict = self._classify(exchange, message, data)
        out: list[Output] = []
        if message.status != Status.SUCCESS and verdict.input not in (
            Input.INVALID_ANSWER,
            Input.LATE_ANSWER,
        ):
            exchange.last_status = message.status
            out.append(
                ErrorReceived(exchange.number, message.status, verdict.authenticated,
                              verdict.reaction)
            )  # fmt: skip
        self._apply(exchange, verdict, now, wall, out, message)
        return out

    # ---- classification: HKResp or timer -> Input -----------------------------------

    def _timer_verdict(self, exchange: _Exchange) -> Verdict:
        if exchange.state is State.EXPECT_RETRY_TIME:
            return Verdict(Input.RETRY_TIME, "the CoA_AUTH_FAILED wait is over")
        if exchange.state in FINISHED:
            return Verdict(Input.LINGER_OVER, "forgotten")
        if exchange.hint is not None:  # P7 v1.1: no authenticated answer came: act now
            return exchange.hint
        if exchange.transmissions <= self.config.max_retransmissions:
            return Verdict(Input.RESPONSE_TIMEOUT, "no answer yet")
        if exchange.kind is Kind.VERIFY and exchange.corrections < MAX_CORRECTIONS:
            return Verdict(Input.VERIFY_UNANSWERED, "verify unanswered")
        return Verdict(Input.TRIES_EXHAUSTED, "no answer")

    def _classify(self, exchange: _Exchange, resp: HKResp, wire: bytes) -> Verdict:
        if exchange.state is not State.EXPECT_HKRESP or resp.message_id != exchange.message_id:
            return Verdict(Input.LATE_ANSWER, f"late answer in state {exchange.state.value}")
        if resp.status == Status.SUCCESS:
            return self._classify_success(exchange, resp, wire)
        return self._classify_error(exchange, resp, wire)

    def _classify_success(self, exchange: _Exchange, resp: HKResp, wire: bytes) -> Verdict:
        def invalid(reason: str) -> Verdict:
            return Verdict(Input.INVALID_ANSWER, reason)

        mac = resp.mac(MacSubtype.MN_AR)
        if mac is None:  # §6.2.2: MUST silently discard
            return invalid("success without an MN-AR MAC")
        if not crypto.supported_mac_algorithm(mac.algorithm):
            return invalid(f"MN-AR MAC of unsupported algorithm {mac.algorithm}")
        if resp.verify:
            held = self.keys.get(self.config.nai, exchange.ar_id)
            if exchange.kind is not Kind.VERIFY or held is None:
                return invalid("V flag set but no verify was asked")
            if not crypto.verify_mac(wire, resp, MacSubtype.MN_AR, held.hk):
                return invalid("MN-AR MAC does not verify with the held key")
            return Verdict(Input.KEY_RESPONSE, "held key verified", hk=held.hk, verified=True)
        hks_nonce = resp.hks_nonce
        if hks_nonce is None:
            return invalid("success without an HKS-Nonce")
        if not exchange.mn_nonce:
            return invalid("new key offered for a verify-only request")
        if not crypto.supported_prf(resp.prf):
            return invalid(f"success with unsupported PRF {resp.prf}")
        if exchange.timestamp is not None and resp.timestamp not in (None, exchange.timestamp):
            return invalid("timestamp echo differs from the one sent (P5)")
        hk = crypto.derive_hk(
            self.config.hmk,
            resp.prf,
            exchange.mn_nonce,
            hks_nonce,
            self.config.nai,
            exchange.ar_id,
            self.config.hk_length,
        )
        if not crypto.verify_mac(wire, resp, MacSubtype.MN_AR, hk):  # §6.2.2
            return invalid("MN-AR MAC does not verify with the derived HK")
        return Verdict(Input.KEY_RESPONSE, "new key", hk=hk)

    def _hks_signed(self, exchange: _Exchange, resp: HKResp, wire: bytes) -> bool | str:
        """P7: True when the MN-HKS MAC verifies with the HIK of the request (keyed for the
        algorithm in the option), False when there is none, a reason to discard otherwise."""
        mac = resp.mac(MacSubtype.MN_HKS)
        if mac is None:
            return "MN-AR MAC on an error" if resp.mac(MacSubtype.MN_AR) else False
        if not crypto.supported_mac_algorithm(mac.algorithm):
            return f"MN-HKS MAC of unsupported algorithm {mac.algorithm}"
        hik = crypto.derive_hik(self.config.hmk, exchange.prf, exchange.message_id, mac.algorithm)
        if not crypto.verify_mac(wire, resp, MacSubtype.MN_HKS, hik):
            return "MN-HKS MAC does not verify"
        return True

    def _classify_error(self, exchange: _Exchange, resp: HKResp, wire: bytes) -> Verdict:
        signed = self._hks_signed(exchange, resp, wire)
        if isinstance(signed, str):
            return Verdict(Input.INVALID_ANSWER, signed)
        if signed:
            return self._honoured(exchange, resp, authenticated=True)
        # P7 v1.1: a hint. Only the AR's own (unsigned) errors say anything worth doing,
        # and that only once the retransmission timer fires without an authenticated answer.
        due = self._honoured(exchange, resp, authenticated=False)
        if resp.status not in AR_ERRORS or due.input in (Input.HINT, Input.INVALID_ANSWER):
            reason = "no valid MN-HKS MAC: a hint only (P7), changes nothing; still waiting"
            return Verdict(Input.HINT, due.reaction if due.input is Input.HINT else reason)
        timer_input = {
            Input.CORRECTABLE_ERROR: Input.HINT_DUE,
            Input.RETRY_LATER_ERROR: Input.HINT_DUE_RETRY_LATER,
            Input.FINAL_ERROR: Input.HINT_DUE_FINAL,
        }[due.input]
        hint = Verdict(timer_input, due.reaction, correction=due.correction)
        return Verdict(
            Input.HINT,
            f"unsigned (P7): waiting for an authenticated answer, then {due.reaction}",
            hint=hint,
        )

    def _honoured(self, exchange: _Exchange, resp: HKResp, authenticated: bool) -> Verdict:
        """What the MN does about `resp`'s status if it acts on it."""
        status = resp.status

        def verdict(step: Input, reaction: str, correction: Correction = NO_CORRECTION) -> Verdict:
            return Verdict(step, reaction, authenticated, correction=correction)

        def correct(reaction: str, correction: Correction) -> Verdict:
            if exchange.corrections >= MAX_CORRECTIONS:
                return verdict(Input.FINAL_ERROR, "too many corrections: giving up")
            return verdict(Input.CORRECTABLE_ERROR, reaction, correction)

        if status == Status.COA_AUTH_FAILED:
            if exchange.coa_retries >= self.config.max_retransmissions:
                return verdict(Input.FINAL_ERROR, "CoA_AUTH_FAILED and no retries left")
            return verdict(Input.RETRY_LATER_ERROR, "retrying after HK_RETRY_INTERVAL")
        if status == Status.TIMESTAMP_REQD:
            if exchange.timestamp is not None:
                return verdict(Input.HINT, "TIMESTAMP_REQD although a timestamp was sent: ignored")
            return correct("resending with a timestamp", Correction(use_timestamps=True))
        if status == Status.HK_VERIFY_FAILED:
            if exchange.kind is not Kind.VERIFY:
                return verdict(Input.HINT, "HK_VERIFY_FAILED for a request without V: ignored")
            return correct(
                "the AR lacks the key: full MN-HKS request", Correction(kind=Kind.REQUEST)
            )
        if status == Status.ADMINISTRATIVELY_PROHIBITED:
            return verdict(Input.FINAL_ERROR, "no more HKReqs via this AR (§6.2.2.1)")
        if status == Status.INVALID_TIMESTAMP:
            echoed = resp.timestamp
            if echoed is None:
                return verdict(Input.INVALID_ANSWER, "INVALID_TIMESTAMP without a Timestamp option")
            if exchange.timestamp is not None and not echoes_low_bits(exchange.timestamp, echoed):
                return verdict(
                    Input.INVALID_ANSWER,
                    "INVALID_TIMESTAMP echoes other low 32 bits than sent (P5)",
                )
            sent = exchange.timestamp if exchange.timestamp is not None else echoed
            delta = seconds_correction(sent, echoed)
            return correct(
                f"clock adjusted by {delta:+d} s, resending",
                Correction(use_timestamps=True, clock_delta=delta),
            )
        if status == Status.INVALID_PRF_ALG:
            if not crypto.supported_prf(resp.prf) or resp.prf == exchange.prf:
                return verdict(Input.FINAL_ERROR, f"HKS requires PRF {resp.prf}, unavailable")
            return correct(f"resending with PRF {resp.prf}", Correction(prf=resp.prf))
        if status == Status.INVALID_MAC_ALG:
            required = resp.mac(MacSubtype.MN_HKS)
            if required is None or required.algorithm == exchange.mac_algorithm:
                return verdict(Input.FINAL_ERROR, "INVALID_MAC_ALG naming the algorithm used")
            return correct(
                f"resending with MAC algorithm {required.algorithm}",
                Correction(mac_algorithm=required.algorithm),
            )
        return verdict(Input.FINAL_ERROR, f"unknown status {status}")

    # ---- actions -------------------------------------------------------------------

    def _apply(
        self,
        exchange: _Exchange,
        verdict: Verdict,
        now: float,
        wall: float,
        out: list[Output],
        message: HKResp | None = None,
    ) -> None:
        action, next_state = transition(exchange.state, verdict.input)
        exchange.state = next_state
        if action is Action.STORE_KEY:
            assert message is not None and verdict.hk is not None
            self._store_key(exchange, message, verdict, now, wall, out)
        elif action is Action.SEND_CORRECTED:
            self._correct(exchange, verdict.correction)
            self._send_new(exchange, now, wall, out)
        elif action is Action.WAIT_TO_RETRY:
            exchange.hint = None
            exchange.coa_retries += 1
            fraction = (int.from_bytes(self._random(2), "big") + 1) / 65536
            exchange.deadline = now + self.config.retry_interval * (1 + fraction * COA_RETRY_JITTER)
        elif action is Action.SEND_FRESH:
            self._send_new(exchange, now, wall, out)
        elif action is Action.FALL_BACK_TO_REQUEST:
            # §6.2.3: the held key stays until a new one replaces it (docs/decisions.md).
            out.append(VerifyUnanswered(exchange.number, exchange.transmissions))
            self._correct(exchange, Correction(kind=Kind.REQUEST))
            self._send_new(exchange, now, wall, out)
        elif action is Action.RETRANSMIT:
            self._transmit(exchange, now, out)
        elif action is Action.GIVE_UP:
            if (
                message is not None
                and verdict.authenticated
                and message.status == Status.ADMINISTRATIVELY_PROHIBITED
            ):
                self.prohibited.add(exchange.ar_id)
            self._linger(exchange, now)
            elapsed = now - exchange.started_at
            out.append(GaveUp(exchange.number, verdict.reaction, exchange.last_status, elapsed))
        elif action is Action.NOTE_HINT:
            if verdict.hint is not None:  # the latest actionable hint wins
                exchange.hint = verdict.hint
        elif action in (Action.DISCARD, Action.IGNORE):
            out.append(Discarded(exchange.number, verdict.reaction))
        elif action is Action.FORGET:
            del self._exchanges[exchange.number]

    def _correct(self, exchange: _Exchange, correction: Correction) -> None:
        exchange.corrections += 1
        if correction.use_timestamps:
            self.use_timestamps = True
        if correction.clock_delta is not None:
            self.clock.corrected(exchange.clock_offset, correction.clock_delta)
        if correction.prf is not None:
            self.prf = correction.prf
        if correction.mac_algorithm is not None:
            self.mac_algorithm = correction.mac_algorithm
        if correction.kind is not None:
            exchange.kind = correction.kind

    def _store_key(
        self,
        exchange: _Exchange,
        resp: HKResp,
        verdict: Verdict,
        now: float,
        wall: float,
        out: list[Output],
    ) -> None:
        assert verdict.hk is not None
        held = self.keys.get(self.config.nai, exchange.ar_id)
        if verdict.verified and held is not None:
            key = held.renewed(resp.spi, resp.lifetime, wall, exchange.care_of_address)
        else:
            mac = resp.mac(MacSubtype.MN_AR)
            key = HeldKey(
                nai=self.config.nai,
                ar_id=exchange.ar_id,
                spi=resp.spi,
                lifetime=resp.lifetime,
                established_at=wall,
                expires_at=wall + resp.lifetime,
                prf=resp.prf,
                mac_algorithm=mac.algorithm if mac else self.mac_algorithm,
                care_of_address=exchange.care_of_address,
                hk=verdict.hk,
            )
        replaced = self.keys.put(key) is not None and not verdict.verified
        if exchange.timestamp is not None:
            self.clock.succeeded(exchange.timestamp)
        self._linger(exchange, now)
        elapsed = now - exchange.started_at
        out.append(KeyEstablished(exchange.number, key, verdict.verified, replaced, elapsed))

    def _linger(self, exchange: _Exchange, now: float) -> None:
        """Finished: keep the exchange one HKEY_REQ_TOUT for late copies of the answer."""
        exchange.hint = None
        exchange.deadline = now + self.config.request_timeout
        self._last_sent[(exchange.ar_id, exchange.message_id)] = now  # the guard's start

    def message_id_free_at(self, ar_id: bytes, now: float) -> float | None:
        """When a new exchange with `ar_id` can get a Message ID (§6.2.1): `now` if one is
        free, else when the first guarded ID leaves MESSAGE_ID_REUSE_GUARD; None while
        every one is held by an exchange in flight (its end is an event)."""
        in_use = self._ids_in_use(ar_id, None)
        guard = MESSAGE_ID_REUSE_GUARD
        guarded = [t for (a, m), t in self._last_sent.items()
                   if a == ar_id and m not in in_use and t + guard > now]  # fmt: skip
        if len(in_use) + len(guarded) < 256:
            return now
        return min(guarded) + guard if guarded else None

    def _ids_in_use(self, ar_id: bytes, exchange: _Exchange | None) -> set[int]:
        return {
            e.message_id
            for e in self._exchanges.values()
            if e.ar_id == ar_id and e is not exchange and e.state not in FINISHED
        }

    def _allocate_message_id(self, exchange: _Exchange, now: float) -> int:
        """§6.2.1: a unique Message ID: a sequence from a random start, skipping IDs that
        other exchanges with the same AR use, and IDs sent to that AR (or whose exchange
        ended) less than MESSAGE_ID_REUSE_GUARD ago: the AR still holds its answer to
        those (P10) and would discard a new HKReq under the same ID."""
        in_use = self._ids_in_use(exchange.ar_id, exchange)
        self._last_sent = {
            k: t for k, t in self._last_sent.items() if t + MESSAGE_ID_REUSE_GUARD > now
        }
        for _ in range(256):
            candidate = self._next_message_id
            self._next_message_id = (candidate + 1) % 256
            if candidate not in in_use and (exchange.ar_id, candidate) not in self._last_sent:
                return candidate
        raise LocalProtocolError(
            "no Message ID free for this AR: 256 used within HKEY_REQ_TOUT (§6.2.1); retry later"
        )

    def _send_new(self, exchange: _Exchange, now: float, wall: float, out: list[Output]) -> None:
        """Build and send a new HKReq (new Message ID, nonce and timestamp)."""
        if exchange.transmissions:
            exchange.earlier_message_ids.add(exchange.message_id)
        exchange.message_id = self._allocate_message_id(exchange, now)
        exchange.hint = None
        exchange.prf = self.prf
        exchange.mac_algorithm = self.mac_algorithm
        exchange.transmissions = 0
        verify = exchange.kind is Kind.VERIFY
        options: list[Option] = [MobileNodeIdentifier(self.config.nai)]
        exchange.mn_nonce = b"" if verify else self._random(NONCE_LENGTH)
        if exchange.mn_nonce:
            options.append(HandoverNonce(NonceSubtype.MN_NONCE, exchange.mn_nonce))
        exchange.clock_offset = self.clock.offset
        exchange.timestamp = self.clock.stamp(wall) if self.use_timestamps else None
        if exchange.timestamp is not None:
            options.append(Timestamp(exchange.timestamp))
        keys: dict[MacSubtype, bytes] = {}
        if verify:
            held = self.keys.get(self.config.nai, exchange.ar_id)
            if held is None:
                raise LocalProtocolError("the held key vanished before the verify was sent")
            options.append(MacOption(MacSubtype.MN_AR, held.mac_algorithm))
            keys[MacSubtype.MN_AR] = held.hk
        else:
            options.append(MacOption(MacSubtype.MN_HKS, exchange.mac_algorithm))
            keys[MacSubtype.MN_HKS] = crypto.derive_hik(
                self.config.hmk, exchange.prf, exchange.message_id, exchange.mac_algorithm
            )
        request = HKReq(
            exchange.message_id, verify, exchange.prf, exchange.care_of_address, tuple(options)
        )
        exchange.wire = crypto.sign_message(request, keys, self.config.code_points)
        self._transmit(exchange, now, out)

    def _transmit(self, exchange: _Exchange, now: float, out: list[Output]) -> None:
        exchange.transmissions += 1
        self._last_sent[(exchange.ar_id, exchange.message_id)] = now
        exchange.deadline = now + self.config.request_timeout
        out.append(
            RequestSent(
                exchange.number,
                exchange.ar_id,
                exchange.message_id,
                exchange.transmissions,
                exchange.kind,
                exchange.prf,
                exchange.mac_algorithm,
                exchange.timestamp is not None,
            )
        )
        out.append(Datagram(exchange.ar_id, exchange.wire))


def exchange_started(outputs: list[Output]) -> int:
    """The exchange number a command started: that of its first RequestSent."""
    for output in outputs:
        if isinstance(output, RequestSent):
            return output.exchange
    raise LocalProtocolError("these outputs started no exchange")
