"""The MN role (draft §6.2, §6.5; PROFILE P5, P7, P10), sans-I/O.

Every state rule of an MN exchange is in hkp_radius/mn_states.py (`State`, `Input`,
`Action`, `TRANSITIONS`); this module classifies what happens into an `Input` and
carries out the `Action` the table names.

Time (`now`, Unix seconds) and randomness (`random(n) -> n bytes`) are arguments. The
adapter calls `request_key` / `verify_key` / `refresh_key`, `receive_datagram`,
`on_timer`, then sends `datagrams_to_send()`, arms `next_timer()` and reads `events()`.

Decisions (docs/decisions.md, "## MN"):
- A retransmission re-sends the same bytes (same Message ID, nonce and timestamp, §6.2.1);
  at most N_HO_KEYTRIES retransmissions follow the first transmission.
- A corrected request (after TIMESTAMP_REQD, INVALID_TIMESTAMP, INVALID_PRF_ALG,
  INVALID_MAC_ALG, HK_VERIFY_FAILED or a CoA_AUTH_FAILED wait) is a new HKReq with a new
  Message ID: the AR re-sends its cached answer to a repeated Message ID (§6.3).
- Errors from the HKS are honoured only when their MN-HKS MAC verifies (P7); without one
  they are hints and the exchange keeps waiting for a real answer. AR errors
  (CoA_AUTH_FAILED, TIMESTAMP_REQD, HK_VERIFY_FAILED) carry no MAC and are acted on,
  since obeying them only costs a retry.
- A verify that runs out of tries unanswered falls back to a full MN-HKS request
  (§6.2.3); the held key stays until a new one replaces it.
- Timestamps (hkp_radius/mn_clock.py) stay above the last successful one (§5.2.3).
"""

from __future__ import annotations

from dataclasses import dataclass

from hkp_radius import crypto
from hkp_radius.constants import (
    DEFAULT_CODE_POINTS,
    HK_DEFAULT_LENGTH,
    HK_RETRY_INTERVAL,
    HKEY_REQ_TOUT,
    HMK_MIN_LENGTH,
    IPV6_ADDRESS_LENGTH,
    N_HO_KEYTRIES,
    NONCE_LENGTH,
    NULL_COA,
    PRF,
    CodePoints,
    MacAlgorithm,
    MacSubtype,
    NonceSubtype,
    Status,
)
from hkp_radius.errors import ConfigError, DecodeError, LocalProtocolError
from hkp_radius.mn.clock import RandomSource, TimestampClock, echoes_low_bits, seconds_correction
from hkp_radius.mn.events import (
    Datagram,
    Discarded,
    ErrorReceived,
    Event,
    GaveUp,
    KeyEstablished,
    Kind,
    RequestSent,
    VerifyUnanswered,
)
from hkp_radius.mn.keys import HeldKey, KeyStore, format_address
from hkp_radius.mn.state import TRANSITIONS, Action, Input, State
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

__all__ = [
    "TRANSITIONS",
    "Action",
    "Datagram",
    "Discarded",
    "ErrorReceived",
    "Event",
    "GaveUp",
    "HeldKey",
    "Input",
    "KeyEstablished",
    "KeyStore",
    "Kind",
    "MNConfig",
    "MobileNode",
    "RequestSent",
    "State",
    "VerifyUnanswered",
]


# §6.3: the AR keeps its answer to a (NAI, Message ID) for HKEY_REQ_TOUT after sending
# it, which may be up to HKEY_REQ_TOUT after our last transmission: a Message ID is not
# reused with the same AR sooner than twice that.
MESSAGE_ID_REUSE_GUARD = 2 * HKEY_REQ_TOUT


@dataclass(frozen=True)
class MNConfig:
    """An MN identity and its policy. `hmk` never appears in a repr."""

    nai: bytes
    hmk: bytes
    prf: int = PRF.HMAC_SHA1
    mac_algorithm: int = MacAlgorithm.HMAC_SHA1
    use_timestamps: bool = True  # §6.2.1: the MN SHOULD use the Timestamp option
    request_timeout: float = HKEY_REQ_TOUT
    max_retransmissions: int = N_HO_KEYTRIES
    retry_interval: float = HK_RETRY_INTERVAL
    hk_length: int = HK_DEFAULT_LENGTH
    code_points: CodePoints = DEFAULT_CODE_POINTS

    def __post_init__(self) -> None:
        MobileNodeIdentifier(self.nai)  # checks the NAI length (P2)
        if len(self.hmk) < HMK_MIN_LENGTH:  # draft §6.1; the message never shows the key
            raise ConfigError(
                f"HMK of {self.nai.decode('utf-8', 'replace')} is {len(self.hmk)} octets; "
                f"draft §6.1 requires at least {HMK_MIN_LENGTH}: give the full HMK the "
                "HKS holds for this NAI"
            )
        crypto.derive_hik(self.hmk, self.prf, 0, self.mac_algorithm)  # checks the algorithms

    def __repr__(self) -> str:
        return f"MNConfig(nai={self.nai!r}, prf={self.prf}, mac_algorithm={self.mac_algorithm})"


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
        self._outbox: list[Datagram] = []
        self._events: list[Event] = []

    @property
    def clock_offset(self) -> float:
        """Seconds added to `now` for timestamps (P5), learnt from INVALID_TIMESTAMP."""
        return self.clock.offset

    @clock_offset.setter
    def clock_offset(self, offset: float) -> None:
        self.clock.offset = offset

    # ---- commands ------------------------------------------------------------------

    def request_key(self, ar_id: bytes, now: float, care_of_address: bytes = NULL_COA) -> int:
        """Draft §6.2.1: ask `ar_id` for a new HK. Returns the exchange number."""
        return self._start(Kind.REQUEST, ar_id, care_of_address, now)

    def verify_key(self, ar_id: bytes, now: float, care_of_address: bytes = NULL_COA) -> int:
        """Draft §6.2.3: returning to `ar_id`, prove possession of the held key (V flag)."""
        if self.keys.get(self.config.nai, ar_id, now) is None:
            raise LocalProtocolError(
                f"no unexpired key held for AR {format_address(ar_id)}: request one first"
            )
        return self._start(Kind.VERIFY, ar_id, care_of_address, now)

    def refresh_key(self, ar_id: bytes, now: float) -> int:
        """Draft §6.5: establish a key with an AR not attached to; the CoA is NULL."""
        return self._start(Kind.REFRESH, ar_id, NULL_COA, now)

    def _start(self, kind: Kind, ar_id: bytes, coa: bytes, now: float) -> int:
        if len(ar_id) != IPV6_ADDRESS_LENGTH or len(coa) != IPV6_ADDRESS_LENGTH:
            raise LocalProtocolError("AR-ID and CoA must be 16-octet IPv6 addresses")
        if ar_id in self.prohibited:
            raise LocalProtocolError(
                f"AR {format_address(ar_id)} answered ADMINISTRATIVELY_PROHIBITED: "
                "draft §6.2.2.1 forbids more HKReqs via it"
            )
        self._numbers += 1
        exchange = _Exchange(self._numbers, kind, ar_id, coa, now)
        self._exchanges[exchange.number] = exchange
        self._send_new(exchange, now)
        return exchange.number

    # ---- adapter interface ---------------------------------------------------------

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._outbox = self._outbox, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        deadlines = [e.deadline for e in self._exchanges.values() if e.deadline is not None]
        return min(deadlines) if deadlines else None

    def on_timer(self, now: float) -> None:
        for exchange in list(self._exchanges.values()):
            if exchange.deadline is None or exchange.deadline > now:
                continue
            if exchange.state is State.EXPECT_RETRY_TIME:
                self._apply(exchange, Input.RETRY_TIME, now)
            elif exchange.transmissions <= self.config.max_retransmissions:
                self._apply(exchange, Input.RESPONSE_TIMEOUT, now)
            elif exchange.kind is Kind.VERIFY and exchange.corrections < MAX_CORRECTIONS:
                self._apply(exchange, Input.VERIFY_UNANSWERED, now)
            else:
                self._apply(exchange, Input.TRIES_EXHAUSTED, now, reason="no answer")

    def active(self) -> int:
        """How many exchanges are not finished."""
        return len(self._exchanges)

    def state_of(self, exchange: int) -> State | None:
        found = self._exchanges.get(exchange)
        return found.state if found else None

    def receive_datagram(self, data: bytes, ar_id: bytes, now: float) -> None:
        """An MH arrived from `ar_id`. Anything not a valid answer is silently discarded."""
        try:
            message = decode_message(data, self.config.code_points)
        except DecodeError as exc:
            self._events.append(Discarded(None, f"malformed: {exc}"))
            return
        if not isinstance(message, HKResp):
            self._events.append(Discarded(None, "not an HKResp"))
            return
        exchange = next(
            (
                e
                for e in self._exchanges.values()
                if e.ar_id == ar_id and e.message_id == message.message_id
            ),
            None,
        )
        if exchange is None:  # §6.2.2: a Message ID we are not waiting on
            self._events.append(Discarded(None, f"foreign Message ID {message.message_id}"))
            return
        classified = self._classify(exchange, message, data)
        if isinstance(classified, str):
            self._events.append(Discarded(exchange.number, classified))
            return
        step, reaction, extra = classified
        if message.status != Status.SUCCESS:
            exchange.last_status = message.status
            authenticated = bool(extra.get("authenticated"))
            self._events.append(
                ErrorReceived(exchange.number, message.status, authenticated, reaction)
            )
        self._apply(exchange, step, now, message=message, reason=reaction, **extra)

    # ---- classification: HKResp -> Input -------------------------------------------

    def _classify(
        self, exchange: _Exchange, resp: HKResp, wire: bytes
    ) -> str | tuple[Input, str, dict[str, object]]:
        if exchange.state is not State.EXPECT_HKRESP:
            return f"late answer in state {exchange.state.value}"
        if resp.status == Status.SUCCESS:
            return self._classify_success(exchange, resp, wire)
        return self._classify_error(exchange, resp, wire)

    def _classify_success(
        self, exchange: _Exchange, resp: HKResp, wire: bytes
    ) -> str | tuple[Input, str, dict[str, object]]:
        mac = resp.mac(MacSubtype.MN_AR)
        if mac is None:  # §6.2.2: MUST silently discard
            return "success without an MN-AR MAC"
        if not crypto.supported_mac_algorithm(mac.algorithm):
            return f"MN-AR MAC of unsupported algorithm {mac.algorithm}"
        if resp.verify:
            held = self.keys.get(self.config.nai, exchange.ar_id)
            if exchange.kind is not Kind.VERIFY or held is None:
                return "V flag set but no verify was asked"
            if not crypto.verify_mac(wire, resp, MacSubtype.MN_AR, held.hk):
                return "MN-AR MAC does not verify with the held key"
            return Input.KEY_RESPONSE, "held key verified", {"hk": held.hk, "verified": True}
        hks_nonce = resp.hks_nonce
        if hks_nonce is None:
            return "success without an HKS-Nonce"
        if not exchange.mn_nonce:
            return "new key offered for a verify-only request"
        if not crypto.supported_prf(resp.prf):
            return f"success with unsupported PRF {resp.prf}"
        if exchange.timestamp is not None and resp.timestamp not in (None, exchange.timestamp):
            return "timestamp echo differs from the one sent (P5)"
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
            return "MN-AR MAC does not verify with the derived HK"
        return Input.KEY_RESPONSE, "new key", {"hk": hk, "verified": False}

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

    def _classify_error(
        self, exchange: _Exchange, resp: HKResp, wire: bytes
    ) -> str | tuple[Input, str, dict[str, object]]:
        signed = self._hks_signed(exchange, resp, wire)
        if isinstance(signed, str):
            return signed
        status = resp.status
        extra: dict[str, object] = {"authenticated": signed}

        def correct(reaction: str, **changes: object) -> tuple[Input, str, dict[str, object]]:
            if exchange.corrections >= MAX_CORRECTIONS:
                return Input.FINAL_ERROR, "too many corrections: giving up", extra
            return Input.CORRECTABLE_ERROR, reaction, {**extra, **changes}

        hint = (Input.HINT, "no valid MN-HKS MAC: a hint only (P7), still waiting", extra)
        if status == Status.COA_AUTH_FAILED:
            if exchange.coa_retries >= self.config.max_retransmissions:
                return Input.FINAL_ERROR, "CoA_AUTH_FAILED and no retries left", extra
            return Input.RETRY_LATER_ERROR, "retrying after HK_RETRY_INTERVAL", extra
        if status == Status.TIMESTAMP_REQD:
            if exchange.timestamp is not None:
                return Input.HINT, "TIMESTAMP_REQD although a timestamp was sent: ignored", extra
            return correct("resending with a timestamp", use_timestamps=True)
        if status == Status.HK_VERIFY_FAILED:
            if exchange.kind is not Kind.VERIFY:
                return Input.HINT, "HK_VERIFY_FAILED for a request without V: ignored", extra
            return correct("the AR lacks the key: full MN-HKS request", kind=Kind.REQUEST)
        if not signed:
            return hint
        if status == Status.ADMINISTRATIVELY_PROHIBITED:
            return Input.FINAL_ERROR, "no more HKReqs via this AR (§6.2.2.1)", extra
        if status == Status.INVALID_TIMESTAMP:
            echoed = resp.timestamp
            if echoed is None:
                return "INVALID_TIMESTAMP without a Timestamp option"
            if exchange.timestamp is not None and not echoes_low_bits(exchange.timestamp, echoed):
                return "INVALID_TIMESTAMP echoes other low 32 bits than sent (P5)"
            sent = exchange.timestamp if exchange.timestamp is not None else echoed
            delta = seconds_correction(sent, echoed)
            return correct(
                f"clock adjusted by {delta:+d} s, resending", clock_delta=delta, use_timestamps=True
            )
        if status == Status.INVALID_PRF_ALG:
            if not crypto.supported_prf(resp.prf) or resp.prf == exchange.prf:
                return Input.FINAL_ERROR, f"HKS requires PRF {resp.prf}, unavailable", extra
            return correct(f"resending with PRF {resp.prf}", prf=resp.prf)
        if status == Status.INVALID_MAC_ALG:
            required = resp.mac(MacSubtype.MN_HKS)
            assert required is not None  # signed implies present
            if required.algorithm == exchange.mac_algorithm:
                return Input.FINAL_ERROR, "INVALID_MAC_ALG naming the algorithm used", extra
            return correct(f"resending with MAC algorithm {required.algorithm}",
                           mac_algorithm=required.algorithm)  # fmt: skip
        return Input.FINAL_ERROR, f"unknown status {status}", extra

    # ---- actions -------------------------------------------------------------------

    def _apply(
        self,
        exchange: _Exchange,
        step: Input,
        now: float,
        message: HKResp | None = None,
        reason: str = "",
        **extra: object,
    ) -> None:
        try:
            action, next_state = TRANSITIONS[(exchange.state, step)]
        except KeyError:
            raise LocalProtocolError(
                f"MN exchange in {exchange.state.value} has no transition for {step.value}"
            ) from None
        exchange.state = next_state
        if action is Action.STORE_KEY:
            assert message is not None
            self._store_key(exchange, message, now, extra)
        elif action is Action.SEND_CORRECTED:
            self._correct(exchange, extra)
            self._send_new(exchange, now)
        elif action is Action.WAIT_TO_RETRY:
            exchange.coa_retries += 1
            fraction = (int.from_bytes(self._random(2), "big") + 1) / 65536
            exchange.deadline = now + self.config.retry_interval * (1 + fraction * COA_RETRY_JITTER)
        elif action is Action.SEND_FRESH:
            self._send_new(exchange, now)
        elif action is Action.FALL_BACK_TO_REQUEST:
            # §6.2.3: the held key stays until a new one replaces it (docs/decisions.md).
            self._events.append(VerifyUnanswered(exchange.number, exchange.transmissions))
            self._correct(exchange, {"kind": Kind.REQUEST})
            self._send_new(exchange, now)
        elif action is Action.RETRANSMIT:
            self._transmit(exchange, now)
        elif action is Action.GIVE_UP:
            if message is not None and message.status == Status.ADMINISTRATIVELY_PROHIBITED:
                self.prohibited.add(exchange.ar_id)
            self._finish(exchange)
            self._events.append(
                GaveUp(exchange.number, reason, exchange.last_status, now - exchange.started_at)
            )
        # NOTE_HINT and IGNORE change nothing: the exchange keeps its timer.

    def _correct(self, exchange: _Exchange, changes: dict[str, object]) -> None:
        exchange.corrections += 1
        if changes.get("use_timestamps"):
            self.use_timestamps = True
        delta = changes.get("clock_delta")
        if isinstance(delta, int):
            self.clock.corrected(exchange.clock_offset, delta)
        prf = changes.get("prf")
        if isinstance(prf, int):
            self.prf = prf
        algorithm = changes.get("mac_algorithm")
        if isinstance(algorithm, int):
            self.mac_algorithm = algorithm
        kind = changes.get("kind")
        if isinstance(kind, Kind):
            exchange.kind = kind

    def _store_key(
        self, exchange: _Exchange, resp: HKResp, now: float, extra: dict[str, object]
    ) -> None:
        hk = extra["hk"]
        assert isinstance(hk, bytes)
        verified = bool(extra.get("verified"))
        held = self.keys.get(self.config.nai, exchange.ar_id)
        if verified and held is not None:
            key = held.renewed(resp.spi, resp.lifetime, now, exchange.care_of_address)
        else:
            mac = resp.mac(MacSubtype.MN_AR)
            key = HeldKey(
                nai=self.config.nai,
                ar_id=exchange.ar_id,
                spi=resp.spi,
                lifetime=resp.lifetime,
                established_at=now,
                expires_at=now + resp.lifetime,
                prf=resp.prf,
                mac_algorithm=mac.algorithm if mac else self.mac_algorithm,
                care_of_address=exchange.care_of_address,
                hk=hk,
            )
        replaced = self.keys.put(key) is not None and not verified
        if exchange.timestamp is not None:
            self.clock.succeeded(exchange.timestamp)
        self._finish(exchange)
        self._events.append(
            KeyEstablished(exchange.number, key, verified, replaced, now - exchange.started_at)
        )

    def _finish(self, exchange: _Exchange) -> None:
        exchange.deadline = None
        del self._exchanges[exchange.number]

    def _allocate_message_id(self, exchange: _Exchange, now: float) -> int:
        """§6.2.1: a unique Message ID: a sequence from a random start, skipping IDs that
        other exchanges with the same AR use, and IDs sent to that AR less than
        MESSAGE_ID_REUSE_GUARD ago: the AR still holds its answer to those (§6.3 caches
        it for HKEY_REQ_TOUT) and would re-send that instead of asking the HKS."""
        in_use = {
            e.message_id
            for e in self._exchanges.values()
            if e.ar_id == exchange.ar_id and e is not exchange
        }
        horizon = now - MESSAGE_ID_REUSE_GUARD
        self._last_sent = {k: t for k, t in self._last_sent.items() if t > horizon}
        for _ in range(256):
            candidate = self._next_message_id
            self._next_message_id = (candidate + 1) % 256
            if candidate not in in_use and (exchange.ar_id, candidate) not in self._last_sent:
                return candidate
        raise LocalProtocolError(
            "no Message ID free for this AR: 256 used within HKEY_REQ_TOUT (§6.2.1); retry later"
        )

    def _send_new(self, exchange: _Exchange, now: float) -> None:
        """Build and send a new HKReq (new Message ID, nonce and timestamp)."""
        exchange.message_id = self._allocate_message_id(exchange, now)
        exchange.prf = self.prf
        exchange.mac_algorithm = self.mac_algorithm
        exchange.transmissions = 0
        verify = exchange.kind is Kind.VERIFY
        options: list[Option] = [MobileNodeIdentifier(self.config.nai)]
        exchange.mn_nonce = b"" if verify else self._random(NONCE_LENGTH)
        if exchange.mn_nonce:
            options.append(HandoverNonce(NonceSubtype.MN_NONCE, exchange.mn_nonce))
        exchange.clock_offset = self.clock.offset
        exchange.timestamp = self.clock.stamp(now) if self.use_timestamps else None
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
        self._transmit(exchange, now)

    def _transmit(self, exchange: _Exchange, now: float) -> None:
        exchange.transmissions += 1
        self._last_sent[(exchange.ar_id, exchange.message_id)] = now
        exchange.deadline = now + self.config.request_timeout
        self._outbox.append(Datagram(exchange.ar_id, exchange.wire))
        self._events.append(
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
