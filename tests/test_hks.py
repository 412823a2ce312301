"""The HKS role (hkp_radius.hks) without FreeRADIUS: draft §6.4, PROFILE P4, P5, P7, P8.

Plain functions and asserts (tests/core/check.py style): each outcome, the order of
the checks, the replay rules, and the P8 attribute helpers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from types import ModuleType

from hkp_radius import crypto
from hkp_radius.constants import PRF, MacAlgorithm, MacSubtype, NonceSubtype, Status
from hkp_radius.crypto import salt
from hkp_radius.errors import ConfigError, DecodeError
from hkp_radius.hks.role import (
    Accept,
    Discard,
    DiscardReason,
    HKSPolicy,
    HKSRequest,
    MemoryReplayStore,
    Reject,
    handle_request,
    parse_algorithm,
)
from hkp_radius.wire import ntp
from hkp_radius.wire import radius_attrs as ra
from hkp_radius.wire.messages import HKReq, HKResp, decode_message
from hkp_radius.wire.options import (
    HandoverNonce,
    MacOption,
    MobileNodeIdentifier,
    Option,
    Timestamp,
)
from tests.core.check import raises

NAI = b"mn@example.net"
HMK = bytes(range(64))
AR = bytes.fromhex("20010db8000000000000000000000001")
MN_NONCE = bytes(range(16, 32))
HKS_NONCE = bytes(range(32, 48))
NOW = 1_700_000_000.0
STRICT = HKSPolicy(
    allowed_prfs=frozenset({PRF.HMAC_SHA1}),
    allowed_mac_algorithms=frozenset({MacAlgorithm.HMAC_SHA1}),
    require_timestamp=True,
)


def hkreq(
    *,
    message_id: int = 7,
    prf: int = PRF.HMAC_SHA1,
    algorithm: int = MacAlgorithm.HMAC_SHA1,
    timestamp: int | None = None,
    mac: bool = True,
    key: bytes | None = None,
    nai: bytes = NAI,
    hmk: bytes = HMK,
) -> bytes:
    options: list[Option] = [
        MobileNodeIdentifier(nai),
        HandoverNonce(NonceSubtype.MN_NONCE, MN_NONCE),
    ]
    if timestamp is not None:
        options.append(Timestamp(timestamp))
    unknown_algorithm = algorithm not in (MacAlgorithm.HMAC_SHA1, MacAlgorithm.HMAC_SHA256)
    if mac:  # an algorithm we cannot sign with gets a made-up AUTH
        options.append(
            MacOption(MacSubtype.MN_HKS, algorithm, bytes(20) if unknown_algorithm else b"")
        )
    message = HKReq(message_id, False, prf, bytes(16), tuple(options))
    if not mac or unknown_algorithm:
        return message.encode()
    hik = key if key is not None else crypto.derive_hik(hmk, prf, message_id, algorithm)
    return crypto.sign_message(message, {MacSubtype.MN_HKS: hik})


def decide(
    wire: bytes | None,
    policy: HKSPolicy = STRICT,
    replay: MemoryReplayStore | None = None,
    now: float = NOW,
    **fields: object,
):
    request = HKSRequest(
        **{"user_name": NAI, "mobility_header": wire, "ar_address": AR, "hmk": HMK, **fields}
    )  # type: ignore[arg-type]
    return handle_request(
        request, policy, replay or MemoryReplayStore(), now, lambda n: HKS_NONCE[:n]
    )


def ts(offset: float = 0.0) -> int:
    return ntp.to_ntp(NOW + offset)


def error_response(
    decision: object,
    status: Status,
    key_algorithm: int = MacAlgorithm.HMAC_SHA1,
    message_id: int = 7,
) -> HKResp:
    assert isinstance(decision, Reject), decision
    assert decision.status == status
    response = decode_message(decision.response_header)
    assert isinstance(response, HKResp)
    assert (response.status, response.message_id, response.spi, response.lifetime) == (
        status,
        message_id,
        0,
        0,
    )
    mac = response.mac(MacSubtype.MN_HKS)
    assert mac is not None and mac.algorithm == key_algorithm
    hik = crypto.derive_hik(HMK, PRF.HMAC_SHA1, message_id, key_algorithm)
    assert crypto.verify_mac(decision.response_header, response, MacSubtype.MN_HKS, hik)
    return response


def test_accept_derives_the_profile_hk():
    decision = decide(hkreq(timestamp=ts()))
    assert isinstance(decision, Accept)
    assert decision.handover_key == crypto.derive_hk(
        HMK, PRF.HMAC_SHA1, MN_NONCE, HKS_NONCE, NAI, AR
    )
    assert (decision.hks_nonce, decision.lifetime, decision.prf, decision.timestamp) == (
        HKS_NONCE,
        3600,
        PRF.HMAC_SHA1,
        ts(),
    )
    assert HMK.hex() not in repr(decision) and decision.handover_key.hex() not in repr(decision)


def test_accept_without_timestamp_when_not_required():
    decision = decide(hkreq(), policy=HKSPolicy(hk_length=32, key_lifetime=60))
    assert isinstance(decision, Accept) and decision.timestamp is None
    assert len(decision.handover_key) == 32 and decision.lifetime == 60


def test_discards():
    cases = {
        DiscardReason.BAD_MAC: decide(hkreq(timestamp=ts(), key=bytes(20))),
        DiscardReason.NO_MN_HKS_MAC: decide(hkreq(timestamp=ts(), mac=False)),
        DiscardReason.UNKNOWN_NAI: decide(hkreq(timestamp=ts()), hmk=None),
        DiscardReason.HMK_TOO_SHORT: decide(hkreq(timestamp=ts()), hmk=HMK[:63]),
        DiscardReason.MALFORMED: decide(b"\x3b\x01garbage"),
        DiscardReason.NO_MOBILITY_HEADER: decide(None),
        DiscardReason.NO_AR_ADDRESS: decide(hkreq(timestamp=ts()), ar_address=None),
        DiscardReason.USER_NAME_MISMATCH: decide(
            hkreq(timestamp=ts()), user_name=b"other@example.net"
        ),
        DiscardReason.UNSUPPORTED_PRF: decide(hkreq(timestamp=ts(), prf=5, key=bytes(20))),
        DiscardReason.UNSUPPORTED_MAC_ALGORITHM: decide(
            hkreq(timestamp=ts(), algorithm=9, key=bytes(20))
        ),
    }
    for reason, decision in cases.items():
        assert isinstance(decision, Discard) and decision.reason is reason, (reason, decision)
    assert cases[DiscardReason.NO_AR_ADDRESS].ar_error
    assert not cases[DiscardReason.BAD_MAC].ar_error


def test_invalid_prf_alg_names_the_required_prf():
    decision = decide(hkreq(timestamp=ts(), prf=PRF.HMAC_SHA256))
    assert isinstance(decision, Reject) and decision.status == Status.INVALID_PRF_ALG
    response = decode_message(decision.response_header)
    assert response.prf == PRF.HMAC_SHA1
    hik = crypto.derive_hik(
        HMK, PRF.HMAC_SHA256, 7, MacAlgorithm.HMAC_SHA1
    )  # the HIK of the request
    assert crypto.verify_mac(decision.response_header, response, MacSubtype.MN_HKS, hik)


def test_invalid_mac_alg_is_signed_with_the_required_algorithm():
    decision = decide(hkreq(timestamp=ts(), algorithm=MacAlgorithm.HMAC_SHA256))
    error_response(decision, Status.INVALID_MAC_ALG, key_algorithm=MacAlgorithm.HMAC_SHA1)


def test_timestamp_required():
    response = error_response(decide(hkreq()), Status.TIMESTAMP_REQD)
    assert response.timestamp is None


def test_invalid_timestamp_carries_our_seconds_and_their_fraction():
    for offset in (-8.0, +8.0):
        sent = ts(offset) | 0x1234
        response = error_response(decide(hkreq(timestamp=sent)), Status.INVALID_TIMESTAMP)
        assert response.timestamp == ntp.replace_seconds(sent, ntp.to_ntp(NOW))
    assert isinstance(decide(hkreq(timestamp=ts(6.9))), Accept)  # inside ±7 s


def test_replay_is_refused_and_only_accepts_advance_the_state():
    replay = MemoryReplayStore()
    assert isinstance(decide(hkreq(timestamp=ts()), replay=replay), Accept)
    error_response(decide(hkreq(timestamp=ts()), replay=replay), Status.INVALID_TIMESTAMP)
    error_response(decide(hkreq(timestamp=ts(-1)), replay=replay), Status.INVALID_TIMESTAMP)
    # a prohibited request with a later timestamp does not move the state
    error_response(
        decide(hkreq(timestamp=ts(2)), replay=replay, authorized=False),
        Status.ADMINISTRATIVELY_PROHIBITED,
    )
    assert replay.last_accepted(NAI) == ts()
    assert isinstance(decide(hkreq(timestamp=ts(1)), replay=replay), Accept)


def test_lost_race_is_invalid_timestamp():
    class Racing(MemoryReplayStore):
        def record_if_newer(self, nai: bytes, timestamp: int) -> bool:
            return False

    error_response(decide(hkreq(timestamp=ts()), replay=Racing()), Status.INVALID_TIMESTAMP)


def test_order_authentication_before_policy():
    # a disallowed PRF with a bad MAC is discarded, not answered
    assert isinstance(decide(hkreq(timestamp=ts(), prf=PRF.HMAC_SHA256, key=bytes(20))), Discard)
    # PRF before MAC algorithm before timestamp before authorization
    both = decide(hkreq(prf=PRF.HMAC_SHA256, algorithm=MacAlgorithm.HMAC_SHA256), authorized=False)
    assert isinstance(both, Reject) and both.status == Status.INVALID_PRF_ALG
    no_ts = decide(hkreq(), authorized=False)
    assert isinstance(no_ts, Reject) and no_ts.status == Status.TIMESTAMP_REQD


def test_policy_validation():
    with raises(ConfigError, "required_prf"):
        HKSPolicy(allowed_prfs=frozenset({PRF.HMAC_SHA256}))
    with raises(ConfigError, "key_lifetime"):
        HKSPolicy(key_lifetime=70000)
    with raises(ConfigError, "hk_length"):
        HKSPolicy(hk_length=240)


def test_non_ascii_digits_are_refused_with_the_project_errors():
    """A "²" passes str.isdigit() but int() refuses it: it used to escape as ValueError."""
    assert parse_algorithm(" 2 ", MacAlgorithm) == MacAlgorithm.HMAC_SHA256
    with raises(ConfigError, "MacAlgorithm"):
        parse_algorithm("²", MacAlgorithm)
    with raises(DecodeError, ra.KEY_LIFETIME):
        ra.parse_accept(
            {
                ra.HANDOVER_KEY: [b"k" * 20],
                ra.HKS_NONCE: [HKS_NONCE],
                ra.KEY_LIFETIME: ["²"],
                ra.PRF_ATTRIBUTE: [1],
            }
        )
    with raises(DecodeError, ra.STATUS_CODE):
        ra.parse_reject({ra.STATUS_CODE: ["²"], ra.RESPONSE_HEADER: [b"\x01"]})


def test_radius_attrs_split_and_join():
    mh = bytes(range(256)) * 2
    chunks = ra.split_mobility_header(mh)
    assert [len(c) for c in chunks] == [247, 247, 18]
    assert ra.join_mobility_header(chunks) == mh
    with raises(DecodeError):
        ra.split_mobility_header(b"")


def test_radius_attrs_hex_and_addresses():
    assert ra.to_hex(b"\x00\xff") == "0x00ff" and ra.from_hex("0x00FF") == b"\x00\xff"
    for bad in ("00ff", "0xzz", "0x0"):
        with raises(DecodeError):
            ra.from_hex(bad)
    assert ra.ipv6_octets("2001:db8::1") == AR and ra.ipv6_text(AR) == "2001:db8::1"
    with raises(DecodeError):
        ra.ipv6_octets("1.2.3.4")


def test_radius_attrs_request_and_replies():
    attrs = ra.access_request_attributes(b"x" * 300, NAI, AR, bytes(16), nas_identifier="ar1")
    names = [n for n, _ in attrs]
    assert names == [
        ra.USER_NAME,
        ra.MOBILITY_HEADER,
        ra.MOBILITY_HEADER,
        ra.AR_ADDRESS,
        ra.CARE_OF_ADDRESS,
        ra.NAS_IDENTIFIER,
    ]
    grant = ra.parse_accept(
        {
            ra.HANDOVER_KEY: [b"k" * 20],
            ra.HKS_NONCE: [HKS_NONCE],
            ra.KEY_LIFETIME: [3600],
            ra.PRF_ATTRIBUTE: ["HMAC-SHA1"],
            ra.TIMESTAMP: [(5).to_bytes(8, "big")],
        }
    )
    assert (grant.prf, grant.lifetime, grant.timestamp) == (1, 3600, 5)
    with raises(DecodeError, ra.HKS_NONCE):
        ra.parse_accept({ra.HANDOVER_KEY: [b"k"]})
    refusal = ra.parse_reject(
        {ra.STATUS_CODE: ["Invalid-Timestamp"], ra.RESPONSE_HEADER: [b"\x01"]}
    )
    assert refusal.status == Status.INVALID_TIMESTAMP and refusal.response_header == b"\x01"
    assert ra.parse_reject({ra.REPLY_MESSAGE: ["why"]}) == ra.HKSRefusal(None, None, "why")
    with raises(DecodeError):
        ra.parse_reject({ra.STATUS_CODE: [138]})


# ---- the FreeRADIUS adapter (freeradius_module/rlm_hkp_hks.py) without FreeRADIUS ----

RADIUS_SECRET = b"ar-secret"
REQUEST_AUTHENTICATOR = bytes(range(100, 116))


def module_lists(
    wire: bytes, *, salt_inputs: bool = True
) -> dict[str, tuple[tuple[str, str], ...]]:
    """What rlm_python3 (pass_all_vps_dict) hands the module for one Access-Request."""
    control = [(ra.HMK, ra.to_hex(HMK))]
    if salt_inputs:
        control.append((ra.RADIUS_SECRET, ra.to_hex(ra.RADIUS_SECRET_PREFIX + RADIUS_SECRET)))
        control.append((ra.REQUEST_AUTHENTICATOR, ra.to_hex(REQUEST_AUTHENTICATOR)))
    return {
        "request": (
            (ra.USER_NAME, NAI.decode()),
            (ra.MOBILITY_HEADER, ra.to_hex(wire)),
            (ra.AR_ADDRESS, ra.ipv6_text(AR)),
        ),
        "config": tuple(control),
    }


@contextlib.contextmanager
def module_state() -> Iterator[tuple[ModuleType, MemoryReplayStore]]:
    """The adapter with its policy and a fresh replay store, as instantiate leaves it."""
    from freeradius_module import rlm_hkp_hks as module

    replay = MemoryReplayStore()
    saved = dict(module._state)
    module._state.update(policy=HKSPolicy(), replay=replay)
    try:
        yield module, replay
    finally:
        module._state.clear()
        module._state.update(saved)


def test_module_returns_the_hk_salt_encrypted_only():
    with module_state() as (module, replay):
        timestamp = ntp.to_ntp(time.time())  # the adapter reads the clock itself
        rcode, lists = module.authenticate(module_lists(hkreq(timestamp=timestamp)))
        assert rcode == module.RLM_MODULE_OK
        reply = {name: value for name, _, value in lists["reply"]}
        assert ra.HANDOVER_KEY not in reply  # the plaintext attribute is never returned
        value = ra.from_hex(reply[ra.HANDOVER_KEY_SALTED])
        hk = salt.salt_decrypt(value, RADIUS_SECRET, REQUEST_AUTHENTICATOR)
        hks_nonce = ra.from_hex(reply[ra.HKS_NONCE])
        assert hk == crypto.derive_hk(HMK, PRF.HMAC_SHA1, MN_NONCE, hks_nonce, NAI, AR)
        assert hk.hex() not in repr(lists).lower()
        assert replay.last_accepted(NAI) == timestamp


def test_module_fails_without_salt_inputs_and_keeps_the_replay_state():
    with module_state() as (module, replay):
        wire = hkreq(timestamp=ntp.to_ntp(time.time()))
        failed = module.authenticate(module_lists(wire, salt_inputs=False))
        assert failed == (module.RLM_MODULE_FAIL, {})
        assert replay.last_accepted(NAI) is None  # nothing was issued, nothing advanced


def test_module_reads_salt_inputs_strictly():
    from freeradius_module.rlm_hkp_hks import salt_inputs_from_lists

    def lists(secret: str, vector: str) -> dict[str, object]:
        return {"config": ((ra.RADIUS_SECRET, secret), (ra.REQUEST_AUTHENTICATOR, vector))}

    good_vector = ra.to_hex(REQUEST_AUTHENTICATOR)
    # a secret that itself begins with "0x" survives: the "s:" prefix keeps it octets
    assert salt_inputs_from_lists(lists(ra.to_hex(b"s:0xabc"), good_vector)) == (
        b"0xabc",
        REQUEST_AUTHENTICATOR,
    )
    for secret, vector in [
        (ra.to_hex(b"no-prefix"), good_vector),
        (ra.to_hex(b"s:"), good_vector),  # an empty secret
        (ra.to_hex(b"s:x"), ra.to_hex(bytes(15))),
        ("s:x", good_vector),  # not FreeRADIUS's octets rendering
    ]:
        assert salt_inputs_from_lists(lists(secret, vector)) is None
    assert salt_inputs_from_lists({"config": ()}) is None


def test_hmk_itself_never_keys_a_mac():
    """Draft §6.1: "The HMK MUST NOT be directly used to protect any data." A request
    MAC'd with the HMK (or its first 20 octets) instead of the HIK is not authentic."""
    for key in (HMK, HMK[:20]):
        decision = decide(hkreq(timestamp=ts(), key=key))
        assert isinstance(decision, Discard) and decision.reason is DiscardReason.BAD_MAC
    # Every response the HKS signs verifies with the HIK, never with the HMK.
    response = error_response(decide(hkreq()), Status.TIMESTAMP_REQD)
    reject = decide(hkreq())
    assert isinstance(reject, Reject)
    assert not crypto.verify_mac(reject.response_header, response, MacSubtype.MN_HKS, HMK[:20])
